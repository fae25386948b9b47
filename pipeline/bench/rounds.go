package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/warehouse"
)

// round is one measurement of both rates over the pre-loaded topics: the
// Kafka engine's (engine; no rows when it was left out or failed), then the
// pipeline's (every pre-loaded event in pipeline, using pipeUse).
//
// On these shared machines the two rates of one run drift apart by 15% and
// more from one minute to the next, so a single pair gives a ratio anywhere
// between 1.8x and 3x for one code. Rounds alternate the two measurements,
// and the figures are the medians. Each round's note gives the CPU per
// event of both and the share of the machine's CPU time stolen meanwhile,
// so that a round out of line shows whether it used more CPU per event or
// had less of it.
type round struct {
	engine   engineRun
	pipeline time.Duration
	pipeUse  phaseUse
}

func (r round) engineRate() float64 {
	if r.engine.rows == 0 || r.engine.elapsed <= 0 {
		return 0
	}
	return float64(r.engine.rows) / r.engine.elapsed.Seconds()
}

func (r round) pipelineRate(events int64) float64 { return float64(events) / r.pipeline.Seconds() }

func (r round) ratio(events int64) float64 {
	if e := r.engineRate(); e > 0 {
		return r.pipelineRate(events) / e
	}
	return 0
}

func (r round) print(rec *recorder, i int, events int64) {
	note := fmt.Sprintf("pipeline %.0f events/s (%d events in %.2f s%s)", r.pipelineRate(events), events, r.pipeline.Seconds(),
		r.pipeUse.perEvent(events, "us/event"))
	if r.engineRate() > 0 {
		note += fmt.Sprintf(", Kafka engine %.0f rows/s (%d CDRs in %.2f s, the first after %.1f s%s)", r.engineRate(), r.engine.rows,
			r.engine.elapsed.Seconds(), r.engine.first.Seconds(), r.engine.use.perEvent(r.engine.rows, "us/row"))
		rec.add(fmt.Sprintf("throughput_round_%d", i), r.ratio(events), "x", note)
		return
	}
	rec.add(fmt.Sprintf("throughput_round_%d", i), r.pipelineRate(events), "events/s", note)
}

// perEvent says what u cost per event of n, in a round's note: this
// process's CPU, the server's when known, the steal when known; "" when
// nothing was measured.
func (u phaseUse) perEvent(n int64, unit string) string {
	if n <= 0 || u.self.CPU() <= 0 {
		return ""
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(n) }
	s := fmt.Sprintf("; CPU %.2f %s in this process", per(u.self.CPU()), unit)
	if u.chKnown {
		s += fmt.Sprintf(", %.2f in ClickHouse", per(u.ch.CPU()))
	}
	if u.stealKnown {
		s += fmt.Sprintf(", %.1f%% of the machine's stolen", 100*u.steal)
	}
	return s
}

// medians records the throughput figures of issue 7: each the median of
// the rounds (with one round, its value).
func medians(rec *recorder, rounds []round, events int64) {
	// of is the median of rate over the rounds that have it, and note
	// with the rounds' values in front when there are several.
	of := func(rate func(round) float64, note string) (float64, string) {
		var vs []float64
		var list []string
		for _, r := range rounds {
			if v := rate(r); v > 0 {
				vs = append(vs, v)
				list = append(list, format(v))
			}
		}
		switch len(vs) {
		case 0:
			return 0, note
		case 1:
			return vs[0], note
		}
		return median(vs), fmt.Sprintf("median of %d rounds: %s; %s", len(vs), strings.Join(list, ", "), note)
	}
	if v, note := of(round.engineRate, "Kafka engine + materialized view, one consumer"); v > 0 {
		rec.add("clickhouse_kafka_engine_throughput", v, "rows/s", note)
	}
	last := rounds[len(rounds)-1]
	v, note := of(func(r round) float64 { return r.pipelineRate(events) },
		fmt.Sprintf("%d events, start to all committed (last round: %.2f s)", events, last.pipeline.Seconds()))
	rec.add("pipeline_throughput", v, "events/s", note)
	if v, note := of(func(r round) float64 { return r.ratio(events) }, "issue 7 target >= 3"); v > 0 {
		rec.add("pipeline_vs_kafka_engine", v, "x", note)
	}
}

// median is the middle value of vs (the mean of the middle two when even).
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// throughputRound measures the Kafka engine (unless left out), then the
// pipeline on a scratch database and consumer group of its own; it waits
// for that database's merges to end and leaves its drop to later (see
// kafkaEngine).
func throughputRound(ctx context.Context, cfg Config, pcfg config.Config, wh *warehouse.Warehouse, kconn kafkaconn.Conn,
	cdrTopic string, i int, later *cleanups, log zerolog.Logger) (round, error) {
	var r round
	if !cfg.SkipKafkaEngine {
		var err error
		if r.engine, err = kafkaEngine(ctx, wh, pcfg.ClickHouse.Addr, kconn, cdrTopic, i, later, log); err != nil {
			return r, fmt.Errorf("the Kafka engine: %w", err)
		}
	}
	pcfg.ClickHouse.Database = fmt.Sprintf("%s_r%d", pcfg.ClickHouse.Database, i)
	pcfg.Kafka.GroupID = fmt.Sprintf("%s-r%d", GroupID, i)
	roundWH, closeRound, err := scratchWarehouse(ctx, pcfg.ClickHouse, cfg.Keep, log)
	if err != nil {
		return r, err
	}
	later.add(closeRound)
	pipe := startPipeline(ctx, pcfg, log)
	err = pipe.waitConsumed(ctx, kconn, pcfg.Topics.Inputs())
	if stopErr := pipe.stop(); err == nil && stopErr != nil {
		err = stopErr
	}
	if err != nil {
		return r, fmt.Errorf("pipeline: %w", err)
	}
	r.pipeline, r.pipeUse = pipe.elapsed, pipe.use
	settle(ctx, roundWH, log)
	return r, nil
}

// cleanups are what the bench drops at its end rather than between its
// measurements (see kafkaEngine).
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

// run runs them, the last added first.
func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// pipelineRun is `churnwatch run` inside the bench, from its start.
type pipelineRun struct {
	group   string
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	stopped bool
	cpu     *CPUMeter
	start   time.Time
	// What waitConsumed measured: from the start until every message of
	// the topics was committed, and the CPU over that time.
	elapsed time.Duration
	use     phaseUse
}

// startPipeline starts the pipeline with pcfg.
func startPipeline(ctx context.Context, pcfg config.Config, log zerolog.Logger) *pipelineRun {
	pipeLog := log.Level(max(log.GetLevel(), zerolog.WarnLevel))
	pctx, cancel := context.WithCancel(ctx)
	p := &pipelineRun{group: pcfg.Kafka.GroupID, cancel: cancel, done: make(chan struct{})}
	p.cpu = StartCPU(pcfg.ClickHouse.Addr)
	p.start = time.Now()
	go func() {
		p.err = pipeline.Run(pctx, pcfg, pipeLog)
		close(p.done)
	}()
	return p
}

// waitConsumed waits until the pipeline has committed every message of
// topics and records the time and CPU it took.
func (p *pipelineRun) waitConsumed(ctx context.Context, kconn kafkaconn.Conn, topics []string) error {
	err := waitConsumed(ctx, kconn, p.group, topics, p.done)
	p.elapsed = time.Since(p.start)
	p.use = p.cpu.stop()
	return err
}

// stop stops the pipeline (once) and returns what pipeline.Run returned.
func (p *pipelineRun) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	p.cancel()
	<-p.done
	return p.err
}
