// Package eval measures the warning signals against a simulated population
// whose churners are known. Run starts an embedded broker and the pipeline
// on a scratch ClickHouse database, replays the population of package
// simulate day by day as a live system would see it (a warm-up of plain
// history first, then each day's events followed by that day's daily
// evaluation), and scores the warnings table against simulate.GroundTruth:
// per signal, how many churners it caught before they left, how many loyal
// subscribers it flagged, and how early. Score does the comparison alone,
// for any set of warnings and labels.
package eval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/broker"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/lag"
	"churnwatch/pipeline/simulate"
	"churnwatch/pipeline/warehouse"
)

// Settings of a run.
const (
	// GroupID is the consumer group of the run's pipeline.
	GroupID = "churnwatch-eval"
	// DatabasePrefix starts the name of every scratch database.
	DatabasePrefix = "eval_"
	// StallTimeout is how long the run waits for the pipeline to consume
	// anything before it gives up.
	StallTimeout = 2 * time.Minute
	// neverSchedule is a cron spec that never fires (30 February): the
	// run evaluates the days itself, so the pipeline's own scheduler must
	// not evaluate a day whose events are not in yet.
	neverSchedule = "0 0 30 2 *"
	// produceChunk is how many messages one write carries at most.
	produceChunk = 20000
	// pollEvery is how often the consumer lag is checked.
	pollEvery = 50 * time.Millisecond
)

// Config configures a run.
type Config struct {
	// Pipeline is the configuration the pipeline runs with: its rules
	// (thresholds, hotlines, number prefixes), tiers, time zone, topic names
	// and ClickHouse server. The run replaces the Kafka brokers and group,
	// the database (a fresh DatabasePrefix+random one on that server, never
	// on a cluster), the HTTP address (an ephemeral loopback port), the
	// flush interval and the daily schedule (the run evaluates the days).
	Pipeline config.Config
	// Simulation describes the population; its Days are the days evaluated
	// and scored, its Location is replaced by the pipeline's time zone, and
	// its End is best a local midnight (zero means today's).
	Simulation simulate.Config
	// Warmup adds this many days of history before the evaluated days
	// (simulate.Config.Warmup): every subscriber's events are produced and
	// consumed, but no churner's behaviour starts, no daily evaluation runs
	// and no real-time warning counts there. It gives the daily signals the
	// baselines a live system has (28 days for the weekly comparisons).
	Warmup int
	// Keep keeps the database after the run; it is dropped otherwise.
	Keep bool
}

// Result is a run's report with what it ran on.
type Result struct {
	Report
	Seed int64 `json:"seed"`
	// Days were evaluated and scored, after Warmup days of history.
	Days   int `json:"days"`
	Warmup int `json:"warmup_days"`
	// From and To are the first and last local day of the window.
	From     string `json:"from"`
	To       string `json:"to"`
	Timezone string `json:"timezone"`
	// RuleVersion is the version of the rules evaluated, as every warning
	// of the run records it.
	RuleVersion string `json:"rule_version"`
	// Messages counts the messages produced.
	Messages int64 `json:"messages"`
	// Database is the scratch database, still there when Kept.
	Database string  `json:"database"`
	Kept     bool    `json:"database_kept"`
	Seconds  float64 `json:"seconds"`
}

// WriteTable prints the result as aligned text.
func (r Result) WriteTable(w io.Writer) error {
	keep := "dropped"
	if r.Kept {
		keep = "kept"
	}
	if _, err := fmt.Fprintf(w, "churnwatch eval: seed %d, %d days evaluated from %s to %s (%s) after %d days of warm-up, %d messages, %.0f s; database %s %s; rule version %s\n",
		r.Seed, r.Days, r.From, r.To, r.Timezone, r.Warmup, r.Messages, r.Seconds, r.Database, keep, r.RuleVersion); err != nil {
		return err
	}
	return r.Report.WriteTable(w)
}

