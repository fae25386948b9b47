package realtime

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

var t0 = time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)

func rules() Rules {
	return Rules{Thresholds: signals.DefaultThresholds(), HotlineNumbers: []string{"10086"},
		CompetitorHotlines: []string{"10010", "10000", "10099"}, Plan: numbering.NewPlan(nil, schemas.NetworkCMCC)}
}

type ev struct {
	id      string
	msisdn  string
	peer    string
	dir     schemas.Direction
	hours   float64
	network schemas.Network
}

func cdr(e ev) *warehouse.CDRRow {
	r := &warehouse.CDRRow{CDR: schemas.CDR{EventID: e.id, MSISDN: e.msisdn, Peer: e.peer, Direction: e.dir,
		StartTime: t0.Add(time.Duration(e.hours * float64(time.Hour)))}, Network: e.network}
	if e.dir == schemas.DirectionFWD {
		r.ForwardTo = e.peer
	}
	return r
}

func fired(ws []warehouse.WarningRow) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Signal+"/"+string(w.Severity))
	}
	return strings.Join(out, ",")
}

// TestCDRSignals feeds sequences of CDRs for one subscriber and checks which
// event fires what.
func TestCDRSignals(t *testing.T) {
	mo := func(id, peer string, h float64) ev { return ev{id, "13800000001", peer, schemas.DirectionMO, h, ""} }
	tests := []struct {
		name   string
		events []ev
		want   []string // per event: what it fires ("" for nothing)
	}{
		{"two calls: under the threshold", []ev{mo("a", "10086", 0), mo("b", "10086", 1)}, []string{"", ""}},
		{"three calls in 7 days: medium", []ev{mo("a", "10086", 0), mo("b", "10086", 1), mo("c", "10086", 2)},
			[]string{"", "", "hotline_calls/medium"}},
		{"third call just inside the window", []ev{mo("a", "10086", 0), mo("b", "10086", 1), mo("c", "10086", 7*24-0.01)},
			[]string{"", "", "hotline_calls/medium"}},
		{"third call exactly 7 days after the first: outside", []ev{mo("a", "10086", 0), mo("b", "10086", 1), mo("c", "10086", 7*24)},
			[]string{"", "", ""}},
		{"five calls: medium then high, no repeats", []ev{mo("a", "10086", 0), mo("b", "10086", 1), mo("c", "10086", 2),
			mo("d", "10086", 3), mo("e", "10086", 4), mo("f", "10086", 5)},
			[]string{"", "", "hotline_calls/medium", "", "hotline_calls/high", ""}},
		{"a duplicate does not advance the count", []ev{mo("a", "10086", 0), mo("b", "10086", 1), mo("b", "10086", 1)},
			[]string{"", "", ""}},
		{"other numbers and MT calls do not count", []ev{mo("a", "10086", 0), mo("b", "95555", 1),
			{"c", "13800000001", "10086", schemas.DirectionMT, 2, ""}, mo("d", "10086", 3)}, []string{"", "", "", ""}},
		{"late call beyond the bound counts but does not fire", []ev{mo("a", "10086", 0), mo("b", "10086", 1),
			{"x", "13800000002", "13512345678", schemas.DirectionMT, 60, ""}, mo("c", "10086", 2)}, []string{"", "", "", ""}},
		{"late call beyond the bound still counts for a later call", []ev{mo("a", "10086", 0),
			{"x", "13800000002", "13512345678", schemas.DirectionMT, 60, ""}, mo("b", "10086", 1), mo("c", "10086", 61)},
			[]string{"", "", "", "hotline_calls/medium"}},
		{"late call inside the bound fires", []ev{mo("a", "10086", 0), mo("b", "10086", 1),
			{"x", "13800000002", "13512345678", schemas.DirectionMT, 40, ""}, mo("c", "10086", 2)},
			[]string{"", "", "", "hotline_calls/medium"}},
		{"one competitor call fires, a second within 7 days does not", []ev{mo("a", "10010", 0), mo("b", "10000", 30)},
			[]string{"competitor_hotline/medium", ""}},
		{"competitor again after the re-alert interval", []ev{mo("a", "10010", 0), mo("b", "10099", 8*24)},
			[]string{"competitor_hotline/medium", "competitor_hotline/medium"}},
		{"forward off-net fires once a week", []ev{{"a", "13800000001", "18612345678", schemas.DirectionFWD, 0, schemas.NetworkCUCC},
			{"b", "13800000001", "18612345678", schemas.DirectionFWD, 1, schemas.NetworkCUCC}},
			[]string{"forward_offnet/high", ""}},
		{"forward on-net, to a landline or a service number does not fire", []ev{
			{"a", "13800000001", "13812345678", schemas.DirectionFWD, 0, schemas.NetworkCMCC},
			{"b", "13800000001", "059112345678", schemas.DirectionFWD, 0, ""},
			{"c", "13800000001", "12580", schemas.DirectionFWD, 0, schemas.NetworkSPECIAL}}, []string{"", "", ""}},
		{"forward abroad fires", []ev{{"a", "13800000001", "+447700900123", schemas.DirectionFWD, 0, schemas.NetworkINTL}},
			[]string{"forward_offnet/high"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewCDRState(rules(), "cdr.voice", time.Time{}, nil, nil)
			for i, e := range tt.events {
				if got := fired(s.Observe(cdr(e))); got != tt.want[i] {
					t.Errorf("event %d (%s at %+.0fh): fired %q, want %q", i, e.id, e.hours, got, tt.want[i])
				}
			}
		})
	}
}

