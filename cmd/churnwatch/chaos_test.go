package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/broker"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/simulate"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

// The fault suite (README, "Reliability"). TestChaos runs a simulated
// population through `churnwatch run` while killing it, stopping its
// ClickHouse server, restarting its broker and adding and removing a second
// instance, and checks after every fault that the facts in ClickHouse are
// exactly the valid events produced so far and the dead letters exactly the
// invalid ones; at the end, warnings and tasks must equal those of a
// fault-free run of the same events. TestChaosOracleCatchesCommitBeforeStore
// is its negative control: the same oracle must fail on a binary that
// commits before it stores.
//
// make test runs a reduced size; make chaos the full one:
//
//	CHURNWATCH_CHAOS_SUBSCRIBERS  population (default 400)
//	CHURNWATCH_CHAOS_DAYS         days of traffic (default 14)
//	CHURNWATCH_CHAOS_OUTAGE       how long ClickHouse stays stopped (default 8s)
//	CHURNWATCH_CHAOS_SEED         fault timing seed (default: random, printed)

const chaosPartitions = 8

type chaosSettings struct {
	subscribers, days int
	outage            time.Duration
	seed              uint64
}

func chaosSettingsFromEnv(t *testing.T) chaosSettings {
	t.Helper()
	s := chaosSettings{subscribers: 400, days: 14, outage: 8 * time.Second, seed: uint64(time.Now().UnixNano())}
	for name, p := range map[string]*int{"CHURNWATCH_CHAOS_SUBSCRIBERS": &s.subscribers, "CHURNWATCH_CHAOS_DAYS": &s.days} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive whole number", name, v)
			}
			*p = n
		}
	}
	if v := os.Getenv("CHURNWATCH_CHAOS_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CHURNWATCH_CHAOS_OUTAGE=%q: want a duration such as 30s", v)
		}
		s.outage = d
	}
	if v := os.Getenv("CHURNWATCH_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHURNWATCH_CHAOS_SEED=%q: want a whole number", v)
		}
		s.seed = n
	}
	return s
}

// chaosEvents is a simulated run cut into the phases of the suite, with
// what the oracle expects of it. Messages carry base topic names; produce
// adds the run's prefix.
type chaosEvents struct {
	profiles []kafka.Message
	chunks   [][]kafka.Message
	// straddlers are subscribers outside the population whose three
	// hotline calls straddle a second instance's joining and leaving.
	straddlers []string
	want       *expectedFacts
}

// expectedFacts is the oracle: the valid events' ids per fact table and the
// invalid messages per base topic, of everything produced so far.
type expectedFacts struct {
	valid   map[string]map[string]bool // table -> event_id
	invalid map[string][]string        // base topic -> raw values
}

func newExpectedFacts() *expectedFacts {
	return &expectedFacts{valid: map[string]map[string]bool{"cdr": {}, "billing_events": {}, "crm_events": {}}, invalid: map[string][]string{}}
}

// invalidSet holds the messages the generator broke on purpose, by base
// topic and content.
type invalidSet map[string]bool

var factTables = map[string]string{"cdr.voice": "cdr", "billing.events": "billing_events", "crm.events": "crm_events"}

// add records produced messages; invalid marks those the generator broke on
// purpose.
func (e *expectedFacts) add(t *testing.T, msgs []kafka.Message, invalid invalidSet) {
	t.Helper()
	for i := range msgs {
		m := &msgs[i]
		if invalid[m.Topic+"\x00"+string(m.Value)] {
			e.invalid[m.Topic] = append(e.invalid[m.Topic], string(m.Value))
			continue
		}
		var v struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil || v.EventID == "" {
			t.Fatalf("valid message without event_id: %s", m.Value)
		}
		e.valid[factTables[m.Topic]][v.EventID] = true
	}
}

func (e *expectedFacts) counts() (valid, invalid int) {
	for _, ids := range e.valid {
		valid += len(ids)
	}
	for _, raws := range e.invalid {
		invalid += len(raws)
	}
	return valid, invalid
}

