package realtime

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestRestoreCDRWithDuplicateAfterCommit replays what the fault suite found:
// the topic holds call b twice (a producer retry), at offsets 1 and 3. A
// consumer stores offsets 0-1 and commits 2, stores 2-3 (b's copy at 3
// inserted last, so it alone survives the merge of cdr) and is killed before
// committing. The state restored at offset 2 must continue like the
// fault-free run: the warning fires at call c, anchored at c, and the
// duplicate fires nothing. (Restored without b, the state fired at the
// duplicate instead, anchored at b.)
func TestRestoreCDRWithDuplicateAfterCommit(t *testing.T) {
	ctx := context.Background()
	cfg, conn := testenv.ClickHouse(t)
	wh, err := warehouse.Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const partition = 4
	const m = "13800000001"
	topic := []*warehouse.CDRRow{
		cdr(ev{"a", m, "10086", schemas.DirectionMO, 0, ""}),
		cdr(ev{"b", m, "10086", schemas.DirectionMO, 1, ""}),
		cdr(ev{"c", m, "10086", schemas.DirectionMO, 1, ""}), // same second as b
		cdr(ev{"b", m, "10086", schemas.DirectionMO, 1, ""}),
	}
	for i, r := range topic {
		r.Partition, r.Offset, r.Day = partition, int64(i), warehouse.LocalDay(r.StartTime, time.UTC)
	}
	r := rules()

	// Fault-free: one state sees the whole partition.
	var want []warehouse.WarningRow
	s := NewCDRState(r, "cdr.voice", time.Time{}, nil, nil)
	for _, row := range topic {
		want = append(want, s.Observe(row)...)
	}
	if len(want) != 1 || want[0].WarningID != signals.WarningID(m, signals.HotlineCalls, "c") {
		t.Fatalf("fault-free run fired %+v, want one hotline_calls warning anchored at c", want)
	}

	// The killed run stored two batches, as the consumer stores them.
	store := func(rows ...*warehouse.CDRRow) {
		t.Helper()
		var batch []warehouse.CDRRow
		for _, row := range rows {
			batch = append(batch, *row)
		}
		if err := wh.InsertCDR(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := wh.InsertHotlineCalls(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	store(topic[0], topic[1])
	store(topic[2], topic[3])
	for _, table := range []string{"cdr", "hotline_calls"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+cfg.Database+"."+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}

	// Restart at the committed offset 2 and replay 2-3.
	restored, err := RestoreCDR(ctx, wh, r, "cdr.voice", partition, 2)
	if err != nil {
		t.Fatal(err)
	}
	if wm := restored.Watermark(); !wm.Equal(topic[1].StartTime) {
		t.Errorf("restored watermark %s, want %s (call b's time)", wm, topic[1].StartTime)
	}
	var got []warehouse.WarningRow
	for _, row := range topic[2:] {
		got = append(got, restored.Observe(row)...)
	}
	if len(got) != 1 || got[0].WarningID != want[0].WarningID || got[0].Offset != want[0].Offset {
		t.Errorf("after the restart fired %+v, want %s at offset %d like the fault-free run", got, want[0].WarningID, want[0].Offset)
	}
}
