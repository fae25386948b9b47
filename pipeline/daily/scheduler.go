package daily

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/signals"
)

// Clock tells the scheduler what time it is, so tests need not wait for
// midnight.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// Retry delays of a scheduled run that failed (ClickHouse or Kafka away):
// it is retried with doubling delays between these bounds until it
// succeeds or the scheduler stops.
const (
	DefaultRetryMin = time.Second
	DefaultRetryMax = 5 * time.Minute
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Schedule is a standard five-field cron spec, read in Evaluate.Location.
	Schedule string
	Evaluate Config
	// RetryMin and RetryMax bound the delay between attempts of a failed
	// scheduled run; the defaults when zero.
	RetryMin, RetryMax time.Duration
	// Leader, when set, tells whether this instance runs the scheduled
	// evaluation; the others skip it, so a group of instances evaluates each
	// day once. Nil means always.
	Leader func() bool
	// Prepare, when set, runs before every evaluation, scheduled or on
	// demand, and its failure fails the run: the recompute of the pending
	// subscriber-days hangs here, so that the evaluation reads every fact
	// stored before it.
	Prepare func(ctx context.Context) error
	// AfterDay, when set, runs after a scheduled evaluation of day succeeded
	// (the monthly snapshot hangs here); its failure is retried like the
	// evaluation's.
	AfterDay func(ctx context.Context, day time.Time) error
	// OnRun, when set, is told the outcome of every evaluation, scheduled
	// or on demand (metrics hang here).
	OnRun func(res Result, err error)
	// Rules, when set, gives the thresholds and rule version in effect; every
	// evaluation asks it at its start, so a reloaded rule set applies from
	// the next run on. Nil means Evaluate's own, fixed.
	Rules func() (signals.Thresholds, string)
}

// SchedulerConfigFrom takes the schedule, time zone and thresholds from the
// pipeline's configuration.
func SchedulerConfigFrom(cfg config.Config) (SchedulerConfig, error) {
	loc, err := cfg.Location()
	if err != nil {
		return SchedulerConfig{}, err
	}
	return SchedulerConfig{Schedule: cfg.Daily.Schedule,
		Evaluate: Config{Thresholds: cfg.Rules.Thresholds, RuleVersion: cfg.Rules.Version(), Location: loc}}, nil
}

// Scheduler evaluates the previous local day every time its cron schedule
// fires, one evaluation at a time.
type Scheduler struct {
	cfg      SchedulerConfig
	schedule cron.Schedule
	src      Source
	pub      Publisher
	clock    Clock
	log      zerolog.Logger
	mu       sync.Mutex // one evaluation at a time, scheduled or on demand
}