// factReport is what the oracle found.
type factReport struct {
	valid, invalid, stored, deadLettered             int
	lost, duplicated, unexpected, deadMissing, extra int
}

func (r factReport) String() string {
	return fmt.Sprintf("produced %d valid + %d invalid; stored %d, dead-lettered %d; lost %d, duplicated %d, unexpected %d, invalid missing from dead letters %d, extra dead letters %d",
		r.valid, r.invalid, r.stored, r.deadLettered, r.lost, r.duplicated, r.unexpected, r.deadMissing, r.extra)
}

func (r factReport) exact() bool {
	return r.lost == 0 && r.duplicated == 0 && r.unexpected == 0 && r.deadMissing == 0 && r.extra == 0
}

// checkFacts compares database db with the oracle: every valid event stored
// once (under FINAL, by event id), nothing else stored, and the dead letters
// exactly the invalid messages (by content, per topic).
func checkFacts(conn driver.Conn, db, prefix string, want *expectedFacts) (factReport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var r factReport
	for table, ids := range want.valid {
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT event_id, count() FROM %s.%s FINAL GROUP BY event_id", db, table))
		if err != nil {
			return r, err
		}
		got := map[string]uint64{}
		for rows.Next() {
			var id string
			var n uint64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return r, err
			}
			got[id] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, err
		}
		r.valid += len(ids)
		for id := range ids {
			if got[id] == 0 {
				r.lost++
			}
		}
		for id, n := range got {
			if !ids[id] {
				r.unexpected += int(n)
				continue
			}
			r.stored++
			r.duplicated += int(n) - 1
		}
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT topic, raw FROM %s.dead_letters FINAL", db))
	if err != nil {
		return r, err
	}
	dead := map[string]int{}
	for rows.Next() {
		var topic, raw string
		if err := rows.Scan(&topic, &raw); err != nil {
			rows.Close()
			return r, err
		}
		dead[strings.TrimPrefix(topic, prefix)+"\x00"+raw]++
		r.deadLettered++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, err
	}
	for topic, raws := range want.invalid {
		r.invalid += len(raws)
		for _, raw := range raws {
			k := topic + "\x00" + raw
			if dead[k] == 0 {
				r.deadMissing++
			} else {
				dead[k]--
			}
		}
	}
	for _, n := range dead {
		r.extra += n
	}
	return r, nil
}

