package ops

import (
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"churnwatch/consumers"
)

const namespace = "churnwatch"

// Buckets of the histograms: batch sizes in messages (a batch is cut at
// ingest.batch_size, 50,000 by default) and write latencies in seconds.
var (
	batchSizeBuckets = prometheus.ExponentialBuckets(1, 4, 10)                // 1 .. 262144
	latencyBuckets   = prometheus.ExponentialBuckets(0.001, 2.5, 12)          // 1 ms .. ~60 s
	dailyBuckets     = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600} // a daily run takes minutes
)

// Build identifies the running binary in churnwatch_build_info.
type Build struct {
	Version, Revision, GoVersion string
}

// ReadBuild returns the binary's module version and VCS revision as the Go
// toolchain recorded them ("unknown" where it did not).
func ReadBuild() Build {
	b := Build{Version: "unknown", Revision: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			b.Revision = s.Value
		}
	}
	return b
}

// Metrics is every Prometheus collector of one churnwatch process,
// registered on the registry given to NewMetrics (never the global one). It
// implements consumers.Metrics; the instrumented warehouse (Warehouse),
// the lag monitor and the daily scheduler (DailyRun) report to it too, and
// the dashboard reads its state.
type Metrics struct {
	consumed, stored, rejected *prometheus.CounterVec
	assigned                   *prometheus.GaugeVec
	lag                        *prometheus.GaugeVec
	batchSize, batchSeconds    *prometheus.HistogramVec
	writeSeconds               *prometheus.HistogramVec
	writeErrors                *prometheus.CounterVec
	lastWrite                  prometheus.Gauge
	warnings                   *prometheus.CounterVec
	tasksOpened                prometheus.Counter
	tasksEscalated             prometheus.Counter
	tasksClosed                *prometheus.CounterVec
	dailySeconds               prometheus.Histogram
	dailyRuns                  *prometheus.CounterVec
	dailyLast                  *prometheus.GaugeVec
	dailyWarnings              prometheus.Gauge

	mu          sync.Mutex
	consumers   map[string]*consumerState // by topic
	lastWriteAt time.Time
	lastErrAt   time.Time
	lastErr     string
	lags        map[string]map[int]int64 // topic -> partition -> lag
	lagAt       time.Time
	lagErr      string
	daily       DailyRunInfo
	seen        recentKeys // task versions already counted
}

type consumerState struct {
	running    int // generations running (0 or 1 in practice)
	partitions []int
	consumed   prometheus.Counter
}

// DailyRunInfo is what the last daily run reported.
type DailyRunInfo struct {
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ns"`
	Warnings int           `json:"warnings"`
	Error    string        `json:"error,omitempty"`
}

