package ops

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
)

// DefaultStallAfter is how long the pipeline may go without a successful
// ClickHouse write while messages wait before /readyz says it is stuck.
const DefaultStallAfter = 2 * time.Minute

// Pinger is the part of the warehouse the health check uses.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health answers /readyz: it checks, each time it is asked, that
// ClickHouse answers, that a Kafka broker answers, that every consumer runs
// in a consumer-group generation, and that ClickHouse writes keep
// succeeding while the group has messages waiting.
type Health struct {
	ch         Pinger
	kafka      *kafka.Client
	topics     []string
	m          *Metrics
	stallAfter time.Duration
	started    time.Time
}

// NewHealth returns the readiness check of a pipeline whose consumers read
// topics from the brokers of conn. stallAfter is DefaultStallAfter when zero.
func NewHealth(ch Pinger, conn kafkaconn.Conn, topics []string, m *Metrics, stallAfter time.Duration) *Health {
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	return &Health{ch: ch, kafka: conn.Client(2 * time.Second),
		topics: topics, m: m, stallAfter: stallAfter, started: time.Now()}
}

// Readiness is the body of /readyz: Ready, and per check "ok" or what is
// wrong; Problems lists the failing checks' messages.
type Readiness struct {
	Ready    bool              `json:"ready"`
	Checks   map[string]string `json:"checks"`
	Problems []string          `json:"problems,omitempty"`
}

// Check runs every check, concurrently, within 3 seconds.
func (h *Health) Check(ctx context.Context) Readiness {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r := Readiness{Ready: true, Checks: map[string]string{}}
	var mu sync.Mutex
	set := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			r.Checks[name] = "ok"
			return
		}
		r.Ready = false
		r.Checks[name] = err.Error()
		r.Problems = append(r.Problems, name+": "+err.Error())
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); set("clickhouse", h.ch.Ping(ctx)) }()
	go func() { defer wg.Done(); set("kafka", h.kafkaReachable(ctx)) }()
	set("consumers", h.consumersAssigned())
	set("writes", h.writesFlowing())
	wg.Wait()
	return r
}

func (h *Health) kafkaReachable(ctx context.Context) error {
	// kafka-go answers metadata requests from a cache refreshed every few
	// seconds, which goes on answering for a while after the broker died;
	// an ApiVersions request always travels to the broker.
	if _, err := h.kafka.ApiVersions(ctx, &kafka.ApiVersionsRequest{}); err != nil {
		return fmt.Errorf("no broker answers at %s: %w", h.kafka.Addr.String(), err)
	}
	meta, err := h.kafka.Metadata(ctx, &kafka.MetadataRequest{Topics: h.topics})
	if err != nil {
		return fmt.Errorf("no broker answers at %s: %w", h.kafka.Addr.String(), err)
	}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
	}
	return nil
}

func (h *Health) consumersAssigned() error {
	if _, all := h.m.Assignment(); !all {
		return fmt.Errorf("not every consumer is in a consumer-group generation (joining or rebalancing)")
	}
	return nil
}

// writesFlowing fails when messages have waited, with no successful
// ClickHouse write, for longer than stallAfter.
func (h *Health) writesFlowing() error {
	lags, _, _ := h.m.Lag()
	var waiting int64
	for _, l := range lags {
		waiting += l.Lag
	}
	if waiting == 0 {
		return nil
	}
	last, failedAt, failure := h.m.LastWrite()
	since := last
	if since.IsZero() {
		since = h.started
	}
	if idle := time.Since(since); idle > h.stallAfter {
		msg := fmt.Sprintf("%d messages wait and no ClickHouse write succeeded for %s", waiting, idle.Round(time.Second))
		if failedAt.After(last) {
			msg += "; last failure: " + failure
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// CheckExposure refuses to serve the dashboard beyond this machine without
// an access token: addr must be a loopback address (127.0.0.0/8, ::1 or
// localhost) unless token is set, and a token must be long enough to
// resist guessing.
func CheckExposure(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http.addr %q: want host:port, like 127.0.0.1:8080", addr)
	}
	if token != "" && len(token) < MinTokenLength {
		return fmt.Errorf("http.token is too short (%d characters): use at least %d random characters, e.g. `openssl rand -hex 16`", len(token), MinTokenLength)
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	loopback := strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
	if !loopback && token == "" {
		where := host
		if where == "" {
			where = "every interface"
		}
		return fmt.Errorf("http.addr %s listens on %s, beyond this machine: the dashboard, metrics and health endpoints "+
			"would be open to anyone on the network. Set an access token in CHURNWATCH_HTTP_TOKEN (or a file holding it in CHURNWATCH_HTTP_TOKEN_FILE), "+
			"or listen on 127.0.0.1", addr, where)
	}
	return nil
}

// MinTokenLength is the shortest access token accepted.
const MinTokenLength = 16
