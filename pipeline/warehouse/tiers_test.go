package warehouse_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// rules are the default thresholds: 500, 300 and 120 yuan a month.
var rules = warehouse.TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}

// open returns a migrated warehouse on a fresh test database.
func open(t *testing.T) *warehouse.Warehouse {
	t.Helper()
	cfg, _ := testenv.ClickHouse(t)
	w, err := warehouse.Open(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// facts collects hand-built CRM and billing rows; ids are unique per facts.
type facts struct {
	crm     []warehouse.CRMRow
	billing []warehouse.BillingRow
	n       int
}

func (f *facts) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

func day(ts time.Time) time.Time { return warehouse.LocalDay(ts, time.UTC) }

// at is a time on the given day of 2026 at noon UTC, e.g. at("11-03").
func at(monthDay string) time.Time {
	ts, err := time.Parse("2006-01-02 15:04", "2026-"+monthDay+" 12:00")
	if err != nil {
		panic(err)
	}
	return ts
}

// bill adds a BILL of fen for bill_month (YYYY-MM), issued at ts.
func (f *facts) bill(msisdn, month string, fen int64, ts time.Time) {
	f.billing = append(f.billing, warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: f.id("b"), MSISDN: msisdn,
		Type: schemas.BillingBill, TS: ts, AmountFen: &fen, BillMonth: month}, Day: day(ts)})
}

// payment adds a PAYMENT, which must not count as a bill.
func (f *facts) payment(msisdn string, fen int64, ts time.Time) {
	f.billing = append(f.billing, warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: f.id("p"), MSISDN: msisdn,
		Type: schemas.BillingPayment, TS: ts, AmountFen: &fen}, Day: day(ts)})
}

// bills adds one bill per month, oldest first, issued on the 1st of the next month.
func (f *facts) bills(msisdn string, fen map[string]int64) {
	for month, amount := range fen {
		ts, err := time.Parse("2006-01", month)
		if err != nil {
			panic(err)
		}
		f.bill(msisdn, month, amount, ts.AddDate(0, 1, 0).Add(2*time.Hour))
	}
}

// profile adds a PROFILE carrying exactly the given fields (tier, region,
// account_manager, phone_manager, status); a field set to "" is cleared.
func (f *facts) profile(msisdn string, ts time.Time, fields map[string]string) {
	p := &schemas.Profile{}
	for k, v := range fields {
		v := v
		switch k {
		case "tier":
			tier := schemas.Tier(v)
			p.Tier = &tier
		case "region":
			p.Region = &v
		case "account_manager":
			p.AccountManager = &v
		case "phone_manager":
			p.PhoneManager = &v
		case "status":
			p.Status = &v
		default:
			panic("profile field " + k)
		}
	}
	f.crm = append(f.crm, warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: f.id("r"), MSISDN: msisdn,
		Type: schemas.CRMProfile, TS: ts, Profile: p}, ProfileJSON: "{}", Day: day(ts)})
}

// event adds a CRM event without a profile (DEACTIVATE, REACTIVATE, ...).
func (f *facts) event(msisdn string, typ schemas.CRMType, ts time.Time) {
	f.crm = append(f.crm, warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: f.id("r"), MSISDN: msisdn, Type: typ, TS: ts},
		Day: day(ts)})
}

// store inserts the collected rows, forgets them and refreshes the
// subscribers they name.
func (f *facts) store(t *testing.T, w *warehouse.Warehouse) {
	t.Helper()
	ctx := context.Background()
	if err := w.InsertCRM(ctx, f.crm); err != nil {
		t.Fatal(err)
	}
	if err := w.InsertBilling(ctx, f.billing); err != nil {
		t.Fatal(err)
	}
	touched := map[string]bool{}
	for _, r := range f.crm {
		touched[r.MSISDN] = true
	}
	for _, r := range f.billing {
		touched[r.MSISDN] = true
	}
	var msisdns []string
	for m := range touched {
		msisdns = append(msisdns, m)
	}
	if err := w.RefreshSubscribers(ctx, msisdns, rules); err != nil {
		t.Fatal(err)
	}
	f.crm, f.billing = nil, nil
}

