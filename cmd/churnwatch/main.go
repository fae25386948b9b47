// Command churnwatch is the churn-warning pipeline: one binary with the
// subcommands run, broker, simulate, migrate and daily (SPEC section 9).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // time zones work on machines without tzdata

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/broker"
	"churnwatch/pipeline/config"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `churnwatch: churn warnings for mobile operators

Usage:
  churnwatch run       [--config FILE]   run the pipeline (consumers, ClickHouse writer, HTTP endpoints)
  churnwatch broker    [--config FILE]   run the embedded Kafka-protocol broker with the pipeline's topics
  churnwatch simulate  [--config FILE] [flags]   produce a simulated subscriber population's events
  churnwatch migrate   [--config FILE] [--cluster NAME]
                                         create or upgrade the ClickHouse schema (with --cluster: ON
                                         CLUSTER, replicated and Distributed tables; docs/cluster.md)
  churnwatch daily     --date YYYY-MM-DD  evaluate the daily signals for a past day now (idempotent) and
                                         print the warnings per signal
  churnwatch rules     [--json]          print the warning rules in effect (and their version): every
                                         signal, its severity and thresholds
  churnwatch backtest  [--rules FILE [--rules FILE2]] --from YYYY-MM-DD --to YYYY-MM-DD
                                         replay the stored facts through candidate rules (nothing is emitted)
                                         and print per signal the warnings, precision, recall and lead time
  churnwatch config print [--config FILE]
                                         print the effective configuration as YAML, secrets masked
  churnwatch warnings tail [--signal S] [--severity V] [--tier T] [--region R] [--manager M] [--json]
                                         follow churn.warnings, one line (or JSON message) per warning
  churnwatch tasks list [--assignee M] [--status S] [--overdue] [--json]
                                         list retention tasks at their latest version
  churnwatch report    --manager M [--date YYYY-MM-DD] [--format csv|html] [--out FILE]
                                         a manager's anomaly report (客户异常情况表) of a day
  churnwatch subscriber MSISDN [--json]  the subscriber 360 view (as the user CHURNWATCH_ACCESS_TOKEN names)
  churnwatch scorecard [--month YYYY-MM] [--csv]
                                         the manager scorecard of a month (the rows the user
                                         CHURNWATCH_ACCESS_TOKEN names may see; all without it)
  churnwatch eval      [--subscribers N] [--days D] [--warmup D] [--seed S] [--churn-share F]
                       [--end YYYY-MM-DD] [--keep] [--json]
                                         replay a simulated population with known churners through the
                                         pipeline (own broker, scratch database) and score every signal
  churnwatch bench     [--subscribers N] [--days D] [--rate R] [--latency-seconds S]
                                         performance figures (make bench): throughput against ClickHouse's
                                         Kafka engine, warning latency, state memory, daily evaluation

With no configuration the pipeline uses the embedded broker (127.0.0.1:19092) and the local
ClickHouse started by deploy/local/clickhouse.sh (127.0.0.1:19000). Environment variables
CHURNWATCH_* override the file; see README.md. Run "churnwatch <command> -h" for its flags.
`

