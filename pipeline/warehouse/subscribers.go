package warehouse

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
)

// TierRules are the bill averages (fen, last three monthly bills) that give
// a subscriber without a profile tier its tier.
type TierRules struct {
	DiamondFen, GoldFen, SilverFen int64
}

// RefreshSubscribers recomputes the subscribers rows of the given MSISDNs
// from their CRM events and BILL events (SPEC 3):
//
//   - the profile: every field its latest non-NULL value by event time (ties
//     broken by event_id); status also follows DEACTIVATE and REACTIVATE
//     events; interests and products are the latest list a PROFILE carried
//     (an empty list included), the group the latest group object (its parts
//     together), network_age_months the latest value (NULL when never sent);
//   - the tier: the profile's when the latest PROFILE naming a tier set a
//     non-empty one; otherwise the average of the three latest monthly bills
//     (by bill_month; a month billed twice counts its latest bill), stored as
//     bill_avg_fen, against tiers; with neither, standard;
//   - first_seen and updated_at: the first and last CRM event, or, for a
//     subscriber known only from its bills, the first and last BILL.
//
// ClickHouse reads the touched subscribers' events and this process folds
// them (subscriberFold). The same fold written as one INSERT ... SELECT of
// argMaxIf over crm_events FINAL and billing_events FINAL cost the server
// about 35 µs per subscriber (900 ms for the 26,000 of one CRM batch): 18.16
// merges FINAL a row at a time over every column, and argMax over a tuple
// compares through generic values. Reading the rows without FINAL costs a
// sixth of that. The copies a replay leaves are copies of one event, so the
// latest value of a field is the same whichever copy gives it; two different
// messages with one event_id (a producer's bug) resolve to the one with the
// higher offset, the copy FINAL keeps once the later insert is merged.
//
// Refreshes run one at a time in a process. The CRM and the billing
// consumers both refresh a subscriber, each after inserting its own events;
// side by side, one could read the events before the other's insert and
// write after the other's refresh, with the higher version: a row without
// the other's events, until the subscriber's next event. One at a time,
// each refresh reads every event inserted before the previous refresh
// wrote, and writes after it. (The group balancer gives partition p of
// every topic to one member, so a subscriber's refreshes are in one process.)
func (w *Warehouse) RefreshSubscribers(ctx context.Context, msisdns []string, tiers TierRules) error {
	return w.RefreshSubscribersAfter(ctx, msisdns, math.MaxUint64, tiers)
}

// SubscribersInserted records that the events of msisdns are inserted, so
// that the next refresh of this process, whoever asks for it, recomputes
// them too. It returns the ticket for RefreshSubscribersAfter: a refresh
// that begins after it reads every event inserted before it.
func (w *Warehouse) SubscribersInserted(msisdns []string) uint64 {
	w.awaitingMu.Lock()
	defer w.awaitingMu.Unlock()
	ticket := w.ver.next()
	if len(msisdns) > 0 {
		if w.awaiting == nil {
			w.awaiting = make(map[uint64][]string)
		}
		w.awaiting[ticket] = msisdns
	}
	return ticket
}

// SubscribersInserting records that an insert of events that change
// subscribers rows (CRM events, BILLs) has begun; the caller calls done when
// it has ended, after SubscribersInserted if it succeeded. A refresh that
// begins meanwhile waits for it, at most insertWait, and then recomputes its
// subscribers too: when a catch-up brings every subscriber's profile and
// bills within a second, the CRM consumer's refresh would otherwise begin
// while the billing consumer's insert is still running, and the billing
// consumer's refresh would recompute the same subscribers again right
// after.
func (w *Warehouse) SubscribersInserting() (done func()) {
	w.awaitingMu.Lock()
	defer w.awaitingMu.Unlock()
	if w.inserting == 0 {
		w.inserted = make(chan struct{})
	}
	w.inserting++
	var once sync.Once
	return func() {
		once.Do(func() {
			w.awaitingMu.Lock()
			defer w.awaitingMu.Unlock()
			if w.inserting--; w.inserting == 0 {
				close(w.inserted)
			}
		})
	}
}

