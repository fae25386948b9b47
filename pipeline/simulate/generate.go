package simulate

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"churnwatch/schemas"
)

// Message is one generated message, ready for Kafka.
type Message struct {
	// Topic is one of the names in Topics.
	Topic string
	// Key is the subscriber's normalised MSISDN (no +86), which
	// co-partitions all topics by subscriber.
	Key string
	// Value is the JSON message.
	Value []byte
	// Time is the event time the message carries. It is not meant as the
	// Kafka record timestamp: history weeks old would fall straight out of
	// the topic's retention.
	Time time.Time
	// Invalid marks the deliberately broken messages of Config.InvalidShare.
	Invalid bool
	// Initial marks a subscriber's initial full profile. The initial
	// profiles come first: no other message of the run precedes one but
	// the invalid copies of InvalidShare.
	Initial bool
}

// Generate produces the whole run described by cfg (zero fields take their
// defaults; an End left zero is today's local midnight) and calls emit for
// every message in event-time order across all topics. Ties are broken by
// subscriber, so the order, like the content, depends on nothing but cfg.
//
// Generation goes day by day: memory holds the population's fixed attributes
// and one day of events, never the whole run. Generate stops at the first
// error emit returns and returns that error unchanged.
func Generate(cfg Config, topics Topics, emit func(Message) error) error {
	cfg = cfg.WithDefaults(time.Now())
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("simulate: invalid configuration: %w", err)
	}
	g := newGenerator(cfg, topics.withDefaults(), emit)
	for d := range cfg.Days {
		g.planDay(d)
		if err := g.emitDay(); err != nil {
			return err
		}
	}
	return nil
}

// An event's key packs, from the most significant bit, its offset in seconds
// from the start of its day (17 bits: a day with a DST change still fits),
// the subscriber index (30 bits) and a slot (17 bits) unique within the
// subscriber-day. Sorting keys sorts by time, then subscriber, then slot.
const (
	slotBits  = 17
	subBits   = 30
	offShift  = slotBits + subBits
	slotMask  = 1<<slotBits - 1
	subMask   = 1<<subBits - 1
	daySecond = 86400
)

// Slots: 0 is the initial profile, 1-255 the subscriber-day's billing and CRM
// events (kept in the side list with their details), from slotCall the voice
// calls, whose details are derived from the key when they are emitted.
const (
	slotProfile    = 0
	slotCall       = 0x100
	maxCalls       = 0x1000 - slotCall
	slotHotline    = 0x1000
	slotCompetitor = 0x1100
)

// lowBalanceFen is the balance under which billing reports it daily.
const lowBalanceFen = 500

// profileSpread is how many seconds at the start of the window the initial
// profiles are spread over; no other event of a subscriber comes earlier.
const profileSpread = 600

func makeKey(off int64, sub int, slot uint32) uint64 {
	return uint64(off)<<offShift | uint64(sub)<<slotBits | uint64(slot)
}

func splitKey(k uint64) (off int64, sub int, slot uint32) {
	return int64(k >> offShift), int((k >> slotBits) & subMask), uint32(k & slotMask)
}

// Kinds of side events.
const (
	sideProfile uint8 = iota
	sidePartialProfile
	sideBill
	sidePayment
	sideBalance
	sideArrears
	sideCRM
)

// sideEvent is a billing or CRM event, planned with its figures (amounts,
// balances) and turned into JSON when emitted.
type sideEvent struct {
	key     uint64
	amount  int64
	balance int64
	kind    uint8
	crm     uint8 // index into crmTypes for sideCRM
	month   int32 // BILL: year*12 + month-1 of the billed month
}

