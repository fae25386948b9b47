package realtime

import (
	"hash/maphash"
	"slices"
	"strconv"
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
	numbers    []string          // hotline then competitor numbers: call.peer indexes it
	peer       map[string]uint16 // the inverse of numbers
	calls      map[uint64][]call // by subscriber (subscriberKey), in arrival order
	observed   int
}

// call is a hotline call as the windows keep it. It is kept small because
// a partition holds one list per subscriber who called a hotline recently:
// the event id is kept as a hash (enough to recognise a duplicate), the
// time as Unix nanoseconds and the number as an index.
type call struct {
	id         uint64
	at         int64
	peer       uint16
	competitor bool
}

// eventHashSeed seeds the event id hashes; they live only in memory (a
// restore recomputes them), so any seed does.
var eventHashSeed = maphash.MakeSeed()

func eventHash(id string) uint64 { return maphash.String(eventHashSeed, id) }

// subscriberKey packs a normalised MSISDN (11 digits) into a number; any
// other string, which validation does not let through, is hashed.
func subscriberKey(msisdn string) uint64 {
	if n, err := strconv.ParseUint(msisdn, 10, 64); err == nil && len(msisdn) <= 19 {
		return n
	}
	return eventHash(msisdn) | 1<<63
}

// NewCDRState restores a partition's state: its watermark, the hotline calls
// still inside a window, and the warnings already fired.
func NewCDRState(rules Rules, topic string, watermark time.Time, calls []Call, fired []Fired) *CDRState {
	s := &CDRState{base: newBase(rules, topic, watermark, fired), hotline: set(rules.HotlineNumbers),
		competitor: set(rules.CompetitorHotlines), peer: map[string]uint16{}, calls: map[uint64][]call{}}
	for _, n := range append(append([]string{}, rules.HotlineNumbers...), rules.CompetitorHotlines...) {
		if _, ok := s.peer[n]; !ok && len(s.numbers) < 1<<16 {
			s.peer[n] = uint16(len(s.numbers))
			s.numbers = append(s.numbers, n)
		}
	}
	for _, c := range calls {
		k := subscriberKey(c.MSISDN)
		s.calls[k] = append(s.calls[k], s.compact(c.EventID, c.Peer, c.Time))
	}
	return s
}

func (s *CDRState) compact(eventID, peer string, at time.Time) call {
	return call{id: eventHash(eventID), at: at.UnixNano(), peer: s.peer[peer], competitor: s.competitor[peer]}
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
	key := subscriberKey(r.MSISDN)
	calls := s.calls[key]
	c := s.compact(r.EventID, r.Peer, r.StartTime)
	if slices.ContainsFunc(calls, func(o call) bool { return o.id == c.id }) {
		return nil // a duplicate: counted already
	}
	calls = append(calls, c)
	s.calls[key] = calls
	if s.observed++; s.observed%4096 == 0 {
		s.evict()
	}
	if !onTime {
		return nil
	}
	prov := warehouse.Provenance{Partition: r.Partition, Offset: r.Offset}
	t := s.rules.Thresholds
	at := r.StartTime
	if c.competitor {
		window := time.Duration(t.CompetitorHotline.WindowDays) * 24 * time.Hour
		n, numbers := s.count(calls, at, window, true)
		if n < t.CompetitorHotline.Calls || s.firedNear(r.MSISDN, signals.CompetitorHotline, at, schemas.SeverityMedium) {
			return nil
		}
		ev := map[string]any{"calls": n, "threshold": t.CompetitorHotline.Calls, "window_days": t.CompetitorHotline.WindowDays,
			"numbers": numbers, "last_call": at.Format(time.RFC3339)}
		return []warehouse.WarningRow{s.emit(r.MSISDN, signals.CompetitorHotline, schemas.SeverityMedium, r.EventID, at, at.Add(-window), ev, prov)}
	}
	window := time.Duration(t.HotlineCalls.WindowDays) * 24 * time.Hour
	n, numbers := s.count(calls, at, window, false)
	sev := schemas.SeverityMedium
	switch {
	case n >= t.HotlineCalls.HighCalls:
		sev = schemas.SeverityHigh
		if s.firedNear(r.MSISDN, signals.HotlineCalls, at, schemas.SeverityHigh) {
			return nil
		}
	case n >= t.HotlineCalls.Calls:
		if s.firedNear(r.MSISDN, signals.HotlineCalls, at, schemas.SeverityMedium, schemas.SeverityHigh) {
			return nil
		}
	default:
		return nil
	}
	ev := map[string]any{"calls": n, "threshold": t.HotlineCalls.Calls, "high_threshold": t.HotlineCalls.HighCalls,
		"window_days": t.HotlineCalls.WindowDays, "numbers": numbers, "last_call": at.Format(time.RFC3339)}
	return []warehouse.WarningRow{s.emit(r.MSISDN, signals.HotlineCalls, sev, r.EventID, at, at.Add(-window), ev, prov)}
}

// count returns how many calls of the kind fall in (at - window, at] and the
// numbers called.
func (s *CDRState) count(calls []call, at time.Time, window time.Duration, competitor bool) (int, []string) {
	n := 0
	var numbers []string
	from, to := at.Add(-window).UnixNano(), at.UnixNano()
	for _, c := range calls {
		if c.competitor == competitor && c.at > from && c.at <= to {
			n++
			if peer := s.numbers[c.peer]; !slices.Contains(numbers, peer) {
				numbers = append(numbers, peer)
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
	before := horizon.UnixNano()
	for m, calls := range s.calls {
		calls = slices.DeleteFunc(calls, func(c call) bool { return c.at < before })
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
