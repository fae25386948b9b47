package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/backtest"
	"churnwatch/pipeline/config"
)

// backtestFlags are the flags of `churnwatch backtest`.
type backtestFlags struct {
	rules    ruleFiles
	from, to string
}

// ruleFiles collects repeated --rules flags.
type ruleFiles []string

func (r *ruleFiles) String() string     { return strings.Join(*r, ",") }
func (r *ruleFiles) Set(v string) error { *r = append(*r, v); return nil }

func (f *backtestFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.rules, "rules", "a rules file to backtest (the keys of rules:); give it twice to compare two side by side; "+
		"without it, the rules in effect")
	fs.StringVar(&f.from, "from", "", "first local day of the period, YYYY-MM-DD")
	fs.StringVar(&f.to, "to", "", "last local day of the period, YYYY-MM-DD (over already)")
}

// backtestConfig checks the flags and returns the period; the message says
// what is wrong.
func backtestConfig(f backtestFlags, cfg config.Config, now time.Time) (backtest.Config, string) {
	loc, err := cfg.Location()
	if err != nil {
		return backtest.Config{}, err.Error()
	}
	if len(f.rules) > 4 {
		return backtest.Config{}, fmt.Sprintf("--rules given %d times: compare at most 4 rule sets at once", len(f.rules))
	}
	var days [2]time.Time
	for i, v := range []struct{ name, value string }{{"--from", f.from}, {"--to", f.to}} {
		if v.value == "" {
			return backtest.Config{}, fmt.Sprintf("%s is required: a day like 2026-11-22", v.name)
		}
		d, err := time.Parse(time.DateOnly, v.value)
		if err != nil {
			return backtest.Config{}, fmt.Sprintf("%s %q: want a day like 2026-11-22", v.name, v.value)
		}
		days[i] = d
	}
	c := backtest.Config{From: days[0], To: days[1], Location: loc}
	if err := c.Validate(); err != nil {
		return c, err.Error()
	}
	if end := time.Date(c.To.Year(), c.To.Month(), c.To.Day()+1, 0, 0, 0, 0, loc); end.After(now) {
		return c, fmt.Sprintf("--to %s: that day is not over yet in %s; backtest whole days (yesterday at the latest)", f.to, loc)
	}
	return c, ""
}

// backtestRun backtests each rules file (or the rules in effect) over the
// period and prints them side by side. It writes nothing anywhere.
func backtestRun(ctx context.Context, cfg config.Config, f backtestFlags, period backtest.Config, log zerolog.Logger, stdout io.Writer) error {
	type candidate struct {
		name  string
		rules config.Rules
	}
	var cands []candidate
	for _, path := range f.rules {
		r, err := config.LoadRules(path)
		if err != nil {
			return err
		}
		cands = append(cands, candidate{path, r})
	}
	if len(cands) == 0 {
		name := "the rules in effect"
		if cfg.RulesFile != "" {
			name = cfg.RulesFile
		}
		cands = append(cands, candidate{name, cfg.Rules})
	}
	wh, err := pipeline.OpenWarehouse(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	if wh == nil {
		return errors.New("interrupted while waiting for ClickHouse; nothing was backtested")
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		return fmt.Errorf("apply ClickHouse schema: %w", err)
	}
	var results []backtest.Result
	for _, c := range cands {
		res, err := backtest.Run(ctx, wh, c.name, c.rules, period)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return backtest.WriteComparison(stdout, period, results)
}
