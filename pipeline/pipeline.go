// Package pipeline wires the stages together: it connects to ClickHouse
// (waiting for it), applies the schema, joins the consumer group with one
// consumer per input topic, and serves the HTTP endpoints (metrics, health
// and the dashboard of package ops), all under one
// errgroup with an ordered, bounded shutdown. The stages themselves live in
// the sub-packages and in package consumers.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"churnwatch/consumers"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/ops"
	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// Run runs the pipeline until ctx is done, then stops fetching, stores and
// commits what was fetched, and returns nil.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	if err := ops.CheckExposure(cfg.HTTP.Addr, cfg.HTTP.Token); err != nil {
		return err
	}
	access, err := ops.NewAccess(cfg)
	if err != nil {
		return err
	}
	// Every Kafka connection below goes through kconn: TLS and SASL apply
	// to the group, the readers, the writer and the admin clients alike.
	kconn, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		return err
	}
	wh, err := OpenWarehouse(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	if wh == nil { // ctx ended while waiting
		return nil
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		return fmt.Errorf("apply ClickHouse schema: %w", err)
	}

	// Metrics go to a registry of this run, served on /metrics; every
	// ClickHouse write goes through the instrumented warehouse (store).
	registry := prometheus.NewRegistry()
	metrics := ops.NewMetrics(registry, ops.ReadBuild())
	store := metrics.Warehouse(wh)

	writer := NewWriter(kconn)
	defer writer.Close()
	t := cfg.Topics
	plan := NumberPlan(cfg.Rules)
	// The rules in effect: swapped by SIGHUP and POST /-/reload.
	reloader := NewReloader(cfg.RulesFile, cfg.Rules, plan, log)
	// One publisher for every warning, real-time and daily.
	warnings := alerts.NewPublisher(store, writer, t.Name(t.Warnings))
	// The partition readers' fetches have a connection pool of their own
	// (kconn.Client gives every client its own Transport).
	fetches := kconn.Client(consumers.FetchTimeout)
	defer fetches.Transport.(*kafka.Transport).CloseIdleConnections()
	deps := consumers.Deps{
		Store:       store,
		DeadLetters: consumers.NewDeadLetterQueue(writer, store, config.DLQSuffix),
		Warnings:    warnings,
		State:       wh,
		Rules:       RealtimeRules(cfg.Rules, plan),
		Readers:     consumers.PartitionReaders(fetches, cfg.Ingest.MaxMessageBytes, log),
		Plan:        plan,
		Location:    loc,
		TierRules:   warehouse.TierRules{DiamondFen: cfg.Tiers.DiamondFen, GoldFen: cfg.Tiers.GoldFen, SilverFen: cfg.Tiers.SilverFen},
		Settings: consumers.Settings{BatchSize: cfg.Ingest.BatchSize, FlushInterval: cfg.Ingest.FlushInterval,
			MaxMessageBytes: cfg.Ingest.MaxMessageBytes, ShutdownTimeout: cfg.Ingest.ShutdownTimeout},
		Log:  log,
		Live: reloader.Live(),
	}
	taskOut := tasks.NewPublisher(store, writer, t.Name(t.Tasks))
	owner := tasks.NewOwner(cfg.Tasks, store, taskOut, daily.SystemClock{}, log)
	group := consumers.NewGroup(consumers.GroupConfig{
		Brokers: kconn.Brokers, GroupID: cfg.Kafka.GroupID, StartOffset: startOffset(cfg.Kafka.StartOffset),
		Dialer: kconn.Dialer(),
	}, log,
		consumers.NewCDR(t.Name(t.CDR), deps).Instrument(metrics),
		consumers.NewBilling(t.Name(t.Billing), deps).Instrument(metrics),
		consumers.NewCRM(t.Name(t.CRM), deps).Instrument(metrics),
		consumers.NewWarnings(t.Name(t.Warnings), owner, taskOut, deps).Instrument(metrics),
		consumers.NewTaskUpdates(t.Name(t.TaskUpdates), owner, taskOut, deps).Instrument(metrics),
	)
	lag := ops.NewLagMonitor(kconn, cfg.Kafka.GroupID, 0, metrics, log)
	// The dashboard's live stream follows churn.warnings itself, not this
	// process's publisher: it shows the warnings of every instance of the
	// group and of `churnwatch daily` runs elsewhere, like `warnings tail`.
	hub := ops.NewHub(ops.NewTailer(ops.TailConfig{Conn: kconn, Topic: t.Name(t.Warnings)}), log)
	handler := ops.NewHandler(ops.HandlerConfig{
		Token:    cfg.HTTP.Token,
		Access:   access,
		Points:   cfg.Scorecard,
		Gatherer: registry,
		Metrics:  metrics,
		Health: ops.NewHealth(wh, kconn,
			append(t.Inputs(), t.Name(t.Warnings), t.Name(t.TaskUpdates)), metrics, 0),
		Hub:      hub,
		Reader:   ops.NewReader(wh.Conn(), wh.Database(), loc),
		Location: loc,
		Log:      log,
		Reload:   reloader.Reload,
		// The version of the rules the real-time states follow.
		RuleVersion: func() string { return reloader.Live().Load().Version },
	})
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s for the HTTP endpoints: %w (set CHURNWATCH_HTTP_ADDR to a free address)", cfg.HTTP.Addr, err)
	}
	log.Info().Strs("brokers", cfg.Kafka.Brokers).Str("group", cfg.Kafka.GroupID).Strs("topics", t.Inputs()).
		Str("clickhouse", cfg.ClickHouse.Addr).Str("database", cfg.ClickHouse.Database).
		Str("http", ln.Addr().String()).Msg("pipeline started")

	sched, err := newDailyScheduler(cfg, wh, warnings, group, metrics, log)
	if err != nil {
		return err
	}
	sched.FollowRules(reloader.Daily)
	watchHUP := reloader.WatchSIGHUP()

	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error { return refused(egCtx, kconn, log) })
	eg.Go(func() error { return sched.Run(egCtx) })
	eg.Go(func() error { return watchHUP(egCtx) })
	srv := ops.NewHTTPServer(egCtx, handler)
	eg.Go(func() error { return group.Run(egCtx) })
	eg.Go(func() error { return owner.Run(egCtx) })
	eg.Go(func() error { return lag.Run(egCtx) })
	eg.Go(func() error {
		return refreshDaily(egCtx, store, DailyRules(cfg.Rules), cfg.Ingest.RefreshInterval, log)
	})
	eg.Go(func() error { return hub.Run(egCtx) })
	eg.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	eg.Go(func() error {
		<-egCtx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(egCtx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	})
	err = eg.Wait()
	if err == nil {
		// What the consumers stored up to their last commit waits no longer
		// than the stop: a stopped pipeline leaves subscriber_daily current.
		final, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Ingest.ShutdownTimeout)
		if res, ferr := store.RefreshPendingDaily(final, DailyRules(cfg.Rules)); ferr != nil {
			log.Warn().Err(ferr).Msg("subscriber_daily not refreshed at the stop; the next run or daily evaluation does it")
		} else if res.Days > 0 {
			log.Info().Int("days", res.Days).Dur("took", res.Duration).Msg("subscriber_daily refreshed at the stop")
		}
		cancel()
	}
	log.Info().Msg("pipeline stopped")
	return err
}

