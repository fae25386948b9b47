package daily

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newTestScheduler(t *testing.T, src Source, pub Publisher, clock Clock, log *testenv.SyncBuffer) *Scheduler {
	t.Helper()
	cfg := SchedulerConfig{Schedule: config.DefaultDailySchedule, Evaluate: testConfig(),
		RetryMin: time.Millisecond, RetryMax: time.Millisecond}
	s, err := NewScheduler(cfg, src, pub, clock, zerolog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchedulerEvaluatesThePreviousLocalDay(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"ten past midnight in Shanghai", time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai), "2026-11-22"},
		// 16:10 UTC on the 22nd is already 00:10 on the 23rd in Shanghai.
		{"clock in UTC, day from the configured zone", time.Date(2026, 11, 22, 16, 10, 0, 0, time.UTC), "2026-11-22"},
		{"new year", time.Date(2027, 1, 1, 0, 10, 0, 0, shanghai), "2026-12-31"},
		{"after a leap day", time.Date(2028, 3, 1, 0, 10, 0, 0, shanghai), "2028-02-29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, pub, log := population(), &fakePublisher{}, &testenv.SyncBuffer{}
			s := newTestScheduler(t, src, pub, &fakeClock{now: tt.now}, log)
			s.job(context.Background()).Run()
			if len(src.days) != 1 || day(src.days[0].To) != tt.want {
				t.Fatalf("evaluated %v, want %s", src.days, tt.want)
			}
			if len(pub.rows()) == 0 {
				t.Error("nothing published")
			}
			out := log.String()
			for _, want := range []string{`"component":"daily"`, `"day":"` + tt.want + `"`, `"took"`, `"warnings":`,
				`"silent_yesterday":`, "daily evaluation done"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %s:\n%s", want, out)
				}
			}
		})
	}
}

func TestSchedulerNextRunInConfiguredZone(t *testing.T) {
	s := newTestScheduler(t, population(), &fakePublisher{}, &fakeClock{}, &testenv.SyncBuffer{})
	got := s.Next(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) // 20:00 in Shanghai
	if want := time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai); !got.Equal(want) {
		t.Errorf("next run %v, want %v", got, want)
	}
}

func TestSchedulerRunsOneAtATime(t *testing.T) {
	src := population()
	src.gate, src.started = make(chan struct{}), make(chan struct{}, 2)
	clock := &fakeClock{now: time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai)}
	s := newTestScheduler(t, src, &fakePublisher{}, clock, &testenv.SyncBuffer{})
	job := s.job(context.Background())
	done := make(chan struct{})
	go func() { job.Run(); close(done) }()
	<-src.started // the first run is inside its scan

	clock.set(time.Date(2026, 11, 24, 0, 10, 0, 0, shanghai))
	job.Run() // fires while the first still runs: skipped, returns at once
	close(src.gate)
	<-done
	if src.calls != 1 {
		t.Errorf("%d evaluations ran, want 1 (the second firing must be skipped)", src.calls)
	}

	// On-demand runs wait for each other instead of being skipped.
	src.gate, src.started = nil, nil
	var wg sync.WaitGroup
	for _, day := range []string{"2026-11-20", "2026-11-21"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.RunDay(context.Background(), d(day)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if src.calls != 3 {
		t.Errorf("%d evaluations ran, want 3", src.calls)
	}
}

func TestSchedulerRetriesAFailedRun(t *testing.T) {
	src, pub, log := population(), &fakePublisher{}, &testenv.SyncBuffer{}
	src.failures = 2
	s := newTestScheduler(t, src, pub, &fakeClock{now: time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai)}, log)
	s.job(context.Background()).Run()
	if src.calls != 3 || len(pub.rows()) == 0 {
		t.Errorf("%d attempts, %d warnings published; want 3 attempts and the day published", src.calls, len(pub.rows()))
	}
	if !strings.Contains(log.String(), "daily evaluation failed; retrying") {
		t.Errorf("the failures are not logged:\n%s", log)
	}
	for _, r := range src.days {
		if day(r.To) != "2026-11-22" {
			t.Errorf("a retry evaluated %s, want the same day 2026-11-22", day(r.To))
		}
	}
}

func TestSchedulerRunStopsOnCancel(t *testing.T) {
	src := population()
	src.gate, src.started = make(chan struct{}), make(chan struct{}, 1)
	s := newTestScheduler(t, src, &fakePublisher{}, &fakeClock{now: time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai)}, &testenv.SyncBuffer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// An evaluation in flight (as if the schedule had fired) ends with ctx too.
	go s.job(ctx).Run()
	<-src.started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil on cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}