// exit codes
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("churnwatch "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("CHURNWATCH_CONFIG"), "YAML configuration file (env CHURNWATCH_CONFIG)")
	var sim simFlags
	var date string
	var cluster string
	var rulesJSON bool
	var tail tailFlags
	var taskList taskListFlags
	var rep reportFlags
	var ev evalFlags
	var bf benchFlags
	var bt backtestFlags
	var sub subscriberFlags
	var sc scorecardFlags
	var msisdn string
	switch cmd {
	case "run", "broker":
	case "migrate":
		fs.StringVar(&cluster, "cluster", "", "create the schema ON CLUSTER NAME: replicated local tables and Distributed tables (overrides clickhouse.cluster, env CHURNWATCH_CLICKHOUSE_CLUSTER)")
	case "simulate":
		sim.register(fs)
	case "daily":
		fs.StringVar(&date, "date", "", "local day to evaluate, YYYY-MM-DD (in the configured time zone; over already)")
	case "rules":
		fs.BoolVar(&rulesJSON, "json", false, "print JSON instead of text")
	case "warnings", "tasks", "config":
		sub := map[string]string{"warnings": "tail", "tasks": "list", "config": "print"}[cmd]
		var ok bool
		if args, ok = subcommand(cmd, sub, args, stderr); !ok {
			return exitUsage
		}
		fs = flag.NewFlagSet("churnwatch "+cmd+" "+sub, flag.ContinueOnError)
		fs.SetOutput(stderr)
		configPath = fs.String("config", os.Getenv("CHURNWATCH_CONFIG"), "YAML configuration file (env CHURNWATCH_CONFIG)")
		switch cmd {
		case "warnings":
			tail.register(fs)
		case "tasks":
			taskList.register(fs)
		}
	case "report":
		rep.register(fs)
	case "eval":
		ev.register(fs)
	case "bench":
		bf.register(fs)
	case "backtest":
		bt.register(fs)
	case "scorecard":
		sc.register(fs)
	case "subscriber":
		sub.register(fs)
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			msisdn, args = args[0], args[1:]
		}
	default:
		fmt.Fprintf(stderr, "churnwatch: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := config.Load(*configPath, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch: configuration: %v\n", err)
		return exitUsage
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "run":
		err = pipeline.Run(ctx, cfg, log)
	case "broker":
		err = broker.Run(ctx, broker.Config{Port: cfg.Broker.Port, DataDir: cfg.Broker.DataDir,
			Partitions: cfg.Broker.Partitions, Topics: cfg.Topics.All()}, log.With().Str("component", "broker").Logger())
	case "migrate":
		if cluster != "" {
			cfg.ClickHouse.Cluster = cluster
			if verr := cfg.Validate(); verr != nil {
				fmt.Fprintf(stderr, "churnwatch migrate: --cluster: %v\n", verr)
				return exitUsage
			}
		}
		err = migrate(ctx, cfg, log, stdout)
	case "simulate":
		err = simulateRun(ctx, cfg, sim, log, stdout)
	case "daily":
		day, problem := dailyDate(date, cfg, time.Now())
		if problem != "" {
			fmt.Fprintf(stderr, "churnwatch daily: %s\n", problem)
			return exitUsage
		}
		err = dailyRun(ctx, cfg, day, log, stdout)
	case "rules":
		err = printRules(cfg, rulesJSON, stdout)
	case "config":
		err = printConfig(cfg, stdout)
	case "warnings":
		return warningsTail(ctx, cfg, tail, stdout, stderr)
	case "tasks":
		return tasksList(ctx, cfg, taskList, log, stdout, stderr)
	case "report":
		return report(ctx, cfg, rep, log, stdout, stderr)
	case "subscriber":
		if msisdn == "" {
			msisdn = fs.Arg(0)
		}
		return subscriber(ctx, cfg, msisdn, sub, log, stdout, stderr)
	case "scorecard":
		return scorecard(ctx, cfg, sc, log, stdout, stderr)
	case "eval":
		err = evalRun(ctx, cfg, ev, log, stdout)
	case "bench":
		err = benchRun(ctx, cfg, bf, log, stdout)
	case "backtest":
		period, problem := backtestConfig(bt, cfg, time.Now())
		if problem != "" {
			fmt.Fprintf(stderr, "churnwatch backtest: %s\n", problem)
			return exitUsage
		}
		err = backtestRun(ctx, cfg, bt, period, log, stdout)
	}
	if err != nil {
		log.Error().Err(err).Msg(cmd + " failed")
		return exitError
	}
	return exitOK
}

func newLogger(cfg config.Log, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log level %q: want debug, info, warn or error", cfg.Level)
	}
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func migrate(ctx context.Context, cfg config.Config, log zerolog.Logger, stdout io.Writer) error {
	wh, err := pipeline.OpenWarehouse(ctx, cfg.ClickHouse, log)
	if err != nil || wh == nil {
		return err
	}
	defer wh.Close()
	applied, err := wh.Migrate(ctx)
	if err != nil {
		return err
	}
	version, err := wh.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	onCluster := ""
	if cfg.ClickHouse.Cluster != "" {
		onCluster = " on cluster " + cfg.ClickHouse.Cluster
	}
	fmt.Fprintf(stdout, "database %s at schema version %d (%d migrations applied now)%s\n", cfg.ClickHouse.Database, version, len(applied), onCluster)
	return nil
}
