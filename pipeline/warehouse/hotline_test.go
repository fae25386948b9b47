package warehouse_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

func hotlineCDR(id, msisdn, peer string, dir schemas.Direction, at time.Time, offset int64) warehouse.CDRRow {
	return warehouse.CDRRow{CDR: schemas.CDR{EventID: id, MSISDN: msisdn, Peer: peer, Direction: dir, StartTime: at},
		Network: schemas.NetworkSPECIAL, Day: warehouse.LocalDay(at, time.UTC),
		Provenance: warehouse.Provenance{Partition: 2, Offset: offset}}
}

// storeCDR stores a batch the way the cdr.voice consumer does: the facts,
// then a hotline_calls row per MO call to one of numbers.
func storeCDR(t *testing.T, wh *warehouse.Warehouse, numbers []string, rows ...warehouse.CDRRow) {
	t.Helper()
	ctx := context.Background()
	if err := wh.InsertCDR(ctx, rows); err != nil {
		t.Fatal(err)
	}
	var calls []warehouse.CDRRow
	for _, r := range rows {
		for _, n := range numbers {
			if r.Direction == schemas.DirectionMO && r.Peer == n {
				calls = append(calls, r)
			}
		}
	}
	if err := wh.InsertHotlineCalls(ctx, calls); err != nil {
		t.Fatal(err)
	}
}

// TestHotlineCallsDuplicateAfterOffset is the restore of a partition whose
// topic holds one call twice, at offsets 1 and 5, both stored (the copy at 5
// last) while the committed offset is 3: whichever copy survives the merge of
// cdr, the call was consumed before offset 3 and must be restored.
func TestHotlineCallsDuplicateAfterOffset(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	numbers := []string{"10086", "10010"}
	t0 := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	const m = "13800000001"
	storeCDR(t, wh, numbers,
		hotlineCDR("a", m, "10086", schemas.DirectionMO, t0, 0),
		hotlineCDR("b", m, "10086", schemas.DirectionMO, t0.Add(time.Hour), 1),
		hotlineCDR("x", m, "95555", schemas.DirectionMO, t0.Add(time.Hour), 2),
		hotlineCDR("y", m, "10086", schemas.DirectionMT, t0.Add(time.Hour), 2))
	storeCDR(t, wh, numbers,
		hotlineCDR("c", m, "10010", schemas.DirectionMO, t0.Add(2*time.Hour), 3),
		hotlineCDR("d", m, "10086", schemas.DirectionMO, t0.Add(3*time.Hour), 4),
		hotlineCDR("b", m, "10086", schemas.DirectionMO, t0.Add(time.Hour), 5))
	for _, table := range []string{"cdr", "hotline_calls"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}

	ids := func(before int64, since time.Time) []string {
		t.Helper()
		calls, err := wh.HotlineCalls(ctx, 2, before, since, numbers)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, c := range calls {
			if c.MSISDN != m || c.Peer == "" || c.Time.IsZero() {
				t.Errorf("call %+v: fields missing", c)
			}
			out = append(out, c.EventID)
		}
		return out
	}
	for _, tt := range []struct {
		before int64
		since  time.Time
		want   []string
	}{
		{0, time.Time{}, []string{}},
		{1, time.Time{}, []string{"a"}},
		{3, time.Time{}, []string{"a", "b"}}, // b's copy at 5 is the one left in cdr
		{5, time.Time{}, []string{"a", "b", "c", "d"}},
		{6, time.Time{}, []string{"a", "b", "c", "d"}}, // b once, in the order first consumed
		{6, t0.Add(time.Hour), []string{"b", "c", "d"}},
	} {
		if got := ids(tt.before, tt.since); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("HotlineCalls(before %d, since %s) = %v, want %v", tt.before, tt.since.Format(time.TimeOnly), got, tt.want)
		}
	}
	if calls, err := wh.HotlineCalls(ctx, 3, 10, time.Time{}, numbers); err != nil || len(calls) != 0 {
		t.Errorf("another partition: %v, %v; want none", calls, err)
	}
}

// TestHotlineCallsBackfill checks that the migration creating hotline_calls
// copies the calls already in cdr: MO calls to numbers that are not
// mainland mobiles.
func TestHotlineCallsBackfill(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	wh, err := warehouse.Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	// The schema as it was before hotline_calls.
	migrations, err := schemas.Migrations(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE "+cfg.Database); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		for _, stmt := range m.Statements {
			if m.Version < 5 {
				if err := conn.Exec(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t0 := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	const m = "13800000001"
	if err := wh.InsertCDR(ctx, []warehouse.CDRRow{
		hotlineCDR("a", m, "10086", schemas.DirectionMO, t0, 0),
		hotlineCDR("b", m, "1008611", schemas.DirectionMO, t0, 1),
		hotlineCDR("c", m, "4008123456", schemas.DirectionMO, t0, 2),
		hotlineCDR("d", m, "13912345678", schemas.DirectionMO, t0, 3),
		hotlineCDR("e", m, "+8613912345678", schemas.DirectionMO, t0, 4),
		hotlineCDR("f", m, "10086", schemas.DirectionMT, t0, 5),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	calls, err := wh.HotlineCalls(ctx, 2, 10, time.Time{}, []string{"10086", "1008611", "4008123456", "13912345678", "+8613912345678"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range calls {
		got = append(got, c.EventID)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("backfilled calls %v, want %v", got, want)
	}
}