// generateChaosEvents simulates the population and cuts it into eight
// chunks, adding the straddlers' calls at the ends of chunks 4 and 5 and
// the start of chunk 6.
func generateChaosEvents(t *testing.T, s chaosSettings) (*chaosEvents, invalidSet) {
	t.Helper()
	sim := simulate.Config{Subscribers: s.subscribers, Seed: 21, Days: s.days, ChurnShare: 0.15, InvalidShare: 0.002,
		End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	ev := &chaosEvents{want: newExpectedFacts()}
	type gen struct {
		msg     kafka.Message
		at      time.Time
		invalid bool
	}
	var rest []gen
	population := map[string]bool{}
	var profiles []gen
	err := simulate.Generate(sim, simulate.Topics{CDR: "cdr.voice", Billing: "billing.events", CRM: "crm.events"}, func(m simulate.Message) error {
		g := gen{msg: kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value}, at: m.Time, invalid: m.Invalid}
		population[m.Key] = true
		if m.Initial {
			profiles = append(profiles, g)
		} else {
			rest = append(rest, g)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	invalid := invalidSet{}
	var chunks [][]gen
	for i := range 8 {
		// Clipped, so that appending to a chunk cannot overwrite the next.
		chunks = append(chunks, slices.Clip(rest[i*len(rest)/8:(i+1)*len(rest)/8]))
	}
	// One straddler per partition, so that some are on the partitions the
	// second instance takes, whichever they are.
	partitions := make([]int, chaosPartitions)
	for i := range partitions {
		partitions[i] = i
	}
	found := map[int]string{}
	for n := 0; len(found) < chaosPartitions; n++ {
		msisdn := fmt.Sprintf("1390000%04d", n)
		p := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(msisdn)}, partitions...)
		if _, ok := found[p]; !ok && !population[msisdn] {
			found[p] = msisdn
			ev.straddlers = append(ev.straddlers, msisdn)
		}
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	call := func(msisdn string, k int, at time.Time) gen {
		v := fmt.Sprintf(`{"event_id":"straddle-%s-%d","msisdn":"%s","peer":"10086","direction":"MO","start_time":"%s","duration_s":60,"forward_to":""}`,
			msisdn, k, msisdn, at.In(shanghai).Format(time.RFC3339))
		return gen{msg: kafka.Message{Topic: "cdr.voice", Key: []byte(msisdn), Value: []byte(v)}, at: at}
	}
	first, second, third := chunks[4][len(chunks[4])-1].at, chunks[5][len(chunks[5])-1].at, chunks[6][0].at
	// The second call is sent again after the third, as a producer's retry
	// does (kafka-go's writer is not idempotent): a copy of an event at a
	// later offset must change nothing, whatever crash falls between them.
	var before, retried []gen
	for _, m := range ev.straddlers {
		chunks[4] = append(chunks[4], call(m, 1, first))
		chunks[5] = append(chunks[5], call(m, 2, second))
		before = append(before, call(m, 3, third))
		retried = append(retried, call(m, 2, second))
	}
	chunks[6] = slices.Concat(before, retried, chunks[6])

	flat := func(gs []gen) []kafka.Message {
		out := make([]kafka.Message, len(gs))
		for i, g := range gs {
			out[i] = g.msg
		}
		for _, g := range gs {
			if g.invalid {
				invalid[g.msg.Topic+"\x00"+string(g.msg.Value)] = true
			}
		}
		return out
	}
	ev.profiles = flat(profiles)
	for _, c := range chunks {
		ev.chunks = append(ev.chunks, flat(c))
	}
	return ev, invalid
}

// withPrefix copies messages onto the prefixed topics of one run.
func withPrefix(prefix string, msgs []kafka.Message) []kafka.Message {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		m.Topic = prefix + m.Topic
		out[i] = m
	}
	return out
}

// ownClickHouse is a ClickHouse server of the suite's own, started by the
// project's script on free ports and a scratch directory, so that stopping it
// disturbs no other test.
type ownClickHouse struct {
	env  []string
	addr string
}

func startOwnClickHouse(t *testing.T) *ownClickHouse {
	t.Helper()
	dir := t.TempDir()
	port := func() string {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		return p
	}
	tcp := port()
	c := &ownClickHouse{addr: "127.0.0.1:" + tcp, env: append(os.Environ(), "CHURNWATCH_STATE_DIR="+dir,
		"CHURNWATCH_CH_TCP_PORT="+tcp, "CHURNWATCH_CH_HTTP_PORT="+port(), "CHURNWATCH_CH_INTERSERVER_PORT="+port())}
	c.script(t, "start")
	t.Cleanup(func() { c.script(t, "stop") })
	return c
}

func (c *ownClickHouse) script(t *testing.T, action string) {
	t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "deploy", "local", "clickhouse.sh"), action)
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse.sh %s: %v\n%s", action, err, out)
	}
}

// chaosRun drives the instances of one run: its binary, environment,
// processes and the faults dealt to them.
type chaosRun struct {
	t       *testing.T
	bin     string
	brokers []string
	ch      string
	db      string
	prefix  string
	group   string
	procs   []*process
	kills   int
	log     []string
}

func (r *chaosRun) env(httpAddr string, extra ...string) []string {
	return append([]string{
		"CHURNWATCH_KAFKA_BROKERS=" + strings.Join(r.brokers, ","), "CHURNWATCH_CLICKHOUSE_ADDR=" + r.ch,
		"CHURNWATCH_CLICKHOUSE_DATABASE=" + r.db, "CHURNWATCH_HTTP_ADDR=" + httpAddr,
		"CHURNWATCH_TOPIC_PREFIX=" + r.prefix, "CHURNWATCH_KAFKA_GROUP_ID=" + r.group,
		"CHURNWATCH_BATCH_SIZE=1000", "CHURNWATCH_FLUSH_INTERVAL=100ms", "CHURNWATCH_REFRESH_INTERVAL=1s", "CHURNWATCH_LOG_LEVEL=info",
	}, extra...)
}