// insertWait bounds how long a refresh waits for the inserts running when it
// begins (SubscribersInserting): while a batch of bills or profiles is being
// inserted, a port-out warning can be held back by up to that for each
// refresh ahead of its own.
const insertWait = 500 * time.Millisecond

// awaitInserts waits until the inserts SubscribersInserting recorded have
// ended, at most insertWait.
func (w *Warehouse) awaitInserts(ctx context.Context) {
	w.awaitingMu.Lock()
	running, inserted := w.inserting, w.inserted
	w.awaitingMu.Unlock()
	if running == 0 {
		return
	}
	timer := time.NewTimer(insertWait)
	defer timer.Stop()
	select {
	case <-inserted:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// RefreshSubscribersAfter is RefreshSubscribers for subscribers whose
// events were inserted before ticket (SubscribersInserted). It leaves out
// those a refresh of this process that began after the ticket has already
// recomputed, since that refresh read their events, and it recomputes also
// the subscribers of the other inserts recorded since the last refresh,
// for whose refresh their consumers have not yet asked. When a catch-up
// brings a subscriber's profile and bills within seconds, the CRM and the
// billing consumers each ask for the subscriber: the refresh that runs
// first recomputes it with both inserts, if both were in by then, and the
// second leaves it out. It first waits for the inserts still running when
// it begins (SubscribersInserting).
func (w *Warehouse) RefreshSubscribersAfter(ctx context.Context, msisdns []string, ticket uint64, tiers TierRules) error {
	w.refreshing.Lock()
	defer w.refreshing.Unlock()
	w.awaitInserts(ctx)
	others := w.takeAwaiting(ticket)
	began := w.ver.next() // after the inserts of others and of msisdns
	msisdns = w.refreshed.notSince(msisdns, ticket)
	if len(others) > 0 {
		msisdns = w.withOthers(msisdns, others)
	}
	if len(msisdns) == 0 {
		return nil
	}
	folds := make(map[string]*subscriberFold, len(msisdns))
	// Folds are about 1 KiB, with pointers: they come from slabs of up to
	// foldSlab, not one allocation each.
	var slab []subscriberFold
	fold := func(m string) *subscriberFold {
		f := folds[m]
		if f == nil {
			if len(slab) == cap(slab) {
				slab = make([]subscriberFold, 0, min(foldSlab, len(msisdns)))
			}
			slab = append(slab, subscriberFold{})
			f = &slab[len(slab)-1]
			folds[m] = f
		}
		return f
	}
	// Both reads take the touched subscribers as one external table.
	touched, err := msisdnTable(msisdns)
	if err != nil {
		return fmt.Errorf("refresh subscribers: %w", err)
	}
	if err := w.readProfileEvents(ctx, touched, fold); err != nil {
		return fmt.Errorf("refresh subscribers for %d subscribers: %w", len(msisdns), err)
	}
	if err := w.readBills(ctx, touched, fold); err != nil {
		return fmt.Errorf("refresh subscribers for %d subscribers: %w", len(msisdns), err)
	}
	if err := w.insertSubscribers(ctx, subscriberRows(folds, tiers), w.ver.next()); err != nil {
		return fmt.Errorf("refresh subscribers for %d subscribers: %w", len(msisdns), err)
	}
	for m := range folds {
		w.refreshed.mark(m, began)
	}
	return nil
}

// takeAwaiting returns the msisdns recorded by SubscribersInserted, but
// those of ticket, and forgets them all: their consumers ask for them
// after, and find them recomputed or, if this refresh fails, recompute
// them.
func (w *Warehouse) takeAwaiting(ticket uint64) map[uint64][]string {
	w.awaitingMu.Lock()
	defer w.awaitingMu.Unlock()
	delete(w.awaiting, ticket)
	if len(w.awaiting) == 0 {
		return nil
	}
	others := w.awaiting
	w.awaiting = nil
	return others
}

// withOthers returns msisdns and, once each, those of others not
// recomputed since their tickets.
func (w *Warehouse) withOthers(msisdns []string, others map[uint64][]string) []string {
	seen := make(map[string]struct{}, len(msisdns))
	all := make([]string, 0, len(msisdns))
	add := func(ms []string) {
		for _, m := range ms {
			if _, ok := seen[m]; !ok {
				seen[m] = struct{}{}
				all = append(all, m)
			}
		}
	}
	add(msisdns)
	for t, ms := range others {
		add(w.refreshed.notSince(ms, t))
	}
	return all
}

// refreshedSubscribers remembers, per subscriber, when the latest refresh
// that recomputed it began. It only saves work: what it has forgotten is
// recomputed again. It keeps two generations of at most
// refreshedGeneration subscribers each, and forgets the older when the
// newer is full, so that its memory stays bounded however many subscribers
// pass through; a catch-up's second request for a subscriber comes within
// a few refreshes of the first.
type refreshedSubscribers struct {
	cur, prev map[string]uint64
}

const refreshedGeneration = 1 << 17

func (r *refreshedSubscribers) mark(msisdn string, began uint64) {
	if len(r.cur) >= refreshedGeneration {
		r.prev, r.cur = r.cur, nil
	}
	if r.cur == nil {
		r.cur = make(map[string]uint64)
	}
	r.cur[msisdn] = began
}

func (r *refreshedSubscribers) began(msisdn string) (uint64, bool) {
	if b, ok := r.cur[msisdn]; ok {
		return b, true
	}
	b, ok := r.prev[msisdn]
	return b, ok
}

// notSince returns the msisdns no refresh recomputed after ticket. It
// leaves msisdns as they are: a retry passes them again.
func (r *refreshedSubscribers) notSince(msisdns []string, ticket uint64) []string {
	if len(r.cur) == 0 && len(r.prev) == 0 {
		return msisdns
	}
	var todo []string
	for i, m := range msisdns {
		if b, ok := r.began(m); ok && b > ticket {
			if todo == nil {
				todo = append(make([]string, 0, len(msisdns)), msisdns[:i]...)
			}
			continue
		}
		if todo != nil {
			todo = append(todo, m)
		}
	}
	if todo == nil {
		return msisdns
	}
	return todo
}

// foldSlab is how many folds RefreshSubscribers allocates at once.
const foldSlab = 1024

// subscriberRows returns the rows of folds in the table's order (ORDER BY
// msisdn): ClickHouse writes such a block without sorting it. In the
// order of the map, the refreshes of a pipeline-only benchmark run cost it
// 0.10 CPU-s of user time instead of 0.05, for 100,000 rows; sorting the
// MSISDNs costs this process about 0.02 s.
func subscriberRows(folds map[string]*subscriberFold, tiers TierRules) []SubscriberRow {
	keys := slices.Sorted(maps.Keys(folds))
	rows := make([]SubscriberRow, 0, len(keys))
	for _, m := range keys {
		rows = append(rows, folds[m].row(m, tiers))
	}
	return rows
}

// eventKey orders the events of one subscriber: by event time, ties broken
// by event_id, as the facts' sorting key does, then by offset.
type eventKey struct {
	ts      time.Time
	eventID string
	offset  int64
}

func (k eventKey) after(o eventKey) bool {
	if !k.ts.Equal(o.ts) {
		return k.ts.After(o.ts)
	}
	if k.eventID != o.eventID {
		return k.eventID > o.eventID
	}
	return k.offset > o.offset
}

// latest is the value of a profile field in the latest event that set it.
type latest[T any] struct {
	v   T
	at  eventKey
	set bool
}

func (l *latest[T]) offer(v T, at eventKey) {
	if !l.set || at.after(l.at) {
		l.v, l.at, l.set = v, at, true
	}
}

// subscriberFold gathers one subscriber's events into its subscribers row.
type subscriberFold struct {
	fromCRM bool
	// The profile: each field its latest non-NULL value.
	fields              [stringFields]latest[string]
	interests, products latest[[]string]
	networkAge          latest[uint32]
	crmFirst, crmLast   time.Time
	// The bills: per bill_month, and the first and last BILL times.
	months              []monthBill
	billFirst, billLast time.Time
	billed              bool
}

// monthBill is the amount of the latest BILL of one bill_month.
type monthBill struct {
	month string
	fen   latest[int64]
}

// The nullable profile columns the fold reads, in the order of
// profileEvent.values and of the bits of profileEvent.set.
var profileColumns = []string{"profile_name", "profile_birthday", "profile_tier", "profile_region",
	"profile_account_manager", "profile_phone_manager", "profile_promo_end", "profile_join_date", "profile_status",
	"profile_group_id", "profile_group_name", "profile_group_level", "profile_network_age_months"}

const (
	fieldName = iota
	fieldBirthday
	fieldTier
	fieldRegion
	fieldAccountManager
	fieldPhoneManager
	fieldPromoEnd
	fieldJoinDate
	fieldStatus
	fieldGroupID
	fieldGroupName
	fieldGroupLevel
	stringFields
	fieldNetworkAge = stringFields
)

// profileEvent is a crm_events row as the fold reads it. The nullable
// columns arrive as values with NULL read as zero, and a bit per column that
// says which were not NULL: pointers would cost an allocation each.
type profileEvent struct {
	msisdn, eventID, typ      string
	ts                        time.Time
	offset                    int64
	values                    [stringFields]string
	networkAge                uint32
	set                       uint32 // bit i: column i of profileColumns is not NULL
	interests, products       []string
	hasInterests, hasProducts uint8
}

func (e *profileEvent) has(field int) bool { return e.set&(1<<field) != 0 }

func (f *subscriberFold) addEvent(e *profileEvent) {
	at := eventKey{e.ts, e.eventID, e.offset}
	if !f.fromCRM || e.ts.Before(f.crmFirst) {
		f.crmFirst = e.ts
	}
	if !f.fromCRM || e.ts.After(f.crmLast) {
		f.crmLast = e.ts
	}
	f.fromCRM = true
	for i := fieldName; i <= fieldJoinDate; i++ {
		if e.has(i) {
			f.fields[i].offer(e.values[i], at)
		}
	}
	switch {
	case e.typ == "DEACTIVATE":
		f.fields[fieldStatus].offer("deactivated", at)
	case e.typ == "REACTIVATE":
		f.fields[fieldStatus].offer("active", at)
	case e.has(fieldStatus):
		f.fields[fieldStatus].offer(e.values[fieldStatus], at)
	}
	if e.hasInterests == 1 {
		f.interests.offer(e.interests, at)
	}
	if e.hasProducts == 1 {
		f.products.offer(e.products, at)
	}
	if e.has(fieldGroupID) { // the group's parts travel together
		for i := fieldGroupID; i <= fieldGroupLevel; i++ {
			if e.has(i) {
				f.fields[i].offer(e.values[i], at)
			}
		}
	}
	if e.has(fieldNetworkAge) {
		f.networkAge.offer(e.networkAge, at)
	}
}

func (f *subscriberFold) addBill(month string, fen int64, hasFen bool, at eventKey) {
	if !f.billed || at.ts.Before(f.billFirst) {
		f.billFirst = at.ts
	}
	if !f.billed || at.ts.After(f.billLast) {
		f.billLast = at.ts
	}
	f.billed = true
	if month == "" || !hasFen {
		return // dates the subscriber, counts in no average
	}
	for i := range f.months {
		if f.months[i].month == month {
			f.months[i].fen.offer(fen, at)
			return
		}
	}
	f.months = append(f.months, monthBill{month: month})
	f.months[len(f.months)-1].fen.offer(fen, at)
}

// SubscriberRow is one row of the subscribers table.
type SubscriberRow struct {
	MSISDN, Name, Birthday, Tier, ProfileTier string
	BillAvgFen                                int64
	Region, AccountManager, PhoneManager      string
	PromoEnd, JoinDate, Status                string
	FirstSeen, UpdatedAt                      time.Time
	Interests, Products                       []string
	GroupID, GroupName, GroupLevel            string
	NetworkAgeMonths                          *uint32
}

// row is the subscriber's row. The bill average is rounded towards zero to
// the fen, which compares with the whole-fen thresholds as the exact
// average would.
func (f *subscriberFold) row(msisdn string, tiers TierRules) SubscriberRow {
	v := func(field int) string { return f.fields[field].v }
	r := SubscriberRow{MSISDN: msisdn, Name: v(fieldName), Birthday: v(fieldBirthday), ProfileTier: v(fieldTier),
		Region: v(fieldRegion), AccountManager: v(fieldAccountManager), PhoneManager: v(fieldPhoneManager),
		PromoEnd: v(fieldPromoEnd), JoinDate: v(fieldJoinDate), Status: v(fieldStatus),
		Interests: nonNil(f.interests.v), Products: nonNil(f.products.v),
		GroupID: v(fieldGroupID), GroupName: v(fieldGroupName), GroupLevel: v(fieldGroupLevel)}
	if f.networkAge.set {
		age := f.networkAge.v
		r.NetworkAgeMonths = &age
	}
	if f.fromCRM {
		r.FirstSeen, r.UpdatedAt = f.crmFirst, f.crmLast
	} else {
		r.FirstSeen, r.UpdatedAt = f.billFirst, f.billLast
	}
	slices.SortFunc(f.months, func(a, b monthBill) int { return cmp.Compare(b.month, a.month) })
	var sum int64
	bills := int64(min(len(f.months), 3))
	for _, m := range f.months[:bills] {
		sum += m.fen.v
	}
	r.BillAvgFen = sum / max(bills, 1)
	switch {
	case r.ProfileTier != "":
		r.Tier = r.ProfileTier
	case bills == 0:
		r.Tier = "standard"
	case r.BillAvgFen >= tiers.DiamondFen:
		r.Tier = "diamond"
	case r.BillAvgFen >= tiers.GoldFen:
		r.Tier = "gold"
	case r.BillAvgFen >= tiers.SilverFen:
		r.Tier = "silver"
	default:
		r.Tier = "standard"
	}
	return r
}

// profileEventsSQL reads the CRM events of the touched subscribers as
// profileEvent scans them: each nullable column of profileColumns as its
// value (NULL as zero), then the bits of the ones that are not NULL.
var profileEventsSQL = func() string {
	values := make([]string, len(profileColumns))
	set := make([]string, len(profileColumns))
	for i, c := range profileColumns {
		zero := "''"
		if i == fieldNetworkAge {
			zero = "0"
		}
		values[i] = fmt.Sprintf("ifNull(%s, %s)", c, zero)
		set[i] = fmt.Sprintf("toUInt32(isNotNull(%s)) * %d", c, 1<<i)
	}
	return `SELECT msisdn, event_id, kafka_offset, type, ts, ` + strings.Join(values, ", ") +
		`, toUInt32(` + strings.Join(set, " + ") + `),
			profile_interests, profile_has_interests, profile_products, profile_has_products
		FROM {db}.crm_events WHERE msisdn IN (SELECT msisdn FROM touched)`
}()

// readProfileEvents folds the CRM events of the touched subscribers into
// their folds.
func (w *Warehouse) readProfileEvents(ctx context.Context, touched *ext.Table, fold func(string) *subscriberFold) error {
	rows, err := w.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), w.sql(profileEventsSQL))
	if err != nil {
		return fmt.Errorf("read crm_events: %w", err)
	}
	defer rows.Close()
	var e profileEvent
	dest := []any{&e.msisdn, &e.eventID, &e.offset, &e.typ, &e.ts}
	for i := range e.values {
		dest = append(dest, &e.values[i])
	}
	dest = append(dest, &e.networkAge, &e.set, &e.interests, &e.hasInterests, &e.products, &e.hasProducts)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read crm_events: %w", err)
		}
		fold(e.msisdn).addEvent(&e)
		e.interests, e.products = nil, nil // kept by the fold
	}
	return rows.Err()
}