// NewScheduler checks the configuration and returns a scheduler; nothing
// runs until Run.
func NewScheduler(cfg SchedulerConfig, src Source, pub Publisher, clock Clock, log zerolog.Logger) (*Scheduler, error) {
	if cfg.Evaluate.Location == nil {
		return nil, errors.New("daily scheduler: no time zone configured")
	}
	if err := cfg.Evaluate.Thresholds.Validate(); err != nil {
		return nil, fmt.Errorf("daily scheduler: %w", err)
	}
	schedule, err := cron.ParseStandard(cfg.Schedule)
	if err != nil {
		return nil, fmt.Errorf("daily.schedule %q: %w (want a cron spec like \"10 0 * * *\")", cfg.Schedule, err)
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	return &Scheduler{cfg: cfg, schedule: schedule, src: src, pub: pub, clock: clock,
		log: log.With().Str("component", "daily").Logger()}, nil
}

// FollowRules makes every later evaluation take its thresholds and rule
// version from rules (see SchedulerConfig.Rules).
func (s *Scheduler) FollowRules(rules func() (signals.Thresholds, string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Rules = rules
}

// Next returns when the schedule fires next after t.
func (s *Scheduler) Next(t time.Time) time.Time {
	return s.schedule.Next(t.In(s.cfg.Evaluate.Location))
}

// Previous returns the local day before the one the clock is in: the day a
// run started now evaluates.
func (s *Scheduler) Previous() time.Time {
	return addDays(date(s.clock.Now().In(s.cfg.Evaluate.Location)), -1)
}

// Run fires the evaluation on the schedule until ctx is done, then waits for
// a running evaluation to stop and returns nil. A run still busy when the
// schedule fires again makes that firing a no-op.
func (s *Scheduler) Run(ctx context.Context) error {
	c := cron.New(cron.WithLocation(s.cfg.Evaluate.Location), cron.WithLogger(cronLogger{s.log}))
	c.Schedule(s.schedule, s.job(ctx))
	c.Start()
	s.log.Info().Str("schedule", s.cfg.Schedule).Str("timezone", s.cfg.Evaluate.Location.String()).
		Time("next", s.Next(s.clock.Now())).Msg("daily scheduler started")
	<-ctx.Done()
	<-c.Stop().Done()
	s.log.Info().Msg("daily scheduler stopped")
	return nil
}

// job is what the schedule fires: the scheduled evaluation, skipped while
// the previous one still runs, its panics logged instead of killing the
// process.
func (s *Scheduler) job(ctx context.Context) cron.Job {
	logger := cronLogger{s.log}
	return cron.NewChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)).
		Then(cron.FuncJob(func() { s.scheduled(ctx) }))
}

// scheduled evaluates the previous day, retrying with backoff until it
// succeeds or ctx ends.
func (s *Scheduler) scheduled(ctx context.Context) {
	d := s.Previous()
	if s.cfg.Leader != nil && !s.cfg.Leader() {
		s.log.Debug().Str("day", day0(d)).Msg("another instance leads the group and evaluates the day")
		return
	}
	delay := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		_, err := s.RunDay(ctx, d)
		if err == nil && s.cfg.AfterDay != nil {
			err = s.cfg.AfterDay(ctx, d)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Error().Err(err).Str("day", day0(d)).Int("attempt", attempt).Dur("retry_in", delay).
			Msg("daily evaluation failed; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, s.cfg.RetryMax)
	}
}

// RunDay evaluates day (its calendar date) now and publishes its warnings,
// waiting for an evaluation in progress to finish first. It is what
// `churnwatch daily --date` and a backfill call; running a day twice
// publishes the same warnings again, which the warnings table merges.
func (s *Scheduler) RunDay(ctx context.Context, day time.Time) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Info().Str("day", day0(date(day))).Msg("daily evaluation started")
	ecfg := s.cfg.Evaluate
	if s.cfg.Rules != nil {
		ecfg.Thresholds, ecfg.RuleVersion = s.cfg.Rules()
	}
	var res Result
	var err error
	if s.cfg.Prepare != nil {
		if err = s.cfg.Prepare(ctx); err != nil {
			err = fmt.Errorf("before the daily evaluation: %w", err)
		}
	}
	if err == nil {
		res, err = Evaluate(ctx, day, s.src, s.pub, ecfg)
	}
	if s.cfg.OnRun != nil {
		s.cfg.OnRun(res, err)
	}
	if err != nil {
		return res, err
	}
	counts := zerolog.Dict()
	total := 0
	for _, c := range dailyCodes {
		counts.Int(c, res.Warnings[c])
		total += res.Warnings[c]
	}
	s.log.Info().Str("day", day0(res.Day)).Dur("took", res.Duration).Int("subscribers", res.Subscribers).
		Int("profiles", res.Profiles).Int("warnings", total).Dict("signals", counts).Msg("daily evaluation done")
	return res, nil
}

// cronLogger hands cron's own messages to zerolog.
type cronLogger struct{ log zerolog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	l.log.Debug().Fields(kv).Msg("cron: " + msg)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error().Err(err).Fields(kv).Msg("cron: " + msg)
}
