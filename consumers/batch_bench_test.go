package consumers

import (
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// BenchmarkBatchBuild is the batching loop's work per CDR: taking chunks of
// fetched items into a batch (rows, offsets, watermarks) and recording the
// subscriber-days they touch for subscriber_daily_pending. "reused" is the
// steady state, a batch reset after the previous one as the consumer's two
// batches are; "fresh" is a consumer's first batches, which grow their room.
// Run with: go test ./consumers -run XXX -bench BatchBuild
func BenchmarkBatchBuild(b *testing.B) {
	const subscribers, batchSize = 50_000, 200_000
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	items := make([]item[warehouse.CDRRow, warehouse.WarningRow], batchSize)
	for i := range items {
		at := start.Add(time.Duration(i) * 3 * time.Second)
		items[i] = item[warehouse.CDRRow, warehouse.WarningRow]{partition: i % 4, offset: int64(i / 4),
			row: warehouse.CDRRow{CDR: schemas.CDR{EventID: "c-" + strconv.Itoa(i),
				MSISDN: strconv.Itoa(13_800_000_000 + i*7919%subscribers), Peer: "13900000000",
				Direction: schemas.DirectionMO, StartTime: at, DurationS: 60},
				Network: schemas.NetworkCMCC, Day: warehouse.LocalDay(at, time.UTC)}}
	}
	key := func(r *warehouse.CDRRow) (warehouse.DayKey, warehouse.Provenance, bool) {
		return warehouse.DayKey{MSISDN: r.MSISDN, Day: r.Day}, r.Provenance, true
	}
	eventTime := func(r *warehouse.CDRRow) time.Time { return r.StartTime }
	for _, reused := range []bool{true, false} {
		name := "fresh"
		if reused {
			name = "reused"
		}
		b.Run(name, func(b *testing.B) {
			c := &Consumer[warehouse.CDRRow, warehouse.WarningRow]{}
			days := newPendingDays(key)
			batch := newBatch[warehouse.CDRRow, warehouse.WarningRow](batchSize, eventTime)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if reused {
					batch.reset()
				} else {
					batch = newBatch[warehouse.CDRRow, warehouse.WarningRow](batchSize, eventTime)
				}
				for i := 0; i < len(items); i += chunkSize {
					chunk := c.newChunk()
					chunk = append(chunk, items[i:min(i+chunkSize, len(items))]...)
					batch.addAll(chunk)
					clear(chunk)
					c.chunks.Put(&chunk)
				}
				days.gather(batch.rows)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/row")
		})
	}
}

// A batch doubles its room from firstRows up to its capacity and slack, in
// its first round only: the chunk that takes it past its capacity fits in
// the slack, and a batch reused after reset keeps its room. A batch of few
// rows keeps little room.
func TestBatchGrowsInItsFirstRoundOnly(t *testing.T) {
	const capacity, chunk = 200_000, chunkSize
	b := newBatch[warehouse.CDRRow, warehouse.WarningRow](capacity, nil)
	if cap(b.rows) != firstRows {
		t.Fatalf("a new batch has room for %d rows, want %d", cap(b.rows), firstRows)
	}
	grown := make([]int, 2)
	for round := range grown {
		for b.size() < capacity {
			for i := 0; i < chunk; i++ {
				before := cap(b.rows)
				b.add(&item[warehouse.CDRRow, warehouse.WarningRow]{partition: i % 4, offset: int64(b.size())})
				if cap(b.rows) != before {
					grown[round]++
				}
			}
		}
		if b.size() <= capacity {
			t.Fatalf("the test's last chunk should end past the capacity; size %d", b.size())
		}
		b.reset()
	}
	// 1,024 doubles eight times to 262,144 > 212,500: seven doublings, then
	// the slack's capacity.
	if grown[0] != 8 || grown[1] != 0 {
		t.Errorf("the batch's rows were reallocated %d times in the first round and %d in the second, want 8 and 0", grown[0], grown[1])
	}
	if c := cap(b.rows); c < grownRows(capacity) || c > grownRows(capacity)*11/10 {
		t.Errorf("a full batch has room for %d rows, want about %d", c, grownRows(capacity))
	}

	small := newBatch[warehouse.CDRRow, warehouse.WarningRow](capacity, nil)
	for i := range 3_000 {
		small.add(&item[warehouse.CDRRow, warehouse.WarningRow]{partition: 0, offset: int64(i)})
	}
	if c := cap(small.rows); c > 4_096 {
		t.Errorf("a batch of 3,000 rows has room for %d, want at most 4,096", c)
	}
}

// A batch whose rows, next chunk and the broker's backlog fill it gets all
// its room at once; one the backlog would not fill keeps doubling.
func TestBatchMakesRoomWhenCatchingUp(t *testing.T) {
	const capacity = 200_000
	catchingUp := newBatch[warehouse.CDRRow, warehouse.WarningRow](capacity, nil)
	catchingUp.makeRoom(chunkSize, map[int]int64{0: 150_000, 1: 50_000})
	if c := cap(catchingUp.rows); c != grownRows(capacity) {
		t.Fatalf("a batch the backlog fills has room for %d rows, want %d at once", c, grownRows(capacity))
	}
	for i := range capacity {
		catchingUp.add(&item[warehouse.CDRRow, warehouse.WarningRow]{partition: i % 2, offset: int64(i)})
	}
	if c := cap(catchingUp.rows); c != grownRows(capacity) {
		t.Errorf("the batch grew again, to room for %d rows", c)
	}
	burst := newBatch[warehouse.CDRRow, warehouse.WarningRow](capacity, nil)
	burst.makeRoom(chunkSize, map[int]int64{0: 40_000, 1: 40_000}) // a billing burst: 80,000 in all
	if c := cap(burst.rows); c != firstRows {
		t.Errorf("a batch the backlog does not fill has room for %d rows, want %d", c, firstRows)
	}
}

// A batch records, per partition, the next offset after its last item and
// the highest event time of its rows (not of its dead letters), however a
// chunk mixes partitions.
func TestBatchOffsetsAndMarksPerPartition(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 11, 1, 0, min, 0, 0, time.UTC) }
	row := func(p int, off int64, min int) item[warehouse.CDRRow, warehouse.WarningRow] {
		return item[warehouse.CDRRow, warehouse.WarningRow]{partition: p, offset: off,
			row: warehouse.CDRRow{CDR: schemas.CDR{EventID: strconv.FormatInt(off, 10), StartTime: at(min)}}}
	}
	dead := func(p int, off int64) item[warehouse.CDRRow, warehouse.WarningRow] {
		return item[warehouse.CDRRow, warehouse.WarningRow]{partition: p, offset: off, dead: &warehouse.DeadLetter{Offset: off}}
	}
	b := newBatch[warehouse.CDRRow, warehouse.WarningRow](100, func(r *warehouse.CDRRow) time.Time { return r.StartTime })
	b.addAll([]item[warehouse.CDRRow, warehouse.WarningRow]{row(0, 10, 5), row(0, 11, 3), dead(0, 12), row(1, 7, 9)})
	b.addAll([]item[warehouse.CDRRow, warehouse.WarningRow]{row(1, 8, 2), dead(1, 9), row(0, 13, 4), dead(2, 40)})
	if want := map[int]int64{0: 14, 1: 10, 2: 41}; !maps.Equal(b.offsets, want) {
		t.Errorf("offsets %v, want %v", b.offsets, want)
	}
	if want := map[int]time.Time{0: at(5), 1: at(9)}; !maps.Equal(b.marks, want) {
		t.Errorf("marks %v, want %v (a partition of dead letters only has none)", b.marks, want)
	}
	var ids []string
	for _, r := range b.rows {
		ids = append(ids, r.EventID)
	}
	if got, want := strings.Join(ids, " "), "10 11 7 8 13"; got != want || len(b.dead) != 3 {
		t.Errorf("rows %q and %d dead letters, want %q and 3", got, len(b.dead), want)
	}
}

// BenchmarkPendingDays is the gathering of a CDR batch's subscriber-days
// alone: 200,000 rows of 50,000 subscribers over four partitions and a day
// (like a batch of the benchmark population's backlog: about three rows per
// subscriber-day).
// Run with: go test ./consumers -run XXX -bench PendingDays
func BenchmarkPendingDays(b *testing.B) {
	const subscribers, batchSize = 50_000, 200_000
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]warehouse.CDRRow, batchSize)
	for i := range rows {
		at := start.Add(time.Duration(i) * 400 * time.Millisecond)
		rows[i] = warehouse.CDRRow{CDR: schemas.CDR{MSISDN: strconv.Itoa(13_800_000_000 + i*7919%subscribers), StartTime: at},
			Day: warehouse.LocalDay(at, time.UTC), Provenance: warehouse.Provenance{Partition: int32(i % 4), Offset: int64(i / 4)}}
	}
	days := newPendingDays(func(r *warehouse.CDRRow) (warehouse.DayKey, warehouse.Provenance, bool) {
		return warehouse.DayKey{MSISDN: r.MSISDN, Day: r.Day}, r.Provenance, true
	})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = len(days.gather(rows))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/row")
	b.ReportMetric(float64(n), "days")
}
