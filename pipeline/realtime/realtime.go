// Package realtime evaluates the real-time signals of SPEC section 4 as
// events are consumed: hotline_calls, competitor_hotline and forward_offnet
// on CDRs, suspension_imminent on billing events, port_out and business_op
// on CRM events. State is per partition and owned by the goroutine reading
// that partition: windows run on event time, lateness is measured against
// the partition's highest event time, and a replayed event never advances a
// count. On every assignment the state is rebuilt from the facts and
// warnings already in ClickHouse up to the committed offset, so a restart or
// a rebalance continues exactly where the last commit left off.
package realtime

import (
	"slices"
	"sync/atomic"
	"time"

	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// Rules configures the real-time signals.
type Rules struct {
	Thresholds         signals.Thresholds
	HotlineNumbers     []string
	CompetitorHotlines []string
	Plan               *numbering.Plan
	// Version is the rule set's content hash, recorded on every warning.
	Version string
}

// Live is the rule set in effect, shared by every partition's state and
// swapped whole on a reload. A state reads it once per event, so an event is
// judged by one rule set, and the windows, bills and fired warnings the
// state keeps are untouched by a swap: the next event simply meets the new
// thresholds. The number lists and the numbering plan must not change
// between versions (config.Rules.ReloadableFrom).
type Live struct{ p atomic.Pointer[Rules] }

// NewLive returns a Live holding r.
func NewLive(r Rules) *Live {
	l := &Live{}
	l.Store(r)
	return l
}

// Load returns the rules in effect; callers must not modify them.
func (l *Live) Load() *Rules { return l.p.Load() }

// Store makes r the rules in effect from the next event on.
func (l *Live) Store(r Rules) { l.p.Store(&r) }

// Fired is a warning already emitted, as the re-alert suppression needs it.
type Fired struct {
	MSISDN   string
	Signal   string
	Severity schemas.Severity
	At       time.Time
}

// base is what every partition state shares: the watermark and the record
// of warnings fired, for lateness and re-alert suppression.
type base struct {
	rules     *Rules
	live      *Live // when set, rules follows it event by event
	topic     string
	watermark time.Time
	fired     map[firedKey][]time.Time
}

type firedKey struct {
	msisdn   string
	signal   string
	severity schemas.Severity
}

func newBase(rules Rules, topic string, watermark time.Time, fired []Fired) base {
	b := base{rules: &rules, topic: topic, watermark: watermark, fired: map[firedKey][]time.Time{}}
	for _, f := range fired {
		k := firedKey{f.MSISDN, f.Signal, f.Severity}
		b.fired[k] = append(b.fired[k], f.At)
	}
	return b
}

// Follow makes the state read its rules from l before every event from now
// on, instead of the rules it was restored with.
func (b *base) Follow(l *Live) {
	b.live = l
	b.refresh()
}

// refresh picks up the rules in effect; every Observe starts with it.
func (b *base) refresh() {
	if b.live != nil {
		b.rules = b.live.Load()
	}
}

// advance moves the watermark and reports whether an event at t is within
// the lateness bound (may fire).
func (b *base) advance(t time.Time) bool {
	if t.After(b.watermark) {
		b.watermark = t
	}
	return !t.Before(b.watermark.Add(-b.rules.Thresholds.Lateness))
}

// firedNear reports whether the signal fired for the subscriber, at one of
// the severities, within the re-alert interval of t.
func (b *base) firedNear(msisdn, signal string, t time.Time, severities ...schemas.Severity) bool {
	for _, sev := range severities {
		for _, at := range b.fired[firedKey{msisdn, signal, sev}] {
			d := t.Sub(at)
			if d < b.rules.Thresholds.RealertAfter && d > -b.rules.Thresholds.RealertAfter {
				return true
			}
		}
	}
	return false
}

// emit records and returns one warning.
func (b *base) emit(msisdn, signal string, sev schemas.Severity, anchor string, at, from time.Time,
	evidence map[string]any, prov warehouse.Provenance) warehouse.WarningRow {
	at = at.Truncate(time.Second)
	k := firedKey{msisdn, signal, sev}
	b.fired[k] = append(b.fired[k], at)
	b.prune(k)
	return warehouse.WarningRow{
		Warning: schemas.Warning{
			WarningID: signals.WarningID(msisdn, signal, anchor), MSISDN: msisdn, Signal: signal, Severity: sev,
			DetectedAt: at, WindowStart: from.Truncate(time.Second), WindowEnd: at, Evidence: evidence,
			RuleVersion: b.rules.Version,
		},
		Source: warehouse.SourceRealtime, SourceTopic: b.topic, Provenance: prov,
	}
}

// prune forgets fired times too old to suppress anything again.
func (b *base) prune(k firedKey) {
	horizon := b.watermark.Add(-b.rules.Thresholds.Lateness - b.rules.Thresholds.RealertAfter)
	b.fired[k] = slices.DeleteFunc(b.fired[k], func(t time.Time) bool { return t.Before(horizon) })
}

// Watermark returns the highest event time seen.
func (b *base) Watermark() time.Time { return b.watermark }

func day(t time.Time) string { return t.Format(time.DateOnly) }
