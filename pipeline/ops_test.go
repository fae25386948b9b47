package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
)

// freeHTTPAddr returns a loopback address with a port free right now.
func freeHTTPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get fetches a path from the pipeline's HTTP endpoints with the token.
func get(base, token, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// scrape reads /metrics into a map from series (as exposed, e.g.
// `churnwatch_events_stored_total{topic="x"}`) to value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body, err := get(base, "", "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitReady waits for /readyz to answer 200.
func waitReady(t *testing.T, base, token string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(base, token, "/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz %d: %s", code, body)
		}
		return err
	})
}

func profileMsg(topics config.Topics, id, msisdn, profile string, ts time.Time) kafka.Message {
	return kafka.Message{Topic: topics.Name(config.TopicCRM), Key: []byte(msisdn), Value: []byte(fmt.Sprintf(
		`{"event_id":%q,"msisdn":%q,"type":"PROFILE","ts":%q,"profile":%s}`, id, msisdn, ts.Format(time.RFC3339), profile))}
}

func crmMsg(topics config.Topics, id, msisdn, typ string, ts time.Time) kafka.Message {
	return kafka.Message{Topic: topics.Name(config.TopicCRM), Key: []byte(msisdn), Value: []byte(fmt.Sprintf(
		`{"event_id":%q,"msisdn":%q,"type":%q,"ts":%q}`, id, msisdn, typ, ts.Format(time.RFC3339)))}
}

func cdrMsg(topics config.Topics, id, msisdn string, ts time.Time) kafka.Message {
	return kafka.Message{Topic: topics.Name(config.TopicCDR), Key: []byte(msisdn), Value: []byte(fmt.Sprintf(
		`{"event_id":%q,"msisdn":%q,"peer":"13512345678","direction":"MO","start_time":%q,"duration_s":60}`, id, msisdn, ts.Format(time.RFC3339)))}
}

