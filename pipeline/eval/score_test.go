package eval

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/simulate"
)

var (
	shanghai = time.FixedZone("CST", 8*3600)
	cells    = regexp.MustCompile(`\s{2,}`)
)

func local(day, clock string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, "2026-11-"+day+" "+clock, shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func f(v float64) *float64 { return &v }

// TestScore scores hand-made warnings: three churners (one never warned),
// three loyal subscribers, warnings before, on and after churn days (one a
// second before the local midnight, one at it, given in UTC), a second
// warning of a signal, a birthday and a code the catalogue does not know.
func TestScore(t *testing.T) {
	labels := []simulate.Label{
		{MSISDN: "13800000001", Churner: true, Persona: simulate.PersonaHotlineComplainer, ChurnDay: local("10", "00:00:00")},
		{MSISDN: "13800000002", Churner: true, Persona: simulate.PersonaForwarder, ChurnDay: local("20", "00:00:00")},
		{MSISDN: "13800000003", Churner: true, Persona: simulate.PersonaFadingUsage, ChurnDay: local("15", "00:00:00")},
		{MSISDN: "13900000001"}, {MSISDN: "13900000002"}, {MSISDN: "13900000003"},
	}
	a, b, loyal1, loyal2, loyal3 := "13800000001", "13800000002", "13900000001", "13900000002", "13900000003"
	warnings := []Warning{
		{a, signals.HotlineCalls, local("03", "10:00:00")}, // lead 7
		{a, signals.HotlineCalls, local("05", "10:00:00")}, // not the first
		{b, signals.HotlineCalls, local("18", "23:59:59")}, // lead 2
		{loyal1, signals.HotlineCalls, local("01", "09:00:00")},
		{a, signals.PortOut, local("10", "17:00:00")}, // on the churn day: late
		{b, signals.PortOut, local("19", "09:00:00")}, // lead 1
		// A second before local midnight, and at it, written in UTC.
		{a, signals.CompetitorHotline, time.Date(2026, 11, 9, 15, 59, 59, 0, time.UTC)}, // caught, lead 1
		{b, signals.CompetitorHotline, time.Date(2026, 11, 19, 16, 0, 0, 0, time.UTC)},  // late
		{loyal2, signals.Birthday, local("02", "23:59:59")},
		{loyal3, "mystery", local("04", "12:00:00")},
	}
	rep := Score(labels, warnings, shanghai)
	if rep.Subscribers != 6 || rep.Churners != 3 || rep.Loyal != 3 || rep.BaseChurnRate != 0.5 {
		t.Fatalf("population: %+v", rep)
	}
	want := map[string]Row{
		signals.HotlineCalls: {Warnings: 4, Flagged: 3, Caught: 2, Late: 0, Loyal: 1, CaughtWithin30: 2, CaughtWithin60: 2, CaughtWithin90: 2,
			Lift: f(4.0 / 3), Precision: f(2.0 / 3), Recall: f(2.0 / 3), LoyalRate: f(1.0 / 3), MedianLeadDays: f(4.5)},
		signals.PortOut: {Warnings: 2, Flagged: 2, Caught: 1, Late: 1, Loyal: 0, CaughtWithin30: 1, CaughtWithin60: 1, CaughtWithin90: 1,
			Lift: f(2), Precision: f(1), Recall: f(1.0 / 3), LoyalRate: f(0), MedianLeadDays: f(1)},
		signals.CompetitorHotline: {Warnings: 2, Flagged: 2, Caught: 1, Late: 1, Loyal: 0, CaughtWithin30: 1, CaughtWithin60: 1, CaughtWithin90: 1,
			Lift: f(2), Precision: f(1), Recall: f(1.0 / 3), LoyalRate: f(0), MedianLeadDays: f(1)},
		signals.Birthday:       {Warnings: 1, Flagged: 1, Loyal: 1, Lift: f(0), Precision: f(0), Recall: f(0), LoyalRate: f(1.0 / 3)},
		"mystery":              {Warnings: 1, Flagged: 1, Loyal: 1, Lift: f(0), Precision: f(0), Recall: f(0), LoyalRate: f(1.0 / 3)},
		signals.UsageDropDaily: {Recall: f(0), LoyalRate: f(0)},
		// Every warning but the birthday: a first on the 3rd (lead 7), b
		// first on the 18th (lead 2), and two loyal subscribers.
		AnySignal: {Warnings: 9, Flagged: 4, Caught: 2, Loyal: 2, CaughtWithin30: 2, CaughtWithin60: 2, CaughtWithin90: 2,
			Lift: f(1), Precision: f(0.5), Recall: f(2.0 / 3), LoyalRate: f(2.0 / 3), MedianLeadDays: f(4.5)},
	}
	for code, w := range want {
		got, ok := rep.Row(code)
		if !ok {
			t.Errorf("no row for %s", code)
			continue
		}
		w.Signal, w.NameZH, w.Kind = got.Signal, got.NameZH, got.Kind
		if !reflect.DeepEqual(round(got), round(w)) {
			t.Errorf("%s:\n got %s\nwant %s", code, show(got), show(w))
		}
	}
	var order []string
	for _, r := range rep.Signals {
		order = append(order, r.Signal)
	}
	if len(order) != 15 || order[0] != signals.HotlineCalls || order[12] != signals.Birthday || order[13] != "mystery" || order[14] != AnySignal {
		t.Errorf("rows in order %v, want the catalogue, then unknown codes, then %s", order, AnySignal)
	}
	if r, _ := rep.Row(signals.HotlineCalls); r.NameZH != "拨打10086次数" || r.Kind != string(signals.RealTime) {
		t.Errorf("hotline_calls row names %q, kind %q", r.NameZH, r.Kind)
	}

	personas := map[string]PersonaRow{}
	for _, p := range rep.Personas {
		personas[p.Persona] = p
	}
	if len(rep.Personas) != len(simulate.Personas()) {
		t.Errorf("%d persona rows, want one per persona", len(rep.Personas))
	}
	for name, w := range map[string]PersonaRow{
		simulate.PersonaHotlineComplainer: {Churners: 1, Caught: 1, Recall: f(1), MedianLeadDays: f(7),
			CaughtBy: map[string]int{signals.HotlineCalls: 1, signals.CompetitorHotline: 1}},
		simulate.PersonaForwarder: {Churners: 1, Caught: 1, Recall: f(1), MedianLeadDays: f(2),
			CaughtBy: map[string]int{signals.HotlineCalls: 1, signals.PortOut: 1}},
		simulate.PersonaFadingUsage: {Churners: 1, Recall: f(0), CaughtBy: map[string]int{}},
		simulate.PersonaStopsPaying: {CaughtBy: map[string]int{}},
	} {
		w.Persona = name
		if got := personas[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("persona %s:\n got %+v\nwant %+v", name, got, w)
		}
	}

	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	lines := strings.Split(text, "\n")
	if lines[0] != "ground truth: 6 subscribers, 3 churners (base churn rate 50.00%), 3 loyal" {
		t.Errorf("first line %q", lines[0])
	}
	fields := map[string][]string{}
	for _, l := range lines {
		if f := cells.Split(strings.TrimSpace(l), -1); len(f) > 1 {
			fields[f[0]] = f
		}
	}
	for _, want := range [][]string{
		{"hotline_calls", "real time", "4", "3", "2", "2/2/2", "0", "1", "0.667", "1.3", "0.667", "0.3333", "4.5", "拨打10086次数"},
		{"usage_drop_daily", "daily", "0", "0", "0", "0/0/0", "0", "0", "-", "-", "0.000", "0.0000", "-", "通话日均下降"},
		{"mystery", "1", "1", "0", "0/0/0", "0", "1", "0.000", "0.0", "0.000", "0.3333", "-"},
		{"any signal", "but birthday", "9", "4", "2", "2/2/2", "0", "2", "0.500", "1.0", "0.667", "0.6667", "4.5"},
		{"fading_usage", "1", "0", "0.000", "-"},
		{"hotline_complainer", "1", "1", "1.000", "7.0", "competitor_hotline 1, hotline_calls 1"},
	} {
		if got := fields[want[0]]; !reflect.DeepEqual(got, want) {
			t.Errorf("row %s: got %q, want %q", want[0], got, want)
		}
	}
	// The numbers are right-aligned under their headings.
	header := []rune(lines[2])
	end := len([]rune("signal               kind          warnings  flagged  caught  ≤30/60/90 d  late  loyal  precision"))
	if string(header[:end]) != "signal               kind          warnings  flagged  caught  ≤30/60/90 d  late  loyal  precision" {
		t.Errorf("header %q", lines[2])
	}
	for _, l := range lines[3:18] {
		r := []rune(l)
		if len(r) <= end || r[end-1] == ' ' || r[end] != ' ' {
			t.Errorf("precision not aligned at column %d in %q", end, l)
		}
	}
	b2, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"signal":"any_signal"`, `"churners_caught":2`, `"median_lead_days":4.5`, `"precision":null`} {
		if !bytes.Contains(b2, []byte(s)) {
			t.Errorf("JSON lacks %s: %s", s, b2)
		}
	}
}

func TestScoreEdges(t *testing.T) {
	rep := Score(nil, nil, shanghai)
	if rep.Subscribers != 0 || rep.BaseChurnRate != 0 || len(rep.Signals) != len(signals.Catalogue())+1 {
		t.Fatalf("empty: %+v", rep)
	}
	for _, r := range rep.Signals {
		if r.Precision != nil || r.Recall != nil || r.LoyalRate != nil || r.MedianLeadDays != nil {
			t.Errorf("%s: ratios without a denominator must be nil: %s", r.Signal, show(r))
		}
	}
	// A warned subscriber without a label counts as loyal; an odd number of
	// leads has its middle one as the median.
	labels := []simulate.Label{
		{MSISDN: "1", Churner: true, ChurnDay: local("10", "00:00:00"), Persona: "x"},
		{MSISDN: "2", Churner: true, ChurnDay: local("10", "00:00:00"), Persona: "x"},
		{MSISDN: "3", Churner: true, ChurnDay: local("10", "00:00:00"), Persona: "x"},
	}
	ws := []Warning{
		{"1", signals.PortOut, local("01", "00:00:00")},
		{"2", signals.PortOut, local("08", "12:00:00")},
		{"3", signals.PortOut, local("09", "12:00:00")},
		{"stranger", signals.PortOut, local("09", "12:00:00")},
	}
	rep = Score(labels, ws, shanghai)
	r, _ := rep.Row(signals.PortOut)
	if r.Caught != 3 || r.Loyal != 1 || *r.MedianLeadDays != 2 || *r.Precision != 0.75 || *r.Recall != 1 || r.LoyalRate != nil {
		t.Errorf("port_out: %s", show(r))
	}
	if p := rep.Personas[len(rep.Personas)-1]; p.Persona != "x" || p.Caught != 3 {
		t.Errorf("an unknown persona gets its row: %+v", rep.Personas)
	}
}

// round rounds a row's ratios so that DeepEqual compares them sensibly.
func round(r Row) Row {
	for _, p := range []**float64{&r.Precision, &r.Recall, &r.LoyalRate, &r.MedianLeadDays} {
		if *p != nil {
			v := float64(int64(**p*1e9+0.5)) / 1e9
			*p = &v
		}
	}
	return r
}

func show(r Row) string {
	b, _ := json.Marshal(r)
	return string(b)
}
