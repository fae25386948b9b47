package ops

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"churnwatch/schemas"
)

func TestCheckExposure(t *testing.T) {
	token := "0123456789abcdef"
	tests := []struct {
		name, addr, token string
		wantErr           string
	}{
		{"loopback", "127.0.0.1:8080", "", ""},
		{"loopback range", "127.0.0.2:8080", "", ""},
		{"localhost", "localhost:8080", "", ""},
		{"ipv6 loopback", "[::1]:8080", "", ""},
		{"every interface without token", ":8080", "", "CHURNWATCH_HTTP_TOKEN"},
		{"0.0.0.0 without token", "0.0.0.0:8080", "", "beyond this machine"},
		{"lan address without token", "10.1.2.3:8080", "", "CHURNWATCH_HTTP_TOKEN"},
		{"host name without token", "ops.example:8080", "", "CHURNWATCH_HTTP_TOKEN"},
		{"every interface with token", "0.0.0.0:8080", token, ""},
		{"short token", "0.0.0.0:8080", "secret", "too short"},
		{"no port", "127.0.0.1", "", "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckExposure(tt.addr, tt.token)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckExposure(%q) = %v, want nil", tt.addr, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckExposure(%q) = %v, want an error mentioning %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func testHandler(t *testing.T, token string) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	return NewHandler(HandlerConfig{Token: token, Gatherer: reg, Metrics: NewMetrics(reg, ReadBuild()), Log: zerolog.Nop()})
}

func do(h http.Handler, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestTokenIsCheckedOnEveryRequest(t *testing.T) {
	const token = "s3cret-token-0123456789"
	h := testHandler(t, token)
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	tests := []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"no token", "/healthz", nil, http.StatusUnauthorized},
		{"no token on metrics", "/metrics", nil, http.StatusUnauthorized},
		{"no token on assets", "/static/app.js", nil, http.StatusUnauthorized},
		{"wrong bearer", "/healthz", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
		{"wrong query", "/healthz?token=nope", nil, http.StatusUnauthorized},
		{"bearer", "/healthz", bearer, http.StatusOK},
		{"query", "/healthz?token=" + token, nil, http.StatusOK},
		{"metrics with bearer", "/metrics", bearer, http.StatusOK},
		{"asset with query", "/static/app.css?token=" + token, nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := do(h, tt.path, tt.header).Code; got != tt.want {
				t.Errorf("GET %s: %d, want %d", tt.path, got, tt.want)
			}
		})
	}
	if got := do(testHandler(t, ""), "/healthz", nil).Code; got != http.StatusOK {
		t.Errorf("without a configured token /healthz answers %d", got)
	}
}

// TestDashboardIsSelfContained: the page and its assets come from the
// binary, reference nothing outside it, and carry the token they were
// opened with.
func TestDashboardIsSelfContained(t *testing.T) {
	const token = "tok/with+chars&0123456789"
	h := testHandler(t, token)
	rec := do(h, "/?token="+url.QueryEscape(token), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d", rec.Code)
	}
	page := rec.Body.String()
	q := "?token=" + url.QueryEscape(token)
	for _, want := range []string{`src="static/app.js` + q, `href="static/app.css` + q} {
		if !strings.Contains(strings.ReplaceAll(page, "&#43;", "+"), want) && !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//`)
	for _, path := range []string{"/?token=" + url.QueryEscape(token), "/static/app.js?token=" + url.QueryEscape(token), "/static/app.css?token=" + url.QueryEscape(token)} {
		rec := do(h, path, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		if m := external.FindString(rec.Body.String()); m != "" {
			t.Errorf("%s references something outside the binary: %q", path, m)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
	}
}

func TestFilter(t *testing.T) {
	w := schemas.Warning{Signal: "port_out", Severity: "critical", Tier: "gold", Region: "fuzhou-linchuan",
		AccountManager: "am-017", PhoneManager: "pm-003"}
	tests := []struct {
		query string
		match bool
	}{
		{"", true},
		{"signal=port_out", true},
		{"signal=hotline_calls,port_out", true},
		{"signal=hotline_calls&signal=port_out", true},
		{"signal=hotline_calls", false},
		{"severity=critical&tier=gold", true},
		{"severity=high", false},
		{"tier=silver,diamond", false},
		{"region=fuzhou-linchuan", true},
		{"region=fuzhou-nancheng", false},
		{"manager=am-017", true},
		{"manager=pm-003", true},
		{"manager=am-018", false},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		f := FilterFromQuery(q)
		if err := f.Validate(); err != nil {
			t.Errorf("%q: %v", tt.query, err)
		}
		if got := f.Match(w); got != tt.match {
			t.Errorf("filter %q matches %v, want %v", tt.query, got, tt.match)
		}
	}
	bad := Filter{Signals: []string{"nope"}, Severities: []string{"urgent"}, Tiers: []string{"platinum"}}
	err := bad.Validate()
	for _, want := range []string{`unknown signal "nope"`, `unknown severity "urgent"`, `unknown tier "platinum"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
}

func TestViewAndEvidence(t *testing.T) {
	w := schemas.Warning{WarningID: "w1", MSISDN: "13800000001", Signal: "hotline_calls", Severity: "medium",
		Evidence: map[string]any{"calls": float64(4), "threshold": float64(3), "share": 0.5, "number": "10086", "days": []any{"a"}}}
	v := View(w, true)
	if v.MSISDN != "138****0001" || v.SignalZH != "拨打10086次数" || v.SignalEN != "calls to the service hotline" {
		t.Errorf("View = %+v", v)
	}
	if want := `calls 4, days ["a"], number 10086, share 0.5, threshold 3`; v.Evidence != want {
		t.Errorf("evidence %q, want %q", v.Evidence, want)
	}
	if View(w, false).MSISDN != "13800000001" {
		t.Error("unmasked view hides the number")
	}
}

func TestTaskCountersCountEachTransitionOnce(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), Build{})
	m.taskVersion("t1", 1, "OPEN", "w-1")
	m.taskVersion("t1", 1, "OPEN", "w-1") // a retried write
	m.taskVersion("t1", 2, "OPEN", "w-2") // joined
	m.taskVersion("t1", 3, "ESCALATED", "escalation")
	m.taskVersion("t1", 4, "ESCALATED", "w-3") // joined while escalated
	m.taskVersion("t1", 5, "RETAINED", "u-1")
	m.taskVersion("t1", 6, "CLOSED", "u-2") // already closed as RETAINED
	m.taskVersion("t2", 1, "OPEN", "w-9")
	m.taskVersion("t2", 2, "LOST", "u-9")
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"opened", m.tasksOpened, 2},
		{"escalated", m.tasksEscalated, 1},
		{"retained", m.tasksClosed.WithLabelValues("RETAINED"), 1},
		{"lost", m.tasksClosed.WithLabelValues("LOST"), 1},
		{"closed", m.tasksClosed.WithLabelValues("CLOSED"), 0},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestConsumerHooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, Build{Version: "v1", Revision: "abc", GoVersion: "go1.26"})
	c := m.Consumer("cdr.voice")
	if _, all := m.Assignment(); all {
		t.Error("consumers count as assigned before any generation")
	}
	c.Assigned([]int{0, 2})
	for range 5 {
		c.Consumed()
	}
	c.BatchDone(4, 1, 2, 30*time.Millisecond)
	if parts, all := m.Assignment(); !all || len(parts["cdr.voice"]) != 2 {
		t.Errorf("Assignment() = %v, %v", parts, all)
	}
	got := m.Counts()
	if len(got) != 1 || got[0] != (TopicCounts{Topic: "cdr.voice", Consumed: 5, Stored: 4, Rejected: 1}) {
		t.Errorf("Counts() = %+v", got)
	}
	if n := testutil.CollectAndCount(m.batchSize); n != 1 {
		t.Errorf("batch size histogram has %d series", n)
	}
	c.Unassigned()
	if _, all := m.Assignment(); all {
		t.Error("consumers count as assigned after their generation ended")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP churnwatch_build_info Always 1; the labels say which build is running.
# TYPE churnwatch_build_info gauge
churnwatch_build_info{goversion="go1.26",revision="abc",version="v1"} 1
`), "churnwatch_build_info"); err != nil {
		t.Error(err)
	}
}

func TestHubFansOutByFilter(t *testing.T) {
	h := NewHub(nil, zerolog.Nop())
	all, stopAll := h.Subscribe(Filter{})
	defer stopAll()
	critical, stopCritical := h.Subscribe(Filter{Severities: []string{"critical"}})
	h.publish(schemas.Warning{WarningID: "a", Severity: "medium"})
	h.publish(schemas.Warning{WarningID: "b", Severity: "critical"})
	stopCritical()
	h.publish(schemas.Warning{WarningID: "c", Severity: "critical"})
	var gotAll []string
	for len(all) > 0 {
		gotAll = append(gotAll, (<-all).WarningID)
	}
	if strings.Join(gotAll, ",") != "a,b,c" {
		t.Errorf("unfiltered stream got %v", gotAll)
	}
	if len(critical) != 1 || (<-critical).WarningID != "b" {
		t.Error("the critical stream must get b only, and nothing once stopped")
	}
}

func sampleReport() Report {
	loc := time.FixedZone("CST", 8*3600)
	at := time.Date(2026, 11, 22, 10, 30, 0, 0, loc)
	w := schemas.Warning{WarningID: "w1", MSISDN: "13800000001", Signal: "hotline_calls", Severity: "high", Tier: "gold",
		DetectedAt: at, Score: 49, Evidence: map[string]any{"calls": float64(5), "threshold": float64(3)}}
	return Report{Manager: "am-017", Day: "2026-11-22", GeneratedAt: at.Add(24 * time.Hour), loc: loc,
		Subscribers: []ReportSubscriber{{MSISDN: "13800000001", Name: "<b>张三</b>", Tier: "gold", Region: "fuzhou-linchuan",
			AccountManager: "am-017", Score: 49, Warnings: []WarningView{View(w, false)},
			Tasks: []schemas.Task{{TaskID: "task-1", Status: "OPEN", Assignee: "am-017", DueAt: at.Add(24 * time.Hour), Summary: "5 calls"}}}}}
}

func TestReportCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	data, ok := strings.CutPrefix(buf.String(), "\ufeff")
	if !ok {
		t.Error("the CSV lacks the UTF-8 byte-order mark spreadsheets need")
	}
	rows, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("CSV: %v, %d rows:\n%s", err, len(rows), data)
	}
	row := map[string]string{}
	for i, h := range rows[0] {
		row[h] = rows[1][i]
	}
	want := map[string]string{"msisdn": "13800000001", "name": "<b>张三</b>", "signal": "hotline_calls", "signal_zh": "拨打10086次数",
		"severity": "high", "detected_at": "2026-11-22 10:30", "evidence": "calls 5, threshold 3", "task_id": "task-1",
		"task_status": "OPEN", "task_due_at": "2026-11-23 10:30", "manager": "am-017", "day": "2026-11-22"}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("column %s = %q, want %q", k, row[k], v)
		}
	}
}

func TestReportHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"客户异常情况表", "am-017", "2026-11-22", "13800000001", "&lt;b&gt;张三&lt;/b&gt;", "拨打10086次数",
		"calls 5, threshold 3", "task-1", "2026-11-23 10:30", "@media print"} {
		if !strings.Contains(page, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>张三") {
		t.Error("the report does not escape data")
	}
	var empty bytes.Buffer
	if err := (Report{Manager: "am-001", Day: "2026-11-22"}).WriteHTML(&empty); err != nil || !strings.Contains(empty.String(), "no subscriber") {
		t.Errorf("empty report: %v\n%s", err, empty.String())
	}
}

func TestRecentKeysAreBounded(t *testing.T) {
	var r recentKeys
	if !r.add("a") || r.add("a") {
		t.Fatal("a key is fresh once")
	}
	for i := range recentLimit * 2 {
		r.add(strconv.Itoa(i))
	}
	if len(r.cur)+len(r.old) > recentLimit {
		t.Errorf("recentKeys holds %d keys, limit %d", len(r.cur)+len(r.old), recentLimit)
	}
}