// NewMetrics creates the collectors and registers them, with the Go runtime
// and process collectors and churnwatch_build_info, on reg.
func NewMetrics(reg prometheus.Registerer, build Build) *Metrics {
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		f(c)
		return c
	}
	m := &Metrics{
		consumed: counter("events_consumed_total", "Messages fetched from Kafka, by topic.", "topic"),
		stored:   counter("events_stored_total", "Messages stored in ClickHouse (facts, or task inputs applied), by topic.", "topic"),
		rejected: counter("events_rejected_total", "Messages rejected to the dead-letter queue, by topic.", "topic"),
		assigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "consumer_assigned_partitions",
			Help: "Partitions of the topic assigned to this instance in the current consumer-group generation."}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "consumer_lag_messages",
			Help: "Messages not yet committed by the consumer group: high watermark minus committed offset, for the partitions assigned to this instance."},
			[]string{"topic", "partition"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "batch_size_messages",
			Help: "Messages per batch written (stored plus rejected), by topic.", Buckets: batchSizeBuckets}, []string{"topic"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "batch_write_duration_seconds",
			Help: "Time to write a batch durably (ClickHouse, output topics, dead letters, retries included), by topic.", Buckets: latencyBuckets}, []string{"topic"}),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "clickhouse_write_duration_seconds",
			Help: "Latency of successful ClickHouse writes, by table.", Buckets: latencyBuckets}, []string{"table"}),
		writeErrors: counter("clickhouse_write_errors_total", "Failed ClickHouse writes (each is retried), by table.", "table"),
		lastWrite: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "clickhouse_last_write_success_timestamp_seconds",
			Help: "Unix time of the last successful ClickHouse write."}),
		warnings:       counter("warnings_fired_total", "Warnings published (warnings table and churn.warnings), by signal and severity.", "signal", "severity"),
		tasksOpened:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "tasks_opened_total", Help: "Retention tasks opened."}),
		tasksEscalated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "tasks_escalated_total", Help: "Retention tasks escalated to a supervisor because they were overdue."}),
		tasksClosed:    counter("tasks_closed_total", "Retention tasks closed, by the first closing status (RETAINED, LOST, CLOSED).", "status"),
		dailySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "daily_run_duration_seconds",
			Help: "Duration of daily signal evaluations.", Buckets: dailyBuckets}),
		dailyRuns: counter("daily_runs_total", "Daily signal evaluations, by result (ok, error).", "result"),
		dailyLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "daily_run_last_timestamp_seconds",
			Help: "Unix time at which the last daily evaluation with this result ended."}, []string{"result"}),
		dailyWarnings: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "daily_run_last_warnings",
			Help: "Warnings fired by the last successful daily evaluation."}),
		consumers: map[string]*consumerState{},
		lags:      map[string]map[int]int64{},
	}
	for _, c := range []prometheus.Collector{m.assigned, m.lag, m.batchSize, m.batchSeconds, m.writeSeconds, m.lastWrite,
		m.tasksOpened, m.tasksEscalated, m.dailySeconds, m.dailyLast, m.dailyWarnings} {
		f(c)
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which build is running."}, []string{"version", "revision", "goversion"})
	info.WithLabelValues(build.Version, build.Revision, build.GoVersion).Set(1)
	f(info)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Consumer implements consumers.Metrics.
func (m *Metrics) Consumer(topic string) consumers.ConsumerMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.consumers[topic]
	if st == nil {
		st = &consumerState{consumed: m.consumed.WithLabelValues(topic)}
		m.consumers[topic] = st
		m.stored.WithLabelValues(topic)
		m.rejected.WithLabelValues(topic)
	}
	return &consumerMetrics{m: m, topic: topic, st: st,
		stored: m.stored.WithLabelValues(topic), rejected: m.rejected.WithLabelValues(topic),
		size: m.batchSize.WithLabelValues(topic), took: m.batchSeconds.WithLabelValues(topic)}
}

type consumerMetrics struct {
	m                *Metrics
	topic            string
	st               *consumerState
	stored, rejected prometheus.Counter
	size, took       prometheus.Observer
}

func (c *consumerMetrics) Assigned(partitions []int) {
	c.m.mu.Lock()
	c.st.running++
	c.st.partitions = append([]int(nil), partitions...)
	c.m.mu.Unlock()
	c.m.assigned.WithLabelValues(c.topic).Set(float64(len(partitions)))
}

func (c *consumerMetrics) Unassigned() {
	c.m.mu.Lock()
	c.st.running--
	c.st.partitions = nil
	c.m.mu.Unlock()
	c.m.assigned.WithLabelValues(c.topic).Set(0)
}

func (c *consumerMetrics) Consumed() { c.st.consumed.Inc() }

func (c *consumerMetrics) BatchDone(stored, rejected, _ int, took time.Duration) {
	c.stored.Add(float64(stored))
	c.rejected.Add(float64(rejected))
	c.size.Observe(float64(stored + rejected))
	c.took.Observe(took.Seconds())
}

// Assignment returns, per consumed topic, the partitions assigned to this
// instance, and whether every consumer is running in a generation.
func (m *Metrics) Assignment() (map[string][]int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]int, len(m.consumers))
	all := len(m.consumers) > 0
	for topic, st := range m.consumers {
		if st.running <= 0 {
			all = false
			continue
		}
		out[topic] = append([]int(nil), st.partitions...)
	}
	return out, all
}

// write records one ClickHouse write attempt.
func (m *Metrics) write(table string, took time.Duration, err error) {
	now := time.Now()
	if err != nil {
		m.writeErrors.WithLabelValues(table).Inc()
		m.mu.Lock()
		m.lastErrAt, m.lastErr = now, table+": "+err.Error()
		m.mu.Unlock()
		return
	}
	m.writeSeconds.WithLabelValues(table).Observe(took.Seconds())
	m.lastWrite.Set(float64(now.UnixNano()) / 1e9)
	m.mu.Lock()
	m.lastWriteAt = now
	m.mu.Unlock()
}

// LastWrite returns when ClickHouse last accepted a write, and the last
// failed write with its error (zero when none failed).
func (m *Metrics) LastWrite() (ok time.Time, failed time.Time, failure string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastWriteAt, m.lastErrAt, m.lastErr
}

// warningFired counts one published warning.
func (m *Metrics) warningFired(signal, severity string) {
	m.warnings.WithLabelValues(signal, severity).Inc()
}