// launch starts an instance; extra environment arms its failpoints.
func (r *chaosRun) launch(extra ...string) (*process, string) {
	r.t.Helper()
	addr := freeAddr(r.t)
	p := startBinary(r.t, r.bin, r.env(addr, extra...), "run")
	r.procs = append(r.procs, p)
	return p, addr
}

// assignments counts the group generations p has joined.
func assignments(p *process) int { return strings.Count(p.output.String(), "partitions assigned") }

// waitAssigned waits until p has joined more than n generations. (A member
// killed between joining and syncing the group is never expired by the test
// broker, kfake, and the group stalls; a real Kafka expires it after the
// session timeout. So the suite kills only members that hold an assignment.)
func (r *chaosRun) waitAssigned(p *process, n int) {
	r.t.Helper()
	testenv.Eventually(r.t, 90*time.Second, func() error {
		if err := exited(p); err != nil {
			r.t.Fatalf("instance exited: %v\n%s", err, tail(p.output.String()))
		}
		if assignments(p) <= n {
			return fmt.Errorf("instance has joined %d generations, waiting for the next", assignments(p))
		}
		return nil
	})
}

func (r *chaosRun) kill(p *process, why string) {
	r.t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- fmt.Errorf("killed")
	r.kills++
	r.note("SIGKILL %s", why)
}

func (r *chaosRun) note(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf(format, args...))
	r.t.Logf(format, args...)
}

// waitCaughtUp waits until the group has committed everything on the topics
// it consumes.
func (r *chaosRun) waitCaughtUp(brokers []string) {
	r.t.Helper()
	consumed := []string{r.prefix + "cdr.voice", r.prefix + "billing.events", r.prefix + "crm.events", r.prefix + "churn.warnings", r.prefix + "churn.task-updates"}
	testenv.Eventually(r.t, 180*time.Second, func() error {
		lag, err := testenv.Lag(brokers, r.group, consumed...)
		if err == nil && lag != 0 {
			err = fmt.Errorf("group %s lags by %d", r.group, lag)
		}
		return err
	})
}

// exited returns the exit error of a process that has exited, nil if it runs.
func exited(p *process) error {
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = fmt.Errorf("exit status 0")
		}
		return err
	default:
		return nil
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// rssBytes is the resident memory of a process.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func openClickHouse(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// oracle checks the facts of the run so far, retrying only errors of the
// connection (a server just restarted), never a wrong answer.
func (r *chaosRun) oracle(conn driver.Conn, want *expectedFacts, after string) factReport {
	r.t.Helper()
	var rep factReport
	testenv.Eventually(r.t, 30*time.Second, func() error {
		var err error
		rep, err = checkFacts(conn, r.db, r.prefix, want)
		return err
	})
	if !rep.exact() {
		r.t.Fatalf("after %s: %s", after, rep)
	}
	r.note("after %s: %s", after, rep)
	return rep
}

