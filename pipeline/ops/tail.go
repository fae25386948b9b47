package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/signals"
	"churnwatch/schemas"
)

// Filter selects warnings. Empty fields select everything; a field with
// several values selects any of them. Manager matches the subscriber's
// account manager or phone manager.
type Filter struct {
	Signals    []string `json:"signals,omitempty"`
	Severities []string `json:"severities,omitempty"`
	Tiers      []string `json:"tiers,omitempty"`
	Regions    []string `json:"regions,omitempty"`
	Manager    string   `json:"manager,omitempty"`
	// Scope narrows everything to the subscribers of these managers (as
	// account or phone manager): the user's, from Access.Managers. Nil
	// selects every subscriber. It is set by the server from the token,
	// never from the request.
	Scope []string `json:"-"`
}

// FilterFromQuery reads a filter from URL parameters signal, severity,
// tier, region (each comma-separated or repeated) and manager.
func FilterFromQuery(q url.Values) Filter {
	list := func(key string) []string {
		var out []string
		for _, v := range q[key] {
			out = append(out, SplitList(v)...)
		}
		return out
	}
	return Filter{Signals: list("signal"), Severities: list("severity"), Tiers: list("tier"), Regions: list("region"),
		Manager: strings.TrimSpace(q.Get("manager"))}
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Validate says which values are not signal codes, severities or tiers.
func (f Filter) Validate() error {
	var errs []error
	for _, s := range f.Signals {
		if _, ok := signals.Lookup(s); !ok {
			errs = append(errs, fmt.Errorf("unknown signal %q (see `churnwatch rules` or the README for the codes)", s))
		}
	}
	for _, s := range f.Severities {
		if !slices.Contains([]string{"info", "low", "medium", "high", "critical"}, s) {
			errs = append(errs, fmt.Errorf("unknown severity %q (want info, low, medium, high or critical)", s))
		}
	}
	for _, t := range f.Tiers {
		if !slices.Contains(schemas.Tiers, schemas.Tier(t)) {
			errs = append(errs, fmt.Errorf("unknown tier %q (want diamond, gold, silver or standard)", t))
		}
	}
	return errors.Join(errs...)
}

// Match reports whether w passes the filter.
func (f Filter) Match(w schemas.Warning) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(f.Signals, w.Signal) && in(f.Severities, string(w.Severity)) && in(f.Tiers, string(w.Tier)) &&
		in(f.Regions, w.Region) && (f.Manager == "" || f.Manager == w.AccountManager || f.Manager == w.PhoneManager) &&
		InScope(f.Scope, w.AccountManager, w.PhoneManager)
}

// WarningView is a warning as people read it: the signal's Chinese and
// English names and the evidence as text.
type WarningView struct {
	WarningID      string    `json:"warning_id"`
	MSISDN         string    `json:"msisdn"`
	Signal         string    `json:"signal"`
	SignalZH       string    `json:"signal_zh"`
	SignalEN       string    `json:"signal_en"`
	Severity       string    `json:"severity"`
	Tier           string    `json:"tier"`
	Region         string    `json:"region"`
	AccountManager string    `json:"account_manager"`
	PhoneManager   string    `json:"phone_manager"`
	DetectedAt     time.Time `json:"detected_at"`
	Score          int       `json:"score"`
	Evidence       string    `json:"evidence"`
}

// View describes w for people; mask hides the middle digits of the
// subscriber's number (the dashboard is watched on shared screens).
func View(w schemas.Warning, mask bool) WarningView {
	v := WarningView{WarningID: w.WarningID, MSISDN: w.MSISDN, Signal: w.Signal, SignalZH: w.Signal, SignalEN: w.Signal,
		Severity: string(w.Severity), Tier: string(w.Tier), Region: w.Region, AccountManager: w.AccountManager,
		PhoneManager: w.PhoneManager, DetectedAt: w.DetectedAt, Score: w.Score, Evidence: FormatEvidence(w.Evidence)}
	if info, ok := signals.Lookup(w.Signal); ok {
		v.SignalZH, v.SignalEN = info.NameZH, info.NameEN
	}
	if mask {
		v.MSISDN = schemas.MaskMSISDN(w.MSISDN)
	}
	return v
}

// FormatEvidence writes evidence as "key value" pairs in key order, for
// example "calls 4, threshold 3, window_days 7".
func FormatEvidence(ev map[string]any) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		var s string
		switch v := ev[k].(type) {
		case string:
			s = v
		case float64:
			s = strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
		case nil:
			s = "-"
		default:
			b, _ := json.Marshal(v)
			s = string(b)
		}
		parts[i] = k + " " + s
	}
	return strings.Join(parts, ", ")
}

// TailConfig says which topic to follow and where.
type TailConfig struct {
	// Conn reaches the brokers (TLS and SASL included).
	Conn  kafkaconn.Conn
	Topic string
	// FromBeginning starts at the oldest message kept instead of the end.
	FromBeginning bool
}

