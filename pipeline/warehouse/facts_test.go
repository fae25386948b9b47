package warehouse_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestInsertCDRColumns: every field of a CDR row lands in its own column of
// cdr (the insert goes column by column, where two string columns swapped
// would still type-check).
func TestInsertCDRColumns(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 22, 23, 30, 5, 0, time.FixedZone("CST", 8*3600))
	rows := []warehouse.CDRRow{
		{CDR: schemas.CDR{EventID: "e-1", MSISDN: "13800000001", Peer: "13900000002", PeerNetwork: "CUCC",
			Direction: schemas.DirectionMO, StartTime: start, DurationS: 125, CellID: "cell-7"},
			Network: "CUCC", Day: warehouse.LocalDay(start, start.Location()),
			Provenance: warehouse.Provenance{Partition: 3, Offset: 41}},
		{CDR: schemas.CDR{EventID: "e-2", MSISDN: "13800000001", Peer: "13900000003", Direction: schemas.DirectionFWD,
			StartTime: start.Add(time.Minute), ForwardTo: "13300000004"},
			Network: "CTCC", NetworkDerived: true, Day: warehouse.LocalDay(start, start.Location()),
			Provenance: warehouse.Provenance{Partition: 3, Offset: 42}},
	}
	before := time.Now().Add(-time.Second)
	if err := wh.InsertCDR(ctx, rows); err != nil {
		t.Fatal(err)
	}
	r, err := conn.Query(ctx, `SELECT event_id, msisdn, peer, peer_network, network_derived, toString(direction),
		start_time, toString(day), duration_s, forward_to, cell_id, kafka_partition, kafka_offset, ingested_at
		FROM `+db+`.cdr ORDER BY event_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := []string{
		"e-1 13800000001 13900000002 CUCC 0 MO 2026-11-22T15:30:05Z 2026-11-22 125  cell-7 3 41",
		"e-2 13800000001 13900000003 CTCC 1 FWD 2026-11-22T15:31:05Z 2026-11-22 0 13300000004  3 42",
	}
	i := 0
	for ; r.Next(); i++ {
		var id, msisdn, peer, network, direction, day, forward, cell string
		var derived uint8
		var duration uint32
		var partition int32
		var offset int64
		var startTime, ingested time.Time
		if err := r.Scan(&id, &msisdn, &peer, &network, &derived, &direction, &startTime, &day, &duration, &forward, &cell,
			&partition, &offset, &ingested); err != nil {
			t.Fatal(err)
		}
		got := fmtRow(id, msisdn, peer, network, derived, direction, startTime.UTC().Format(time.RFC3339), day, duration,
			forward, cell, partition, offset)
		if i >= len(want) || got != want[i] {
			t.Errorf("row %d: %q, want %q", i, got, want[min(i, len(want)-1)])
		}
		if ingested.Before(before.Truncate(time.Second)) || ingested.After(time.Now().Add(time.Second)) {
			t.Errorf("row %d: ingested_at %v, want about now", i, ingested)
		}
	}
	if i != len(want) {
		t.Errorf("%d rows, want %d", i, len(want))
	}
}

// TestInsertCDRLargeBatch: a batch large enough to go as two INSERTs side
// by side lands whole, every row once.
func TestInsertCDRLargeBatch(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	const n = 70_001
	start := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	rows := make([]warehouse.CDRRow, n)
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Second)
		rows[i] = warehouse.CDRRow{CDR: schemas.CDR{EventID: fmt.Sprintf("e-%d", i), MSISDN: fmt.Sprintf("138%08d", i%5000),
			Peer: "13900000000", Direction: schemas.DirectionMO, StartTime: at, DurationS: 60},
			Network: "CMCC", Day: warehouse.LocalDay(at, time.UTC), Provenance: warehouse.Provenance{Partition: int32(i % 4), Offset: int64(i)}}
	}
	if err := wh.InsertCDR(ctx, rows); err != nil {
		t.Fatal(err)
	}
	var count, ids, sum uint64
	var first, last string
	if err := conn.QueryRow(ctx, `SELECT count(), uniqExact(event_id), toUInt64(sum(kafka_offset)), min(event_id), max(event_id) FROM `+db+`.cdr`).
		Scan(&count, &ids, &sum, &first, &last); err != nil {
		t.Fatal(err)
	}
	if count != n || ids != n || sum != n*(n-1)/2 {
		t.Errorf("%d rows, %d event ids, offsets summing to %d (%s to %s); want %d, %d and %d", count, ids, sum, first, last, n, n, n*(n-1)/2)
	}
}

func fmtRow(fields ...any) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprint(f)
	}
	return strings.Join(parts, " ")
}

// TestCompressionBothWays: blocks reach the server and come back whole
// with lz4 (what a remote server gets by default) and without compression
// (what a loopback address gets by default, as in every other test here).
func TestCompressionBothWays(t *testing.T) {
	for _, method := range []string{config.CompressionLZ4, config.CompressionNone} {
		t.Run(method, func(t *testing.T) {
			ch, _ := testenv.ClickHouse(t)
			ch.Compression = method
			wh := openWarehouseWith(t, ch)
			ctx := context.Background()
			start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
			rows := make([]warehouse.CDRRow, 5000)
			for i := range rows {
				at := start.Add(time.Duration(i) * time.Second)
				rows[i] = warehouse.CDRRow{CDR: schemas.CDR{EventID: fmt.Sprintf("z-%d", i), MSISDN: "13800000001", Peer: "13900000000",
					Direction: schemas.DirectionMO, StartTime: at, DurationS: int64(i)}, Network: schemas.NetworkCMCC, Day: warehouse.LocalDay(at, time.UTC)}
			}
			if err := wh.InsertCDR(ctx, rows); err != nil {
				t.Fatal(err)
			}
			var n, sum uint64
			if err := wh.Conn().QueryRow(ctx, "SELECT count(), sum(duration_s) FROM "+ch.Database+".cdr").Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			if n != 5000 || sum != 4999*5000/2 {
				t.Errorf("%s: %d rows, durations summing to %d; want 5000 and %d", method, n, sum, 4999*5000/2)
			}
		})
	}
}
