package consumers

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// FactStore is where consumers put facts and keep aggregates current.
type FactStore interface {
	InsertCDR(ctx context.Context, rows []warehouse.CDRRow) error
	InsertHotlineCalls(ctx context.Context, rows []warehouse.CDRRow) error
	InsertBilling(ctx context.Context, rows []warehouse.BillingRow) error
	InsertCRM(ctx context.Context, rows []warehouse.CRMRow) error
	InsertPendingDays(ctx context.Context, topic string, days []warehouse.PendingDay) error
	// SubscribersInserting, SubscribersInserted and RefreshSubscribersAfter:
	// see warehouse.
	SubscribersInserting() (done func())
	SubscribersInserted(msisdns []string) uint64
	RefreshSubscribersAfter(ctx context.Context, msisdns []string, ticket uint64, tiers warehouse.TierRules) error
	// RecordWatermarks records, at a commit, each committed partition's
	// highest stored event time (see realtime.Store.PartitionWatermark).
	RecordWatermarks(ctx context.Context, topic string, marks []warehouse.Watermark) error
}

// Deps is what every consumer needs.
type Deps struct {
	Store       FactStore
	DeadLetters DeadLetterSink
	Warnings    WarningSink
	// State is where real-time state is restored from; Rules configure it.
	State     realtime.Store
	Rules     realtime.Rules
	Readers   ReaderFactory
	Plan      *numbering.Plan
	Location  *time.Location
	TierRules warehouse.TierRules
	Settings  Settings
	Log       zerolog.Logger
	// Live, when set, is the rule set in effect, which the restored states
	// follow event by event (a reload swaps it); Rules are then the rules
	// at start, which fix the number lists.
	Live *realtime.Live
}

func newConsumer[R, O any](topic string, d Deps, decode func(*kafka.Message) (R, error), store storeFunc[R],
	observe ObserverFactory[R, O], outputs OutputSink[O]) *Consumer[R, O] {
	return &Consumer[R, O]{
		topic: topic, decode: decode, store: store, dead: d.DeadLetters, readers: d.Readers,
		observe: observe, outputs: outputs,
		settings: d.Settings, stats: &Stats{},
		log: d.Log.With().Str("component", "consumer").Str("topic", topic).Logger(),
	}
}

// withWatermarks makes c record, at each commit, the highest event time
// stored on each committed partition, which the restore of its real-time
// state reads.
func withWatermarks[R, O any](c *Consumer[R, O], d Deps, eventTime func(*R) time.Time) *Consumer[R, O] {
	c.eventTime, c.recordWatermarks = eventTime, d.Store.RecordWatermarks
	return c
}

// NewCDR returns the consumer of the cdr.voice topic. A CDR without
// peer_network gets the network of its peer (of forward_to for FWD) from the
// number plan.
func NewCDR(topic string, d Deps) *Consumer[warehouse.CDRRow, warehouse.WarningRow] {
	decode := func(msg *kafka.Message) (warehouse.CDRRow, error) {
		c, err := schemas.DecodeCDR(msg.Value)
		if err != nil {
			return warehouse.CDRRow{}, err
		}
		row := warehouse.CDRRow{CDR: c, Network: c.PeerNetwork, Day: warehouse.LocalDay(c.StartTime, d.Location),
			Provenance: warehouse.Provenance{Partition: int32(msg.Partition), Offset: msg.Offset}}
		if row.Network == "" {
			number := c.Peer
			if c.Direction == schemas.DirectionFWD {
				number = c.ForwardTo
			}
			row.Network, row.NetworkDerived = d.Plan.Network(number), true
		}
		return row, nil
	}
	hotline := make(map[string]bool)
	for _, n := range append(append([]string{}, d.Rules.HotlineNumbers...), d.Rules.CompetitorHotlines...) {
		hotline[n] = true
	}
	store := storeOnly(func(ctx context.Context, rows []warehouse.CDRRow) error {
		// Every delivery of a hotline call is recorded with its offset, so
		// that a restart restores the calls consumed before its committed
		// offset whichever copy survives in cdr (realtime.RestoreCDR). Both
		// inserts come before the commit; their order does not matter, so
		// they run side by side (the storer's time per batch bounds the
		// throughput of a catch-up).
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			var calls []warehouse.CDRRow
			for i := range rows {
				if rows[i].Direction == schemas.DirectionMO && hotline[rows[i].Peer] {
					calls = append(calls, rows[i])
				}
			}
			return d.Store.InsertHotlineCalls(gctx, calls)
		})
		g.Go(func() error { return d.Store.InsertCDR(gctx, rows) })
		return g.Wait()
	})
	store = thenPendingDays(topic, d, store, func(r *warehouse.CDRRow) (warehouse.DayKey, warehouse.Provenance, bool) {
		return warehouse.DayKey{MSISDN: r.MSISDN, Day: r.Day}, r.Provenance, true
	})
	return withWatermarks(newConsumer(topic, d, decode, store, restoring(topic, d, realtime.RestoreCDR), d.Warnings), d,
		func(r *warehouse.CDRRow) time.Time { return r.StartTime })
}