// Tailer follows a warnings topic with one reader per partition and no
// consumer group: following commits nothing and takes no partition away
// from the pipeline's own consumers, and any number of dashboards and
// terminals can follow at once. Run may be called again after it failed; it
// resumes where it stopped.
type Tailer struct {
	cfg TailConfig

	mu   sync.Mutex // serialises deliveries and guards next
	next map[int]int64
}

// NewTailer returns a tailer of cfg.Topic.
func NewTailer(cfg TailConfig) *Tailer {
	return &Tailer{cfg: cfg, next: map[int]int64{}}
}

// Run delivers every warning on the topic, from where the tailer stands
// (the end, or the beginning, on the first run), to deliver, one at a time,
// until ctx ends (it returns nil then) or a partition cannot be read. ready
// is called once every partition is positioned: warnings produced after
// that are delivered. Messages that are not warnings are skipped.
func (t *Tailer) Run(ctx context.Context, ready func(), deliver func(schemas.Warning)) error {
	starts, err := t.positions(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(starts))
	var wg sync.WaitGroup
	for p, offset := range starts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: t.cfg.Conn.Brokers, Dialer: t.cfg.Conn.Dialer(), Topic: t.cfg.Topic, Partition: p,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 250 * time.Millisecond})
		if err := r.SetOffset(offset); err != nil {
			r.Close()
			return fmt.Errorf("follow %s/%d from %d: %w", t.cfg.Topic, p, offset, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				msg, err := r.FetchMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("follow %s/%d: %w", t.cfg.Topic, p, err)
						cancel()
					}
					return
				}
				var w schemas.Warning
				ok := json.Unmarshal(msg.Value, &w) == nil && w.WarningID != ""
				t.mu.Lock()
				t.next[p] = msg.Offset + 1
				if ok {
					deliver(w)
				}
				t.mu.Unlock()
			}
		}()
	}
	if ready != nil {
		ready()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// positions returns where each partition's reader starts: where the last
// run stopped, else the end (or the beginning) of the partition now.
func (t *Tailer) positions(ctx context.Context) (map[int]int64, error) {
	client := t.cfg.Conn.Client(10 * time.Second)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{t.cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("cannot reach Kafka at %s: %w", strings.Join(t.cfg.Conn.Brokers, ","), err)
	}
	var req []kafka.OffsetRequest
	for _, topic := range meta.Topics {
		if topic.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.cfg.Topic, topic.Error)
		}
		for _, p := range topic.Partitions {
			if t.cfg.FromBeginning {
				req = append(req, kafka.FirstOffsetOf(p.ID))
			} else {
				req = append(req, kafka.LastOffsetOf(p.ID))
			}
		}
	}
	if len(req) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions (does it exist?)", t.cfg.Topic)
	}
	offsets, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{t.cfg.Topic: req}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", t.cfg.Topic, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]int64{}
	for _, p := range offsets.Topics[t.cfg.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", t.cfg.Topic, p.Partition, p.Error)
		}
		if next, ok := t.next[p.Partition]; ok {
			out[p.Partition] = next
		} else if t.cfg.FromBeginning {
			out[p.Partition] = p.FirstOffset
		} else {
			out[p.Partition] = p.LastOffset
		}
	}
	return out, nil
}

// Hub follows the warnings topic for the dashboard and fans each warning
// out to the live streams whose filter it passes. A stream that cannot keep
// up loses warnings rather than slowing the others.
type Hub struct {
	tailer *Tailer
	log    zerolog.Logger

	mu    sync.Mutex
	subs  map[*subscription]struct{}
	ready bool
	live  chan struct{} // closed when the tailer is first positioned
}

type subscription struct {
	filter Filter
	ch     chan schemas.Warning
}

// NewHub returns a hub fed by tailer; nothing is followed until Run.
func NewHub(tailer *Tailer, log zerolog.Logger) *Hub {
	return &Hub{tailer: tailer, log: log.With().Str("component", "dashboard-stream").Logger(),
		subs: map[*subscription]struct{}{}, live: make(chan struct{})}
}

// Run follows the topic until ctx ends and returns nil then. When Kafka
// fails it retries with backoff, resuming where it stopped.
func (h *Hub) Run(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for {
		err := h.tailer.Run(ctx, h.markReady, h.publish)
		if ctx.Err() != nil {
			return nil
		}
		h.log.Warn().Err(err).Dur("retry_in", backoff).Msg("the dashboard's warning stream stopped; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (h *Hub) markReady() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready {
		h.ready = true
		close(h.live)
	}
}

// Live is closed once the hub follows the topic: warnings produced after
// that reach the streams.
func (h *Hub) Live() <-chan struct{} { return h.live }

func (h *Hub) publish(w schemas.Warning) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.filter.Match(w) {
			continue
		}
		select {
		case s.ch <- w:
		default: // a slow stream loses warnings; the others keep theirs
		}
	}
}

// Subscribe returns a stream of the warnings passing f, and the function
// that ends it.
func (h *Hub) Subscribe(f Filter) (<-chan schemas.Warning, func()) {
	s := &subscription{filter: f, ch: make(chan schemas.Warning, 256)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s.ch, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}
