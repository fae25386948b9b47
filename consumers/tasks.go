package consumers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/tasks"
	"churnwatch/schemas"
)

// taskConsumer builds a consumer whose rows are only observed by the
// partition's task engine (the facts they carry are stored elsewhere).
func taskConsumer[R any](topic string, owner *tasks.Owner, out OutputSink[tasks.Row], d Deps,
	decode func(*kafka.Message) (R, error), apply func(h *tasks.Handle, r *R) ([]tasks.Row, error)) *Consumer[R, tasks.Row] {
	observe := func(ctx context.Context, partition int, _ int64) (Observer[R, tasks.Row], func(), error) {
		h, err := owner.Acquire(ctx, partition)
		if err != nil {
			return nil, nil, err
		}
		return func(r *R) ([]tasks.Row, error) { return apply(h, r) }, h.Release, nil
	}
	store := storeOnly(func(context.Context, []R) error { return nil })
	return newConsumer(topic, d, decode, store, observe, out)
}

// NewWarnings returns the consumer of churn.warnings that opens and joins
// tasks. churn.warnings is keyed by MSISDN like the inputs, so the instance
// that owns a subscriber's partition is the only writer of its tasks.
func NewWarnings(topic string, owner *tasks.Owner, out OutputSink[tasks.Row], d Deps) *Consumer[schemas.Warning, tasks.Row] {
	decode := func(msg *kafka.Message) (schemas.Warning, error) {
		var w schemas.Warning
		if err := json.Unmarshal(msg.Value, &w); err != nil {
			return w, fmt.Errorf("not a warning: %w", err)
		}
		if w.WarningID == "" || w.MSISDN == "" || w.Signal == "" || w.Severity == "" || w.DetectedAt.IsZero() {
			return w, fmt.Errorf("warning lacks warning_id, msisdn, signal, severity or detected_at")
		}
		return w, nil
	}
	apply := func(h *tasks.Handle, w *schemas.Warning) ([]tasks.Row, error) { return h.OnWarning(*w), nil }
	return taskConsumer(topic, owner, out, d, decode, apply)
}

// NewTaskUpdates returns the consumer of churn.task-updates. An update for
// an unknown task or an illegal transition goes to the DLQ with the reason.
func NewTaskUpdates(topic string, owner *tasks.Owner, out OutputSink[tasks.Row], d Deps) *Consumer[schemas.TaskUpdate, tasks.Row] {
	decode := func(msg *kafka.Message) (schemas.TaskUpdate, error) { return schemas.DecodeTaskUpdate(msg.Value) }
	apply := func(h *tasks.Handle, u *schemas.TaskUpdate) ([]tasks.Row, error) { return h.OnUpdate(*u) }
	return taskConsumer(topic, owner, out, d, decode, apply)
}
