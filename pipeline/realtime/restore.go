package realtime

import (
	"context"
	"time"

	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// Store is what restoring state reads from ClickHouse.
type Store interface {
	// PartitionWatermark is the highest event time among the facts of a
	// topic's partition below an offset; table is the topic's fact table.
	PartitionWatermark(ctx context.Context, topic, table string, partition int, before int64) (time.Time, error)
	HotlineCalls(ctx context.Context, partition int, before int64, since time.Time, numbers []string) ([]warehouse.HotlineCall, error)
	FiredWarnings(ctx context.Context, topic string, partition int, before int64, since time.Time) ([]warehouse.FiredWarning, error)
	LastBills(ctx context.Context, partition int, before int64) ([]warehouse.LastBill, error)
}

// committedBefore turns a group's committed offset into the bound of what
// was consumed: a partition with no commit (a negative offset) has consumed
// nothing.
func committedBefore(offset int64) int64 { return max(offset, 0) }

func (r Rules) fired(ctx context.Context, st Store, topic string, partition int, before int64, watermark time.Time) ([]Fired, error) {
	since := watermark.Add(-r.Thresholds.Lateness - r.Thresholds.RealertAfter)
	stored, err := st.FiredWarnings(ctx, topic, partition, before, since)
	if err != nil {
		return nil, err
	}
	out := make([]Fired, len(stored))
	for i, f := range stored {
		out[i] = Fired{MSISDN: f.MSISDN, Signal: f.Signal, Severity: schemas.Severity(f.Severity), At: f.At}
	}
	return out, nil
}

// RestoreCDR rebuilds the state of a cdr.voice partition whose next offset
// to consume is offset.
func RestoreCDR(ctx context.Context, st Store, r Rules, topic string, partition int, offset int64) (*CDRState, error) {
	before := committedBefore(offset)
	wm, err := st.PartitionWatermark(ctx, topic, "cdr", partition, before)
	if err != nil {
		return nil, err
	}
	t := r.Thresholds
	window := time.Duration(max(t.HotlineCalls.WindowDays, t.CompetitorHotline.WindowDays)) * 24 * time.Hour
	numbers := append(append([]string{}, r.HotlineNumbers...), r.CompetitorHotlines...)
	stored, err := st.HotlineCalls(ctx, partition, before, wm.Add(-t.Lateness-window), numbers)
	if err != nil {
		return nil, err
	}
	competitor := set(r.CompetitorHotlines)
	calls := make([]Call, len(stored))
	for i, c := range stored {
		calls[i] = Call{MSISDN: c.MSISDN, EventID: c.EventID, Time: c.Time, Peer: c.Peer, Competitor: competitor[c.Peer]}
		// The watermark may come from cdr, where a call consumed before the
		// offset may survive only as a later duplicate; every restored call
		// was consumed, so the watermark is at least its time.
		if c.Time.After(wm) {
			wm = c.Time
		}
	}
	fired, err := r.fired(ctx, st, topic, partition, before, wm)
	if err != nil {
		return nil, err
	}
	return NewCDRState(r, topic, wm, calls, fired), nil
}

// RestoreBilling rebuilds the state of a billing.events partition.
func RestoreBilling(ctx context.Context, st Store, r Rules, topic string, partition int, offset int64) (*BillingState, error) {
	before := committedBefore(offset)
	wm, err := st.PartitionWatermark(ctx, topic, "billing_events", partition, before)
	if err != nil {
		return nil, err
	}
	stored, err := st.LastBills(ctx, partition, before)
	if err != nil {
		return nil, err
	}
	bills := make([]Bill, len(stored))
	for i, b := range stored {
		bills[i] = Bill{MSISDN: b.MSISDN, Month: b.Month, AmountFen: b.AmountFen}
	}
	fired, err := r.fired(ctx, st, topic, partition, before, wm)
	if err != nil {
		return nil, err
	}
	return NewBillingState(r, topic, wm, bills, fired), nil
}

// RestoreCRM rebuilds the state of a crm.events partition.
func RestoreCRM(ctx context.Context, st Store, r Rules, topic string, partition int, offset int64) (*CRMState, error) {
	wm, err := st.PartitionWatermark(ctx, topic, "crm_events", partition, committedBefore(offset))
	if err != nil {
		return nil, err
	}
	return NewCRMState(r, topic, wm), nil
}
