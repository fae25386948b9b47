package warehouse

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"churnwatch/schemas"
)

// subscribersOracleSQL is how subscribers rows were recomputed before the
// fold moved into RefreshSubscribers: one INSERT ... SELECT over
// crm_events FINAL and billing_events FINAL (here its SELECT), kept as the
// oracle the fold must agree with. Three branches meet in one GROUP BY
// msisdn: the profile from crm_events, the three latest monthly bills, and
// the first and last BILL times. The bound arguments are the diamond, gold
// and silver thresholds, then the version.
const subscribersOracleSQL = `SELECT msisdn, name, birthday,
    if(profile_tier != '', profile_tier,
        multiIf(bills = 0, 'standard', bill_avg_fen >= ?, 'diamond', bill_avg_fen >= ?, 'gold',
            bill_avg_fen >= ?, 'silver', 'standard')),
    profile_tier, bill_avg_fen, region, account_manager, phone_manager, promo_end, join_date, status,
    first_seen, updated_at, ?, interests, group_id, group_name, group_level, products, network_age_months
FROM
(
    SELECT msisdn,
        max(p_name) AS name, max(p_birthday) AS birthday, max(p_tier) AS profile_tier, max(p_region) AS region,
        max(p_account_manager) AS account_manager, max(p_phone_manager) AS phone_manager,
        max(p_promo_end) AS promo_end, max(p_join_date) AS join_date, max(p_status) AS status,
        sum(bill_fen) AS bill_sum, sum(bill_n) AS bills,
        intDiv(bill_sum, toInt64(greatest(bills, 1))) AS bill_avg_fen,
        if(max(from_crm) = 1, minIf(first_ts, from_crm = 1), min(first_ts)) AS first_seen,
        if(max(from_crm) = 1, maxIf(last_ts, from_crm = 1), max(last_ts)) AS updated_at,
        argMax(p_interests, from_crm) AS interests, max(p_group_id) AS group_id, max(p_group_name) AS group_name,
        max(p_group_level) AS group_level, argMax(p_products, from_crm) AS products,
        max(p_network_age_months) AS network_age_months
    FROM
    (
        SELECT msisdn,
            ifNull(argMaxIf(profile_name, (ts, event_id), isNotNull(profile_name)), '') AS p_name,
            ifNull(argMaxIf(profile_birthday, (ts, event_id), isNotNull(profile_birthday)), '') AS p_birthday,
            ifNull(argMaxIf(profile_tier, (ts, event_id), isNotNull(profile_tier)), '') AS p_tier,
            ifNull(argMaxIf(profile_region, (ts, event_id), isNotNull(profile_region)), '') AS p_region,
            ifNull(argMaxIf(profile_account_manager, (ts, event_id), isNotNull(profile_account_manager)), '') AS p_account_manager,
            ifNull(argMaxIf(profile_phone_manager, (ts, event_id), isNotNull(profile_phone_manager)), '') AS p_phone_manager,
            ifNull(argMaxIf(profile_promo_end, (ts, event_id), isNotNull(profile_promo_end)), '') AS p_promo_end,
            ifNull(argMaxIf(profile_join_date, (ts, event_id), isNotNull(profile_join_date)), '') AS p_join_date,
            ifNull(argMaxIf(multiIf(type = 'DEACTIVATE', 'deactivated', type = 'REACTIVATE', 'active', profile_status),
                (ts, event_id), type IN ('DEACTIVATE', 'REACTIVATE') OR isNotNull(profile_status)), '') AS p_status,
            min(ts) AS first_ts, max(ts) AS last_ts,
            toInt64(0) AS bill_fen, toUInt64(0) AS bill_n, toUInt8(1) AS from_crm,
            argMaxIf(profile_interests, (ts, event_id), profile_has_interests = 1) AS p_interests,
            ifNull(argMaxIf(profile_group_id, (ts, event_id), isNotNull(profile_group_id)), '') AS p_group_id,
            ifNull(argMaxIf(profile_group_name, (ts, event_id), isNotNull(profile_group_id)), '') AS p_group_name,
            ifNull(argMaxIf(profile_group_level, (ts, event_id), isNotNull(profile_group_id)), '') AS p_group_level,
            argMaxIf(profile_products, (ts, event_id), profile_has_products = 1) AS p_products,
            argMaxIf(profile_network_age_months, (ts, event_id), isNotNull(profile_network_age_months)) AS p_network_age_months
        FROM {db}.crm_events FINAL
        WHERE msisdn IN (SELECT msisdn FROM touched)
        GROUP BY msisdn
        UNION ALL
        SELECT msisdn, '', '', '', '', '', '', '', '', '', month_ts, month_ts, month_fen, toUInt64(1), toUInt8(0),
            emptyArrayString(), '', '', '', emptyArrayString(), CAST(NULL AS Nullable(UInt32))
        FROM
        (
            SELECT msisdn, bill_month,
                toInt64(argMax(ifNull(amount_fen, 0), (ts, event_id))) AS month_fen, max(ts) AS month_ts
            FROM {db}.billing_events FINAL
            WHERE msisdn IN (SELECT msisdn FROM touched) AND type = 'BILL' AND bill_month != '' AND isNotNull(amount_fen)
            GROUP BY msisdn, bill_month
            ORDER BY msisdn, bill_month DESC
            LIMIT 3 BY msisdn
        )
        UNION ALL
        SELECT msisdn, '', '', '', '', '', '', '', '', '', min(ts), max(ts), toInt64(0), toUInt64(0), toUInt8(0),
            emptyArrayString(), '', '', '', emptyArrayString(), CAST(NULL AS Nullable(UInt32))
        FROM {db}.billing_events FINAL
        WHERE msisdn IN (SELECT msisdn FROM touched) AND type = 'BILL'
        GROUP BY msisdn
    )
    GROUP BY msisdn
)`