// TestMetricsMoveWithTraffic scrapes /metrics before and after a known
// amount of traffic and checks that the counters moved by exactly that:
// messages consumed, stored and rejected per topic, the warning fired, the
// task opened, batch and write histograms, lag per partition, build info.
func TestMetricsMoveWithTraffic(t *testing.T) {
	ch, _ := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "m" + testenv.Suffix() + "."
	b := testenv.Broker(t, 2, topics.All()...)
	cfg := withTopics(testenv.Config(b, ch), topics)
	cfg.HTTP.Addr = freeHTTPAddr(t)
	base := "http://" + cfg.HTTP.Addr
	startPipeline(t, cfg)
	waitReady(t, base, "")

	cdr, crm, warnings := topics.Name(config.TopicCDR), topics.Name(config.TopicCRM), topics.Name(config.TopicWarnings)
	series := func(name, labels string) string { return name + "{" + labels + "}" }
	topicSeries := func(name, topic string) string { return series(name, `topic="`+topic+`"`) }
	before := scrape(t, base)
	for _, want := range []string{topicSeries("churnwatch_events_consumed_total", cdr), topicSeries("churnwatch_events_stored_total", crm),
		topicSeries("churnwatch_events_rejected_total", cdr)} {
		if v, ok := before[want]; !ok || v != 0 {
			t.Fatalf("%s = %v (present %v) before any traffic, want 0", want, v, ok)
		}
	}
	build := false
	for k, v := range before {
		build = build || (strings.HasPrefix(k, "churnwatch_build_info{") && strings.Contains(k, `goversion="go`) && v == 1)
	}
	if !build {
		t.Error("churnwatch_build_info with a goversion label is missing")
	}

	now := time.Now().Truncate(time.Second)
	msgs := []kafka.Message{
		profileMsg(topics, "mp-1", "13900000301", `{"tier":"gold","region":"fuzhou-linchuan","account_manager":"am-017"}`, now.Add(-time.Hour)),
		cdrMsg(topics, "mc-1", "13900000301", now.Add(-50*time.Minute)),
		cdrMsg(topics, "mc-2", "13900000301", now.Add(-40*time.Minute)),
		cdrMsg(topics, "mc-3", "13900000302", now.Add(-30*time.Minute)),
		{Topic: cdr, Key: []byte("13900000302"), Value: []byte(`{"event_id":"mc-bad","msisdn":"13900000302"}`)},
	}
	testenv.Produce(t, b.Addrs(), msgs...)
	// The port-out query after the profile is stored, so that the warning
	// knows the subscriber is gold and opens a task.
	testenv.Eventually(t, 30*time.Second, func() error {
		if m := scrape(t, base); m[topicSeries("churnwatch_events_stored_total", crm)] < 1 {
			return fmt.Errorf("profile not stored yet")
		}
		return nil
	})
	testenv.Produce(t, b.Addrs(), crmMsg(topics, "mp-2", "13900000301", "PORT_OUT_QUERY", now.Add(-10*time.Minute)))

	want := map[string]float64{
		topicSeries("churnwatch_events_consumed_total", cdr):                               4,
		topicSeries("churnwatch_events_stored_total", cdr):                                 3,
		topicSeries("churnwatch_events_rejected_total", cdr):                               1,
		topicSeries("churnwatch_events_consumed_total", crm):                               2,
		topicSeries("churnwatch_events_stored_total", crm):                                 2,
		topicSeries("churnwatch_events_rejected_total", crm):                               0,
		topicSeries("churnwatch_events_stored_total", warnings):                            1,
		series("churnwatch_warnings_fired_total", `severity="critical",signal="port_out"`): 1,
		"churnwatch_tasks_opened_total":                                                    1,
		"churnwatch_tasks_escalated_total":                                                 0,
	}
	var after map[string]float64
	testenv.Eventually(t, 30*time.Second, func() error {
		after = scrape(t, base)
		var diffs []string
		for k, v := range want {
			if d := after[k] - before[k]; d != v {
				diffs = append(diffs, fmt.Sprintf("%s moved by %v, want %v", k, d, v))
			}
		}
		if len(diffs) > 0 {
			return fmt.Errorf("%s", strings.Join(diffs, "; "))
		}
		return nil
	})
	for _, k := range []string{topicSeries("churnwatch_batch_size_messages_count", cdr), topicSeries("churnwatch_batch_write_duration_seconds_count", cdr),
		series("churnwatch_clickhouse_write_duration_seconds_count", `table="cdr"`), series("churnwatch_clickhouse_write_duration_seconds_count", `table="warnings"`),
		series("churnwatch_clickhouse_write_duration_seconds_count", `table="tasks"`), series("churnwatch_clickhouse_write_duration_seconds_count", `table="dead_letters"`)} {
		if after[k] <= before[k] {
			t.Errorf("%s did not move with traffic (%v → %v)", k, before[k], after[k])
		}
	}
	if n := after[topicSeries("churnwatch_batch_size_messages_sum", cdr)]; n != 4 {
		t.Errorf("cdr batches held %v messages in all, want 4", n)
	}
	if after["churnwatch_clickhouse_last_write_success_timestamp_seconds"] < float64(now.Unix()) {
		t.Error("churnwatch_clickhouse_last_write_success_timestamp_seconds is older than the traffic")
	}
	// Lag is measured per assigned partition and drops to zero once
	// everything is committed.
	testenv.Eventually(t, 30*time.Second, func() error {
		m := scrape(t, base)
		var parts int
		var lag float64
		for k, v := range m {
			if strings.HasPrefix(k, "churnwatch_consumer_lag_messages{") && strings.Contains(k, `topic="`+cdr+`"`) {
				parts++
				lag += v
			}
		}
		if parts != 2 || lag != 0 {
			return fmt.Errorf("lag series of %s: %d partitions (want 2), total %v (want 0)", cdr, parts, lag)
		}
		return nil
	})
}