// NewBilling returns the consumer of the billing.events topic.
func NewBilling(topic string, d Deps) *Consumer[warehouse.BillingRow, warehouse.WarningRow] {
	decode := func(msg *kafka.Message) (warehouse.BillingRow, error) {
		b, err := schemas.DecodeBilling(msg.Value)
		if err != nil {
			return warehouse.BillingRow{}, err
		}
		return warehouse.BillingRow{BillingEvent: b, Day: warehouse.LocalDay(b.TS, d.Location),
			Provenance: warehouse.Provenance{Partition: int32(msg.Partition), Offset: msg.Offset}}, nil
	}
	// A bill can change the tier of a subscriber whose profile names none.
	store := storeThenRefreshSubscribers(d, d.Store.InsertBilling, func(r *warehouse.BillingRow) bool { return r.Type == schemas.BillingBill },
		func(r *warehouse.BillingRow) string { return r.MSISDN })
	store = thenPendingDays(topic, d, store, func(r *warehouse.BillingRow) (warehouse.DayKey, warehouse.Provenance, bool) {
		return warehouse.DayKey{MSISDN: r.MSISDN, Day: r.Day}, r.Provenance, r.Type == schemas.BillingPayment
	})
	return withWatermarks(newConsumer(topic, d, decode, store, restoring(topic, d, realtime.RestoreBilling), d.Warnings), d,
		func(r *warehouse.BillingRow) time.Time { return r.TS })
}

// NewCRM returns the consumer of the crm.events topic; it keeps the
// subscribers table current.
func NewCRM(topic string, d Deps) *Consumer[warehouse.CRMRow, warehouse.WarningRow] {
	decode := func(msg *kafka.Message) (warehouse.CRMRow, error) {
		e, err := schemas.DecodeCRM(msg.Value)
		if err != nil {
			return warehouse.CRMRow{}, err
		}
		row := warehouse.CRMRow{CRMEvent: e, Day: warehouse.LocalDay(e.TS, d.Location),
			Provenance: warehouse.Provenance{Partition: int32(msg.Partition), Offset: msg.Offset}}
		if e.Profile != nil {
			p, err := json.Marshal(e.Profile)
			if err != nil {
				return warehouse.CRMRow{}, err
			}
			row.ProfileJSON = string(p)
		}
		return row, nil
	}
	store := storeThenRefreshSubscribers(d, d.Store.InsertCRM, func(*warehouse.CRMRow) bool { return true },
		func(r *warehouse.CRMRow) string { return r.MSISDN })
	return withWatermarks(newConsumer(topic, d, decode, store, restoring(topic, d, realtime.RestoreCRM), d.Warnings), d,
		func(r *warehouse.CRMRow) time.Time { return r.TS })
}

// storeThenRefreshSubscribers inserts a batch and recomputes, when it
// finishes, the subscribers rows of the rows that change them. Unlike
// subscriber_daily, subscribers is not left for the refresh: warnings take a
// subscriber's tier and managers from it when they are published, and the
// few CRM and BILL events make the recompute cheap.
func storeThenRefreshSubscribers[R any](d Deps, insert func(context.Context, []R) error, changes func(*R) bool,
	msisdn func(*R) string) storeFunc[R] {
	return func(ctx context.Context, rows []R) (func(context.Context) error, error) {
		touched := make(map[string]struct{})
		for i := range rows {
			if changes(&rows[i]) {
				touched[msisdn(&rows[i])] = struct{}{}
			}
		}
		if len(touched) == 0 {
			return nil, insert(ctx, rows)
		}
		// A refresh that begins while the insert runs waits for it and
		// recomputes its subscribers too.
		done := d.Store.SubscribersInserting()
		defer done()
		if err := insert(ctx, rows); err != nil {
			return nil, err
		}
		msisdns := mapKeys(touched)
		ticket := d.Store.SubscribersInserted(msisdns) // after the insert: a refresh begun later reads its rows
		return func(ctx context.Context) error {
			return d.Store.RefreshSubscribersAfter(ctx, msisdns, ticket, d.TierRules)
		}, nil
	}
}