// TestChaos is the fault suite; see the top of this file.
func TestChaos(t *testing.T) {
	s := chaosSettingsFromEnv(t)
	rng := rand.New(rand.NewPCG(s.seed, 6))
	t.Logf("chaos: %d subscribers x %d days, ClickHouse outage %s, seed %d (CHURNWATCH_CHAOS_SEED reproduces the fault timing)",
		s.subscribers, s.days, s.outage, s.seed)
	started := time.Now()
	ev, invalid := generateChaosEvents(t, s)
	ch := startOwnClickHouse(t)
	conn := openClickHouse(t, ch.addr)
	bin := binaryTagged(t, "failpoints")

	// The broker keeps its data in a directory and listens on a fixed port,
	// so that it can be restarted under the running instances.
	bcfg := broker.Config{Port: 0, DataDir: t.TempDir(), Partitions: chaosPartitions}
	_, p, _ := net.SplitHostPort(freeAddr(t))
	bcfg.Port, _ = strconv.Atoi(p)
	topics := config.Default().Topics
	suffix := testenv.Suffix()
	for _, prefix := range []string{"ff" + suffix + ".", "cx" + suffix + "."} {
		topics.Prefix = prefix
		bcfg.Topics = append(bcfg.Topics, topics.All()...)
	}
	b, err := broker.Start(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	brokers := b.Addrs()

	// The fault-free run: the same events, all at once, one instance.
	free := &chaosRun{t: t, bin: bin, brokers: brokers, ch: ch.addr, db: "ff_" + suffix, prefix: "ff" + suffix + ".", group: "ff"}
	testenv.Produce(t, brokers, withPrefix(free.prefix, ev.profiles)...)
	inst, _ := free.launch()
	free.waitCaughtUp(brokers)
	var all []kafka.Message
	for _, c := range ev.chunks {
		all = append(all, c...)
	}
	testenv.Produce(t, brokers, withPrefix(free.prefix, all)...)
	free.waitCaughtUp(brokers)
	inst.terminate(t)
	wantAll := newExpectedFacts()
	wantAll.add(t, ev.profiles, invalid)
	wantAll.add(t, all, invalid)
	free.oracle(conn, wantAll, "the fault-free run")
	freeTook := time.Since(started)

	// The run under faults, chunk by chunk.
	run := &chaosRun{t: t, bin: bin, brokers: brokers, ch: ch.addr, db: "cx_" + suffix, prefix: "cx" + suffix + ".", group: "cx"}
	want := newExpectedFacts()
	produce := func(msgs []kafka.Message) {
		testenv.Produce(t, brokers, withPrefix(run.prefix, msgs)...)
		want.add(t, msgs, invalid)
	}
	jitter := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max))) }
	produce(ev.profiles)
	a, _ := run.launch()
	run.waitCaughtUp(brokers)
	run.oracle(conn, want, "the initial profiles")

	// 0: SIGKILL at a random moment while the chunk is consumed.
	produce(ev.chunks[0])
	time.Sleep(jitter(time.Second))
	run.kill(a, "at a random moment of chunk 0")
	a, _ = run.launch()
	run.waitCaughtUp(brokers)
	run.oracle(conn, want, "a SIGKILL at a random moment")

	var aAddr string
	// 1 and 2: killed by failpoints between the ClickHouse write and the
	// publishing of outputs (mid-batch), and between the write and the commit.
	for i, point := range []string{"after-store", "before-commit"} {
		a, _ = run.launch(fmt.Sprintf("CHURNWATCH_FAILPOINT=%s:%d", point, 1+rng.IntN(4)))
		run.waitAssigned(a, 0)
		produce(ev.chunks[1+i])
		select {
		case <-a.done:
			a.done <- fmt.Errorf("killed")
			run.kills++
			run.note("SIGKILL at failpoint %s (%s)", point, strings.TrimSpace(lastLine(a.output.String(), "failpoint")))
		case <-time.After(60 * time.Second):
			t.Fatalf("failpoint %s never reached:\n%s", point, tail(a.output.String()))
		}
		a, aAddr = run.launch()
		run.waitCaughtUp(brokers)
		run.oracle(conn, want, "a SIGKILL at failpoint "+point)
	}

	// 3: ClickHouse stopped mid-chunk: the instance stays up, reports
	// unready with the reason, holds its memory, and recovers by itself.
	// Half of the chunk is produced before the stop, half during it.
	run.waitAssigned(a, 0)
	half := len(ev.chunks[3]) / 2
	produce(ev.chunks[3][:half])
	time.Sleep(jitter(500 * time.Millisecond))
	rssBefore := rssBytes(a.cmd.Process.Pid)
	ch.script(t, "stop")
	stopped := time.Now()
	produce(ev.chunks[3][half:])
	var unready string
	rssPeak := rssBefore
	for time.Since(stopped) < s.outage {
		if err := exited(a); err != nil {
			t.Fatalf("the instance exited while ClickHouse was down: %v\n%s", err, tail(a.output.String()))
		}
		if unready == "" {
			unready = unreadyBecause(t, aAddr, "clickhouse:")
		}
		rssPeak = max(rssPeak, rssBytes(a.cmd.Process.Pid))
		time.Sleep(250 * time.Millisecond)
	}
	if unready == "" {
		t.Fatalf("/readyz never reported ClickHouse down during the outage")
	}
	// Nothing is committed that is not stored: consumption is paused.
	paused, err := testenv.Lag(brokers, run.group, run.prefix+"cdr.voice", run.prefix+"billing.events", run.prefix+"crm.events")
	if err != nil || paused == 0 {
		t.Fatalf("at the end of the outage the group lags by %d (%v); want the messages produced during it", paused, err)
	}
	ch.script(t, "start")
	restarted := time.Now()
	run.waitCaughtUp(brokers)
	recovery := time.Since(restarted)
	if err := exited(a); err != nil {
		t.Fatalf("the instance exited after the outage: %v", err)
	}
	if body, code := get(t, "http://"+aAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after recovery: %d %s", code, body)
	}
	// Consumption pauses while ClickHouse is down, so memory must not grow
	// with the messages waiting on the broker.
	const rssLimit = 512 << 20
	if rssPeak > rssLimit {
		t.Fatalf("resident memory reached %d MiB during the outage (limit %d MiB)", rssPeak>>20, rssLimit>>20)
	}
	run.note("ClickHouse stopped %s: /readyz said %q; %d messages waited; RSS %d -> peak %d MiB; caught up %s after ClickHouse came back",
		s.outage, unready, paused, rssBefore>>20, rssPeak>>20, recovery.Round(100*time.Millisecond))
	run.oracle(conn, want, "the ClickHouse outage")

	// 4: the broker restarted (from its data directory) mid-chunk.
	produce(ev.chunks[4])
	time.Sleep(jitter(time.Second))
	b.Close()
	down := time.Now()
	var kafkaUnready string
	for time.Since(down) < 5*time.Second {
		if err := exited(a); err != nil {
			t.Fatalf("the instance exited while the broker was down: %v\n%s", err, tail(a.output.String()))
		}
		if kafkaUnready == "" {
			kafkaUnready = unreadyBecause(t, aAddr, "kafka:")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if kafkaUnready == "" {
		t.Fatalf("/readyz never reported the broker down")
	}
	if b, err = broker.Start(bcfg); err != nil {
		t.Fatalf("restart broker: %v", err)
	}
	restarted = time.Now()
	run.waitCaughtUp(brokers)
	run.note("broker down 5s: /readyz said %q; caught up %s after it came back", kafkaUnready, time.Since(restarted).Round(100*time.Millisecond))
	run.oracle(conn, want, "the broker restart")

	// 5: a second instance joins, the chunk (with the straddlers' second
	// calls) is consumed by both, and the second leaves again.
	n := assignments(a)
	second, _ := run.launch()
	run.waitAssigned(second, 0)
	run.waitAssigned(a, n)
	produce(ev.chunks[5])
	run.waitCaughtUp(brokers)
	n = assignments(a)
	second.terminate(t)
	run.waitAssigned(a, n)
	run.note("a second instance joined and left")
	run.oracle(conn, want, "a second instance's join and leave")

	// 6 and 7: SIGKILLs at random moments, once twice in a row.
	produce(ev.chunks[6])
	time.Sleep(jitter(time.Second))
	run.kill(a, "at a random moment of chunk 6")
	a, _ = run.launch()
	run.waitAssigned(a, 0)
	produce(ev.chunks[7])
	time.Sleep(jitter(time.Second))
	run.kill(a, "at a random moment of chunk 7")
	a, _ = run.launch()
	run.waitAssigned(a, 0)
	time.Sleep(jitter(300 * time.Millisecond))
	run.kill(a, "right after the restarted instance took its partitions")
	a, _ = run.launch()
	run.waitAssigned(a, 0)
	run.waitCaughtUp(brokers)
	final := run.oracle(conn, want, "the SIGKILLs of chunks 6 and 7")
	a.terminate(t)

	// Every invalid message also on its DLQ topic (once or more: the topic
	// is at-least-once; the dead_letters table is exact).
	dlq := map[string]bool{}
	for _, topic := range []string{"cdr.voice", "billing.events", "crm.events"} {
		for _, m := range testenv.ReadAll(t, brokers, run.prefix+topic+".dlq") {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			if h["error"] == "" {
				t.Fatalf("DLQ message without an error header: %s", m.Value)
			}
			dlq[h["source-topic"]+"/"+h["source-partition"]+"/"+h["source-offset"]] = true
		}
	}
	_, wantInvalid := want.counts()
	if len(dlq) != wantInvalid {
		t.Fatalf("the DLQ topics hold %d distinct source messages, want the %d invalid ones", len(dlq), wantInvalid)
	}

	// Every straddler's calls fired exactly one hotline warning, and the
	// warnings and tasks equal the fault-free run's.
	for _, db := range []string{free.db, run.db} {
		var straddled uint64
		testenv.Eventually(t, 10*time.Second, func() error {
			var err error
			straddled, err = testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.warnings FINAL WHERE signal = 'hotline_calls' AND msisdn IN ('%s')",
				db, strings.Join(ev.straddlers, "','")))
			return err
		})
		if int(straddled) != len(ev.straddlers) {
			t.Errorf("%s: %d hotline warnings for the %d subscribers whose calls straddle the rebalance, want one each", db, straddled, len(ev.straddlers))
			explainSubscribers(t, conn, ev.straddlers, free.db, run.db)
		}
	}
	wantTotals, gotTotals := totals(t, conn, free.db), totals(t, conn, run.db)
	if gotTotals != wantTotals {
		wl, gl := strings.Split(wantTotals, "\n"), strings.Split(gotTotals, "\n")
		for i := range wl {
			if wl[i] != gl[i] {
				t.Errorf("line %d differs: only in the fault-free run: %v; only in the run under faults: %v", i, onlyIn(wl[i], gl[i]), onlyIn(gl[i], wl[i]))
				explainWarnings(t, conn, append(onlyIn(wl[i], gl[i]), onlyIn(gl[i], wl[i])...), free.db, run.db)
			}
		}
	}
	if t.Failed() {
		for i, p := range run.procs {
			path := filepath.Join(os.TempDir(), fmt.Sprintf("chaos-instance-%d.log", i))
			os.WriteFile(path, []byte(p.output.String()), 0o644)
			t.Logf("instance %d log: %s", i, path)
		}
		t.FailNow()
	}
	warnings := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.warnings FINAL", run.db))
	tasks := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.tasks_current", run.db))
	if warnings == 0 || tasks == 0 {
		t.Fatalf("the run raised %d warnings and opened %d tasks; the comparison proves little", warnings, tasks)
	}
	valid, bad := want.counts()
	t.Logf("chaos: runs 1 fault-free + %d instances under faults; kills survived %d; ClickHouse outage %s; broker restarts 1; instance join+leave 1",
		len(run.procs), run.kills, s.outage)
	t.Logf("chaos: events produced %d (%d valid, %d invalid); stored %d; dead-lettered %d (DLQ topics %d); lost %d; duplicated %d; warnings %d and tasks %d equal to the fault-free run's",
		valid+bad, valid, bad, final.stored, final.deadLettered, len(dlq), final.lost, final.duplicated, warnings, tasks)
	t.Logf("chaos: took %s (fault-free run %s)", time.Since(started).Round(time.Second), freeTook.Round(time.Second))
}

