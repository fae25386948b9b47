package consumers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"churnwatch/pipeline/warehouse"
)

// gather gives each subscriber-day of a partition once, with the highest
// offset of its rows, ordered by partition and offset as
// subscriber_daily_pending sorts its rows, whether or not a partition's rows
// come in offset order, and for MSISDNs that do not pack into an integer.
func TestPendingDaysGather(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	type row struct {
		msisdn    string
		day       int
		partition int32
		offset    int64
	}
	key := func(r *row) (warehouse.DayKey, warehouse.Provenance, bool) {
		return warehouse.DayKey{MSISDN: r.msisdn, Day: day.AddDate(0, 0, r.day)},
			warehouse.Provenance{Partition: r.partition, Offset: r.offset}, r.msisdn != ""
	}
	rng := rand.New(rand.NewPCG(1, 2))
	msisdns := []string{"13800000001", "13800000002", "13800000003", "+8613800000004", "0138"}
	var inOrder []row
	next := map[int32]int64{}
	for range 2_000 {
		p := int32(rng.IntN(3)) * 7 // partitions 0, 7 and 14, interleaved
		next[p] += 1 + rng.Int64N(3)
		m := msisdns[rng.IntN(len(msisdns))]
		if rng.IntN(50) == 0 {
			m = "" // a row that counts in no day
		}
		inOrder = append(inOrder, row{m, rng.IntN(4), p, next[p]})
	}
	shuffled := slices.Clone(inOrder)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	want := map[string]int64{} // partition/msisdn/day: the highest offset
	for _, r := range inOrder {
		if r.msisdn == "" {
			continue
		}
		k := fmt.Sprint(r.partition, "/", r.msisdn, "/", r.day)
		want[k] = max(want[k], r.offset)
	}
	days := newPendingDays(key)
	for name, rows := range map[string][]row{"in offset order": inOrder, "shuffled": shuffled} {
		for range 2 { // the second time on the maps and scratch of the first
			got := days.gather(rows)
			if len(got) != len(want) {
				t.Fatalf("%s: %d days, want %d", name, len(got), len(want))
			}
			for _, d := range got {
				k := fmt.Sprint(d.Partition, "/", d.MSISDN, "/", int(d.Day.Sub(day)/(24*time.Hour)))
				if w, ok := want[k]; !ok || w != d.Offset {
					t.Fatalf("%s: day %s at offset %d, want %d (known: %v)", name, k, d.Offset, w, ok)
				}
			}
			if !slices.IsSortedFunc(got, warehouse.ComparePendingDays) {
				t.Fatalf("%s: days not in the order of partition and offset", name)
			}
		}
	}
}