// TestRefreshSubscribersMatchesOracle recomputes the subscribers of a random
// population with RefreshSubscribers and compares every column with what the
// oracle query computes from the same facts. The population is made to hit
// the edge cases: events in the same second, fields cleared and set again,
// lists emptied, groups replaced, bills without a month or an amount, months
// billed twice, negative amounts, subscribers known only from bills, and
// every fact replayed once in a later insert.
func TestRefreshSubscribersMatchesOracle(t *testing.T) {
	w, _, _ := migratedWarehouse(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewSource(7))
	crm, billing, msisdns := randomSubscriberFacts(rnd, 2500)           // folds from more than one slab (foldSlab)
	for _, copies := range [][2]int{{0, len(crm)}, {0, len(crm) / 3}} { // then a replay of the first third
		if err := w.InsertCRM(ctx, crm[copies[0]:copies[1]]); err != nil {
			t.Fatal(err)
		}
	}
	for _, copies := range [][2]int{{0, len(billing)}, {len(billing) / 2, len(billing)}} {
		if err := w.InsertBilling(ctx, billing[copies[0]:copies[1]]); err != nil {
			t.Fatal(err)
		}
	}
	tiers := TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}
	want := oracleSubscribers(t, w, msisdns, tiers)
	if len(want) < 1900 {
		t.Fatalf("the oracle gave %d subscribers, want most of 2,500", len(want))
	}
	if err := w.RefreshSubscribers(ctx, msisdns, tiers); err != nil {
		t.Fatal(err)
	}
	got := readSubscriberRows(t, w, context.Background(), "SELECT "+subscriberNames()+" FROM "+w.db+".subscribers FINAL ORDER BY msisdn")
	if len(got) != len(want) {
		t.Errorf("RefreshSubscribers wrote %d subscribers, the oracle %d", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("subscriber %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func oracleSubscribers(t *testing.T, w *Warehouse, msisdns []string, tiers TierRules) []SubscriberRow {
	t.Helper()
	touched, err := msisdnTable(msisdns)
	if err != nil {
		t.Fatal(err)
	}
	ctx := clickhouse.Context(context.Background(), clickhouse.WithExternalTable(touched))
	return readSubscriberRows(t, w, ctx, w.sql(subscribersOracleSQL)+" ORDER BY msisdn", tiers.DiamondFen, tiers.GoldFen, tiers.SilverFen, uint64(1<<40))
}

// subscriberNames are the columns of subscribers in the order
// insertSubscribers writes them.
func subscriberNames() string {
	var names []string
	for _, c := range subscriberColumns(0) {
		names = append(names, c.name())
	}
	return strings.Join(names, ", ")
}

// readSubscriberRows runs query with args, which
// selects subscriberNames(), and scans the rows, version left out.
func readSubscriberRows(t *testing.T, w *Warehouse, ctx context.Context, query string, args ...any) []SubscriberRow {
	t.Helper()
	rows, err := w.conn.Query(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []SubscriberRow
	for rows.Next() {
		var r SubscriberRow
		if err := rows.Scan(&r.MSISDN, &r.Name, &r.Birthday, &r.Tier, &r.ProfileTier, &r.BillAvgFen, &r.Region,
			&r.AccountManager, &r.PhoneManager, &r.PromoEnd, &r.JoinDate, &r.Status, &r.FirstSeen, &r.UpdatedAt,
			new(uint64), &r.Interests, &r.GroupID, &r.GroupName, &r.GroupLevel, &r.Products, &r.NetworkAgeMonths); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// randomSubscriberFacts makes CRM and billing facts for n subscribers, and
// the touched list (with one subscriber that has no facts at all).
func randomSubscriberFacts(rnd *rand.Rand, n int) ([]CRMRow, []BillingRow, []string) {
	base := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	// Few distinct times, so that many events share a second and ties
	// are broken by event_id.
	at := func() time.Time { return base.Add(time.Duration(rnd.Intn(6)) * time.Hour) }
	pick := func(values ...string) *string {
		if rnd.Intn(10) < 6 {
			return nil
		}
		v := values[rnd.Intn(len(values))]
		return &v
	}
	list := func() *[]string {
		switch rnd.Intn(4) {
		case 0:
			return nil
		case 1:
			return &[]string{}
		default:
			l := []string{"video", "games", "travel"}[:1+rnd.Intn(3)]
			return &l
		}
	}
	var crm []CRMRow
	var billing []BillingRow
	var msisdns []string
	offset := int64(0)
	for i := 0; i < n; i++ {
		m := fmt.Sprintf("1390000%04d", i)
		msisdns = append(msisdns, m)
		kind := rnd.Intn(4) // 0: CRM only, 1: bills only, 2-3: both
		if kind != 1 {
			for j := rnd.Intn(5) + 1; j > 0; j-- {
				offset++
				ts := at()
				e := CRMRow{CRMEvent: schemas.CRMEvent{EventID: fmt.Sprintf("c%d", rnd.Intn(1_000_000)), MSISDN: m, TS: ts},
					ProfileJSON: "{}", Day: LocalDay(ts, time.UTC), Provenance: Provenance{Offset: offset}}
				switch r := rnd.Intn(10); {
				case r < 6:
					e.Type = schemas.CRMProfile
					p := &schemas.Profile{Name: pick("Li", "Wang", ""), Birthday: pick("1980-01-01", ""),
						Region: pick("r1", "r2", ""), AccountManager: pick("am-1", "am-2", ""), PhoneManager: pick("pm-1", ""),
						PromoEnd: pick("2026-12-31", ""), JoinDate: pick("2010-05-01", ""), Status: pick("active", "suspended", ""),
						Interests: list(), Products: list()}
					if tier := pick("gold", "silver", "diamond", "standard", ""); tier != nil {
						t := schemas.Tier(*tier)
						p.Tier = &t
					}
					if rnd.Intn(3) == 0 {
						p.Group = &schemas.Group{ID: fmt.Sprintf("g%d", rnd.Intn(3)), Name: "group", Level: schemas.GroupB1}
					}
					if rnd.Intn(3) == 0 {
						age := int64(rnd.Intn(300))
						p.NetworkAgeMonths = &age
					}
					e.Profile = p
				case r < 7:
					e.Type = schemas.CRMDeactivate
				case r < 8:
					e.Type = schemas.CRMReactivate
				default:
					e.Type = schemas.CRMPortOutQuery
				}
				crm = append(crm, e)
			}
		}
		if kind != 0 {
			for j := rnd.Intn(7); j > 0; j-- {
				offset++
				ts := at()
				b := BillingRow{BillingEvent: schemas.BillingEvent{EventID: fmt.Sprintf("b%d", rnd.Intn(1_000_000)), MSISDN: m,
					Type: schemas.BillingBill, TS: ts, BillMonth: []string{"2026-06", "2026-07", "2026-08", "2026-09", ""}[rnd.Intn(5)]},
					Day: LocalDay(ts, time.UTC), Provenance: Provenance{Offset: offset}}
				if rnd.Intn(10) > 0 {
					fen := int64(rnd.Intn(91000) - 1000)
					b.AmountFen = &fen
				}
				if rnd.Intn(8) == 0 {
					b.Type = schemas.BillingPayment
				}
				billing = append(billing, b)
			}
		}
	}
	msisdns = append(msisdns, "13999999999") // touched, but with no facts
	slices.Sort(msisdns)
	return crm, billing, msisdns
}

// BenchmarkRefreshSubscribers recomputes 26,000 subscribers, as many as one
// CRM batch of the benchmark population's profiles touches: with
// RefreshSubscribers (fold) and with the INSERT ... SELECT it replaced
// (query), side by side.
func BenchmarkRefreshSubscribers(b *testing.B) {
	w, _, _ := migratedWarehouse(b)
	ctx := context.Background()
	crm, billing, msisdns := randomSubscriberFacts(rand.New(rand.NewSource(1)), 26_000)
	if err := w.InsertCRM(ctx, crm); err != nil {
		b.Fatal(err)
	}
	if err := w.InsertBilling(ctx, billing); err != nil {
		b.Fatal(err)
	}
	tiers := TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}
	run := func(b *testing.B, refresh func() error) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := refresh(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(msisdns)), "us/subscriber")
	}
	b.Run("fold", func(b *testing.B) {
		run(b, func() error { return w.RefreshSubscribers(ctx, msisdns, tiers) })
	})
	b.Run("query", func(b *testing.B) {
		insert := "INSERT INTO " + w.db + ".subscribers (" + subscriberNames() + ") " + w.sql(subscribersOracleSQL)
		run(b, func() error {
			touched, err := msisdnTable(msisdns)
			if err != nil {
				return err
			}
			return w.conn.Exec(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), insert,
				tiers.DiamondFen, tiers.GoldFen, tiers.SilverFen, w.ver.next())
		})
	})
}

// TestRefreshedSubscribersStaysBounded: what the refreshes remember is at
// most two generations; the newest marks are kept, the oldest forgotten,
// and a forgotten subscriber is one to recompute.
func TestRefreshedSubscribersStaysBounded(t *testing.T) {
	var r refreshedSubscribers
	n := 2*refreshedGeneration + 10
	for i := range n {
		r.mark(fmt.Sprintf("138%08d", i), uint64(i+1))
	}
	if kept := len(r.cur) + len(r.prev); kept > 2*refreshedGeneration {
		t.Errorf("%d subscribers remembered, want at most %d", kept, 2*refreshedGeneration)
	}
	newest, oldest := fmt.Sprintf("138%08d", n-1), fmt.Sprintf("138%08d", 0)
	if b, ok := r.began(newest); !ok || b != uint64(n) {
		t.Errorf("the newest mark: %d, %v, want %d", b, ok, n)
	}
	if _, ok := r.began(oldest); ok {
		t.Error("the oldest mark is still remembered")
	}
	todo := r.notSince([]string{oldest, newest}, uint64(n-1))
	if len(todo) != 1 || todo[0] != oldest {
		t.Errorf("to recompute after ticket %d: %q, want only the forgotten %s", n-1, todo, oldest)
	}
}

// TestSubscriberRowsInTableOrder checks that a refresh's rows go to
// ClickHouse in the subscribers table's order, whatever the map's.
func TestSubscriberRowsInTableOrder(t *testing.T) {
	folds := map[string]*subscriberFold{}
	rng := rand.New(rand.NewSource(7))
	for len(folds) < 5000 {
		m := fmt.Sprintf("1%010d", rng.Int63n(1e10))
		f := &subscriberFold{}
		f.addBill("2026-11", rng.Int63n(50000), true, eventKey{ts: time.Unix(1_790_000_000, 0), eventID: m})
		folds[m] = f
	}
	tiers := TierRules{DiamondFen: 30000, GoldFen: 15000, SilverFen: 8000}
	rows := subscriberRows(folds, tiers)
	if len(rows) != len(folds) {
		t.Fatalf("%d rows for %d subscribers", len(rows), len(folds))
	}
	if !slices.IsSortedFunc(rows, func(a, b SubscriberRow) int { return strings.Compare(a.MSISDN, b.MSISDN) }) {
		t.Error("rows not in msisdn order")
	}
	for _, r := range rows {
		if want := folds[r.MSISDN].row(r.MSISDN, tiers); !reflect.DeepEqual(r, want) {
			t.Fatalf("row of %s: %+v, want %+v", r.MSISDN, r, want)
		}
	}
}
