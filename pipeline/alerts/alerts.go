// Package alerts publishes warnings: it completes each detected warning with
// the subscriber's tier and churn score, writes it to the warnings table and
// to the churn.warnings topic (keyed by MSISDN), in that order, and returns
// only when both hold it. Detecting warnings is not its job (packages
// realtime and daily do that).
package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// Store is what the publisher needs from ClickHouse.
type Store interface {
	InsertWarnings(ctx context.Context, rows []warehouse.WarningRow) error
	Profiles(ctx context.Context, msisdns []string) (map[string]warehouse.Profile, error)
	RecentWarnings(ctx context.Context, msisdns []string, from, to time.Time) (map[string][]signals.Scored, error)
}

// MessageWriter is the part of a kafka-go Writer the publisher uses; it must
// acknowledge synchronously.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Publisher writes warnings to ClickHouse and Kafka.
type Publisher struct {
	store  Store
	writer MessageWriter
	topic  string
}

// NewPublisher returns a publisher producing to topic.
func NewPublisher(store Store, w MessageWriter, topic string) *Publisher {
	return &Publisher{store: store, writer: w, topic: topic}
}

// Publish completes rows with tier and score, stores them and produces them.
// Safe to call again with the same rows after a failure: ids are
// deterministic, the table merges duplicates and consumers of the topic
// dedupe by warning_id.
func (p *Publisher) Publish(ctx context.Context, rows []warehouse.WarningRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := p.complete(ctx, rows); err != nil {
		return err
	}
	if err := p.store.InsertWarnings(ctx, rows); err != nil {
		return err
	}
	msgs := make([]kafka.Message, len(rows))
	for i := range rows {
		value, err := json.Marshal(rows[i].Warning)
		if err != nil {
			return fmt.Errorf("encode warning %s: %w", rows[i].WarningID, err)
		}
		msgs[i] = kafka.Message{Topic: p.topic, Key: []byte(rows[i].MSISDN), Value: value}
	}
	if err := p.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d warnings to %s: %w", len(msgs), p.topic, err)
	}
	return nil
}

// complete fills Tier (standard when the subscriber is unknown), the
// subscriber's region and managers, and Score
// (from the subscriber's warnings up to this one's detection, these
// included).
func (p *Publisher) complete(ctx context.Context, rows []warehouse.WarningRow) error {
	seen := map[string]bool{}
	var msisdns []string
	from, to := rows[0].DetectedAt, rows[0].DetectedAt
	for _, r := range rows {
		if !seen[r.MSISDN] {
			seen[r.MSISDN] = true
			msisdns = append(msisdns, r.MSISDN)
		}
		from, to = minTime(from, r.DetectedAt), maxTime(to, r.DetectedAt)
	}
	profiles, err := p.store.Profiles(ctx, msisdns)
	if err != nil {
		return err
	}
	past, err := p.store.RecentWarnings(ctx, msisdns, from.Add(-signals.ScoreHorizon), to)
	if err != nil {
		return err
	}
	for _, r := range rows {
		past[r.MSISDN] = append(past[r.MSISDN], signals.Scored{ID: r.WarningID, Signal: r.Signal, Severity: r.Severity, DetectedAt: r.DetectedAt})
	}
	for i := range rows {
		r := &rows[i]
		prof := profiles[r.MSISDN]
		r.Region, r.AccountManager, r.PhoneManager = prof.Region, prof.AccountManager, prof.PhoneManager
		if r.Tier = prof.Tier; r.Tier == "" {
			r.Tier = schemas.TierStandard
		}
		r.Score = signals.Score(r.DetectedAt, past[r.MSISDN])
		if r.Evidence == nil {
			r.Evidence = map[string]any{}
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