// TestChaosOracleCatchesCommitBeforeStore is the fault suite's negative
// control: an instance built to commit a batch's offsets before storing it,
// killed between the two, loses that batch, and the oracle must say so.
func TestChaosOracleCatchesCommitBeforeStore(t *testing.T) {
	chcfg, conn := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "nc" + testenv.Suffix() + "."
	b := testenv.Broker(t, 4, topics.All()...)
	ev, invalid := generateChaosEvents(t, chaosSettings{subscribers: 100, days: 4})
	run := &chaosRun{t: t, bin: binaryTagged(t, "failpoints"), brokers: b.Addrs(), ch: chcfg.Addr, db: chcfg.Database, prefix: topics.Prefix, group: "nc"}
	want := newExpectedFacts()
	var all []kafka.Message
	all = append(all, ev.profiles...)
	for _, c := range ev.chunks {
		all = append(all, c...)
	}
	broken, _ := run.launch("CHURNWATCH_FAILPOINT_COMMIT_FIRST=1", "CHURNWATCH_FAILPOINT=before-store:2:cdr.voice")
	run.waitAssigned(broken, 0)
	testenv.Produce(t, b.Addrs(), withPrefix(run.prefix, all)...)
	want.add(t, all, invalid)
	select {
	case <-broken.done:
		broken.done <- fmt.Errorf("killed")
	case <-time.After(60 * time.Second):
		t.Fatalf("the failpoint was never reached:\n%s", tail(broken.output.String()))
	}
	// (The broken instance may have committed everything before dying, so
	// the group can be caught up before this one even started.)
	a, _ := run.launch()
	run.waitAssigned(a, 0)
	run.waitCaughtUp(b.Addrs())
	a.terminate(t)
	rep, err := checkFacts(conn, run.db, run.prefix, want)
	if err != nil {
		t.Fatal(err)
	}
	if rep.exact() || rep.lost == 0 {
		t.Fatalf("the oracle passed a run that committed before storing: %s", rep)
	}
	t.Logf("negative control: committing before storing, killed in between: %s", rep)
}