// generator holds one run's population and the current day's plan.
type generator struct {
	cfg    Config
	topics Topics
	seed   uint64
	subs   []subscriber
	// msisdns holds every subscriber's 11-digit number, back to back, so
	// that messages share substrings of it instead of formatting their own.
	msisdns string
	emit    func(Message) error
	hours   [24]float64 // cumulative weights of the local hour of a call

	pcg rand.PCG
	r   *rand.Rand

	// Reused by callMessage.
	cdr     schemas.CDR
	scratch []byte

	endDay int64 // absolute day (days since 1970-01-01, local calendar) of End

	// The day being generated.
	day       int
	abs       int64  // its absolute day
	date      string // its local date as YYYYMMDD, for event ids
	start     int64  // unix seconds of its start
	length    int64  // seconds in it
	startTOD  int64  // local time of day of its start, in seconds
	dayOfMon  int
	weekend   bool
	keys      []uint64
	side      []sideEvent
	cutoff    int64 // the current subscriber-day's events end before this offset
	seedText  string
	invalidOn bool
}

// Waking hours: how often a call starts in each local hour.
var hourWeights = [24]float64{0.3, 0.15, 0.1, 0.05, 0.05, 0.2, 0.8, 2.5, 5, 7, 8, 7.5, 6, 5.5, 6.5, 7, 7, 7, 6.5, 7, 7, 6, 4, 1.5}

func newGenerator(cfg Config, topics Topics, emit func(Message) error) *generator {
	g := &generator{
		cfg:       cfg,
		topics:    topics,
		seed:      uint64(cfg.Seed),
		emit:      emit,
		endDay:    absDay(cfg.End, cfg.Location),
		seedText:  fmt.Sprint(cfg.Seed),
		invalidOn: cfg.InvalidShare > 0,
	}
	g.r = rand.New(&g.pcg)
	total := 0.0
	for h, w := range hourWeights {
		total += w
		g.hours[h] = total
	}
	for h := range g.hours {
		g.hours[h] /= total
	}
	g.subs = buildPopulation(cfg, g.seed, absDay(cfg.End.AddDate(0, 0, -cfg.Days), cfg.Location), g.endDay)
	b := make([]byte, 0, 11*len(g.subs))
	for i := range g.subs {
		b = strconv.AppendUint(b, g.subs[i].msisdn, 10)
	}
	g.msisdns = string(b)
	return g
}

// absDay numbers the local calendar date of t: days since 1970-01-01.
func absDay(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / daySecond
}

func (g *generator) reseed(a, b, c, d uint64) {
	g.pcg.Seed(hash4(a, b, c, d), g.seed)
}

// planDay draws every event of day d: calls as bare keys, billing and CRM
// events with their figures, both sorted by key.
func (g *generator) planDay(d int) {
	loc := g.cfg.Location
	startT := g.cfg.End.AddDate(0, 0, d-g.cfg.Days).In(loc)
	endT := g.cfg.End.AddDate(0, 0, d-g.cfg.Days+1)
	g.day = d
	g.abs = absDay(startT, loc)
	g.start = startT.Unix()
	g.length = endT.Unix() - g.start
	h, m, s := startT.Clock()
	g.startTOD = int64(h*3600 + m*60 + s)
	g.dayOfMon = startT.Day()
	g.weekend = startT.Weekday() == time.Saturday || startT.Weekday() == time.Sunday
	g.date = startT.Format("20060102")
	g.keys = g.keys[:0]
	g.side = g.side[:0]
	for i := range g.subs {
		g.planSubscriberDay(i)
	}
	slices.Sort(g.keys)
	slices.SortFunc(g.side, func(a, b sideEvent) int { return cmp.Compare(a.key, b.key) })
}

// offset turns a local time of day into seconds from the start of the
// current day, keeping it inside the day and after the initial profiles.
func (g *generator) offset(tod int64) int64 {
	off := ((tod-g.startTOD)%daySecond + daySecond) % daySecond
	if off >= g.length {
		off = g.length - 1
	}
	if g.day == 0 && off < profileSpread {
		off = profileSpread
	}
	return off
}

// between draws a local time of day in [fromHour, toHour).
func (g *generator) between(fromHour, toHour int) int64 {
	return int64(fromHour*3600 + g.r.IntN((toHour-fromHour)*3600))
}

// callTOD draws the local time of day a call starts.
func (g *generator) callTOD() int64 {
	u := g.r.Float64()
	h := 0
	for h < 23 && u >= g.hours[h] {
		h++
	}
	return int64(h*3600 + g.r.IntN(3600))
}

