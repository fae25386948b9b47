package consumers

import (
	"context"
	"slices"
	"testing"
	"time"

	"churnwatch/pipeline/warehouse"
)

// recordingStore records the keys of each RefreshDaily.
type recordingStore struct {
	FactStore
	keys [][]warehouse.DayKey
}

func (s *recordingStore) RefreshDaily(_ context.Context, keys []warehouse.DayKey, _ warehouse.DailyRules) error {
	s.keys = append(s.keys, keys)
	return nil
}

// TestDailyDaysKeys: every touched subscriber-day reaches the recompute
// exactly once and unchanged, whether its key packs into an integer (an
// 11-digit MSISDN, a UTC midnight) or not.
func TestDailyDaysKeys(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	keys := []warehouse.DayKey{
		{MSISDN: "13800000001", Day: day("2026-11-22")},
		{MSISDN: "13800000001", Day: day("2026-11-23")},
		{MSISDN: "19999999999", Day: day("2099-12-31")},
		{MSISDN: "13800000001", Day: day("1970-01-01")},
		{MSISDN: "01380000000", Day: day("2026-11-22")},                // a leading zero would be lost
		{MSISDN: "+8613800000001", Day: day("2026-11-22")},             // not normalised
		{MSISDN: "13800000002", Day: day("2026-11-22").Add(time.Hour)}, // not a midnight
		{MSISDN: "13800000003", Day: day("1969-12-31")},                // before day 0
		{MSISDN: "1380000000x", Day: day("2026-11-22")},                // not digits
		{MSISDN: "13800000001", Day: day("2026-11-22")},                // a repeat
	}
	store := &recordingStore{}
	agg := dailyAggregates(Deps{Store: store}, func(k *warehouse.DayKey) (warehouse.DayKey, bool) { return *k, true })()
	agg.Touch(keys)
	if n := agg.Touched(); n != len(keys)-1 {
		t.Fatalf("Touched() = %d, want %d", n, len(keys)-1)
	}
	if err := agg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(store.keys) != 1 {
		t.Fatalf("%d recomputes, want 1", len(store.keys))
	}
	str := func(ks []warehouse.DayKey) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k.MSISDN+" "+k.Day.UTC().Format(time.RFC3339))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	if got, want := str(store.keys[0]), str(keys); !slices.Equal(got, want) || len(store.keys[0]) != len(want) {
		t.Errorf("recomputed %q, want %q", str(store.keys[0]), want)
	}
	if agg.Touched() != 0 {
		t.Errorf("%d keys left after the recompute", agg.Touched())
	}
}
