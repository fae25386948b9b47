package realtime_test

import (
	"strconv"
	"testing"
	"time"

	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

func benchRules() realtime.Rules {
	return realtime.Rules{Thresholds: signals.DefaultThresholds(), HotlineNumbers: []string{"10086"},
		CompetitorHotlines: []string{"10010", "10000", "10099"}, Plan: numbering.NewPlan(nil, schemas.NetworkCMCC)}
}

const benchSubscribers = 10000

var benchStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// cdrRows is a stream like the simulated one: mostly ordinary calls, one in
// 50 an MO call to the hotline, one in 500 to a competitor's, one in 1000 a
// forward to another network, over benchSubscribers subscribers, one a second.
func cdrRows(n int) []warehouse.CDRRow {
	rows := make([]warehouse.CDRRow, n)
	for i := range rows {
		msisdn := strconv.Itoa(13_800_000_000 + i*7919%benchSubscribers)
		r := warehouse.CDRRow{CDR: schemas.CDR{EventID: "c-" + strconv.Itoa(i), MSISDN: msisdn,
			Peer: strconv.Itoa(13_900_000_000 + i), Direction: schemas.DirectionMT,
			StartTime: benchStart.Add(time.Duration(i) * time.Second), DurationS: 60}, Network: schemas.NetworkCMCC}
		switch {
		case i%1000 == 999:
			r.Direction, r.ForwardTo, r.Network = schemas.DirectionFWD, "18612340002", schemas.NetworkCUCC
		case i%500 == 499:
			r.Direction, r.Peer, r.Network = schemas.DirectionMO, "10010", schemas.NetworkSPECIAL
		case i%50 == 49:
			r.Direction, r.Peer, r.Network = schemas.DirectionMO, "10086", schemas.NetworkSPECIAL
		}
		rows[i] = r
	}
	return rows
}

// BenchmarkCDRObserve is the real-time rule evaluation per CDR
// (hotline_calls, competitor_hotline, forward_offnet), warnings included.
// Run with: go test ./pipeline/realtime -run XXX -bench Observe
func BenchmarkCDRObserve(b *testing.B) {
	rows := cdrRows(200_000)
	s := realtime.NewCDRState(benchRules(), "cdr.voice", benchStart, nil, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(rows) { // start over later, as fresh events
			b.StopTimer()
			i = 0
			for j := range rows {
				rows[j].StartTime = rows[j].StartTime.Add(time.Duration(len(rows)) * time.Second)
				rows[j].EventID += "'"
			}
			b.StartTimer()
		}
		s.Observe(&rows[i])
		i++
	}
}

// BenchmarkBillingObserve: suspension_imminent per billing event (a bill,
// then balances, some low).
func BenchmarkBillingObserve(b *testing.B) {
	rows := make([]warehouse.BillingRow, 100_000)
	for i := range rows {
		msisdn := strconv.Itoa(13_800_000_000 + i%benchSubscribers)
		amount := int64(3880 + i%5000)
		r := warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: "b-" + strconv.Itoa(i), MSISDN: msisdn,
			TS: benchStart.Add(time.Duration(i) * time.Second)}}
		if i < benchSubscribers {
			r.Type, r.AmountFen, r.BillMonth = schemas.BillingBill, &amount, "2026-10"
		} else {
			r.Type, r.BalanceFen = schemas.BillingBalance, &amount
		}
		rows[i] = r
	}
	s := realtime.NewBillingState(benchRules(), "billing.events", benchStart, nil, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Observe(&rows[i%len(rows)])
		i++
	}
}

// BenchmarkCRMObserve: port_out and business_op per CRM event (one in ten
// fires).
func BenchmarkCRMObserve(b *testing.B) {
	rows := make([]warehouse.CRMRow, 10_000)
	for i := range rows {
		typ := schemas.CRMProfile
		if i%10 == 9 {
			typ = schemas.CRMPortOutQuery
		}
		rows[i] = warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: "r-" + strconv.Itoa(i),
			MSISDN: strconv.Itoa(13_800_000_000 + i), Type: typ, TS: benchStart.Add(time.Duration(i) * time.Second)}}
	}
	s := realtime.NewCRMState(benchRules(), "crm.events", benchStart)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Observe(&rows[i%len(rows)])
		i++
	}
}