// thenPendingDays makes store, when it finishes a batch (after what store
// finishes), record the subscriber-days the batch touched (key names a
// row's, if it counts in subscriber_daily) in subscriber_daily_pending, each
// with the partition and highest offset of its rows, for the refresh to
// recompute (warehouse.RefreshPendingDaily). They are recorded after the
// facts, and batch after batch: a refresh that reads a pending row finds its
// facts, and the rows of a partition arrive in offset order. Consumers do
// not recompute subscriber_daily: in a replay every refresh would read again
// the days the previous one read, and each recompute reads cdr FINAL.
func thenPendingDays[R any](topic string, d Deps, store storeFunc[R],
	key func(*R) (warehouse.DayKey, warehouse.Provenance, bool)) storeFunc[R] {
	days := newPendingDays(key) // the consumer's storer is its only caller
	return func(ctx context.Context, rows []R) (func(context.Context) error, error) {
		// The days are gathered while store writes the facts.
		gathered := make(chan []warehouse.PendingDay, 1)
		go func() { gathered <- days.gather(rows) }()
		finish, err := store(ctx, rows)
		pending := <-gathered
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			if finish != nil {
				if err := finish(ctx); err != nil {
					return err
				}
				finish = nil // done; a retry only records the days
			}
			return d.Store.InsertPendingDays(ctx, topic, pending)
		}, nil
	}
}

// pendingDays gathers the distinct subscriber-days of a batch per
// partition, each with its highest offset, in the order of
// subscriber_daily_pending's sorting key (partition, then offset): a block
// that arrives sorted, ClickHouse writes without sorting it (a 37,000-row
// insert cost it 7-9 instead of 15-20 ms of CPU). Nearly every row touches a
// day already there, so the lookup is the cost: a normalised MSISDN (11
// digits), its day and the partition pack into one integer key, and the
// maps keep their room from one batch to the next.
type pendingDays[R any] struct {
	key     func(*R) (warehouse.DayKey, warehouse.Provenance, bool)
	packed  map[uint64]int       // index in the days gathered
	other   map[partitionDay]int // what does not pack
	scratch []warehouse.PendingDay
	parts   []partitionStat // per partition of the batch
	last    int             // index in parts of the partition found last
}

// partitionStat is what gather keeps of one partition of a batch.
type partitionStat struct {
	partition int32
	low       int64 // the lowest offset met so far
	days      int   // how many days gathered; then, in inTableOrder, where its range of days ends
}

type partitionDay struct {
	partition int32
	day       warehouse.DayKey
}

// partitionBits is what a packed key leaves for the partition: packDayKey
// needs 54 bits (37 for 11 digits, 17 for the day).
const partitionBits = 10

func newPendingDays[R any](key func(*R) (warehouse.DayKey, warehouse.Provenance, bool)) *pendingDays[R] {
	return &pendingDays[R]{key: key, packed: map[uint64]int{}, other: map[partitionDay]int{}}
}