// Run evaluates the signals on the simulated population cfg describes.
// It needs the ClickHouse server of cfg.Pipeline and nothing else running:
// the broker is an in-memory one on a free port, stopped at the end. It
// produces the initial profiles and waits until they are consumed (so that
// every warning knows its subscriber's tier), then the warm-up days, then,
// day by day, the day's events, waits until the pipeline has consumed them,
// and evaluates the daily signals of that day, as the scheduler would just
// after midnight: no evaluation sees a later day's events or profiles.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) (Result, error) {
	started := time.Now()
	log = log.With().Str("component", "eval").Logger()
	pcfg := cfg.Pipeline
	loc, err := pcfg.Location()
	if err != nil {
		return Result{}, err
	}
	sim := cfg.Simulation
	sim.Location = loc
	sim = sim.WithDefaults(started)
	days := sim.Days
	sim.Days += cfg.Warmup
	sim.Warmup = cfg.Warmup
	if err := sim.Validate(); err != nil {
		return Result{}, fmt.Errorf("simulation: %w", err)
	}
	first := midnight(sim.End.AddDate(0, 0, -days), loc)
	last := midnight(sim.End.Add(-time.Nanosecond), loc)

	suffix := make([]byte, 4)
	rand.Read(suffix)
	pcfg.ClickHouse.Database = DatabasePrefix + hex.EncodeToString(suffix)
	pcfg.ClickHouse.Cluster = ""
	pcfg.Kafka.GroupID = GroupID
	pcfg.Kafka.StartOffset = "earliest"
	pcfg.HTTP.Addr = "127.0.0.1:0"
	pcfg.Ingest.FlushInterval = 100 * time.Millisecond
	pcfg.Ingest.RefreshInterval = 200 * time.Millisecond
	pcfg.Daily.Schedule = neverSchedule
	res := Result{Seed: sim.Seed, Days: days, Warmup: cfg.Warmup, From: first.Format(time.DateOnly), To: last.Format(time.DateOnly),
		Timezone: loc.String(), Database: pcfg.ClickHouse.Database, Kept: cfg.Keep, RuleVersion: pcfg.Rules.Version()}

	wh, err := warehouse.Open(ctx, pcfg.ClickHouse, log)
	if err != nil {
		return res, err
	}
	defer wh.Close()
	if !cfg.Keep {
		defer func() {
			if err := wh.DropDatabase(ctx, 30*time.Second); err != nil {
				log.Warn().Err(err).Str("database", pcfg.ClickHouse.Database).Msg("could not drop the scratch database")
			}
		}()
	}
	if _, err := wh.Migrate(ctx); err != nil {
		return res, fmt.Errorf("create the scratch database: %w", err)
	}

	b, kconn, err := broker.StartScratch(&pcfg)
	if err != nil {
		return res, err
	}
	defer b.Close()
	log.Info().Int("subscribers", sim.Subscribers).Int("days", days).Int("warmup", cfg.Warmup).Int64("seed", sim.Seed).
		Float64("churn_share", sim.ChurnShare).Str("from", res.From).Str("to", res.To).
		Str("database", pcfg.ClickHouse.Database).Strs("broker", b.Addrs()).Msg("evaluation started")

	// The pipeline logs warnings and errors only: its info lines would
	// drown the run's own.
	pipeLog := log.Level(max(log.GetLevel(), zerolog.WarnLevel))
	pctx, stopPipeline := context.WithCancel(ctx)
	pipe := &running{done: make(chan struct{})}
	go func() {
		pipe.err = pipeline.Run(pctx, pcfg, pipeLog)
		close(pipe.done)
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopPipeline()
		<-pipe.done
		return pipe.err
	}
	defer stop()

	in := simulate.NewWriter(kconn)
	defer in.Close()
	out := pipeline.NewWriter(kconn)
	defer out.Close()
	pub := alerts.NewPublisher(wh, out, pcfg.Topics.Name(pcfg.Topics.Warnings))
	dcfg := daily.Config{Thresholds: pcfg.Rules.Thresholds, RuleVersion: pcfg.Rules.Version(), Location: loc}
	prepare := pipeline.PrepareDaily(wh, pipeline.DailyRules(pcfg.Rules), log)
	t := pcfg.Topics
	r := &replay{
		ctx: ctx, log: log, w: in, pipe: pipe,
		client: kconn.Client(10 * time.Second),
		inputs: t.Inputs(), profiles: true, day: midnight(sim.End.AddDate(0, 0, -sim.Days), loc), first: first,
		evaluate: func(day time.Time) error {
			if err := prepare(ctx); err != nil {
				return fmt.Errorf("daily evaluation of %s: %w", day.Format(time.DateOnly), err)
			}
			dr, err := daily.Evaluate(ctx, day, wh, pub, dcfg)
			if err != nil {
				return fmt.Errorf("daily evaluation of %s: %w", day.Format(time.DateOnly), err)
			}
			log.Debug().Str("day", day.Format(time.DateOnly)).Int("warnings", dr.Published).Msg("day evaluated")
			return nil
		},
	}
	topics := simulate.Topics{CDR: t.Name(t.CDR), Billing: t.Name(t.Billing), CRM: t.Name(t.CRM)}
	if err := simulate.Generate(sim, topics, r.emit); err != nil {
		return res, err
	}
	if err := r.finish(last); err != nil {
		return res, err
	}
	res.Messages = r.messages
	if err := stop(); err != nil {
		return res, fmt.Errorf("pipeline: %w", err)
	}

	warnings, err := readWarnings(ctx, wh, first)
	if err != nil {
		return res, err
	}
	res.Report = Score(simulate.GroundTruth(sim), warnings, loc)
	res.Seconds = time.Since(started).Seconds()
	log.Info().Int64("messages", res.Messages).Int("warnings", len(warnings)).Float64("seconds", res.Seconds).
		Msg("evaluation done")
	return res, nil
}

