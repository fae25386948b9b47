package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

var (
	buildMu  sync.Mutex
	binPaths = map[string]string{} // by build tags
)

// binary builds churnwatch once per test run, so the tests exercise the
// real command line, environment handling and signal handling.
func binary(t *testing.T) string {
	t.Helper()
	return binaryTagged(t, "")
}

// binaryTagged builds churnwatch with the given build tags (comma
// separated), once per test run and set of tags.
func binaryTagged(t *testing.T, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := binPaths[tags]; ok {
		return path
	}
	dir, err := os.MkdirTemp("", "churnwatch-bin")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "churnwatch")
	out, err := exec.Command("go", "build", "-tags", tags, "-o", path, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
	}
	binPaths[tags] = path
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running churnwatch subcommand with its output captured.
type process struct {
	cmd    *exec.Cmd
	output *testenv.SyncBuffer
	done   chan error
}

func start(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	return startBinary(t, binary(t), env, args...)
}

// startBinary is start for a given churnwatch binary (see binaryTagged).
func startBinary(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), output: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// terminate sends SIGTERM and requires a clean exit (status 0) promptly.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%v exited with %v after SIGTERM; output:\n%s", p.cmd.Args[1:], err, p.output)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not exit within 20s of SIGTERM; output:\n%s", p.cmd.Args[1:], p.output)
	}
}

func runCmd(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: run `make test` (deploy/local/tools.sh install installs it)")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRunWithExternalClient runs `churnwatch run` as a process configured
// only through the environment, feeds it with kcat (librdkafka), and checks
// that valid events reach ClickHouse, garbage reaches the DLQ with its
// headers, the pipeline keeps running, no full MSISDN is logged, and SIGTERM
// stops it cleanly.
func TestRunWithExternalClient(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "k" + testenv.Suffix() + "."
	b := testenv.Broker(t, 2, topics.All()...)
	httpAddr := freeAddr(t)
	env := []string{
		"CHURNWATCH_KAFKA_BROKERS=" + strings.Join(b.Addrs(), ","),
		"CHURNWATCH_CLICKHOUSE_ADDR=" + ch.Addr,
		"CHURNWATCH_CLICKHOUSE_DATABASE=" + ch.Database,
		"CHURNWATCH_HTTP_ADDR=" + httpAddr,
		"CHURNWATCH_TOPIC_PREFIX=" + topics.Prefix,
		"CHURNWATCH_KAFKA_GROUP_ID=kcat-" + testenv.Suffix(),
		"CHURNWATCH_FLUSH_INTERVAL=100ms",
		"CHURNWATCH_LOG_LEVEL=debug",
	}
	run := start(t, env, "run")

	cdrTopic := topics.Name(config.TopicCDR)
	kcat(t, strings.Join([]string{
		`13800000001|{"event_id":"k-1","msisdn":"13800000001","peer":"10086","direction":"MO","start_time":"2026-11-22T10:00:00+08:00","duration_s":75,"forward_to":""}`,
		`13800000002|{"event_id":"k-2","msisdn":"+8613800000002","peer":"18612345678","direction":"MT","start_time":"2026-11-22T11:00:00+08:00","duration_s":30}`,
		`garbage|this is {not json`,
	}, "\n")+"\n", "-b", b.Addrs()[0], "-P", "-t", cdrTopic, "-K", "|")

	db := ch.Database
	testenv.Eventually(t, 30*time.Second, func() error {
		facts, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.cdr FINAL", db))
		if err != nil {
			return err
		}
		dead, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.dead_letters FINAL WHERE raw = 'this is {not json'", db))
		if err != nil {
			return err
		}
		if facts != 2 || dead != 1 {
			return fmt.Errorf("cdr rows %d (want 2), dead letters %d (want 1)", facts, dead)
		}
		return nil
	})
	headers := kcat(t, "", "-b", b.Addrs()[0], "-C", "-t", cdrTopic+config.DLQSuffix, "-o", "beginning", "-e", "-q", "-f", "%k %s %h\n")
	for _, want := range []string{"garbage this is {not json", "error=not valid JSON", "source-topic=" + cdrTopic, "source-partition=", "source-offset="} {
		if !strings.Contains(headers, want) {
			t.Errorf("DLQ as kcat sees it lacks %q:\n%s", want, headers)
		}
	}

	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after bad input the pipeline must keep running and be ready: %v %v", resp, err)
	}
	resp.Body.Close()

	run.terminate(t)
	if out := run.output.String(); strings.Contains(out, "13800000001") || strings.Contains(out, "13800000002") {
		t.Errorf("the log contains a full MSISDN:\n%s", out)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	env := []string{"CHURNWATCH_CLICKHOUSE_ADDR=" + ch.Addr, "CHURNWATCH_CLICKHOUSE_DATABASE=" + ch.Database}
	migrations, err := schemas.Migrations(ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	latest := migrations[len(migrations)-1].Version
	out, code := runCmd(t, env, "migrate")
	if want := fmt.Sprintf("schema version %d (%d migrations applied now)", latest, len(migrations)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("first migrate: exit %d, want %q\n%s", code, want, out)
	}
	out, code = runCmd(t, env, "migrate")
	if want := fmt.Sprintf("schema version %d (0 migrations applied now)", latest); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("second migrate: exit %d, want %q\n%s", code, want, out)
	}
	tables := testenv.Count(t, conn, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('cdr','billing_events','crm_events','subscribers','subscriber_daily','dead_letters')", ch.Database)
	if tables != 6 {
		t.Errorf("migrate created %d of the 6 tables", tables)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"no command", nil, nil, exitUsage, "Usage:"},
		{"unknown command", nil, []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"daily without date", nil, []string{"daily"}, exitUsage, "want a day like"},
		{"daily with a malformed date", nil, []string{"daily", "--date", "22/11/2026"}, exitUsage, "want a day like 2026-11-22"},
		{"daily for a day not over yet", nil, []string{"daily", "--date", "2999-01-01"}, exitUsage, "not over yet in Asia/Shanghai"},
		{"rules with an unknown flag", nil, []string{"rules", "--yaml"}, exitUsage, "-json"},
		{"bad integer in env", []string{"CHURNWATCH_BATCH_SIZE=lots"}, []string{"migrate"}, exitUsage, "CHURNWATCH_BATCH_SIZE"},
		{"bad database name", []string{"CHURNWATCH_CLICKHOUSE_DATABASE=drop;table"}, []string{"migrate"}, exitUsage, "letters, digits and underscores"},
		{"missing config file", nil, []string{"run", "--config", "/nonexistent.yaml"}, exitUsage, "read config file"},
		{"bad simulate flag", nil, []string{"simulate", "--subscribers", "-5"}, exitError, "ubscribers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCmd(t, tt.env, tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) {
				t.Errorf("exit %d (want %d), output must mention %q:\n%s", code, tt.wantCode, tt.wantOut, out)
			}
		})
	}
}

