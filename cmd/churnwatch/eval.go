package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/eval"
	"churnwatch/pipeline/simulate"
)

// evalFlags are the flags of `churnwatch eval`.
type evalFlags struct {
	subscribers int
	days        int
	warmup      int
	seed        int64
	churnShare  float64
	end         string
	keep        bool
	json        bool
	rules       string
}

func (e *evalFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&e.subscribers, "subscribers", 2000, "number of simulated subscribers")
	fs.IntVar(&e.days, "days", 35, "days evaluated and scored, each after its events are consumed")
	fs.IntVar(&e.warmup, "warmup", 28, "days of simulated history before them, giving the daily signals their baselines (no churn starts there)")
	fs.Int64Var(&e.seed, "seed", 1, "random seed of the population")
	fs.Float64Var(&e.churnShare, "churn-share", simulate.DefaultChurnShare, "share of subscribers who churn within the window (0 for none)")
	fs.StringVar(&e.end, "end", "", "first day after the simulated history, YYYY-MM-DD (default today); fix it to repeat a run exactly")
	fs.BoolVar(&e.keep, "keep", false, "keep the scratch database eval_* afterwards (it is dropped otherwise)")
	fs.BoolVar(&e.json, "json", false, "print JSON instead of the table")
	fs.StringVar(&e.rules, "rules", "", "a rules file to evaluate instead of the rules in effect (the keys of rules:), to judge a change before it ships")
}

// config turns the flags into a run's configuration.
func (e evalFlags) config(cfg config.Config) (eval.Config, error) {
	loc, err := cfg.Location()
	if err != nil {
		return eval.Config{}, err
	}
	if e.rules != "" {
		r, err := config.LoadRules(e.rules)
		if err != nil {
			return eval.Config{}, err
		}
		cfg.Rules, cfg.RulesFile = r, e.rules
	}
	sim := simulate.Config{Subscribers: e.subscribers, Days: e.days, Seed: e.seed, ChurnShare: e.churnShare, Location: loc}
	switch {
	case e.subscribers <= 0:
		return eval.Config{}, fmt.Errorf("--subscribers %d: want a positive number", e.subscribers)
	case e.days <= 0:
		return eval.Config{}, fmt.Errorf("--days %d: want a positive number", e.days)
	case e.warmup < 0:
		return eval.Config{}, fmt.Errorf("--warmup %d: want 0 or more days", e.warmup)
	case e.churnShare < 0 || e.churnShare > 1:
		return eval.Config{}, fmt.Errorf("--churn-share %v: want a share between 0 and 1 (0 for no churners)", e.churnShare)
	case e.churnShare == 0:
		sim.ChurnShare = simulate.NoChurn
	}
	if e.end != "" {
		end, err := time.ParseInLocation(time.DateOnly, e.end, loc)
		if err != nil {
			return eval.Config{}, fmt.Errorf("--end %q: want YYYY-MM-DD", e.end)
		}
		sim.End = end
	}
	whole := sim
	whole.Days += e.warmup
	whole.Warmup = e.warmup
	if err := whole.Validate(); err != nil {
		return eval.Config{}, err
	}
	return eval.Config{Pipeline: cfg, Simulation: sim, Warmup: e.warmup, Keep: e.keep}, nil
}

// evalRun runs `churnwatch eval` and prints its result.
func evalRun(ctx context.Context, cfg config.Config, e evalFlags, log zerolog.Logger, stdout io.Writer) error {
	ec, err := e.config(cfg)
	if err != nil {
		return err
	}
	res, err := eval.Run(ctx, ec, log)
	if err != nil {
		return err
	}
	if e.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteTable(stdout)
}
