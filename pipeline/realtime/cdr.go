package realtime

import (
	"slices"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// Call is an MO call to a hotline (ours or a competitor's), as the windows
// keep it.
type Call struct {
	MSISDN     string
	EventID    string
	Time       time.Time
	Peer       string
	Competitor bool
}

// CDRState evaluates hotline_calls, competitor_hotline and forward_offnet
// for one partition of cdr.voice.
type CDRState struct {
	base
	hotline    map[string]bool
	competitor map[string]bool
	calls      map[string][]Call // by subscriber, in arrival order
	observed   int
}

// NewCDRState restores a partition's state: its watermark, the hotline calls
// still inside a window, and the warnings already fired.
func NewCDRState(rules Rules, topic string, watermark time.Time, calls []Call, fired []Fired) *CDRState {
	s := &CDRState{base: newBase(rules, topic, watermark, fired), hotline: set(rules.HotlineNumbers),
		competitor: set(rules.CompetitorHotlines), calls: map[string][]Call{}}
	for _, c := range calls {
		s.calls[c.MSISDN] = append(s.calls[c.MSISDN], c)
	}
	return s
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Observe takes one CDR in partition order and returns the warnings it
// completes.
func (s *CDRState) Observe(r *warehouse.CDRRow) []warehouse.WarningRow {
	s.refresh()
	onTime := s.advance(r.StartTime)
	switch {
	case r.Direction == schemas.DirectionMO && (s.hotline[r.Peer] || s.competitor[r.Peer]):
		return s.hotlineCall(r, onTime)
	case r.Direction == schemas.DirectionFWD && onTime:
		return s.forward(r)
	}
	return nil
}

func (s *CDRState) hotlineCall(r *warehouse.CDRRow, onTime bool) []warehouse.WarningRow {
	calls := s.calls[r.MSISDN]
	if slices.ContainsFunc(calls, func(c Call) bool { return c.EventID == r.EventID }) {
		return nil // a duplicate: counted already
	}
	c := Call{MSISDN: r.MSISDN, EventID: r.EventID, Time: r.StartTime, Peer: r.Peer, Competitor: s.competitor[r.Peer]}
	calls = append(calls, c)
	s.calls[r.MSISDN] = calls
	if s.observed++; s.observed%4096 == 0 {
		s.evict()
	}
	if !onTime {
		return nil
	}
	prov := warehouse.Provenance{Partition: r.Partition, Offset: r.Offset}
	t := s.rules.Thresholds
	if c.Competitor {
		window := time.Duration(t.CompetitorHotline.WindowDays) * 24 * time.Hour
		n, numbers := count(calls, c.Time, window, true)
		if n < t.CompetitorHotline.Calls || s.firedNear(r.MSISDN, signals.CompetitorHotline, c.Time, schemas.SeverityMedium) {
			return nil
		}
		ev := map[string]any{"calls": n, "threshold": t.CompetitorHotline.Calls, "window_days": t.CompetitorHotline.WindowDays,
			"numbers": numbers, "last_call": c.Time.Format(time.RFC3339)}
		return []warehouse.WarningRow{s.emit(r.MSISDN, signals.CompetitorHotline, schemas.SeverityMedium, r.EventID, c.Time, c.Time.Add(-window), ev, prov)}
	}
	window := time.Duration(t.HotlineCalls.WindowDays) * 24 * time.Hour
	n, numbers := count(calls, c.Time, window, false)
	sev := schemas.SeverityMedium
	switch {
	case n >= t.HotlineCalls.HighCalls:
		sev = schemas.SeverityHigh
		if s.firedNear(r.MSISDN, signals.HotlineCalls, c.Time, schemas.SeverityHigh) {
			return nil
		}
	case n >= t.HotlineCalls.Calls:
		if s.firedNear(r.MSISDN, signals.HotlineCalls, c.Time, schemas.SeverityMedium, schemas.SeverityHigh) {
			return nil
		}
	default:
		return nil
	}
	ev := map[string]any{"calls": n, "threshold": t.HotlineCalls.Calls, "high_threshold": t.HotlineCalls.HighCalls,
		"window_days": t.HotlineCalls.WindowDays, "numbers": numbers, "last_call": c.Time.Format(time.RFC3339)}
	return []warehouse.WarningRow{s.emit(r.MSISDN, signals.HotlineCalls, sev, r.EventID, c.Time, c.Time.Add(-window), ev, prov)}
}

// count returns how many calls of the kind fall in (at - window, at] and the
// numbers called.
func count(calls []Call, at time.Time, window time.Duration, competitor bool) (int, []string) {
	n := 0
	var numbers []string
	for _, c := range calls {
		if c.Competitor == competitor && c.Time.After(at.Add(-window)) && !c.Time.After(at) {
			n++
			if !slices.Contains(numbers, c.Peer) {
				numbers = append(numbers, c.Peer)
			}
		}
	}
	slices.Sort(numbers)
	return n, numbers
}

// evict drops calls that can no longer fall in the window of an on-time
// event.
func (s *CDRState) evict() {
	t := s.rules.Thresholds
	horizon := s.watermark.Add(-t.Lateness - time.Duration(max(t.HotlineCalls.WindowDays, t.CompetitorHotline.WindowDays))*24*time.Hour)
	for m, calls := range s.calls {
		calls = slices.DeleteFunc(calls, func(c Call) bool { return c.Time.Before(horizon) })
		if len(calls) == 0 {
			delete(s.calls, m)
		} else {
			s.calls[m] = calls
		}
	}
}

func (s *CDRState) forward(r *warehouse.CDRRow) []warehouse.WarningRow {
	home := s.rules.Plan.Home()
	switch r.Network {
	case "", home, schemas.NetworkSPECIAL:
		return nil // on-net, a service number, or a landline we cannot place
	}
	if s.firedNear(r.MSISDN, signals.ForwardOffnet, r.StartTime, schemas.SeverityHigh) {
		return nil
	}
	ev := map[string]any{"forward_to": r.ForwardTo, "network": string(r.Network), "home_network": string(home),
		"at": r.StartTime.Format(time.RFC3339), "day": day(r.StartTime)}
	return []warehouse.WarningRow{s.emit(r.MSISDN, signals.ForwardOffnet, schemas.SeverityHigh, r.EventID, r.StartTime, r.StartTime, ev,
		warehouse.Provenance{Partition: r.Partition, Offset: r.Offset})}
}

// Subscribers returns how many subscribers the state holds calls for.
func (s *CDRState) Subscribers() int { return len(s.calls) }
