package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/testenv"
)

// TestSettleWaitsForMerges: settle returns only once the merges of fresh
// parts have ended (right after the inserts here merges run for a second or
// so): then no merge runs in the database and its parts stay as they are.
func TestSettleWaitsForMerges(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	wh, closeWarehouse, err := scratchWarehouse(ctx, ch, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeWarehouse()
	db := wh.Database()
	if err := conn.Exec(ctx, "CREATE TABLE "+db+".t (x UInt64, s String) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	const parts = 6
	for i := range parts {
		q := fmt.Sprintf("INSERT INTO %s.t SELECT number*%d+%d, toString(number) FROM numbers(4000000)", db, parts, i)
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	settle(ctx, wh, zerolog.Nop())
	merges, err := count(ctx, wh, "SELECT count() FROM system.merges WHERE database = '"+db+"'")
	if err != nil {
		t.Fatal(err)
	}
	active := func() uint64 {
		n, err := count(ctx, wh, "SELECT count() FROM system.parts WHERE active AND database = '"+db+"'")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := active()
	time.Sleep(1500 * time.Millisecond)
	if after := active(); merges > 0 || after != before {
		t.Errorf("after settle: %d merges running, %d active parts, then %d: want none running, the parts unchanged",
			merges, before, after)
	}
}
