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

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/simulate"
	"churnwatch/schemas"
)

type simFlags struct {
	subscribers  int
	seed         int64
	days         int
	end          string
	regions      string
	managers     int
	invalidShare float64
	rate         float64
	tiers        string
	churnShare   float64
}

func (s *simFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&s.subscribers, "subscribers", 1000, "number of subscribers")
	fs.Int64Var(&s.seed, "seed", 1, "random seed; the same seed produces the same events")
	fs.IntVar(&s.days, "days", 35, "days of history to generate")
	fs.StringVar(&s.end, "end", "", "first day after the generated history, YYYY-MM-DD (default today)")
	fs.StringVar(&s.regions, "regions", "", "comma-separated region names (default a few Fuzhou districts)")
	fs.IntVar(&s.managers, "managers", 3, "account and phone managers per region")
	fs.Float64Var(&s.invalidShare, "invalid-share", 0, "share of extra deliberately invalid messages (for the DLQ)")
	fs.Float64Var(&s.rate, "rate", 0, "target messages per second; 0 produces as fast as possible")
	fs.StringVar(&s.tiers, "tiers", "", "tier shares like diamond=0.02,gold=0.08,silver=0.2,standard=0.7")
	fs.Float64Var(&s.churnShare, "churn-share", simulate.DefaultChurnShare, "share of subscribers who churn within the window, with a persona each (0 for none)")
}

func (s simFlags) config(loc *time.Location) (simulate.Config, error) {
	c := simulate.Config{Subscribers: s.subscribers, Seed: s.seed, Days: s.days, Location: loc,
		Managers: s.managers, InvalidShare: s.invalidShare, Rate: s.rate, ChurnShare: s.churnShare}
	switch {
	case s.churnShare < 0:
		return c, fmt.Errorf("--churn-share %v: want a share between 0 and 1 (0 for no churners)", s.churnShare)
	case s.churnShare == 0:
		c.ChurnShare = simulate.NoChurn
	}
	if s.end != "" {
		end, err := time.ParseInLocation(time.DateOnly, s.end, loc)
		if err != nil {
			return c, fmt.Errorf("--end %q: want YYYY-MM-DD", s.end)
		}
		c.End = end
	}
	if s.regions != "" {
		c.Regions = strings.Split(s.regions, ",")
	}
	if s.tiers != "" {
		c.TierShares = map[schemas.Tier]float64{}
		for _, kv := range strings.Split(s.tiers, ",") {
			k, v, ok := strings.Cut(kv, "=")
			var share float64
			if _, err := fmt.Sscan(v, &share); !ok || err != nil {
				return c, fmt.Errorf("--tiers %q: want tier=share pairs like gold=0.1", s.tiers)
			}
			c.TierShares[schemas.Tier(k)] = share
		}
	}
	return c, nil
}

func simulateRun(ctx context.Context, cfg config.Config, s simFlags, log zerolog.Logger, stdout io.Writer) error {
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	sc, err := s.config(loc)
	if err != nil {
		return err
	}
	t := cfg.Topics
	kconn, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		return err
	}
	w := simulate.NewWriter(kconn)
	defer w.Close()
	start := time.Now()
	stats, err := simulate.Produce(ctx, sc, simulate.Topics{CDR: t.Name(t.CDR), Billing: t.Name(t.Billing), CRM: t.Name(t.CRM)},
		w, log)
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stdout, "interrupted after %d messages\n", stats.Messages)
		return nil
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "produced %d messages (%d cdr, %d billing, %d crm, %d invalid) in %s (%.0f msg/s)\n",
		stats.Messages, stats.CDR, stats.Billing, stats.CRM, stats.Invalid, took.Round(time.Millisecond),
		float64(stats.Messages)/took.Seconds())
	return nil
}