// taskVersion counts what a stored task version means, once per
// (task, version) however often a retry writes it.
func (m *Metrics) taskVersion(taskID string, version uint32, status string, cause string) {
	m.mu.Lock()
	fresh := m.seen.add(taskID + "/" + strconv.FormatUint(uint64(version), 10))
	m.mu.Unlock()
	if !fresh {
		return
	}
	switch {
	case version == 1:
		m.tasksOpened.Inc()
	case cause == "escalation":
		m.tasksEscalated.Inc()
	}
	switch status {
	case "RETAINED", "LOST", "CLOSED":
		// RETAINED or LOST is usually followed by CLOSED: count the
		// task's first closing status only.
		m.mu.Lock()
		first := m.seen.add("closed/" + taskID)
		m.mu.Unlock()
		if first {
			m.tasksClosed.WithLabelValues(status).Inc()
		}
	}
}

// setLag replaces the lag of the partitions assigned to this instance.
func (m *Metrics) setLag(lags map[string]map[int]int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.lagErr = err.Error()
		return
	}
	m.lagErr = ""
	m.lagAt = time.Now()
	m.lag.Reset()
	for topic, parts := range lags {
		for p, n := range parts {
			m.lag.WithLabelValues(topic, strconv.Itoa(p)).Set(float64(n))
		}
	}
	m.lags = lags
}

// PartitionLag is the lag of one assigned partition.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Lag       int64  `json:"lag"`
}

// Lag returns the last measured lag of this instance's partitions, in
// topic and partition order, when it was measured, and the error of the
// last measurement if it failed.
func (m *Metrics) Lag() (lags []PartitionLag, at time.Time, failure string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for topic, parts := range m.lags {
		for p, n := range parts {
			lags = append(lags, PartitionLag{Topic: topic, Partition: p, Lag: n})
		}
	}
	sort.Slice(lags, func(i, j int) bool {
		if lags[i].Topic != lags[j].Topic {
			return lags[i].Topic < lags[j].Topic
		}
		return lags[i].Partition < lags[j].Partition
	})
	return lags, m.lagAt, m.lagErr
}

// DailyRun records one daily signal evaluation: how long it took, how many
// warnings it fired, and its error (nil when it succeeded). The daily
// scheduler calls it after every run, scheduled or backfill.
func (m *Metrics) DailyRun(took time.Duration, warnings int, err error) {
	result := "ok"
	info := DailyRunInfo{At: time.Now(), Duration: took, Warnings: warnings}
	if err != nil {
		result, info.Error = "error", err.Error()
	} else {
		m.dailyWarnings.Set(float64(warnings))
	}
	m.dailySeconds.Observe(took.Seconds())
	m.dailyRuns.WithLabelValues(result).Inc()
	m.dailyLast.WithLabelValues(result).Set(float64(info.At.Unix()))
	m.mu.Lock()
	m.daily = info
	m.mu.Unlock()
}

// LastDailyRun returns what the last daily run reported; At is zero when
// none ran in this process.
func (m *Metrics) LastDailyRun() DailyRunInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.daily
}

// TopicCounts are a topic's totals since the process started.
type TopicCounts struct {
	Topic    string  `json:"topic"`
	Consumed float64 `json:"consumed"`
	Stored   float64 `json:"stored"`
	Rejected float64 `json:"rejected"`
}

// Counts returns the consumed, stored and rejected totals of every
// consumed topic, in topic order.
func (m *Metrics) Counts() []TopicCounts {
	m.mu.Lock()
	topics := make([]string, 0, len(m.consumers))
	for t := range m.consumers {
		topics = append(topics, t)
	}
	m.mu.Unlock()
	sort.Strings(topics)
	out := make([]TopicCounts, len(topics))
	for i, t := range topics {
		out[i] = TopicCounts{Topic: t, Consumed: value(m.consumed.WithLabelValues(t)),
			Stored: value(m.stored.WithLabelValues(t)), Rejected: value(m.rejected.WithLabelValues(t))}
	}
	return out
}

func value(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil || d.Counter == nil {
		return 0
	}
	return d.Counter.GetValue()
}

// recentKeys remembers up to recentLimit keys, forgetting the older half
// when full: enough to recognise a retried write, bounded in memory.
type recentKeys struct {
	cur, old map[string]struct{}
}

const recentLimit = 50_000

func (r *recentKeys) add(k string) bool {
	if r.cur == nil {
		r.cur = map[string]struct{}{}
	}
	if _, ok := r.cur[k]; ok {
		return false
	}
	if _, ok := r.old[k]; ok {
		return false
	}
	if len(r.cur) >= recentLimit/2 {
		r.old, r.cur = r.cur, map[string]struct{}{}
	}
	r.cur[k] = struct{}{}
	return true
}