// TestCDRRestore checks that a restored state continues exactly like one
// that saw every event.
func TestCDRRestore(t *testing.T) {
	r := rules()
	s := NewCDRState(r, "cdr.voice", t0.Add(time.Hour), []Call{
		{MSISDN: "13800000001", EventID: "a", Time: t0, Peer: "10086"},
		{MSISDN: "13800000001", EventID: "b", Time: t0.Add(time.Hour), Peer: "10086"},
	}, nil)
	if got := fired(s.Observe(cdr(ev{"b", "13800000001", "10086", schemas.DirectionMO, 1, ""}))); got != "" {
		t.Errorf("a replayed event restored in state fired %q", got)
	}
	if got := fired(s.Observe(cdr(ev{"c", "13800000001", "10086", schemas.DirectionMO, 2, ""}))); got != "hotline_calls/medium" {
		t.Errorf("third call after restore fired %q", got)
	}
	s = NewCDRState(r, "cdr.voice", t0.Add(time.Hour), []Call{
		{MSISDN: "13800000001", EventID: "a", Time: t0, Peer: "10086"},
		{MSISDN: "13800000001", EventID: "b", Time: t0.Add(time.Hour), Peer: "10086"},
		{MSISDN: "13800000001", EventID: "c", Time: t0.Add(2 * time.Hour), Peer: "10086"},
	}, []Fired{{MSISDN: "13800000001", Signal: signals.HotlineCalls, Severity: schemas.SeverityMedium, At: t0.Add(2 * time.Hour)}})
	if got := fired(s.Observe(cdr(ev{"d", "13800000001", "10086", schemas.DirectionMO, 3, ""}))); got != "" {
		t.Errorf("a fourth call after a restored medium warning fired %q", got)
	}
}

func TestWarningFields(t *testing.T) {
	s := NewCDRState(rules(), "cdr.voice", time.Time{}, nil, nil)
	var last []warehouse.WarningRow
	for i, h := range []float64{0, 1, 2.5} {
		r := cdr(ev{fmt.Sprint("e", i), "13800000001", "10086", schemas.DirectionMO, h, ""})
		r.Partition, r.Offset = 3, int64(40+i)
		last = s.Observe(r)
	}
	w := last[0]
	if w.WarningID != signals.WarningID("13800000001", signals.HotlineCalls, "e2") || w.Offset != 42 || w.Partition != 3 ||
		!w.DetectedAt.Equal(t0.Add(150*time.Minute)) || !w.WindowStart.Equal(w.DetectedAt.Add(-7*24*time.Hour)) ||
		w.Evidence["calls"] != 3 || w.Source != warehouse.SourceRealtime {
		t.Errorf("warning = %+v", w)
	}
}

