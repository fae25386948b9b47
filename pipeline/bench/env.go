package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/warehouse"
)

// Machine describes where a run ran. Load is the 1-minute load average at
// the start, BusyCores how many cores' worth of CPU the machine used over
// the second before it (from /proc/stat): the cores are shared, and a busy
// machine shows in the figures.
type Machine struct {
	Host       string `json:"host"`
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemoryGiB  string `json:"memory_gib"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	ClickHouse string `json:"clickhouse,omitempty"`
	Load       string `json:"load_at_start"`
	BusyCores  string `json:"busy_cores_at_start,omitempty"`
}

func (m Machine) String() string {
	busy := ""
	if m.BusyCores != "" {
		busy = ", " + m.BusyCores + " cores busy"
	}
	return fmt.Sprintf("%s, %d cores (%s), %s GiB, %s, %s, ClickHouse %s, load %s%s",
		m.Host, m.Cores, m.CPU, m.MemoryGiB, m.OS, m.Go, m.ClickHouse, m.Load, busy)
}

// Busy returns a warning when the machine was busy at the start, or "":
// when the CPU it used over the second before (BusyCores) or, where that is
// unknown, its load average was at least half the cores. The pipeline's
// rounds use both cores and the engine's one, so other work skews the ratio
// (a run started right after `make test`, with its ClickHouse cluster and
// ZooKeeper still up and a load of 4.7, gave 2.62x where the quiet runs of
// the hour gave 2.69-3.29x). The CPU used comes first because the load
// average lags: a run started right after another has its predecessor's.
func (m Machine) Busy() string {
	figure, say := m.BusyCores, "%s of the %d cores were busy at the start"
	v, err := strconv.ParseFloat(figure, 64)
	if err != nil {
		figure, say = m.Load, "load average %s at the start on %d cores"
		if v, err = strconv.ParseFloat(figure, 64); err != nil {
			return ""
		}
	}
	if m.Cores == 0 || v < float64(m.Cores)/2 {
		return ""
	}
	return fmt.Sprintf("warning: "+say+": other work on this machine skews the figures; "+
		"wait for it to end (the test cluster of `make test` stops with `make cluster-stop`)", figure, m.Cores)
}

// busySample is how long Describe watches the machine's CPU.
const busySample = time.Second

// busyCores returns how many cores' worth of CPU the machine used over d,
// from /proc/stat, or "" where that cannot be read.
func busyCores(d time.Duration, cores int) string {
	before, ok := readCPUTimes()
	if !ok {
		return ""
	}
	time.Sleep(d)
	after, ok := readCPUTimes()
	if !ok {
		return ""
	}
	busy, _, ok := after.since(before)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.2f", busy*float64(cores))
}

// cpuTimes are the machine's CPU times, in clock ticks: all of them, those
// not idle or waiting for I/O, and those stolen (a virtual machine's cores
// running another guest: the hypervisor's share, counted as busy).
type cpuTimes struct{ busy, total, steal uint64 }

// since returns the shares of the machine's CPU time from before to t that
// were busy and stolen; ok is false when no tick passed between them.
func (t cpuTimes) since(before cpuTimes) (busy, steal float64, ok bool) {
	if t.total <= before.total {
		return 0, 0, false
	}
	total := float64(t.total - before.total)
	return float64(t.busy-before.busy) / total, float64(t.steal-before.steal) / total, true
}

func readCPUTimes() (cpuTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPUTimes(line)
}

// parseCPUTimes reads the "cpu" line of /proc/stat: user, nice, system,
// idle, iowait, irq, softirq and steal ticks (guest time is already in
// user and nice).
func parseCPUTimes(line string) (cpuTimes, bool) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, false
	}
	var t cpuTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
		if i == 7 {
			t.steal = n
		}
	}
	return t, true
}

// Describe reads the machine's description from the system.
func Describe() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), ClickHouse: "?"}
	m.Host, _ = os.Hostname()
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.MemoryGiB = fmt.Sprintf("%.1f", n/(1<<20))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.Load = f[0]
		}
	}
	m.BusyCores = busyCores(busySample, m.Cores)
	return m
}

// revision is the commit `make build` builds from (-ldflags -X).
var revision string

// Revision is the commit the running binary was built from, with
// "+modified" when its work tree had changes: what `make build` set, or else
// what go build recorded; empty when neither did (a build outside a git
// checkout, or with -buildvcs=false).
func Revision() string {
	if revision != "" {
		return revision
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return revisionOf(info.Settings)
}

func revisionOf(settings []debug.BuildSetting) string {
	var rev, modified string
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" && modified == "true" {
		rev += "+modified"
	}
	return rev
}

func procField(file, name string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func serverVersion(ctx context.Context, wh *warehouse.Warehouse) (string, error) {
	var v string
	err := wh.Conn().QueryRow(ctx, "SELECT version()").Scan(&v)
	return v, err
}

func count(ctx context.Context, wh *warehouse.Warehouse, query string) (uint64, error) {
	var n uint64
	err := wh.Conn().QueryRow(ctx, query).Scan(&n)
	return n, err
}

// lag returns how many messages of the topics the group has not committed
// yet, summed over partitions (a partition without a commit lags by all).
func lag(ctx context.Context, client *kafka.Client, group string, topics []string) (int64, error) {
	ends, err := endOffsets(ctx, client, topics)
	if err != nil {
		return 0, err
	}
	fetch := map[string][]int{}
	for topic, parts := range ends {
		for p := range parts {
			fetch[topic] = append(fetch[topic], p)
		}
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: fetch})
	if err != nil {
		return 0, fmt.Errorf("fetch the committed offsets of group %s: %w", group, err)
	}
	var n int64
	for topic, parts := range ends {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			done[p.Partition] = max(p.CommittedOffset, 0)
		}
		for p, last := range parts {
			n += last - done[p]
		}
	}
	return n, nil
}

// endOffsets returns the end offset of every partition of the topics.
func endOffsets(ctx context.Context, client *kafka.Client, topics []string) (map[string]map[int]int64, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	last, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[string]map[int]int64{}
	for topic, parts := range last.Topics {
		out[topic] = map[int]int64{}
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("last offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[topic][p.Partition] = p.LastOffset
		}
	}
	return out, nil
}

// waitConsumed polls until the group has committed every message of the
// topics, the pipeline ends (done), or nothing moves for stallTimeout.
func waitConsumed(ctx context.Context, conn kafkaconn.Conn, group string, topics []string, done <-chan struct{}) error {
	client := conn.Client(10 * time.Second)
	best, since := int64(-1), time.Now()
	for {
		n, err := lag(ctx, client, group, topics)
		if err == nil && n == 0 {
			return nil
		}
		if err == nil && (best < 0 || n < best) {
			best, since = n, time.Now()
		}
		if time.Since(since) > stallTimeout {
			return fmt.Errorf("no progress for %s (lag %d, last error %v)", stallTimeout, best, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return fmt.Errorf("the pipeline stopped before consuming everything (lag %d)", best)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// appendResult appends the run as one JSON line.
func appendResult(path string, res Result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// settleQuiet and settleTimeout bound settle.
const (
	settleQuiet   = time.Second
	settleTimeout = time.Minute
)

// settle waits until no merge has run in wh's database for settleQuiet, so
// that the merges a measurement left behind do not run into the next one;
// after settleTimeout it logs and returns.
func settle(ctx context.Context, wh *warehouse.Warehouse, log zerolog.Logger) {
	db := wh.Database()
	start, quiet := time.Now(), time.Now()
	for time.Since(quiet) < settleQuiet {
		n, err := count(ctx, wh, "SELECT count() FROM system.merges WHERE database = '"+db+"'")
		if err != nil {
			log.Warn().Err(err).Msg("could not read system.merges; going on without waiting for merges")
			return
		}
		if n > 0 {
			quiet = time.Now()
		}
		if time.Since(start) > settleTimeout {
			log.Warn().Str("database", db).Uint64("merges", n).Msg("merges still running; going on")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
