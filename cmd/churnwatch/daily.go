package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/signals"
)

// dailyDate reads the --date of `churnwatch daily`: a local day that is
// over in the configured time zone at now (the daily signals need a whole
// day). The message says what is wrong when it is not.
func dailyDate(value string, cfg config.Config, now time.Time) (time.Time, string) {
	day, err := time.Parse(time.DateOnly, value)
	if err != nil {
		return time.Time{}, fmt.Sprintf("--date %q: want a day like 2026-11-22", value)
	}
	loc, err := cfg.Location()
	if err != nil {
		return time.Time{}, err.Error()
	}
	if end := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc); end.After(now) {
		return time.Time{}, fmt.Sprintf("--date %s: that day is not over yet in %s; the daily signals evaluate whole days (yesterday at the latest)",
			value, loc)
	}
	return day, ""
}

// dailyRun evaluates the daily signals of day now, publishes the warnings
// to ClickHouse and the warnings topic, and prints how many fired per
// signal. Running it again for the same day publishes the same warnings,
// which the warnings table merges.
func dailyRun(ctx context.Context, cfg config.Config, day time.Time, log zerolog.Logger, stdout io.Writer) error {
	scfg, err := daily.SchedulerConfigFrom(cfg)
	if err != nil {
		return err
	}
	wh, err := pipeline.OpenWarehouse(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	if wh == nil {
		return errors.New("interrupted while waiting for ClickHouse; nothing was evaluated")
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		return fmt.Errorf("apply ClickHouse schema: %w", err)
	}
	kconn, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		return err
	}
	writer := pipeline.NewWriter(kconn)
	defer writer.Close()
	topic := cfg.Topics.Name(cfg.Topics.Warnings)
	scfg.Prepare = pipeline.PrepareDaily(wh, pipeline.DailyRules(cfg.Rules), log)
	s, err := daily.NewScheduler(scfg, wh, alerts.NewPublisher(wh, writer, topic), daily.SystemClock{}, log)
	if err != nil {
		return err
	}
	res, err := s.RunDay(ctx, day)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "daily signals for %s (%s): %d subscribers with history, %d profiles read, in %s\n",
		res.Day.Format(time.DateOnly), scfg.Evaluate.Location, res.Subscribers, res.Profiles, res.Duration.Round(time.Millisecond))
	for _, code := range daily.Codes() {
		info, _ := signals.Lookup(code)
		fmt.Fprintf(stdout, "  %-18s %7d  %s\n", code, res.Warnings[code], info.NameZH)
	}
	fmt.Fprintf(stdout, "%d warnings published to the warnings table and %s\n", res.Published, topic)
	return nil
}