type subscriber struct {
	tier, profileTier, region, am, status string
	billAvg                               int64
	firstSeen                             time.Time
	rows                                  uint64
}

func readSubscriber(t *testing.T, w *warehouse.Warehouse, msisdn string) subscriber {
	t.Helper()
	var s subscriber
	err := w.Conn().QueryRow(context.Background(), fmt.Sprintf(`SELECT any(tier), any(profile_tier), any(region),
		any(account_manager), any(status), any(bill_avg_fen), any(first_seen), count()
		FROM %s.subscribers FINAL WHERE msisdn = ?`, w.Database()), msisdn).
		Scan(&s.tier, &s.profileTier, &s.region, &s.am, &s.status, &s.billAvg, &s.firstSeen, &s.rows)
	if err != nil {
		t.Fatalf("subscribers %s: %v", msisdn, err)
	}
	return s
}

func TestRefreshSubscribersTiers(t *testing.T) {
	w := open(t)
	type want struct {
		tier, profileTier string
		billAvg           int64
	}
	tests := []struct {
		name  string
		setup func(f *facts, m string)
		want  want
	}{
		{"profile tier wins over bills", func(f *facts, m string) {
			f.profile(m, at("10-01"), map[string]string{"tier": "silver", "region": "r1"})
			f.bills(m, map[string]int64{"2026-08": 60000, "2026-09": 60000, "2026-10": 60000})
		}, want{"silver", "silver", 60000}},
		{"profile standard wins over diamond bills", func(f *facts, m string) {
			f.profile(m, at("10-01"), map[string]string{"tier": "standard"})
			f.bills(m, map[string]int64{"2026-10": 90000})
		}, want{"standard", "standard", 90000}},
		{"last three of four monthly bills", func(f *facts, m string) {
			f.profile(m, at("06-01"), map[string]string{"region": "r1"})
			// With July the average would be 37500 (gold).
			f.bills(m, map[string]int64{"2026-07": 0, "2026-08": 40000, "2026-09": 50000, "2026-10": 60000})
			f.payment(m, 900000, at("10-15"))
		}, want{"diamond", "", 50000}},
		{"months ordered by bill_month, not by issue time", func(f *facts, m string) {
			f.bill(m, "2026-10", 60000, at("11-01"))
			f.bill(m, "2026-09", 60000, at("11-02")) // a late bill for September
			f.bill(m, "2026-08", 60000, at("09-01"))
			f.bill(m, "2026-07", 0, at("11-03")) // issued last, yet the oldest month
		}, want{"diamond", "", 60000}},
		{"average over the bills that exist", func(f *facts, m string) {
			f.bills(m, map[string]int64{"2026-09": 20000, "2026-10": 40000})
		}, want{"gold", "", 30000}},
		{"month billed twice: latest bill counts", func(f *facts, m string) {
			f.bills(m, map[string]int64{"2026-08": 60000, "2026-09": 60000})
			f.bill(m, "2026-10", 10000, at("11-01"))
			f.bill(m, "2026-10", 60000, at("11-03")) // corrected bill
		}, want{"diamond", "", 60000}},
		{"no profile tier and no bill", func(f *facts, m string) {
			f.profile(m, at("10-01"), map[string]string{"region": "r2", "account_manager": "am-1"})
		}, want{"standard", "", 0}},
		{"partial profile keeps the earlier tier", func(f *facts, m string) {
			f.profile(m, at("09-01"), map[string]string{"tier": "gold", "region": "r1"})
			f.profile(m, at("10-01"), map[string]string{"region": "r2"})
			f.bills(m, map[string]int64{"2026-10": 60000})
		}, want{"gold", "gold", 60000}},
		{"cleared tier falls back to bills", func(f *facts, m string) {
			f.profile(m, at("09-01"), map[string]string{"tier": "gold"})
			f.profile(m, at("10-01"), map[string]string{"tier": ""})
			f.bills(m, map[string]int64{"2026-09": 13000, "2026-10": 13000})
		}, want{"silver", "", 13000}},
		{"tier set again after a clear", func(f *facts, m string) {
			f.profile(m, at("08-01"), map[string]string{"tier": "gold"})
			f.profile(m, at("09-01"), map[string]string{"tier": ""})
			f.profile(m, at("10-01"), map[string]string{"tier": "diamond"})
		}, want{"diamond", "diamond", 0}},
	}
	// Exactly at each threshold, and one fen under it (as an average and as a
	// sum one fen short of three times the threshold).
	for _, th := range []struct {
		fen         int64
		tier, below string
	}{{rules.DiamondFen, "diamond", "gold"}, {rules.GoldFen, "gold", "silver"}, {rules.SilverFen, "silver", "standard"}} {
		th := th
		tests = append(tests,
			struct {
				name  string
				setup func(f *facts, m string)
				want  want
			}{fmt.Sprintf("average exactly %d", th.fen), func(f *facts, m string) {
				f.bills(m, map[string]int64{"2026-08": th.fen - 1, "2026-09": th.fen, "2026-10": th.fen + 1})
			}, want{th.tier, "", th.fen}},
			struct {
				name  string
				setup func(f *facts, m string)
				want  want
			}{fmt.Sprintf("average %d", th.fen-1), func(f *facts, m string) {
				f.bills(m, map[string]int64{"2026-08": th.fen - 1, "2026-09": th.fen - 1, "2026-10": th.fen - 1})
			}, want{th.below, "", th.fen - 1}},
			struct {
				name  string
				setup func(f *facts, m string)
				want  want
			}{fmt.Sprintf("sum one fen short of 3 x %d", th.fen), func(f *facts, m string) {
				f.bills(m, map[string]int64{"2026-08": th.fen, "2026-09": th.fen, "2026-10": th.fen - 1})
			}, want{th.below, "", th.fen - 1}},
		)
	}

	var f facts
	msisdn := func(i int) string { return fmt.Sprintf("1391000%04d", i) }
	for i, tt := range tests {
		tt.setup(&f, msisdn(i))
	}
	f.store(t, w)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := readSubscriber(t, w, msisdn(i))
			got := want{s.tier, s.profileTier, s.billAvg}
			if s.rows != 1 || got != tt.want {
				t.Errorf("subscriber %s: %d rows, (tier, profile_tier, bill_avg_fen) = %+v, want 1 row, %+v", msisdn(i), s.rows, got, tt.want)
			}
		})
	}
}