// explainWarnings logs, for differing warnings, the subscriber's hotline
// calls and warnings in both runs, with their offsets.
func explainWarnings(t *testing.T, conn driver.Conn, items []string, dbs ...string) {
	var subscribers []string
	for _, it := range items {
		id, _, _ := strings.Cut(strings.Trim(it, "'"), ":")
		for _, db := range dbs {
			var msisdn string
			if conn.QueryRow(context.Background(), fmt.Sprintf("SELECT msisdn FROM %s.warnings WHERE warning_id = ? LIMIT 1", db), id).Scan(&msisdn) == nil {
				subscribers = append(subscribers, msisdn)
				break
			}
		}
	}
	explainSubscribers(t, conn, subscribers, dbs...)
}

// explainSubscribers logs subscribers' hotline calls and warnings in each
// database, with their offsets.
func explainSubscribers(t *testing.T, conn driver.Conn, subscribers []string, dbs ...string) {
	for _, msisdn := range subscribers {
		for _, db := range dbs {
			for _, q := range []string{
				"SELECT toString(groupArray(tuple(warning_id, signal, toString(severity), detected_at, kafka_partition, kafka_offset, evidence))) FROM (SELECT * FROM %s.warnings FINAL WHERE msisdn = ? ORDER BY detected_at)",
				"SELECT toString(groupArray(tuple(event_id, peer, start_time, kafka_partition, kafka_offset))) FROM (SELECT * FROM %s.cdr FINAL WHERE msisdn = ? AND direction = 'MO' AND peer IN ('10086', '10000', '10010', '10099') ORDER BY kafka_offset)",
			} {
				var out string
				err := conn.QueryRow(context.Background(), fmt.Sprintf(q, db), msisdn).Scan(&out)
				t.Logf("%s %s: %s %v", db, schemas.MaskMSISDN(msisdn), out, err)
			}
		}
	}
}

func lastLine(s, containing string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], containing) {
			return lines[i]
		}
	}
	return ""
}

// unreadyBecause returns the problem /readyz of the instance at addr
// reports that starts with prefix, or "" if it reports none.
func unreadyBecause(t *testing.T, addr, prefix string) string {
	body, code := get(t, "http://"+addr+"/readyz")
	if code != http.StatusServiceUnavailable {
		return ""
	}
	var rd struct{ Problems []string }
	if json.Unmarshal([]byte(body), &rd) != nil {
		return ""
	}
	for _, p := range rd.Problems {
		if strings.HasPrefix(p, prefix) {
			return p
		}
	}
	return ""
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