func (g *generator) addSide(i int, slot *uint32, e sideEvent, tod int64) {
	if *slot >= slotCall {
		return
	}
	off := g.offset(tod)
	if off >= g.cutoff {
		return // the subscriber was deactivated earlier that day
	}
	e.key = makeKey(off, i, *slot)
	*slot++
	g.side = append(g.side, e)
}

func (g *generator) planSubscriberDay(i int) {
	s := &g.subs[i]
	abs := g.abs
	if g.day == 0 {
		g.side = append(g.side, sideEvent{key: makeKey(int64(i%profileSpread), i, slotProfile), kind: sideProfile})
	}
	if s.goneDay != 0 && abs >= int64(s.goneDay) {
		return
	}
	g.reseed(g.seed, tagDay, uint64(i), uint64(abs))
	r := g.r
	churning := s.churning(abs)
	slot := uint32(1)

	// A deactivation ends the subscriber's events that day.
	g.cutoff = g.length
	if s.goneDay != 0 && abs == int64(s.goneDay)-1 {
		tod := g.between(16, 20)
		g.addSide(i, &slot, sideEvent{kind: sideCRM, crm: crmDeactivate}, tod)
		g.cutoff = g.offset(tod)
	}
	cutoff := g.cutoff

	// Voice calls.
	rate := float64(s.callRate)
	if g.weekend {
		rate *= 0.8
	}
	silent := s.churn&churnSilent != 0 && abs >= int64(s.silentFrom)
	if silent {
		rate = 0
	}
	rate *= s.usageFactor(abs)
	n := min(poisson(r, rate), maxCalls)
	for k := range n {
		if off := g.offset(g.callTOD()); off < cutoff {
			g.keys = append(g.keys, makeKey(off, i, slotCall+uint32(k)))
		}
	}
	if churning && !silent && s.churn&churnHotline != 0 && r.Float64() < s.hotlineDays() {
		calls := 1
		switch u := r.Float64(); {
		case s.complainer() && u < 0.1:
			calls = 3
		case u < 0.35:
			calls = 2
		}
		for k := range calls {
			if off := g.offset(g.between(9, 21)); off < cutoff {
				g.keys = append(g.keys, makeKey(off, i, slotHotline+uint32(k)))
			}
		}
	}
	if churning && !silent && s.churn&churnCompetitor != 0 && r.Float64() < 0.2 {
		if off := g.offset(g.between(9, 21)); off < cutoff {
			g.keys = append(g.keys, makeKey(off, i, slotCompetitor))
		}
	}

	// Billing.
	if g.dayOfMon == 1 {
		y, m, _ := time.Unix(g.start, 0).In(g.cfg.Location).AddDate(0, 0, -1).Date()
		month := int32(y*12 + int(m) - 1)
		amount := float64(s.monthlyFen) * (0.92 + 0.16*unit(hash4(g.seed, tagBill, uint64(i), uint64(month))))
		if churning && s.churn&(churnUsageDrop|churnFade) != 0 {
			amount *= 0.7
		}
		g.addSide(i, &slot, sideEvent{kind: sideBill, amount: int64(amount), month: month}, g.between(1, 4))
	}
	pd := g.lastPayDay(s, i, abs)
	paid := pd == abs && !(churning && s.churn&churnStopPaying != 0)
	// Billing reports the balance every few days, and every day once it is
	// low (a churner who stopped paying gets there).
	balanceDay := (abs+int64(s.balPhase))%int64(s.balPeriod) == 0
	var balance int64
	stopped := churning && s.churn&churnStopPaying != 0
	if balanceDay || paid || stopped {
		balance = g.balance(s, i, abs)
	}
	if stopped && balance < lowBalanceFen {
		balanceDay = true
	}
	if balanceDay {
		g.addSide(i, &slot, sideEvent{kind: sideBalance, balance: balance}, g.between(5, 7))
		if balance < 0 {
			g.addSide(i, &slot, sideEvent{kind: sideArrears, amount: -balance}, g.between(7, 9))
		}
	}
	if paid {
		prev := g.lastPayDay(s, i, abs-1)
		spent := float64(s.monthlyFen) / 30 * float64(abs-prev)
		amount := (int64(spent)/1000 + 1) * 1000 // rounded up to 10 yuan
		g.addSide(i, &slot, sideEvent{kind: sidePayment, amount: amount, balance: balance + amount}, g.between(8, 22))
	}
	rare := unit(hash4(g.seed, tagRare, uint64(i), uint64(abs)))
	if rare < 0.0003 { // an overdue postpaid item, now and then
		g.addSide(i, &slot, sideEvent{kind: sideArrears, amount: int64(1000 + r.IntN(9000))}, g.between(7, 9))
	}

	// CRM.
	if g.day > 0 && rare > 0.999 {
		g.addSide(i, &slot, sideEvent{kind: sidePartialProfile}, g.between(8, 21))
	}
	if op, ok := rareBusinessOp(rare); ok {
		g.addSide(i, &slot, sideEvent{kind: sideCRM, crm: op}, g.between(9, 20))
	}
	if lost, ok := rareBusinessOp(unit(hash4(g.seed, tagRare, uint64(i), uint64(abs-2)))); ok && lost == crmLossReport {
		g.addSide(i, &slot, sideEvent{kind: sideCRM, crm: crmReactivate}, g.between(9, 20))
	}
	if churning && abs == int64(s.opDay) {
		if s.churn&churnPortOut != 0 {
			g.addSide(i, &slot, sideEvent{kind: sideCRM, crm: crmPortOutQuery}, g.between(9, 20))
		}
		if s.churn&churnBusinessOp != 0 {
			ops := [...]uint8{crmPreCancel, crmSuspendRequest, crmLossReport}
			g.addSide(i, &slot, sideEvent{kind: sideCRM, crm: ops[r.IntN(len(ops))]}, g.between(9, 20))
		}
	}
}