// OpenWarehouse connects to ClickHouse, waiting with capped backoff while
// it is unreachable. It returns nil, nil when ctx ends first, and the error
// at once when the server refuses the credentials or the certificate.
func OpenWarehouse(ctx context.Context, cfg config.ClickHouse, log zerolog.Logger) (*warehouse.Warehouse, error) {
	backoff := 200 * time.Millisecond
	for {
		wh, err := warehouse.Open(ctx, cfg, log)
		if err == nil {
			return wh, nil
		}
		if warehouse.Refused(err) {
			return nil, err
		}
		log.Warn().Err(err).Str("clickhouse", cfg.Addr).Dur("retry_in", backoff).Msg("waiting for ClickHouse")
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// refused stops the pipeline when the brokers refuse its connection (a
// wrong SASL password, an untrusted certificate): retrying cannot fix that,
// so it fails with what to change instead of retrying for ever. An
// unreachable broker is an outage: the consumers wait for it.
func refused(ctx context.Context, kconn kafkaconn.Conn, log zerolog.Logger) error {
	err := kconn.Check(ctx)
	switch {
	case err == nil || ctx.Err() != nil:
		return nil
	case kafkaconn.Rejected(err):
		return err
	}
	log.Warn().Err(err).Msg("kafka is not reachable yet; the consumers wait for it")
	return nil
}

// NewWriter returns a kafka-go writer for the pipeline's outputs: keyed
// messages partitioned like Kafka's Java clients (murmur2), acknowledged by
// all in-sync replicas before WriteMessages returns, batches sent promptly.
func NewWriter(conn kafkaconn.Conn) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(conn.Brokers...),
		Transport:    conn.Transport(),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    1000,
	}
}