func TestBillingAndCRMSignals(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	bill := func(id, typ string, h float64, amount, balance *int64, month string) *warehouse.BillingRow {
		return &warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: id, MSISDN: "13800000001", Type: schemas.BillingType(typ),
			TS: t0.Add(time.Duration(h * float64(time.Hour))), AmountFen: amount, BalanceFen: balance, BillMonth: month}}
	}
	tests := []struct {
		name   string
		events []*warehouse.BillingRow
		want   []string
	}{
		{"arrears", []*warehouse.BillingRow{bill("a", "ARREARS", 0, i64(100), nil, "")}, []string{"suspension_imminent/high"}},
		{"balance 4.99 yuan", []*warehouse.BillingRow{bill("a", "BALANCE", 0, nil, i64(499), "")}, []string{"suspension_imminent/high"}},
		{"balance 5 yuan, no bill", []*warehouse.BillingRow{bill("a", "BALANCE", 0, nil, i64(500), "")}, []string{""}},
		{"balance under 3 days of spend", []*warehouse.BillingRow{bill("a", "BILL", 0, i64(30000), nil, "2026-10"),
			bill("b", "BALANCE", 1, nil, i64(2999), "")}, []string{"", "suspension_imminent/high"}},
		{"balance exactly 3 days of spend", []*warehouse.BillingRow{bill("a", "BILL", 0, i64(30000), nil, "2026-10"),
			bill("b", "BALANCE", 1, nil, i64(3000), "")}, []string{"", ""}},
		{"an older bill does not replace a newer", []*warehouse.BillingRow{bill("a", "BILL", 0, i64(300), nil, "2026-10"),
			bill("b", "BILL", 0, i64(90000), nil, "2026-09"), bill("c", "BALANCE", 1, nil, i64(2999), "")}, []string{"", "", ""}},
		{"low balance twice in a week fires once", []*warehouse.BillingRow{bill("a", "BALANCE", 0, nil, i64(10), ""),
			bill("b", "ARREARS", 24, i64(10), nil, "")}, []string{"suspension_imminent/high", ""}},
		{"payments never fire", []*warehouse.BillingRow{bill("a", "PAYMENT", 0, i64(0), i64(0), "")}, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewBillingState(rules(), "billing.events", time.Time{}, nil, nil)
			for i, e := range tt.events {
				if got := fired(s.Observe(e)); got != tt.want[i] {
					t.Errorf("event %d (%s): fired %q, want %q", i, e.Type, got, tt.want[i])
				}
			}
		})
	}
	s := NewCRMState(rules(), "crm.events", time.Time{})
	for typ, want := range map[schemas.CRMType]string{
		schemas.CRMPortOutQuery: "port_out/critical", schemas.CRMDeactivate: "port_out/critical",
		schemas.CRMPreCancel: "business_op/high", schemas.CRMLossReport: "business_op/high", schemas.CRMSuspendRequest: "business_op/high",
		schemas.CRMReactivate: "", schemas.CRMProfile: "",
	} {
		r := &warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: string(typ), MSISDN: "13800000001", Type: typ, TS: t0}}
		if got := fired(s.Observe(r)); got != want {
			t.Errorf("%s fired %q, want %q", typ, got, want)
		}
	}
	late := &warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: "late", MSISDN: "13800000001", Type: schemas.CRMPortOutQuery, TS: t0.Add(-49 * time.Hour)}}
	if got := fired(s.Observe(late)); got != "" {
		t.Errorf("a port-out query 49 h behind the partition fired %q", got)
	}
}