func TestRefreshSubscribersBillsOnly(t *testing.T) {
	w := open(t)
	var f facts
	const m = "13910009001"
	f.bills(m, map[string]int64{"2026-07": 10, "2026-08": 30000, "2026-09": 30000, "2026-10": 30000})
	f.store(t, w)
	got := readSubscriber(t, w, m)
	first, _ := time.Parse("2006-01-02 15:04", "2026-08-01 02:00") // the July bill
	want := subscriber{tier: "gold", billAvg: 30000, firstSeen: first, rows: 1}
	if got.rows != 1 || got.tier != want.tier || got.billAvg != want.billAvg || got.profileTier != "" || got.region != "" ||
		got.am != "" || got.status != "" || !got.firstSeen.Equal(first) {
		t.Errorf("subscriber known only from bills = %+v, want %+v", got, want)
	}

	// A profile arriving later keeps the bill tier (it names none) and
	// takes over first_seen.
	f.profile(m, at("11-05"), map[string]string{"region": "r9"})
	f.store(t, w)
	got = readSubscriber(t, w, m)
	if got.rows != 1 || got.tier != "gold" || got.region != "r9" || !got.firstSeen.Equal(at("11-05")) {
		t.Errorf("after a profile: %+v, want gold, region r9, first_seen %s", got, at("11-05"))
	}

	// The next month's bill moves the window: August drops out.
	f.bill(m, "2026-11", 90000, at("12-01"))
	f.store(t, w)
	if got = readSubscriber(t, w, m); got.tier != "diamond" || got.billAvg != 50000 {
		t.Errorf("after the November bill: tier %s, bill_avg_fen %d, want diamond, 50000", got.tier, got.billAvg)
	}
}