// gather returns the subscriber-days of rows, in a slice of the caller's:
// a batch's days are recorded while the next batch's are gathered. It
// reads the rows from the last: a partition's rows arrive in offset order,
// so the first row of a day it meets has the day's highest offset, and each
// partition's days come out from the highest offset down.
func (p *pendingDays[R]) gather(rows []R) []warehouse.PendingDay {
	clear(p.packed)
	clear(p.other)
	days := p.scratch[:0]
	p.parts = p.parts[:0]
	for i := len(rows) - 1; i >= 0; i-- {
		k, prov, ok := p.key(&rows[i])
		if !ok {
			continue
		}
		// below: the row's offset is below every row of its partition met
		// so far, as in offset order, so below the offset of any day of
		// the partition already gathered, which then need not be read.
		part := &p.parts[p.find(prov.Partition)]
		below := prov.Offset < part.low
		if below {
			part.low = prov.Offset
		}
		at, seen := 0, false
		if day, ok := packDayKey(k); ok && prov.Partition >= 0 && prov.Partition < 1<<partitionBits {
			key := uint64(prov.Partition)<<(64-partitionBits) | day
			if at, seen = p.packed[key]; !seen {
				p.packed[key] = len(days)
			}
		} else {
			key := partitionDay{prov.Partition, k}
			if at, seen = p.other[key]; !seen {
				p.other[key] = len(days)
			}
		}
		if !seen {
			days = append(days, warehouse.PendingDay{DayKey: k, Partition: prov.Partition, Offset: prov.Offset})
			part.days++
		} else if !below && prov.Offset > days[at].Offset {
			days[at].Offset = prov.Offset
		}
	}
	p.scratch = days
	return p.inTableOrder(days)
}

// find returns the index in p.parts of part's entry, adding it when
// missing. A batch holds runs of one partition's rows: the partition found
// last is tried first.
func (p *pendingDays[R]) find(part int32) int {
	if p.last < len(p.parts) && p.parts[p.last].partition == part {
		return p.last
	}
	p.last = slices.IndexFunc(p.parts, func(s partitionStat) bool { return s.partition == part })
	if p.last < 0 {
		p.parts = append(p.parts, partitionStat{partition: part, low: math.MaxInt64})
		p.last = len(p.parts) - 1
	}
	return p.last
}

// inTableOrder returns a new slice of days ordered by partition, then
// offset. Each partition's days, in the order gather met them, are
// already in descending offset order but for rows out of offset order,
// which only cost a sort.
func (p *pendingDays[R]) inTableOrder(days []warehouse.PendingDay) []warehouse.PendingDay {
	slices.SortFunc(p.parts, func(a, b partitionStat) int { return cmp.Compare(a.partition, b.partition) })
	// Each partition's days fill its range of out from the end: days
	// becomes where the range ends, then where the next day from the end
	// goes.
	at := 0
	for j := range p.parts {
		at += p.parts[j].days
		p.parts[j].days = at
	}
	out := make([]warehouse.PendingDay, len(days))
	for i := range days {
		part := &p.parts[p.find(days[i].Partition)]
		part.days--
		out[part.days] = days[i]
	}
	if !slices.IsSortedFunc(out, warehouse.ComparePendingDays) {
		slices.SortFunc(out, warehouse.ComparePendingDays)
	}
	return out
}

// dayBits holds a day number (days since 1970): enough until the year 2328.
const dayBits = 17

func packDayKey(k warehouse.DayKey) (uint64, bool) {
	secs := k.Day.Unix()
	day := secs / 86400
	if len(k.MSISDN) != 11 || k.MSISDN[0] == '0' || secs%86400 != 0 || day < 0 || day >= 1<<dayBits {
		return 0, false
	}
	var n uint64
	for i := range len(k.MSISDN) { // strconv.ParseUint took 70 ns of a row's 300 in the bench's profile
		c := k.MSISDN[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	return n<<dayBits | uint64(day), true
}

func mapKeys[K comparable](m map[K]struct{}) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// restoring builds a topic's observer factory from its real-time state:
// restored per partition on assignment, never rejecting an event.
func restoring[R any, S interface {
	Observe(*R) []warehouse.WarningRow
	Follow(*realtime.Live)
}](topic string, d Deps,
	restore func(context.Context, realtime.Store, realtime.Rules, string, int, int64) (S, error)) ObserverFactory[R, warehouse.WarningRow] {
	return func(ctx context.Context, partition int, offset int64) (Observer[R, warehouse.WarningRow], func(), error) {
		rules := d.Rules
		if d.Live != nil {
			rules = *d.Live.Load() // the windows restored are those of the rules in effect
		}
		st, err := restore(ctx, d.State, rules, topic, partition, offset)
		if err != nil {
			return nil, nil, err
		}
		if d.Live != nil {
			st.Follow(d.Live)
		}
		return func(r *R) ([]warehouse.WarningRow, error) { return st.Observe(r), nil }, nil, nil
	}
}
