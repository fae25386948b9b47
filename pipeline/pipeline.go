// Package pipeline wires the stages together: it connects to ClickHouse
// (waiting for it), applies the schema, joins the consumer group with one
// consumer per input topic, and serves the health endpoints, all under one
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

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"churnwatch/consumers"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/numbering"
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

	writer := NewWriter(cfg.Kafka.Brokers)
	defer writer.Close()
	t := cfg.Topics
	plan := NumberPlan(cfg.Rules)
	deps := consumers.Deps{
		Store:       wh,
		DeadLetters: consumers.NewDeadLetterQueue(writer, wh, config.DLQSuffix),
		Warnings:    alerts.NewPublisher(wh, writer, t.Name(t.Warnings)),
		State:       wh,
		Rules:       RealtimeRules(cfg.Rules, plan),
		Readers:     consumers.PartitionReaders(cfg.Kafka.Brokers, nil, cfg.Ingest.MaxMessageBytes),
		Plan:        plan,
		Location:    loc,
		DailyRules: warehouse.DailyRules{HomeNetwork: cfg.Rules.HomeNetwork, HotlineNumbers: cfg.Rules.HotlineNumbers,
			CompetitorHotlines: cfg.Rules.CompetitorHotlines},
		TierRules: warehouse.TierRules{DiamondFen: cfg.Tiers.DiamondFen, GoldFen: cfg.Tiers.GoldFen, SilverFen: cfg.Tiers.SilverFen},
		Settings: consumers.Settings{BatchSize: cfg.Ingest.BatchSize, FlushInterval: cfg.Ingest.FlushInterval,
			MaxMessageBytes: cfg.Ingest.MaxMessageBytes, ShutdownTimeout: cfg.Ingest.ShutdownTimeout},
		Log: log,
	}
	taskOut := tasks.NewPublisher(wh, writer, t.Name(t.Tasks))
	owner := tasks.NewOwner(cfg.Tasks, wh, taskOut, systemClock{}, log)
	group := consumers.NewGroup(consumers.GroupConfig{
		Brokers: cfg.Kafka.Brokers, GroupID: cfg.Kafka.GroupID, StartOffset: startOffset(cfg.Kafka.StartOffset),
	}, log,
		consumers.NewCDR(t.Name(t.CDR), deps),
		consumers.NewBilling(t.Name(t.Billing), deps),
		consumers.NewCRM(t.Name(t.CRM), deps),
		consumers.NewWarnings(t.Name(t.Warnings), owner, taskOut, deps),
		consumers.NewTaskUpdates(t.Name(t.TaskUpdates), owner, taskOut, deps),
	)

	srv := &http.Server{Addr: cfg.HTTP.Addr, Handler: healthHandler(wh), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s for the HTTP endpoints: %w (set CHURNWATCH_HTTP_ADDR to a free address)", cfg.HTTP.Addr, err)
	}
	log.Info().Strs("brokers", cfg.Kafka.Brokers).Str("group", cfg.Kafka.GroupID).Strs("topics", t.Inputs()).
		Str("clickhouse", cfg.ClickHouse.Addr).Str("database", cfg.ClickHouse.Database).
		Str("http", ln.Addr().String()).Msg("pipeline started")

	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error { return group.Run(egCtx) })
	eg.Go(func() error { return owner.Run(egCtx) })
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
	log.Info().Msg("pipeline stopped")
	return err
}

// OpenWarehouse connects to ClickHouse, waiting with capped backoff while
// it is unreachable. It returns nil, nil when ctx ends first.
func OpenWarehouse(ctx context.Context, cfg config.ClickHouse, log zerolog.Logger) (*warehouse.Warehouse, error) {
	backoff := 200 * time.Millisecond
	for {
		wh, err := warehouse.Open(ctx, cfg, log)
		if err == nil {
			return wh, nil
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

// NewWriter returns a kafka-go writer for the pipeline's outputs: keyed
// messages partitioned like Kafka's Java clients (murmur2), acknowledged by
// all in-sync replicas before WriteMessages returns, batches sent promptly.
func NewWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
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

// systemClock is the wall clock, for escalation and the daily schedule.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// RealtimeRules configures the real-time signals from the rules.
func RealtimeRules(r config.Rules, plan *numbering.Plan) realtime.Rules {
	return realtime.Rules{Thresholds: r.Thresholds, HotlineNumbers: r.HotlineNumbers,
		CompetitorHotlines: r.CompetitorHotlines, Plan: plan}
}

func startOffset(s string) int64 {
	if s == "latest" {
		return kafka.LastOffset
	}
	return kafka.FirstOffset
}

func healthHandler(wh *warehouse.Warehouse) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := wh.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"ready\":false,\"clickhouse\":%q}\n", err.Error())
			return
		}
		fmt.Fprintln(w, `{"ready":true}`)
	})
	return mux
}
