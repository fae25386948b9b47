package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/ops"
	"churnwatch/schemas"
)

// tailFlags are the flags of `churnwatch warnings tail`.
type tailFlags struct {
	signal, severity, tier, region, manager string
	json, fromBeginning                     bool
}

func (f *tailFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.signal, "signal", "", "only these signal codes (comma-separated), e.g. port_out,hotline_calls")
	fs.StringVar(&f.severity, "severity", "", "only these severities (comma-separated): info, low, medium, high, critical")
	fs.StringVar(&f.tier, "tier", "", "only these tiers (comma-separated): diamond, gold, silver, standard")
	fs.StringVar(&f.region, "region", "", "only these regions (comma-separated)")
	fs.StringVar(&f.manager, "manager", "", "only subscribers whose account or phone manager this is")
	fs.BoolVar(&f.json, "json", false, "print each warning as its churn.warnings JSON message, one per line")
	fs.BoolVar(&f.fromBeginning, "from-beginning", false, "start with the oldest warning the topic keeps instead of new ones")
}

func (f tailFlags) filter() ops.Filter {
	return ops.Filter{Signals: ops.SplitList(f.signal), Severities: ops.SplitList(f.severity), Tiers: ops.SplitList(f.tier),
		Regions: ops.SplitList(f.region), Manager: strings.TrimSpace(f.manager)}
}

// subcommand takes the expected sub-subcommand (as in `warnings tail`) off
// args.
func subcommand(cmd, want string, args []string, stderr io.Writer) ([]string, bool) {
	if len(args) == 0 || args[0] != want {
		got := "nothing"
		if len(args) > 0 {
			got = fmt.Sprintf("%q", args[0])
		}
		fmt.Fprintf(stderr, "churnwatch %s: want \"churnwatch %s %s\", got %s\n\n%s", cmd, cmd, want, got, usage)
		return nil, false
	}
	return args[1:], true
}

// warningsTail follows churn.warnings until ctx ends, printing the warnings
// that pass the filter, one line each.
func warningsTail(ctx context.Context, cfg config.Config, f tailFlags, stdout, stderr io.Writer) int {
	filter := f.filter()
	if err := filter.Validate(); err != nil {
		fmt.Fprintf(stderr, "churnwatch warnings tail: %v\n", err)
		return exitUsage
	}
	loc, err := cfg.Location()
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch warnings tail: %v\n", err)
		return exitUsage
	}
	topic := cfg.Topics.Name(cfg.Topics.Warnings)
	kconn, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch warnings tail: %v\n", err)
		return exitUsage
	}
	tailer := ops.NewTailer(ops.TailConfig{Conn: kconn, Topic: topic, FromBeginning: f.fromBeginning})
	show := func(w schemas.Warning) {
		if !filter.Match(w) {
			return
		}
		if f.json {
			b, _ := json.Marshal(w)
			fmt.Fprintf(stdout, "%s\n", b)
			return
		}
		fmt.Fprintln(stdout, warningLine(w, loc))
	}
	started := false
	ready := func() {
		if !started {
			started = true
			from := "new warnings"
			if f.fromBeginning {
				from = "the oldest warning kept"
			}
			fmt.Fprintf(stderr, "following %s from %s; Ctrl-C stops\n", topic, from)
		}
	}
	backoff := 500 * time.Millisecond
	for {
		err := tailer.Run(ctx, ready, show)
		if ctx.Err() != nil {
			return exitOK
		}
		if !started {
			fmt.Fprintf(stderr, "churnwatch warnings tail: %v (check CHURNWATCH_KAFKA_BROKERS and CHURNWATCH_TOPIC_PREFIX)\n", err)
			return exitError
		}
		fmt.Fprintf(stderr, "churnwatch warnings tail: %v; retrying in %s\n", err, backoff)
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// warningLine is one readable line: time, severity, signal in both
// languages, subscriber, tier, region, managers, score and evidence.
func warningLine(w schemas.Warning, loc *time.Location) string {
	v := ops.View(w, false)
	managers := strings.Trim(v.AccountManager+"/"+v.PhoneManager, "/")
	if managers == "" {
		managers = "-"
	}
	region := v.Region
	if region == "" {
		region = "-"
	}
	return fmt.Sprintf("%s  %-8s  %-19s %s (%s)  %s  %s  %s  %s  score %d  %s",
		v.DetectedAt.In(loc).Format("2006-01-02 15:04:05"), strings.ToUpper(v.Severity), v.Signal, v.SignalZH, v.SignalEN,
		v.MSISDN, v.Tier, region, managers, v.Score, v.Evidence)
}
