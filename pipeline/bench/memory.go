package bench

import (
	"runtime"
	"strconv"
	"strings"
	"time"

	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// Memory is the heap the real-time state holds per subscriber.
type Memory struct {
	CDRPerSubscriber     float64
	BillingPerSubscriber float64
}

// StateMemory loads n subscribers into the real-time state through Observe,
// as the consumers do, and measures the live heap before and after (after a
// full GC each time): a CDRState holding one hotline call per subscriber,
// and a BillingState holding one monthly bill per subscriber. Every string
// is a fresh allocation, as decoded messages are.
func StateMemory(rules realtime.Rules, n int) Memory {
	if n <= 0 {
		return Memory{}
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hotline := "10086"
	if len(rules.HotlineNumbers) > 0 {
		hotline = rules.HotlineNumbers[0]
	}
	var m Memory

	before := liveHeap()
	cdr := realtime.NewCDRState(rules, "cdr.voice", t0, nil, nil)
	var row warehouse.CDRRow
	for i := range n {
		msisdn := strconv.Itoa(13_000_000_000 + i)
		row = warehouse.CDRRow{CDR: schemas.CDR{
			EventID: "c-" + msisdn + "-20261101-1", MSISDN: msisdn, Peer: strings.Clone(hotline),
			Direction: schemas.DirectionMO, StartTime: t0.Add(time.Duration(i) * time.Millisecond), DurationS: 60,
		}, Network: schemas.NetworkSPECIAL, Day: t0}
		cdr.Observe(&row)
	}
	after := liveHeap()
	if cdr.Subscribers() != n {
		panic("bench: the CDR state does not hold every subscriber")
	}
	runtime.KeepAlive(cdr)
	m.CDRPerSubscriber = float64(int64(after)-int64(before)) / float64(n)
	cdr = nil

	before = liveHeap()
	bills := realtime.NewBillingState(rules, "billing.events", t0, nil, nil)
	var brow warehouse.BillingRow
	for i := range n {
		msisdn := strconv.Itoa(13_000_000_000 + i)
		amount := int64(3880 + i%10000)
		brow = warehouse.BillingRow{BillingEvent: schemas.BillingEvent{
			EventID: "b-" + msisdn + "-2026-10", MSISDN: msisdn, Type: schemas.BillingBill, TS: t0,
			AmountFen: &amount, BillMonth: strings.Clone("2026-10"),
		}, Day: t0}
		bills.Observe(&brow)
	}
	after = liveHeap()
	runtime.KeepAlive(bills)
	m.BillingPerSubscriber = float64(int64(after)-int64(before)) / float64(n)
	runtime.GC()
	return m
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