// NumberPlan builds the number-prefix plan from the rules.
func NumberPlan(r config.Rules) *numbering.Plan {
	var table map[schemas.Network][]string
	if len(r.NetworkPrefixes) > 0 {
		table = map[schemas.Network][]string{}
		for n, p := range r.NetworkPrefixes {
			table[schemas.Network(n)] = p
		}
	}
	return numbering.NewPlan(table, schemas.Network(r.HomeNetwork))
}

// newDailyScheduler evaluates the daily signals on the configured schedule.
// Only the group's leader (the holder of partition 0) runs it, so several
// instances evaluate each day once, and another takes over when the leader
// dies; after each day it takes the month's tier snapshot if not taken yet.
func newDailyScheduler(cfg config.Config, wh *warehouse.Warehouse, pub daily.Publisher, group *consumers.Group, metrics *ops.Metrics,
	log zerolog.Logger) (*daily.Scheduler, error) {
	scfg, err := daily.SchedulerConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	scfg.Leader = group.Leader
	scfg.Prepare = PrepareDaily(wh, DailyRules(cfg.Rules), log)
	scfg.OnRun = func(res daily.Result, err error) { metrics.DailyRun(res.Duration, res.Published, err) }
	scfg.AfterDay = func(ctx context.Context, day time.Time) error {
		// The run just after midnight on the 1st opens the new month: its
		// snapshot (拍照) of the high-value base is taken then, once.
		_, _, err := wh.TakeSnapshot(ctx, warehouse.MonthOf(day.AddDate(0, 0, 1)))
		return err
	}
	return daily.NewScheduler(scfg, wh, pub, daily.SystemClock{}, log)
}

// DailyRules are the number lists subscriber_daily counts by.
func DailyRules(r config.Rules) warehouse.DailyRules {
	return warehouse.DailyRules{HomeNetwork: r.HomeNetwork, HotlineNumbers: r.HotlineNumbers, CompetitorHotlines: r.CompetitorHotlines}
}

// pendingRefresher recomputes the pending subscriber-days.
type pendingRefresher interface {
	RefreshPendingDaily(ctx context.Context, rules warehouse.DailyRules) (warehouse.PendingRefresh, error)
}

// pendingKeeper also drops the pending rows already recomputed.
type pendingKeeper interface {
	pendingRefresher
	DropRefreshedPending(ctx context.Context) (int, error)
}

// refreshDaily recomputes the pending subscriber-days every interval, so
// that subscriber_daily (the workbench's usage by day) trails the facts by
// about that much. A failed refresh is retried at the next tick: the
// pending rows stay until one succeeds.
func refreshDaily(ctx context.Context, wh pendingRefresher, rules warehouse.DailyRules, every time.Duration, log zerolog.Logger) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		res, err := wh.RefreshPendingDaily(ctx, rules)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn().Err(err).Dur("retry_in", every).Msg("subscriber_daily refresh failed; the pending subscriber-days wait for the next")
		case res.Days > 0:
			log.Debug().Int("days", res.Days).Dur("took", res.Duration).Msg("subscriber_daily refreshed")
		}
	}
}

// PrepareDaily is what runs before every daily evaluation: the recompute of
// the pending subscriber-days, so that the evaluation reads every fact
// stored before it, then the drop of the pending rows recorded before
// yesterday and recomputed since (a failed drop is retried the next day).
func PrepareDaily(wh pendingKeeper, rules warehouse.DailyRules, log zerolog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := wh.RefreshPendingDaily(ctx, rules)
		if err != nil {
			return err
		}
		dropped, err := wh.DropRefreshedPending(ctx)
		if err != nil {
			log.Warn().Err(err).Msg("old pending subscriber-days not dropped; the next daily evaluation tries again")
		}
		log.Info().Int("days", res.Days).Int("rounds", res.Rounds).Dur("took", res.Duration).Int("pending_days_dropped", dropped).
			Msg("pending subscriber-days recomputed for the daily evaluation")
		return nil
	}
}

// RealtimeRules configures the real-time signals from the rules.
func RealtimeRules(r config.Rules, plan *numbering.Plan) realtime.Rules {
	return realtime.Rules{Thresholds: r.Thresholds, HotlineNumbers: r.HotlineNumbers,
		CompetitorHotlines: r.CompetitorHotlines, Plan: plan, Version: r.Version()}
}

func startOffset(s string) int64 {
	if s == "latest" {
		return kafka.LastOffset
	}
	return kafka.FirstOffset
}