// TestReadyzFollowsClickHouse puts a proxy between the pipeline and
// ClickHouse, cuts it and restores it: /readyz turns unready, says that
// ClickHouse is the problem, and is ready again after; an event produced
// during the outage is stored after it.
func TestReadyzFollowsClickHouse(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, ch.Addr)
	ch.Addr = proxy.Addr()
	topics := config.Default().Topics
	topics.Prefix = "r" + testenv.Suffix() + "."
	b := testenv.Broker(t, 1, topics.All()...)
	cfg := withTopics(testenv.Config(b, ch), topics)
	cfg.HTTP.Addr = freeHTTPAddr(t)
	base := "http://" + cfg.HTTP.Addr
	stop := startPipeline(t, cfg)
	waitReady(t, base, "")

	proxy.Cut()
	var body string
	testenv.Eventually(t, 30*time.Second, func() error {
		code, b, err := get(base, "", "/readyz")
		if err == nil && code != http.StatusServiceUnavailable {
			err = fmt.Errorf("/readyz answers %d with ClickHouse cut off: %s", code, b)
		}
		body = b
		return err
	})
	var rd struct {
		Ready    bool              `json:"ready"`
		Checks   map[string]string `json:"checks"`
		Problems []string          `json:"problems"`
	}
	if err := json.Unmarshal([]byte(body), &rd); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if rd.Ready || rd.Checks["clickhouse"] == "ok" || rd.Checks["kafka"] != "ok" || len(rd.Problems) != 1 ||
		!strings.HasPrefix(rd.Problems[0], "clickhouse: ") {
		t.Errorf("/readyz must say ClickHouse alone is wrong: %s", body)
	}
	code, _, err := get(base, "", "/healthz")
	if err != nil || code != http.StatusOK {
		t.Errorf("/healthz while ClickHouse is away: %d %v, want 200 (the process is alive)", code, err)
	}

	// Nothing is lost: an event produced during the outage is stored after it.
	testenv.Produce(t, b.Addrs(), cdrMsg(topics, "rc-1", "13900000401", time.Now().Add(-time.Minute)))
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := scrape(t, base)[`churnwatch_clickhouse_write_errors_total{table="cdr"}`]; n == 0 {
			return fmt.Errorf("no failed attempt to store the event yet")
		}
		return nil
	})
	proxy.Restore()
	waitReady(t, base, "")
	testenv.Eventually(t, 30*time.Second, func() error {
		n, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.cdr FINAL WHERE event_id = 'rc-1'", cfg.ClickHouse.Database))
		if err == nil && n != 1 {
			err = fmt.Errorf("the event produced during the outage is not stored (%d rows)", n)
		}
		return err
	})
	stop()
}

