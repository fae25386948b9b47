package warehouse

import (
	"context"
	"fmt"
	"time"
)

// The queries below rebuild a consumer's real-time state for one partition
// from what was stored before its committed offset: facts and warnings at
// or after that offset will be consumed again and must not be counted twice.

// stateTables lists the fact tables and their event-time column; nothing
// else is ever put into these queries.
var stateTables = map[string]string{"cdr": "start_time", "billing_events": "ts", "crm_events": "ts"}

// Watermark returns the highest event time among the facts of a partition
// with offsets below before (zero time when there are none). An event whose
// only copy below before was merged away by a later duplicate (at or after
// before) is missed: RestoreCDR raises the cdr watermark to the restored
// hotline calls; otherwise the watermark is low until the replay reaches the
// duplicate, which only makes the lateness bound laxer for events between.
// It scans the partition's facts in full (kafka_partition is not in the
// sorting key): the restore reads PartitionWatermark, which falls back to it
// once per partition.
func (w *Warehouse) Watermark(ctx context.Context, table string, partition int, before int64) (time.Time, error) {
	col, ok := stateTables[table]
	if !ok {
		return time.Time{}, fmt.Errorf("watermark: unknown table %q", table)
	}
	var t time.Time
	var n uint64
	q := fmt.Sprintf("SELECT max(%s), count() FROM %s.%s WHERE kafka_partition = ? AND kafka_offset < ?", col, w.db, table)
	if err := w.conn.QueryRow(ctx, q, int32(partition), before).Scan(&t, &n); err != nil {
		return time.Time{}, fmt.Errorf("watermark of %s partition %d: %w", table, partition, err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return t, nil
}

// Watermark is what a consumer records of one partition when it commits:
// the committed offset (the next one to read) and the highest event time it
// stored on the partition since it was assigned (zero: none).
type Watermark struct {
	Partition int
	Offset    int64
	Time      time.Time
}

var watermarkColumns = []string{"topic", "kafka_partition", "kafka_offset", "watermark", "recorded_at"}

// noWatermark stands for the zero time in partition_watermarks, whose
// DateTime cannot hold it.
var noWatermark = time.Unix(0, 0)

// RecordWatermarks writes a partition_watermarks row per mark of a topic
// (its full name, as consumed).
func (w *Warehouse) RecordWatermarks(ctx context.Context, topic string, marks []Watermark) error {
	now := time.Now()
	return w.insert(ctx, "partition_watermarks", watermarkColumns, len(marks), func(i int) []any {
		m := &marks[i]
		t := m.Time
		if !t.After(noWatermark) {
			t = noWatermark
		}
		return []any{topic, int32(m.Partition), m.Offset, t, now}
	})
}

// PartitionWatermark returns what Watermark returns, the highest event time
// among the facts of a topic's partition with offsets below before, from
// partition_watermarks: every row there holds the highest event time stored
// on the partition from an assignment up to a commit, so the maximum over
// the rows at or below before covers every fact below it, including copies
// a later duplicate merged away. It reads a few rows at the head of the
// sorting key. When the partition has no row at or below before (its facts
// were stored before the table existed, or the partition is new), it scans
// table with Watermark and records the result as a row at before, so that
// the scan happens once per partition.
func (w *Warehouse) PartitionWatermark(ctx context.Context, topic, table string, partition int, before int64) (time.Time, error) {
	if _, ok := stateTables[table]; !ok {
		return time.Time{}, fmt.Errorf("watermark: unknown table %q", table)
	}
	var t time.Time
	var n uint64
	if err := w.conn.QueryRow(ctx, w.sql(`SELECT max(watermark), count() FROM {db}.partition_watermarks
		WHERE topic = ? AND kafka_partition = ? AND kafka_offset <= ?`), topic, int32(partition), before).Scan(&t, &n); err != nil {
		return time.Time{}, fmt.Errorf("watermark of %s/%d: %w", topic, partition, err)
	}
	if n > 0 {
		if !t.After(noWatermark) {
			return time.Time{}, nil
		}
		return t, nil
	}
	t, err := w.Watermark(ctx, table, partition, before)
	if err != nil {
		return time.Time{}, err
	}
	if err := w.RecordWatermarks(ctx, topic, []Watermark{{Partition: partition, Offset: before, Time: t}}); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// HotlineCalls returns the MO calls to the given numbers, since the given
// time, of a partition below an offset, in the order they were first
// consumed. It reads hotline_calls, where every delivery of a call has a
// row: a call counts when any of its copies is below the offset. (In cdr
// only the copy inserted last survives a merge; when a duplicate at or
// after the offset was stored before a crash, it would hide the call.)
func (w *Warehouse) HotlineCalls(ctx context.Context, partition int, before int64, since time.Time, numbers []string) ([]HotlineCall, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT msisdn, event_id, any(peer), any(start_time) FROM {db}.hotline_calls
		WHERE kafka_partition = ? AND has(?, peer) AND start_time >= ?
		GROUP BY msisdn, event_id HAVING min(kafka_offset) < ?
		ORDER BY min(kafka_offset)`), int32(partition), numberList(numbers), since, before)
	if err != nil {
		return nil, fmt.Errorf("hotline calls of partition %d: %w", partition, err)
	}
	defer rows.Close()
	var out []HotlineCall
	for rows.Next() {
		var c HotlineCall
		if err := rows.Scan(&c.MSISDN, &c.EventID, &c.Peer, &c.Time); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// FiredWarning is a stored real-time warning.
type FiredWarning struct {
	MSISDN, Signal, Severity string
	At                       time.Time
}

// FiredWarnings returns the real-time warnings a topic's partition fired
// since the given time, from events below an offset.
func (w *Warehouse) FiredWarnings(ctx context.Context, topic string, partition int, before int64, since time.Time) ([]FiredWarning, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT msisdn, signal, toString(severity), detected_at FROM {db}.warnings FINAL
		WHERE source = 'realtime' AND source_topic = ? AND kafka_partition = ? AND kafka_offset < ? AND detected_at >= ?`),
		topic, int32(partition), before, since)
	if err != nil {
		return nil, fmt.Errorf("fired warnings of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	var out []FiredWarning
	for rows.Next() {
		var f FiredWarning
		if err := rows.Scan(&f.MSISDN, &f.Signal, &f.Severity, &f.At); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// LastBill is a subscriber's latest monthly bill.
type LastBill struct {
	MSISDN, Month string
	AmountFen     int64
}

// LastBills returns each subscriber's latest BILL of a partition below an
// offset.
func (w *Warehouse) LastBills(ctx context.Context, partition int, before int64) ([]LastBill, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT msisdn, max(bill_month), argMax(ifNull(amount_fen, 0), (bill_month, ts))
		FROM {db}.billing_events FINAL
		WHERE kafka_partition = ? AND kafka_offset < ? AND type = 'BILL' GROUP BY msisdn`), int32(partition), before)
	if err != nil {
		return nil, fmt.Errorf("last bills of partition %d: %w", partition, err)
	}
	defer rows.Close()
	var out []LastBill
	for rows.Next() {
		var b LastBill
		if err := rows.Scan(&b.MSISDN, &b.Month, &b.AmountFen); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