func TestNewSchedulerRefusesBadConfig(t *testing.T) {
	good := SchedulerConfig{Schedule: "10 0 * * *", Evaluate: testConfig()}
	bad := []SchedulerConfig{good, good, good}
	bad[0].Schedule = "every night"
	bad[1].Evaluate.Location = nil
	bad[2].Evaluate.Thresholds.SilentYesterday.BaselineDays = 0
	for i, cfg := range bad {
		if _, err := NewScheduler(cfg, population(), &fakePublisher{}, SystemClock{}, zerolog.Nop()); err == nil {
			t.Errorf("config %d: want an error", i)
		}
	}
	cfg, err := SchedulerConfigFrom(config.Default())
	if err != nil || cfg.Schedule != "10 0 * * *" || cfg.Evaluate.Location.String() != "Asia/Shanghai" ||
		cfg.Evaluate.Thresholds != signals.DefaultThresholds() {
		t.Errorf("SchedulerConfigFrom(default) = %+v, %v", cfg, err)
	}
}

var _ Source = (*warehouse.Warehouse)(nil)

// TestSchedulerLeaderAndAfterDay: only the leader evaluates, and the hook
// runs after a successful evaluation with the evaluated day.
func TestSchedulerLeaderAndAfterDay(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 10, 0, 0, shanghai)
	leader := false
	var after []string
	cfg := SchedulerConfig{Schedule: config.DefaultDailySchedule, Evaluate: testConfig(), RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Leader: func() bool { return leader },
		AfterDay: func(_ context.Context, d time.Time) error {
			after = append(after, day(d))
			return nil
		}}
	src := population()
	s, err := NewScheduler(cfg, src, &fakePublisher{}, &fakeClock{now: now}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.job(context.Background()).Run()
	if len(src.days) != 0 || len(after) != 0 {
		t.Fatalf("a follower evaluated %v / ran the hook %v", src.days, after)
	}
	leader = true
	s.job(context.Background()).Run()
	if len(src.days) != 1 || fmt.Sprint(after) != "[2026-11-30]" {
		t.Fatalf("the leader evaluated %v and ran the hook for %v, want one evaluation and [2026-11-30]", src.days, after)
	}
}

func TestSchedulerReportsEveryRun(t *testing.T) {
	var got []int
	cfg := SchedulerConfig{Schedule: config.DefaultDailySchedule, Evaluate: testConfig(),
		OnRun: func(res Result, err error) {
			if err != nil {
				t.Errorf("run failed: %v", err)
			}
			got = append(got, res.Published)
		}}
	pub := &fakePublisher{}
	s, err := NewScheduler(cfg, population(), pub, &fakeClock{now: time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunDay(context.Background(), time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != len(pub.rows()) || got[0] == 0 {
		t.Errorf("OnRun saw %v, published %d", got, len(pub.rows()))
	}
}

// TestSchedulerPreparesEveryRun: Prepare runs before each evaluation; when
// it fails, the run fails with its error and nothing is evaluated or
// published.
func TestSchedulerPreparesEveryRun(t *testing.T) {
	src, pub := population(), &fakePublisher{}
	var prepared int
	fail := true
	cfg := SchedulerConfig{Schedule: config.DefaultDailySchedule, Evaluate: testConfig(),
		Prepare: func(context.Context) error {
			prepared++
			if fail {
				return fmt.Errorf("clickhouse down")
			}
			return nil
		}}
	s, err := NewScheduler(cfg, src, pub, &fakeClock{now: time.Date(2026, 11, 23, 0, 10, 0, 0, shanghai)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	if _, err := s.RunDay(context.Background(), day); err == nil || !strings.Contains(err.Error(), "clickhouse down") {
		t.Fatalf("RunDay with a failing Prepare: %v, want its error", err)
	}
	if prepared != 1 || len(src.days) != 0 || len(pub.rows()) != 0 {
		t.Fatalf("after a failed Prepare: prepared %d, evaluated %v, published %d; want 1, none, none", prepared, src.days, len(pub.rows()))
	}
	fail = false
	if _, err := s.RunDay(context.Background(), day); err != nil {
		t.Fatal(err)
	}
	if prepared != 2 || len(src.days) != 1 || len(pub.rows()) == 0 {
		t.Errorf("after a good Prepare: prepared %d, evaluated %v, published %d", prepared, src.days, len(pub.rows()))
	}
}