// readBills folds the BILL events of the touched subscribers into their
// folds.
func (w *Warehouse) readBills(ctx context.Context, touched *ext.Table, fold func(string) *subscriberFold) error {
	rows, err := w.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), w.sql(`
		SELECT msisdn, event_id, kafka_offset, ts, bill_month, ifNull(amount_fen, 0), isNotNull(amount_fen)
		FROM {db}.billing_events PREWHERE type = 'BILL' WHERE msisdn IN (SELECT msisdn FROM touched)`))
	if err != nil {
		return fmt.Errorf("read billing_events: %w", err)
	}
	defer rows.Close()
	var m, month string
	var at eventKey
	var fen int64
	var hasFen uint8
	dest := []any{&m, &at.eventID, &at.offset, &at.ts, &month, &fen, &hasFen}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read billing_events: %w", err)
		}
		fold(m).addBill(month, fen, hasFen == 1, at)
	}
	return rows.Err()
}

func (w *Warehouse) insertSubscribers(ctx context.Context, rows []SubscriberRow, version uint64) error {
	return insertRows(ctx, w, "subscribers", subscriberColumns(version), rows)
}

// subscriberColumns are the columns of subscribers an insert writes, each
// row with version.
func subscriberColumns(version uint64) []insertColumn[SubscriberRow] {
	return []insertColumn[SubscriberRow]{
		col("msisdn", func(r *SubscriberRow) string { return r.MSISDN }),
		col("name", func(r *SubscriberRow) string { return r.Name }),
		col("birthday", func(r *SubscriberRow) string { return r.Birthday }),
		col("tier", func(r *SubscriberRow) string { return r.Tier }),
		col("profile_tier", func(r *SubscriberRow) string { return r.ProfileTier }),
		col("bill_avg_fen", func(r *SubscriberRow) int64 { return r.BillAvgFen }),
		col("region", func(r *SubscriberRow) string { return r.Region }),
		col("account_manager", func(r *SubscriberRow) string { return r.AccountManager }),
		col("phone_manager", func(r *SubscriberRow) string { return r.PhoneManager }),
		col("promo_end", func(r *SubscriberRow) string { return r.PromoEnd }),
		col("join_date", func(r *SubscriberRow) string { return r.JoinDate }),
		col("status", func(r *SubscriberRow) string { return r.Status }),
		col("first_seen", func(r *SubscriberRow) time.Time { return r.FirstSeen }),
		col("updated_at", func(r *SubscriberRow) time.Time { return r.UpdatedAt }),
		col("version", func(*SubscriberRow) uint64 { return version }),
		col("interests", func(r *SubscriberRow) []string { return r.Interests }),
		col("group_id", func(r *SubscriberRow) string { return r.GroupID }),
		col("group_name", func(r *SubscriberRow) string { return r.GroupName }),
		col("group_level", func(r *SubscriberRow) string { return r.GroupLevel }),
		col("products", func(r *SubscriberRow) []string { return r.Products }),
		col("network_age_months", func(r *SubscriberRow) *uint32 { return r.NetworkAgeMonths }),
	}
}