type snapRow struct {
	msisdn, tier, region, am, pm, status string
	billAvg                              int64
}

func readSnapshot(t *testing.T, w *warehouse.Warehouse, month string) []snapRow {
	t.Helper()
	rows, err := w.Conn().Query(context.Background(), fmt.Sprintf(`SELECT msisdn, tier, region, account_manager,
		phone_manager, status, bill_avg_fen FROM %s.tier_snapshots FINAL WHERE month = toDate(?) ORDER BY msisdn`,
		w.Database()), month)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []snapRow
	for rows.Next() {
		var r snapRow
		if err := rows.Scan(&r.msisdn, &r.tier, &r.region, &r.am, &r.pm, &r.status, &r.billAvg); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

type retention struct {
	month, region, tier, am, pm string
	base, retained, lost        uint64
	rate                        float64
}

func readRetention(t *testing.T, w *warehouse.Warehouse) []retention {
	t.Helper()
	rows, err := w.Conn().Query(context.Background(), fmt.Sprintf(`SELECT toString(month), region, tier, account_manager,
		phone_manager, base, retained, lost, retention_rate FROM %s.snapshot_retention`, w.Database()))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []retention
	for rows.Next() {
		var r retention
		if err := rows.Scan(&r.month, &r.region, &r.tier, &r.am, &r.pm, &r.base, &r.retained, &r.lost, &r.rate); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestSnapshotAndRetention(t *testing.T) {
	w := open(t)
	ctx := context.Background()
	var f facts
	const (
		a = "13920000001" // diamond by profile, r1
		b = "13920000002" // gold by bills, r1
		c = "13920000003" // silver, r2, stays
		d = "13920000004" // standard, becomes gold by bills
		e = "13920000005" // diamond, but deactivated before the snapshot
		g = "13920000006" // silver, r2, deactivated after the snapshot
	)
	prof := func(m, tier, region, am string) {
		fields := map[string]string{"region": region, "account_manager": am, "phone_manager": "pm-" + am[3:], "status": "active"}
		if tier != "" {
			fields["tier"] = tier
		}
		f.profile(m, at("10-01"), fields)
	}
	prof(a, "diamond", "r1", "am-1")
	prof(b, "", "r1", "am-1")
	f.bills(b, map[string]int64{"2026-08": 35000, "2026-09": 35000, "2026-10": 35000})
	prof(c, "silver", "r2", "am-2")
	prof(d, "", "r2", "am-2")
	f.bills(d, map[string]int64{"2026-10": 100})
	prof(e, "diamond", "r1", "am-1")
	f.event(e, schemas.CRMDeactivate, at("10-20"))
	prof(g, "silver", "r2", "am-2")
	f.store(t, w)

	wantNov := []snapRow{
		{a, "diamond", "r1", "am-1", "pm-1", "active", 0},
		{b, "gold", "r1", "am-1", "pm-1", "active", 35000},
		{c, "silver", "r2", "am-2", "pm-2", "active", 0},
		{g, "silver", "r2", "am-2", "pm-2", "active", 0},
	}
	t.Run("first call takes the snapshot", func(t *testing.T) {
		taken, n, err := w.TakeSnapshot(ctx, time.Date(2026, 11, 15, 9, 0, 0, 0, time.UTC))
		if err != nil || !taken || n != 4 {
			t.Fatalf("TakeSnapshot = %v, %d, %v; want true, 4, nil", taken, n, err)
		}
		if got := readSnapshot(t, w, "2026-11-01"); fmt.Sprint(got) != fmt.Sprint(wantNov) {
			t.Errorf("snapshot 2026-11:\n got %v\nwant %v", got, wantNov)
		}
	})

	// Subscribers change: a leaves the high-value base, d joins it, g is
	// deactivated.
	f.profile(a, at("11-20"), map[string]string{"tier": "standard"})
	f.bills(d, map[string]int64{"2026-11": 89900})
	f.event(g, schemas.CRMDeactivate, at("11-21"))
	f.store(t, w)
	if s := readSubscriber(t, w, d); s.tier != "gold" {
		t.Fatalf("d after its bills: tier %s, want gold", s.tier)
	}

	t.Run("second call for the month changes nothing", func(t *testing.T) {
		taken, n, err := w.TakeSnapshot(ctx, time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
		if err != nil || taken || n != 4 {
			t.Fatalf("TakeSnapshot again = %v, %d, %v; want false, 4, nil", taken, n, err)
		}
		if got := readSnapshot(t, w, "2026-11-01"); fmt.Sprint(got) != fmt.Sprint(wantNov) {
			t.Errorf("frozen snapshot 2026-11 changed:\n got %v\nwant %v", got, wantNov)
		}
	})

	t.Run("next month takes the current base", func(t *testing.T) {
		taken, n, err := w.TakeSnapshot(ctx, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		if err != nil || !taken || n != 3 {
			t.Fatalf("TakeSnapshot December = %v, %d, %v; want true, 3, nil", taken, n, err)
		}
		var got []string
		for _, r := range readSnapshot(t, w, "2026-12-01") {
			got = append(got, r.msisdn+":"+r.tier)
		}
		if want := []string{b + ":gold", c + ":silver", d + ":gold"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("snapshot 2026-12 = %v, want %v", got, want)
		}
	})

	t.Run("retention view", func(t *testing.T) {
		got := readRetention(t, w)
		want := []retention{
			{"2026-11-01", "r1", "diamond", "am-1", "pm-1", 1, 1, 0, 1},
			{"2026-11-01", "r1", "gold", "am-1", "pm-1", 1, 1, 0, 1},
			{"2026-11-01", "r2", "silver", "am-2", "pm-2", 2, 1, 1, 0.5},
			{"2026-12-01", "r1", "gold", "am-1", "pm-1", 1, 1, 0, 1},
			{"2026-12-01", "r2", "gold", "am-2", "pm-2", 1, 1, 0, 1},
			{"2026-12-01", "r2", "silver", "am-2", "pm-2", 1, 1, 0, 1},
		}
		sort.Slice(got, func(i, j int) bool { return fmt.Sprint(got[i]) < fmt.Sprint(got[j]) })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("snapshot_retention:\n got %v\nwant %v", got, want)
		}
	})

	t.Run("reactivation counts as retained again", func(t *testing.T) {
		f.event(g, schemas.CRMReactivate, at("11-25"))
		f.store(t, w)
		n := testenv.Count(t, w.Conn(), fmt.Sprintf(`SELECT retained FROM %s.snapshot_retention
			WHERE month = '2026-11-01' AND region = 'r2' AND tier = 'silver'`, w.Database()))
		if n != 2 {
			t.Errorf("retained after REACTIVATE = %d, want 2", n)
		}
	})
}

func TestSnapshotOfEmptyBase(t *testing.T) {
	w := open(t)
	var f facts
	f.profile("13930000001", at("10-01"), map[string]string{"region": "r1"})
	f.store(t, w)
	taken, n, err := w.TakeSnapshot(context.Background(), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || taken || n != 0 {
		t.Errorf("TakeSnapshot with only standard subscribers = %v, %d, %v; want false, 0, nil", taken, n, err)
	}
}

// Profiles gives each subscriber's latest subscribers row, while the rows
// of earlier refreshes are still unmerged beside it, and nothing for an
// unknown subscriber.
func TestProfilesLatestVersion(t *testing.T) {
	w := open(t)
	var f facts
	f.profile("13800000001", at("10-01"), map[string]string{"tier": "gold", "region": "r1", "account_manager": "am1"})
	f.profile("13800000002", at("10-01"), map[string]string{"tier": "silver", "region": "r2", "phone_manager": "pm2"})
	f.store(t, w)
	f.profile("13800000001", at("10-05"), map[string]string{"tier": "diamond", "account_manager": "am9"})
	f.store(t, w)
	f.profile("13800000001", at("10-02"), map[string]string{"region": "r3"}) // older than the tier change, newer for region
	f.store(t, w)
	var rows uint64
	if err := w.Conn().QueryRow(context.Background(), "SELECT count() FROM "+w.Database()+".subscribers WHERE msisdn = '13800000001'").
		Scan(&rows); err != nil || rows < 2 {
		t.Fatalf("the test needs the refreshes unmerged; subscribers holds %d rows of 13800000001 (%v)", rows, err)
	}
	got, err := w.Profiles(context.Background(), []string{"13800000001", "13800000002", "13800000009"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]warehouse.Profile{
		"13800000001": {Tier: schemas.TierDiamond, Region: "r3", AccountManager: "am9"},
		"13800000002": {Tier: schemas.TierSilver, Region: "r2", PhoneManager: "pm2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Profiles = %v, want %v", got, want)
	}
}

// TestRefreshSubscribersSideBySide: the CRM and billing consumers insert
// their events of a subscriber and refresh it at the same moment; however
// the two refreshes interleave, the row ends with both (a profile field and
// the bill average). Each subscriber is one such race. The consumers take a
// ticket after their inserts and refresh with RefreshSubscribersAfter,
// which leaves out a subscriber when a refresh begun after the ticket has
// recomputed it: that must lose nothing either.
func TestRefreshSubscribersSideBySide(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refresh func(w *warehouse.Warehouse, ctx context.Context, m string, ticket uint64) error
	}{
		{"plain", func(w *warehouse.Warehouse, ctx context.Context, m string, _ uint64) error {
			return w.RefreshSubscribers(ctx, []string{m}, rules)
		}},
		{"after a ticket", func(w *warehouse.Warehouse, ctx context.Context, m string, ticket uint64) error {
			return w.RefreshSubscribersAfter(ctx, []string{m}, ticket, rules)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { refreshSideBySide(t, tc.refresh) })
	}
}

func refreshSideBySide(t *testing.T, refresh func(w *warehouse.Warehouse, ctx context.Context, m string, ticket uint64) error) {
	w := open(t)
	ctx := context.Background()
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		m := fmt.Sprintf("138%08d", i)
		var crm, bills facts
		crm.profile(m, at("10-01"), map[string]string{"region": "r-" + m})
		bills.bills(m, map[string]int64{"2026-08": 60000, "2026-09": 60000, "2026-10": 60000})
		for _, f := range []*facts{&crm, &bills} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.InsertCRM(ctx, f.crm); err != nil {
					errs <- err
				}
				if err := w.InsertBilling(ctx, f.billing); err != nil {
					errs <- err
				}
				if err := refresh(w, ctx, m, w.SubscribersInserted([]string{m})); err != nil {
					errs <- err
				}
			}()
		}
		if i%4 == 3 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stale := 0
	for i := range n {
		m := fmt.Sprintf("138%08d", i)
		if s := readSubscriber(t, w, m); s.region != "r-"+m || s.billAvg != 60000 {
			stale++
			t.Logf("%s: region %q, bill average %d", m, s.region, s.billAvg)
		}
	}
	if stale > 0 {
		t.Errorf("%d of %d subscribers lost the events of one consumer to the other's refresh", stale, n)
	}
}

// subscriberVersion is the highest version of msisdn's subscribers rows.
func subscriberVersion(t *testing.T, w *warehouse.Warehouse, msisdn string) (v uint64) {
	t.Helper()
	if err := w.Conn().QueryRow(context.Background(), fmt.Sprintf(`SELECT max(version) FROM %s.subscribers WHERE msisdn = ?`,
		w.Database()), msisdn).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRefreshSubscribersAfter: a refresh for the events inserted before a
// ticket leaves out the subscribers a refresh begun after the ticket has
// recomputed (it writes no new version of them), recomputes the others,
// and leaves the caller's list as it was, for a retry; it also recomputes
// the subscribers of the inserts recorded before it began whose refresh
// nobody has asked for yet.
func TestRefreshSubscribersAfter(t *testing.T) {
	w := open(t)
	ctx := context.Background()
	const a, b = "13910009101", "13910009102"
	version := func(m string) uint64 { return subscriberVersion(t, w, m) }
	insert := func(f *facts) uint64 {
		t.Helper()
		if err := w.InsertCRM(ctx, f.crm); err != nil {
			t.Fatal(err)
		}
		if err := w.InsertBilling(ctx, f.billing); err != nil {
			t.Fatal(err)
		}
		var msisdns []string
		for _, r := range f.crm {
			msisdns = append(msisdns, r.MSISDN)
		}
		for _, r := range f.billing {
			msisdns = append(msisdns, r.MSISDN)
		}
		f.crm, f.billing = nil, nil
		return w.SubscribersInserted(slices.Compact(slices.Sorted(slices.Values(msisdns))))
	}
	var f facts
	f.profile(a, at("10-01"), map[string]string{"region": "r1"})
	f.profile(b, at("10-01"), map[string]string{"region": "r1"})
	profiles := insert(&f) // the CRM consumer's insert
	f.bills(a, map[string]int64{"2026-08": 60000, "2026-09": 60000, "2026-10": 60000})
	bills := insert(&f) // the billing consumer's
	if err := w.RefreshSubscribersAfter(ctx, []string{a, b}, profiles, rules); err != nil {
		t.Fatal(err)
	}
	got := readSubscriber(t, w, a)
	if got.region != "r1" || got.billAvg != 60000 || got.tier != "diamond" {
		t.Fatalf("after the first refresh: %+v, want region r1 and the bills (diamond, 60000)", got)
	}
	before := version(a)
	// leftOut refreshes m for the insert of ticket and checks that it wrote
	// no new version of m.
	leftOut := func(m string, ticket uint64, why string) {
		t.Helper()
		was := version(m)
		if err := w.RefreshSubscribersAfter(ctx, []string{m}, ticket, rules); err != nil {
			t.Fatal(err)
		}
		if v := version(m); v != was {
			t.Errorf("%s, %s, got version %d over %d", m, why, v, was)
		}
	}

	// The billing consumer's refresh of a: the refresh above began after
	// its insert and read its bills.
	leftOut(a, bills, "whose bills an earlier refresh had read")

	// A list of a, left out again, and c, a subscriber no refresh has
	// read yet: c is recomputed, and the list is left as it was.
	const c = "13910009103"
	f.profile(c, at("10-01"), map[string]string{"region": "r3"})
	insert(&f)
	msisdns := []string{a, c}
	if err := w.RefreshSubscribersAfter(ctx, msisdns, bills, rules); err != nil {
		t.Fatal(err)
	}
	if got := readSubscriber(t, w, c); got.rows != 1 || got.region != "r3" {
		t.Errorf("c after its first refresh: %+v, want one row, region r3", got)
	}
	if v := version(a); v != before {
		t.Errorf("a, in a list with c, got version %d over %d", v, before)
	}
	if len(msisdns) != 2 || msisdns[0] != a || msisdns[1] != c {
		t.Errorf("the caller's list became %q", msisdns)
	}

	// The billing consumer inserts d's bills; the CRM consumer then inserts
	// a new profile of b, inserted after the first refresh began, so b is
	// recomputed, and d with it, before the billing consumer asks for d.
	const d = "13910009104"
	f.bills(d, map[string]int64{"2026-08": 60000, "2026-09": 60000, "2026-10": 60000})
	dBills := insert(&f)
	f.profile(b, at("10-02"), map[string]string{"region": "r2"})
	later := insert(&f)
	if err := w.RefreshSubscribersAfter(ctx, []string{b}, later, rules); err != nil {
		t.Fatal(err)
	}
	if got := readSubscriber(t, w, b); got.region != "r2" {
		t.Errorf("b after a refresh for its new profile: region %q, want r2", got.region)
	}
	if got := readSubscriber(t, w, d); got.rows != 1 || got.billAvg != 60000 {
		t.Fatalf("d, whose insert was in when b's refresh began: %+v, want one row with the bill average 60000", got)
	}
	leftOut(d, dBills, "recomputed by b's refresh")
}

// TestRefreshWaitsForRunningInserts: a refresh that begins while an insert
// of events that change subscribers runs (SubscribersInserting) waits for
// it and recomputes its subscribers too, so that their own refresh has
// nothing left to do; an insert that does not end holds a refresh back for
// a bounded time only.
func TestRefreshWaitsForRunningInserts(t *testing.T) {
	w := open(t)
	ctx := context.Background()
	const a, b = "13910009201", "13910009202"
	var crm, bills facts
	crm.profile(a, at("10-01"), map[string]string{"region": "r1"})
	if err := w.InsertCRM(ctx, crm.crm); err != nil {
		t.Fatal(err)
	}
	profiles := w.SubscribersInserted([]string{a})

	// The billing consumer's insert of b's bills is running when the CRM
	// consumer's refresh of a begins, and ends 200 ms later.
	done := w.SubscribersInserting()
	bills.bills(b, map[string]int64{"2026-08": 60000, "2026-09": 60000, "2026-10": 60000})
	billsTicket := make(chan uint64, 1)
	go func() {
		defer done()
		time.Sleep(200 * time.Millisecond)
		if err := w.InsertBilling(ctx, bills.billing); err != nil {
			t.Error(err)
		}
		billsTicket <- w.SubscribersInserted([]string{b})
	}()
	if err := w.RefreshSubscribersAfter(ctx, []string{a}, profiles, rules); err != nil {
		t.Fatal(err)
	}
	if got := readSubscriber(t, w, b); got.rows != 1 || got.billAvg != 60000 {
		t.Fatalf("b, whose insert ran when a's refresh began: %+v, want one row with the bill average 60000", got)
	}
	version := func(m string) uint64 { return subscriberVersion(t, w, m) }
	was := version(b)
	if err := w.RefreshSubscribersAfter(ctx, []string{b}, <-billsTicket, rules); err != nil {
		t.Fatal(err)
	}
	if v := version(b); v != was {
		t.Errorf("b's own refresh wrote version %d over %d; a's refresh had recomputed it", v, was)
	}

	// An insert that never ends: the refresh goes on without it.
	stuck := w.SubscribersInserting()
	defer stuck()
	crm.crm = nil
	crm.profile(a, at("10-02"), map[string]string{"region": "r2"})
	if err := w.InsertCRM(ctx, crm.crm); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan error, 1)
	go func() {
		refreshed <- w.RefreshSubscribersAfter(ctx, []string{a}, w.SubscribersInserted([]string{a}), rules)
	}()
	select {
	case err := <-refreshed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a refresh waited 10 s for an insert that does not end")
	}
	if got := readSubscriber(t, w, a); got.region != "r2" {
		t.Errorf("a after the refresh beside a stuck insert: region %q, want r2", got.region)
	}
}
