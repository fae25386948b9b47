package consumers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/warehouse"
)

// recordingStore records the subscriber-days of each InsertPendingDays.
type recordingStore struct {
	FactStore
	topic string
	days  [][]warehouse.PendingDay
}

func (s *recordingStore) InsertPendingDays(_ context.Context, topic string, days []warehouse.PendingDay) error {
	s.topic = topic
	s.days = append(s.days, days)
	return nil
}

// TestPendingDays: after a batch is stored, every subscriber-day it touched
// is recorded once per partition, unchanged and with its highest offset,
// whether its key packs into an integer (an 11-digit MSISDN, a UTC
// midnight) or not; rows that do not count are left out, and nothing is
// recorded when the store fails.
func TestPendingDays(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	type row struct {
		key    warehouse.DayKey
		prov   warehouse.Provenance
		counts bool
	}
	k := func(msisdn, d string) warehouse.DayKey { return warehouse.DayKey{MSISDN: msisdn, Day: day(d)} }
	at := func(partition int32, offset int64) warehouse.Provenance {
		return warehouse.Provenance{Partition: partition, Offset: offset}
	}
	rows := []row{
		{k("13800000001", "2026-11-22"), at(0, 5), true},
		{k("13800000001", "2026-11-23"), at(0, 6), true},
		{k("19999999999", "2099-12-31"), at(0, 7), true},
		{k("13800000001", "1970-01-01"), at(0, 8), true},
		{k("01380000000", "2026-11-22"), at(0, 9), true},                                                  // a leading zero would be lost
		{k("+8613800000001", "2026-11-22"), at(0, 10), true},                                              // not normalised
		{warehouse.DayKey{MSISDN: "13800000002", Day: day("2026-11-22").Add(time.Hour)}, at(0, 11), true}, // not a midnight
		{k("13800000003", "1969-12-31"), at(0, 12), true},                                                 // before day 0
		{k("1380000000x", "2026-11-22"), at(0, 13), true},                                                 // not digits
		{k("13800000001", "2026-11-22"), at(0, 14), true},                                                 // a repeat, later
		{k("01380000000", "2026-11-22"), at(0, 3), true},                                                  // a repeat, earlier
		{k("13800000001", "2026-11-22"), at(1, 2), true},                                                  // the same day on another partition
		{k("13800000004", "2026-11-22"), at(0, 15), false},                                                // does not count
	}
	store := &recordingStore{}
	stored := 0
	finished := 0
	pending := thenPendingDays("p.cdr.voice", Deps{Store: store}, func(context.Context, []row) (func(context.Context) error, error) {
		stored++
		return func(context.Context) error {
			if len(store.days) != 0 {
				t.Error("the days were recorded before the store finished")
			}
			finished++
			return nil
		}, nil
	}, func(r *row) (warehouse.DayKey, warehouse.Provenance, bool) { return r.key, r.prov, r.counts })
	finish, err := pending(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.days) != 0 {
		t.Fatal("the days were recorded before the batch finished")
	}
	if err := finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if stored != 1 || finished != 1 || len(store.days) != 1 || store.topic != "p.cdr.voice" {
		t.Fatalf("%d stores, %d pending inserts of topic %q; want one each, of p.cdr.voice", stored, len(store.days), store.topic)
	}
	str := func(d warehouse.PendingDay) string {
		return fmt.Sprintf("%d %s %s @%d", d.Partition, d.MSISDN, d.Day.UTC().Format(time.RFC3339), d.Offset)
	}
	var got []string
	for _, d := range store.days[0] {
		got = append(got, str(d))
	}
	slices.Sort(got)
	want := []string{
		"0 +8613800000001 2026-11-22T00:00:00Z @10", "0 01380000000 2026-11-22T00:00:00Z @9",
		"0 13800000001 1970-01-01T00:00:00Z @8", "0 13800000001 2026-11-22T00:00:00Z @14",
		"0 13800000001 2026-11-23T00:00:00Z @6", "0 13800000002 2026-11-22T01:00:00Z @11",
		"0 13800000003 1969-12-31T00:00:00Z @12", "0 1380000000x 2026-11-22T00:00:00Z @13",
		"0 19999999999 2099-12-31T00:00:00Z @7", "1 13800000001 2026-11-22T00:00:00Z @2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("pending days\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	failing := thenPendingDays("p.cdr.voice", Deps{Store: store}, storeOnly(func(context.Context, []row) error { return errors.New("down") }),
		func(r *row) (warehouse.DayKey, warehouse.Provenance, bool) { return r.key, r.prov, r.counts })
	if finish, err := failing(context.Background(), rows); err == nil || finish != nil || len(store.days) != 1 {
		t.Errorf("a failed store: error %v, %d pending inserts; want the error and no insert", err, len(store.days))
	}
}

// orderStore records the calls storeThenRefreshSubscribers makes, in order.
type orderStore struct {
	FactStore
	calls []string
}

func (s *orderStore) SubscribersInserting() func() {
	s.calls = append(s.calls, "inserting")
	return func() { s.calls = append(s.calls, "done") }
}

func (s *orderStore) SubscribersInserted(msisdns []string) uint64 {
	s.calls = append(s.calls, "inserted "+strings.Join(slices.Sorted(slices.Values(msisdns)), ","))
	return 1
}

// TestStoreThenRefreshSubscribersMarksTheInsert: a batch with rows that
// change subscribers records its insert as running before it begins and as
// ended only after its subscribers are recorded (so that a refresh waiting
// for it finds them); a failed insert ends too; a batch without such rows
// records nothing.
func TestStoreThenRefreshSubscribersMarksTheInsert(t *testing.T) {
	type row struct {
		msisdn string
		change bool
	}
	for _, tc := range []struct {
		name   string
		rows   []row
		fail   bool
		want   []string
		finish bool
	}{
		{"changes", []row{{"13800000002", true}, {"13800000001", true}, {"13800000003", false}}, false,
			[]string{"inserting", "insert", "inserted 13800000001,13800000002", "done"}, true},
		{"no changes", []row{{"13800000001", false}}, false, []string{"insert"}, false},
		{"failed insert", []row{{"13800000001", true}}, true, []string{"inserting", "insert", "done"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &orderStore{}
			insert := func(context.Context, []row) error {
				s.calls = append(s.calls, "insert")
				if tc.fail {
					return errors.New("refused")
				}
				return nil
			}
			store := storeThenRefreshSubscribers(Deps{Store: s}, insert,
				func(r *row) bool { return r.change }, func(r *row) string { return r.msisdn })
			finish, err := store(context.Background(), tc.rows)
			if (err != nil) != tc.fail {
				t.Fatalf("err = %v, want an error: %v", err, tc.fail)
			}
			if !slices.Equal(s.calls, tc.want) {
				t.Errorf("calls %q, want %q", s.calls, tc.want)
			}
			if (finish != nil) != tc.finish {
				t.Errorf("a refresh to finish with: %v, want %v", finish != nil, tc.finish)
			}
		})
	}
}
