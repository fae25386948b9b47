package warehouse_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"churnwatch/pipeline/bench"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// BenchmarkInsertCDR builds, encodes and sends one batch of 50,000 CDRs to
// the local ClickHouse (the column insert of InsertCDR), reporting the time
// per row and the server's CPU per row (its background merges included).
// Run with: go test ./pipeline/warehouse -run XXX -bench InsertCDR
func BenchmarkInsertCDR(b *testing.B) {
	const n = 50_000
	ch, _ := testenv.ClickHouse(b)
	wh := openWarehouseWith(b, ch)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]warehouse.CDRRow, n)
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Second)
		rows[i] = warehouse.CDRRow{CDR: schemas.CDR{EventID: "c-" + strconv.Itoa(i),
			MSISDN: strconv.Itoa(13_800_000_000 + i*7919%10_000), Peer: "13900000000", Direction: schemas.DirectionMO,
			StartTime: at, DurationS: 60, CellID: "cell-" + strconv.Itoa(i%300)},
			Network: schemas.NetworkCMCC, Day: warehouse.LocalDay(at, time.UTC),
			Provenance: warehouse.Provenance{Partition: int32(i % 4), Offset: int64(i)}}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := bench.StartCPU(ch.Addr)
	for b.Loop() {
		if err := wh.InsertCDR(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	client, server, ok := cpu.Stop()
	b.ReportMetric(float64(client.CPU().Nanoseconds())/float64(b.N*n), "client-cpu-ns/row")
	if ok {
		b.ReportMetric(float64(server.CPU().Nanoseconds())/float64(b.N*n), "server-cpu-ns/row")
	}
}