// TestBrokerKeepsDataAcrossRestart runs `churnwatch broker` with a data
// directory, produces, restarts it and reads the messages back; then
// `churnwatch simulate` produces a small population to it.
func TestBrokerKeepsDataAcrossRestart(t *testing.T) {
	port := freeAddr(t)[len("127.0.0.1:"):]
	env := []string{"CHURNWATCH_BROKER_PORT=" + port, "CHURNWATCH_BROKER_DATA_DIR=" + t.TempDir(),
		"CHURNWATCH_BROKER_PARTITIONS=3", "CHURNWATCH_KAFKA_BROKERS=127.0.0.1:" + port}
	addr := []string{"127.0.0.1:" + port}
	waitUp := func(p *process) {
		testenv.Eventually(t, 15*time.Second, func() error {
			if !strings.Contains(p.output.String(), "embedded broker ready") {
				return fmt.Errorf("broker not ready yet:\n%s", p.output)
			}
			return nil
		})
	}
	broker := start(t, env, "broker")
	waitUp(broker)
	testenv.Produce(t, addr, kafka.Message{Topic: config.TopicCRM, Key: []byte("13800000001"), Value: []byte(`{"keep":"me"}`)})
	broker.terminate(t)

	broker = start(t, env, "broker")
	waitUp(broker)
	msgs := testenv.ReadAll(t, addr, config.TopicCRM)
	if len(msgs) != 1 || string(msgs[0].Value) != `{"keep":"me"}` {
		t.Fatalf("after restart %s holds %d messages, want the one produced before", config.TopicCRM, len(msgs))
	}
	conn, err := kafka.Dial("tcp", addr[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(config.TopicCDR + config.DLQSuffix)
	conn.Close()
	if err != nil || len(parts) != 3 {
		t.Fatalf("broker must create the DLQ topics with the configured partitions: %d partitions, %v", len(parts), err)
	}

	out, code := runCmd(t, env, "simulate", "--subscribers", "20", "--days", "3", "--seed", "5", "--end", "2026-11-01")
	if code != 0 {
		t.Fatalf("simulate: exit %d\n%s", code, out)
	}
	var total, cdrs int
	if i := strings.Index(out, "produced "); i >= 0 {
		out = out[i:]
	}
	if _, err := fmt.Sscanf(out, "produced %d messages (%d cdr", &total, &cdrs); err != nil || cdrs == 0 {
		t.Fatalf("simulate output %q: %v", out, err)
	}
	if got := len(testenv.ReadAll(t, addr, config.TopicCDR)); got != cdrs {
		t.Errorf("%s holds %d messages, simulate reported %d", config.TopicCDR, got, cdrs)
	}
	broker.terminate(t)
}