// rareBusinessOp maps the subscriber-day's rare-event draw u to a business
// operation of an ordinary subscriber, which happens on about 1.5 in 10,000
// subscriber-days. The ranges lie above the one that triggers an arrears event.
func rareBusinessOp(u float64) (uint8, bool) {
	switch {
	case u < 0.0003:
		return 0, false
	case u < 0.00038:
		return crmLossReport, true
	case u < 0.00041:
		return crmSuspendRequest, true
	case u < 0.00044:
		return crmPortOutQuery, true
	case u < 0.00045:
		return crmPreCancel, true
	}
	return 0, false
}

// payDay is the day of the subscriber's c-th top-up: every payPeriod days,
// up to two days late.
func (g *generator) payDay(s *subscriber, i int, c int64) int64 {
	return c*int64(s.payPeriod) - int64(s.payPhase) + int64(hash4(g.seed, tagPayJitter, uint64(i), uint64(c))%3)
}

// lastPayDay is the last day on or before day on which the subscriber
// tops up (or would have, for a churner who stopped).
func (g *generator) lastPayDay(s *subscriber, i int, day int64) int64 {
	p := int64(s.payPeriod)
	c := (day + int64(s.payPhase)) / p // days are positive: division floors
	if pd := g.payDay(s, i, c); pd <= day {
		return pd
	}
	return g.payDay(s, i, c-1)
}

// balance is the subscriber's balance in the morning of day, before any
// top-up that day. Each top-up brings the balance to the same level, a
// buffer plus one period of spend; it then drains by the daily spend.
// Churners who stop paying keep draining into the red.
func (g *generator) balance(s *subscriber, i int, day int64) int64 {
	daily := int64(s.monthlyFen) / 30
	top := int64(s.bufferFen) + daily*int64(s.payPeriod)
	last := day - 1
	if s.churn&churnStopPaying != 0 && last >= int64(s.churnStart) {
		last = int64(s.churnStart) - 1
	}
	pd := g.lastPayDay(s, i, last)
	return top - daily*(day-pd)
}
