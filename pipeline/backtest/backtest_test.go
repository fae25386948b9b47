package backtest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/backtest"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// on is a local time in Shanghai, e.g. on("03-04", 10).
func on(monthDay string, hour int) time.Time {
	d, err := time.ParseInLocation("2006-01-02", "2026-"+monthDay, shanghai)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(hour) * time.Hour)
}

// history stores a known history: hotline callers, a port-out query, a
// subscriber falling silent, churns before, inside and after the period.
func history(t *testing.T) *warehouse.Warehouse {
	t.Helper()
	ctx := context.Background()
	ch, _ := testenv.ClickHouse(t)
	wh, err := warehouse.Open(ctx, ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const (
		s1, s2, s3, s4 = "13900000001", "13900000002", "13900000003", "13900000004"
		s5, s6, s7, s8 = "13900000005", "13900000006", "13900000007", "13900000008"
	)
	n := 0
	var cdrs []warehouse.CDRRow
	var crms []warehouse.CRMRow
	call := func(msisdn, peer string, dir schemas.Direction, at time.Time) {
		n++
		cdrs = append(cdrs, warehouse.CDRRow{CDR: schemas.CDR{EventID: fmt.Sprintf("c-%d", n), MSISDN: msisdn, Peer: peer,
			Direction: dir, StartTime: at, DurationS: 60}, Network: schemas.NetworkCMCC, Day: warehouse.LocalDay(at, shanghai),
			Provenance: warehouse.Provenance{Offset: int64(n)}})
	}
	crm := func(msisdn string, typ schemas.CRMType, at time.Time) {
		n++
		row := warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: fmt.Sprintf("r-%d", n), MSISDN: msisdn, Type: typ, TS: at},
			Day: warehouse.LocalDay(at, shanghai), ProfileJSON: "{}", Provenance: warehouse.Provenance{Offset: int64(n)}}
		if typ == schemas.CRMProfile {
			tier, status := schemas.TierGold, "active"
			row.Profile = &schemas.Profile{Tier: &tier, Status: &status}
		}
		crms = append(crms, row)
	}
	for _, m := range []string{s1, s2, s3, s4, s5, s6, s7, s8} {
		crm(m, schemas.CRMProfile, on("01-10", 9))
	}
	// s1 calls 10086 three times, churns 16 days after the third call.
	call(s1, "10086", schemas.DirectionMO, on("03-02", 10))
	call(s1, "10086", schemas.DirectionMO, on("03-03", 10))
	call(s1, "10086", schemas.DirectionMO, on("03-04", 10))
	crm(s1, schemas.CRMDeactivate, on("03-20", 15))
	// s2 calls twice and stays.
	call(s2, "10086", schemas.DirectionMO, on("03-05", 10))
	call(s2, "10086", schemas.DirectionMO, on("03-06", 10))
	// s3 asks for a port-out code and leaves 17 days later.
	crm(s3, schemas.CRMPortOutQuery, on("03-08", 11))
	crm(s3, schemas.CRMDeactivate, on("03-25", 15))
	// s4 left before the period: not part of the population.
	crm(s4, schemas.CRMDeactivate, on("02-10", 15))
	// s5's first two calls fall before the period (the replayed lookback);
	// it leaves 44 days after the third.
	call(s5, "10086", schemas.DirectionMO, on("02-25", 10))
	call(s5, "10086", schemas.DirectionMO, on("02-26", 10))
	call(s5, "10086", schemas.DirectionMO, on("03-02", 10))
	crm(s5, schemas.CRMDeactivate, on("04-15", 15))
	// s6 takes 4 calls a day and falls silent on 03-06, leaving on 03-12;
	// s7 goes on calling.
	for d := on("02-01", 0); d.Before(on("03-11", 0)); d = d.AddDate(0, 0, 1) {
		for h := range 4 {
			if d.Before(on("03-06", 0)) {
				call(s6, "13512345678", schemas.DirectionMT, d.Add(time.Duration(9+h)*time.Hour))
			}
			call(s7, "13512345678", schemas.DirectionMT, d.Add(time.Duration(9+h)*time.Hour))
		}
	}
	crm(s6, schemas.CRMDeactivate, on("03-12", 15))
	if err := wh.InsertCDR(ctx, cdrs); err != nil {
		t.Fatal(err)
	}
	if err := wh.InsertCRM(ctx, crms); err != nil {
		t.Fatal(err)
	}
	keys := map[warehouse.DayKey]bool{}
	for _, c := range cdrs {
		keys[warehouse.DayKey{MSISDN: c.MSISDN, Day: c.Day}] = true
	}
	var list []warehouse.DayKey
	for k := range keys {
		list = append(list, k)
	}
	def := config.Default().Rules
	if err := wh.RefreshDaily(ctx, list, warehouse.DailyRules{HomeNetwork: def.HomeNetwork, HotlineNumbers: def.HotlineNumbers,
		CompetitorHotlines: def.CompetitorHotlines}); err != nil {
		t.Fatal(err)
	}
	if err := wh.RefreshSubscribers(ctx, []string{s1, s2, s3, s4, s5, s6, s7, s8},
		warehouse.TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}); err != nil {
		t.Fatal(err)
	}
	return wh
}

