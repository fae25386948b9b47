package warehouse

import (
	"context"
	"time"
)

var hotlineCallColumns = []string{"msisdn", "event_id", "peer", "start_time", "kafka_partition", "kafka_offset"}

// InsertHotlineCalls writes one hotline_calls row per CDR, for the CDRs the
// caller chose (MO calls to a hotline or competitor hotline number). Every
// delivery of a call keeps its row there, whatever copy of it survives in
// cdr, so that HotlineCalls can tell whether a call was consumed before a
// committed offset.
func (w *Warehouse) InsertHotlineCalls(ctx context.Context, rows []CDRRow) error {
	return w.insert(ctx, "hotline_calls", hotlineCallColumns, len(rows), func(i int) []any {
		r := &rows[i]
		return []any{r.MSISDN, r.EventID, r.Peer, r.StartTime, r.Partition, r.Offset}
	})
}

// HotlineCall is a stored MO call to a hotline number.
type HotlineCall struct {
	MSISDN, EventID, Peer string
	Time                  time.Time
}