// TestDashboardInChromium loads the dashboard in headless Chromium (with
// the access token in the address), produces an event that fires a
// warning, and waits for the warning to appear live at the top of the
// table with its Chinese name; after a reload the stored warning, the
// manager's open task and the chart are there. It saves a screenshot.
func TestDashboardInChromium(t *testing.T) {
	ch, _ := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "d" + testenv.Suffix() + "."
	b := testenv.Broker(t, 2, topics.All()...)
	cfg := withTopics(testenv.Config(b, ch), topics)
	cfg.HTTP.Addr = freeHTTPAddr(t)
	cfg.HTTP.Token = "dashboard-test-token-" + testenv.Suffix()
	base := "http://" + cfg.HTTP.Addr
	startPipeline(t, cfg)
	waitReady(t, base, cfg.HTTP.Token)
	if code, _, err := get(base, "", "/api/signals"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("a request without the token: %d %v, want 401", code, err)
	}

	now := time.Now().Truncate(time.Second)
	testenv.Produce(t, b.Addrs(), profileMsg(topics, "dp-1", "13900000201",
		`{"name":"张三","tier":"gold","region":"fuzhou-linchuan","account_manager":"am-017","phone_manager":"pm-003"}`, now.Add(-2*time.Hour)))
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, body, err := get(base, cfg.HTTP.Token, "/api/health"); err != nil || !strings.Contains(body, `"stored":1`) {
			return fmt.Errorf("profile not stored yet: %v %s", err, body)
		}
		return nil
	})

	ctx := testenv.Chromium(t, 1400, 1300)

	// What the page says on its console and every uncaught exception are
	// logged; an exception fails the test.
	var consoleMu sync.Mutex
	var console, exceptions []string
	if err := chromedp.Listen(ctx, func(ev any) {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		switch e := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			var args []string
			for _, a := range e.Args {
				if a.Value != nil {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			console = append(console, string(e.Type)+": "+strings.Join(args, " "))
		case *cdpruntime.EventExceptionThrown:
			exceptions = append(exceptions, fmt.Sprintf("%s %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
			if x := e.ExceptionDetails.Exception; x != nil {
				exceptions = append(exceptions, x.Description)
			}
		}
	}); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		for _, c := range console {
			t.Logf("page console: %s", c)
		}
		if len(exceptions) > 0 {
			t.Errorf("the page threw: %s", strings.Join(exceptions, "\n"))
		}
	})

	page := base + "/?token=" + cfg.HTTP.Token
	live := chromedp.WaitVisible(chromedp.CSS(`#stream-status[data-state="live"]`))
	if err := chromedp.Do(ctx, chromedp.Navigate(page), live); err != nil {
		t.Fatalf("the dashboard's live stream did not connect: %v", err)
	}
	before, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#warnings tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	if before != 0 {
		t.Fatalf("the warning table shows %d rows before any warning", before)
	}

	testenv.Produce(t, b.Addrs(), crmMsg(topics, "dp-2", "13900000201", "PORT_OUT_QUERY", now.Add(-time.Minute)))
	row := chromedp.CSS(`#warnings tbody tr[data-signal="port_out"]`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("the port-out warning did not appear live: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(row))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"离网预警", "port-out or deactivation", "critical", "139****0201", "gold", "fuzhou-linchuan", "am-017"} {
		if !strings.Contains(strings.ToLower(text), want) {
			t.Errorf("live row %q lacks %q", text, want)
		}
	}
	if strings.Contains(text, "13900000201") {
		t.Errorf("the dashboard shows the full number: %q", text)
	}

	// After a reload: the stored warning, the task of am-017, the chart.
	err = chromedp.Do(ctx, chromedp.Reload(), live, chromedp.WaitVisible(row),
		chromedp.WaitVisible(chromedp.CSS(`#chart svg rect`)), chromedp.WaitVisible(chromedp.CSS(`#tasks tbody tr`)),
		chromedp.WaitVisible(chromedp.CSS(`#topics tbody tr`)))
	if err != nil {
		t.Fatalf("after a reload: %v", err)
	}
	if tasks, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#tasks tbody`))); err != nil || !strings.Contains(tasks, "am-017") {
		t.Errorf("tasks per manager %q (%v) lacks am-017's open task", tasks, err)
	}
	if legend, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#legend`))); err != nil || !strings.Contains(legend, "离网预警") {
		t.Errorf("chart legend %q (%v) lacks the port-out warning", legend, err)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.png")
	if dir := os.Getenv("CHURNWATCH_SCREENSHOT_DIR"); dir != "" {
		path = filepath.Join(dir, "dashboard.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s", path)
}

// TestRunRefusesAnExposedDashboardWithoutToken: listening beyond loopback
// without an access token stops the pipeline before it connects anywhere,
// with what to do.
func TestRunRefusesAnExposedDashboardWithoutToken(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.Addr = "0.0.0.0:0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pipeline.Run(ctx, cfg, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "CHURNWATCH_HTTP_TOKEN") || ctx.Err() != nil {
		t.Fatalf("pipeline.Run on 0.0.0.0 without a token = %v, want a prompt refusal naming CHURNWATCH_HTTP_TOKEN", err)
	}
}