func TestBacktestKnownHistory(t *testing.T) {
	wh := history(t)
	ctx := context.Background()
	period := backtest.Config{From: on("03-01", 0), To: on("03-10", 0), Location: shanghai}
	defaults := config.Default().Rules
	tuned := defaults
	tuned.HotlineCalls.Calls = 2

	a, err := backtest.Run(ctx, wh, "defaults", defaults, period)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backtest.Run(ctx, wh, "tuned", tuned, period)
	if err != nil {
		t.Fatal(err)
	}
	// Population: s4 left before the period; s1, s3, s5 and s6 leave
	// within the horizon; s2, s7, s8 stay.
	if rep := a.Report; rep.Subscribers != 7 || rep.Churners != 4 {
		t.Errorf("population: %d subscribers, %d churners, want 7 and 4", rep.Subscribers, rep.Churners)
	}
	type fig struct {
		warnings, flagged, caught, loyal int
		precision, recall, lead          string
	}
	get := func(r backtest.Result, code string) fig {
		row, _ := r.Report.Row(code)
		f := func(v *float64) string {
			if v == nil {
				return "-"
			}
			return fmt.Sprintf("%.3g", *v)
		}
		return fig{row.Warnings, row.Flagged, row.Caught, row.Loyal, f(row.Precision), f(row.Recall), f(row.MedianLeadDays)}
	}
	for _, tc := range []struct {
		name string
		res  backtest.Result
		code string
		want fig
	}{
		// s1 on 03-04 (lead 16) and s5 on 03-02, its window filled by the
		// lookback (lead 44).
		{"defaults", a, "hotline_calls", fig{2, 2, 2, 0, "1", "0.5", "30"}},
		// 2 calls: s1 on 03-03 (lead 17) and the loyal s2; s5 fired on
		// 02-26, before the period, and that suppresses 03-02.
		{"tuned", b, "hotline_calls", fig{2, 2, 1, 1, "0.5", "0.25", "17"}},
		{"defaults", a, "port_out", fig{1, 1, 1, 0, "1", "0.25", "17"}},
		{"tuned", b, "port_out", fig{1, 1, 1, 0, "1", "0.25", "17"}},
		// s6, silent from 03-06 and deactivated since: the backtest sees it
		// active on the days before its churn.
		{"defaults", a, "silent_yesterday", fig{5, 1, 1, 0, "1", "0.25", "6"}},
	} {
		if got := get(tc.res, tc.code); got != tc.want {
			t.Errorf("%s %s: %+v, want %+v", tc.name, tc.code, got, tc.want)
		}
	}
	if a.RuleVersion != defaults.Version() || b.RuleVersion != tuned.Version() || a.RuleVersion == b.RuleVersion {
		t.Errorf("rule versions %s, %s", a.RuleVersion, b.RuleVersion)
	}

	var out bytes.Buffer
	if err := backtest.WriteComparison(&out, period, []backtest.Result{a, b}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"backtest 2026-03-01 to 2026-03-10 (Asia/Shanghai)",
		"A: defaults, rule version " + a.RuleVersion,
		"B: tuned, rule version " + b.RuleVersion,
		"7 subscribers, 4 churned in the period or within 90 days after it",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("comparison lacks %q:\n%s", want, text)
		}
	}
	var line []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "hotline_calls ") {
			line = strings.Fields(l)
		}
	}
	want := []string{"hotline_calls", "2", "2", "2", "1.000", "1.8", "0.500", "30.0", "2", "2", "1", "0.500", "0.9", "0.250", "17.0"}
	if strings.Join(line, " ") != strings.Join(want, " ") {
		t.Errorf("hotline_calls side by side: %q, want %q\n%s", line, want, text)
	}

	// Nothing was emitted.
	if n := testenv.Count(t, wh.Conn(), fmt.Sprintf("SELECT count() FROM %s.warnings", wh.Database())); n != 0 {
		t.Errorf("the backtest stored %d warnings", n)
	}
}

func TestBacktestRefusesBadPeriod(t *testing.T) {
	for _, c := range []backtest.Config{
		{From: on("03-10", 0), To: on("03-01", 0), Location: shanghai},
		{To: on("03-01", 0), Location: shanghai},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