// running is the pipeline running in the background.
type running struct {
	done chan struct{}
	err  error // pipeline.Run's, once done is closed
}

// midnight returns the local midnight starting t's day in loc.
func midnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// replay produces the generated messages and paces them: the initial
// profiles first, then a day at a time, each followed by its daily
// evaluation once the pipeline has consumed it.
type replay struct {
	ctx      context.Context
	log      zerolog.Logger
	w        *kafka.Writer
	client   *kafka.Client
	inputs   []string
	pipe     *running
	evaluate func(day time.Time) error

	buf      []kafka.Message
	messages int64
	profiles bool      // the initial profiles are not known to be consumed yet
	day      time.Time // local midnight of the day being produced
	first    time.Time // the first day evaluated; those before are warm-up
}

func (r *replay) emit(m simulate.Message) error {
	if r.profiles && !m.Initial {
		if err := r.settle(); err != nil {
			return err
		}
		r.profiles = false
		r.log.Info().Int64("messages", r.messages).Msg("initial profiles consumed")
	}
	if d := midnight(m.Time, r.day.Location()); d.After(r.day) {
		if err := r.advance(d); err != nil {
			return err
		}
	}
	r.buf = append(r.buf, kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value})
	if len(r.buf) >= produceChunk {
		return r.write()
	}
	return nil
}

// advance moves on to day d: it settles the days before and evaluates
// each of them but those of the warm-up.
func (r *replay) advance(d time.Time) error {
	if d.After(r.first) {
		if err := r.settle(); err != nil {
			return err
		}
	}
	for r.day.Before(d) {
		if !r.day.Before(r.first) {
			if err := r.evaluate(r.day); err != nil {
				return err
			}
		}
		r.day = r.day.AddDate(0, 0, 1)
		if r.day.Weekday() == time.Monday {
			r.log.Info().Str("day", r.day.Format(time.DateOnly)).Int64("messages", r.messages).Msg("replaying")
		}
	}
	return nil
}

// finish settles the rest and evaluates every day up to last.
func (r *replay) finish(last time.Time) error {
	return r.advance(last.AddDate(0, 0, 1))
}

func (r *replay) write() error {
	if len(r.buf) == 0 {
		return nil
	}
	if err := r.w.WriteMessages(r.ctx, r.buf...); err != nil {
		return fmt.Errorf("produce %d simulated messages: %w", len(r.buf), err)
	}
	r.messages += int64(len(r.buf))
	clear(r.buf)
	r.buf = r.buf[:0]
	return nil
}

// settle writes what is buffered and waits until the pipeline's group has
// committed every input message, which it does only once the facts, the
// aggregates and the real-time warnings are in ClickHouse.
func (r *replay) settle() error {
	if err := r.write(); err != nil {
		return err
	}
	prev, since := int64(-1), time.Now()
	for {
		n, err := lag.Of(r.ctx, r.client, GroupID, r.inputs)
		if err == nil && n == 0 {
			return nil
		}
		if err == nil && n != prev {
			prev, since = n, time.Now()
		}
		if time.Since(since) > StallTimeout {
			if err == nil {
				err = fmt.Errorf("%d messages left", n)
			}
			return fmt.Errorf("the pipeline consumed nothing for %s (%w); see its log", StallTimeout, err)
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-r.pipe.done:
			if r.pipe.err == nil {
				return errors.New("the pipeline stopped before consuming every message")
			}
			return fmt.Errorf("the pipeline stopped: %w", r.pipe.err)
		case <-time.After(pollEvery):
		}
	}
}

// readWarnings reads the warnings of the run's database but the real-time
// ones detected before first, in the warm-up. (A daily warning of an
// occasion, promo_expiry or birthday, is detected on the day the occasion
// came into range, which may be earlier than the evaluated day that found
// it; the evaluated days all come after the warm-up.)
func readWarnings(ctx context.Context, wh *warehouse.Warehouse, first time.Time) ([]Warning, error) {
	rows, err := wh.Conn().Query(ctx, "SELECT msisdn, signal, detected_at, toString(source) FROM "+wh.Database()+".warnings FINAL")
	if err != nil {
		return nil, fmt.Errorf("read the warnings: %w", err)
	}
	defer rows.Close()
	var out []Warning
	for rows.Next() {
		var w Warning
		var source string
		if err := rows.Scan(&w.MSISDN, &w.Signal, &w.DetectedAt, &source); err != nil {
			return nil, fmt.Errorf("read the warnings: %w", err)
		}
		if source == warehouse.SourceDaily || !w.DetectedAt.Before(first) {
			out = append(out, w)
		}
	}
	return out, rows.Err()
}
