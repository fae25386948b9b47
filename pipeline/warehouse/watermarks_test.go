package warehouse_test

import (
	"context"
	"testing"
	"time"

	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestPartitionWatermarkFromRecordedRows: the watermark below an offset is
// the highest of the rows recorded at or below it, for that topic and
// partition only, whatever the order of the times.
func TestPartitionWatermarkFromRecordedRows(t *testing.T) {
	wh, _, _ := openWarehouse(t)
	ctx := context.Background()
	const topic = "test.cdr.voice"
	t0 := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	if err := wh.RecordWatermarks(ctx, topic, []warehouse.Watermark{
		{Partition: 3, Offset: 10, Time: t0.Add(2 * time.Hour)},
		{Partition: 3, Offset: 20, Time: t0.Add(time.Hour)},
		{Partition: 3, Offset: 30, Time: t0.Add(5 * time.Hour)},
		{Partition: 4, Offset: 15, Time: t0.Add(9 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := wh.RecordWatermarks(ctx, "test.billing.events", []warehouse.Watermark{{Partition: 3, Offset: 15, Time: t0.Add(8 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		before int64
		want   time.Time
	}{
		{25, t0.Add(2 * time.Hour)},
		{20, t0.Add(2 * time.Hour)},
		{30, t0.Add(5 * time.Hour)},
		{1000, t0.Add(5 * time.Hour)},
	} {
		got, err := wh.PartitionWatermark(ctx, topic, "cdr", 3, c.before)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(c.want) {
			t.Errorf("watermark below %d = %v, want %v", c.before, got, c.want)
		}
	}
	// Below the first row there is nothing recorded: the fallback scans cdr,
	// which has no facts, and records that.
	got, err := wh.PartitionWatermark(ctx, topic, "cdr", 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsZero() {
		t.Errorf("watermark below 5 = %v, want none", got)
	}
	if got, err := wh.PartitionWatermark(ctx, topic, "cdr", 3, 5); err != nil || !got.IsZero() {
		t.Errorf("watermark below 5 again = %v, %v; want none", got, err)
	}
	if _, err := wh.PartitionWatermark(ctx, topic, "nope", 3, 5); err == nil {
		t.Error("unknown table accepted")
	}
}

// TestPartitionWatermarkFallback: a partition whose facts were stored before
// partition_watermarks existed gets its watermark from a scan of the facts
// once; the scan's result is recorded and read from then on.
func TestPartitionWatermarkFallback(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	const topic = "test.cdr.voice"
	t0 := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	if err := wh.InsertCDR(ctx, []warehouse.CDRRow{
		hotlineCDR("a", "13800000001", "13900000001", schemas.DirectionMO, t0.Add(time.Hour), 0),
		hotlineCDR("b", "13800000001", "13900000001", schemas.DirectionMO, t0.Add(3*time.Hour), 1),
		hotlineCDR("c", "13800000001", "13900000001", schemas.DirectionMO, t0.Add(2*time.Hour), 2),
		hotlineCDR("d", "13800000001", "13900000001", schemas.DirectionMO, t0.Add(7*time.Hour), 3),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := wh.PartitionWatermark(ctx, topic, "cdr", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(3 * time.Hour); !got.Equal(want) {
		t.Fatalf("watermark below 3 = %v, want %v (the scan of cdr)", got, want)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".partition_watermarks WHERE topic = ? AND kafka_partition = 2 AND kafka_offset = 3",
		topic).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows recorded at offset 3 after the scan, want 1", n)
	}
	// A fact below the offset that the recorded row does not know of shows
	// the restore no longer scans cdr.
	if err := wh.InsertCDR(ctx, []warehouse.CDRRow{
		hotlineCDR("e", "13800000001", "13900000001", schemas.DirectionMO, t0.Add(9*time.Hour), 1),
	}); err != nil {
		t.Fatal(err)
	}
	got, err = wh.PartitionWatermark(ctx, topic, "cdr", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(3 * time.Hour); !got.Equal(want) {
		t.Fatalf("watermark below 3 after recording = %v, want %v (the recorded row)", got, want)
	}
}
