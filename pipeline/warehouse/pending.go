package warehouse

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"churnwatch/schemas"
)

// PendingDay is a subscriber-day a stored batch touched, with where its
// latest fact of the batch came from: its subscriber_daily row waits in
// subscriber_daily_pending for the refresh (RefreshPendingDaily).
type PendingDay struct {
	DayKey
	Partition int32
	Offset    int64
}

// ComparePendingDays orders days as subscriber_daily_pending sorts the rows
// of one topic (kafka_partition, then kafka_offset): a block inserted in
// that order, ClickHouse writes without sorting it.
func ComparePendingDays(a, b PendingDay) int {
	return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// InsertPendingDays records subscriber-days of topic whose facts are
// stored, for the refresh to recompute. It must follow the insert of those
// facts: the refresh that reads a pending row must find its facts.
func (w *Warehouse) InsertPendingDays(ctx context.Context, topic string, days []PendingDay) error {
	now := time.Now()
	return insertRows(ctx, w, "subscriber_daily_pending", []insertColumn[PendingDay]{
		col("topic", func(*PendingDay) string { return topic }),
		col("kafka_partition", func(d *PendingDay) int32 { return d.Partition }),
		col("kafka_offset", func(d *PendingDay) int64 { return d.Offset }),
		col("msisdn", func(d *PendingDay) string { return d.MSISDN }),
		col("day", func(d *PendingDay) time.Time { return d.Day }),
		col("recorded_at", func(*PendingDay) time.Time { return now }),
	}, days)
}

// PendingRefresh is what one RefreshPendingDaily did.
type PendingRefresh struct {
	Days       int // subscriber-days recomputed
	Partitions int // topic partitions whose refresh mark moved
	Rounds     int // reads of at most pendingRound pending rows
	Duration   time.Duration
}

// refreshChunk bounds the subscriber-days of one recompute query, so that
// the external table of keys and the query's memory stay small.
const refreshChunk = 500_000

// pendingRound bounds the pending rows one round of a refresh reads, so that
// a long backlog (a stopped refresher, a day of facts before a daily
// evaluation) is recomputed in rounds instead of held in memory at once.
const pendingRound = 1_000_000

// partitionKey names a topic partition in the refresh marks.
type partitionKey struct {
	topic     string
	partition int32
}

// RefreshPendingDaily recomputes subscriber_daily for every pending
// subscriber-day beyond the refresh marks, in rounds of at most
// pendingRound rows taken in offset order per topic partition: each round
// recomputes the days it read, then moves the marks to the highest offset
// it read per topic partition.
//
// Any number of refreshes may run at once, in this process or others (every
// `churnwatch run` and `churnwatch daily`): a recompute is exact whenever it
// runs, and a mark only ever covers rows the refresh that wrote it read and
// recomputed. Rows written to a partition after the read carry higher
// offsets than the mark, except the rows of a replayed batch, whose facts
// were stored, and counted, before. A round that stops between two rows of
// one offset leaves nothing behind: an offset is one message, of one
// subscriber-day, so rows with the same offset are copies from replays.
func (w *Warehouse) RefreshPendingDaily(ctx context.Context, rules DailyRules) (PendingRefresh, error) {
	return w.refreshPending(ctx, rules, pendingRound)
}

func (w *Warehouse) refreshPending(ctx context.Context, rules DailyRules, round int) (PendingRefresh, error) {
	start := time.Now()
	var res PendingRefresh
	moved := map[partitionKey]bool{}
	for {
		marks, err := w.refreshMarks(ctx)
		if err != nil {
			return res, err
		}
		keys, read, rows, err := w.pendingBeyond(ctx, marks, round)
		if err != nil {
			return res, err
		}
		if err := w.refreshInParallel(ctx, keys, rules, refreshSlice); err != nil {
			return res, err
		}
		if err := w.recordRefreshMarks(ctx, read); err != nil {
			return res, err
		}
		res.Days += len(keys)
		res.Rounds++
		for k := range read {
			moved[k] = true
		}
		if rows < round {
			break
		}
	}
	res.Partitions, res.Duration = len(moved), time.Since(start)
	return res, nil
}

// refreshParallel is how many recompute queries a refresh runs at once, and
// refreshSlice the fewest subscriber-days worth a query of their own. A
// recompute reads cdr FINAL, which ClickHouse 18.16 merges in one thread;
// keys cut into ranges of MSISDNs read disjoint granules, so ranges
// recomputed side by side use the server's cores.
const (
	refreshParallel = 4
	refreshSlice    = 20_000
)

// refreshInParallel recomputes keys in ranges of MSISDNs, up to
// refreshParallel at once, each of at least slice and at most refreshChunk
// subscriber-days.
func (w *Warehouse) refreshInParallel(ctx context.Context, keys []DayKey, rules DailyRules, slice int) error {
	slices.SortFunc(keys, func(a, b DayKey) int { return cmp.Or(cmp.Compare(a.MSISDN, b.MSISDN), a.Day.Compare(b.Day)) })
	size := min(refreshChunk, max(slice, (len(keys)+refreshParallel-1)/refreshParallel))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(refreshParallel)
	for from := 0; from < len(keys); from += size {
		part := keys[from:min(from+size, len(keys))]
		g.Go(func() error { return w.RefreshDaily(gctx, part, rules) })
	}
	return g.Wait()
}

// refreshMarks reads the highest refreshed offset of every topic partition.
func (w *Warehouse) refreshMarks(ctx context.Context) (map[partitionKey]int64, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT topic, kafka_partition, max(kafka_offset)
		FROM {db}.subscriber_daily_refreshed GROUP BY topic, kafka_partition`))
	if err != nil {
		return nil, fmt.Errorf("read the subscriber_daily refresh marks: %w", err)
	}
	defer rows.Close()
	marks := map[partitionKey]int64{}
	for rows.Next() {
		var k partitionKey
		var offset int64
		if err := rows.Scan(&k.topic, &k.partition, &offset); err != nil {
			return nil, fmt.Errorf("read the subscriber_daily refresh marks: %w", err)
		}
		marks[k] = offset
	}
	return marks, rows.Err()
}

// pendingBeyond reads at most limit pending rows beyond marks, the first by
// topic, partition and offset, and returns their distinct subscriber-days,
// the highest offset read per topic partition and how many rows it read.
func (w *Warehouse) pendingBeyond(ctx context.Context, marks map[partitionKey]int64, limit int) ([]DayKey, map[partitionKey]int64, int, error) {
	beyond, args := beyondMarks(marks)
	rows, err := w.conn.Query(ctx, w.sql(`SELECT topic, kafka_partition, kafka_offset, msisdn, day
		FROM {db}.subscriber_daily_pending
		WHERE `+beyond+`
		ORDER BY topic, kafka_partition, kafka_offset
		LIMIT `+strconv.Itoa(limit)), args...)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read the pending subscriber-days: %w", err)
	}
	defer rows.Close()
	type pendingRow struct {
		at     partitionKey
		offset int64
		day    DayKey
	}
	var all []pendingRow
	for rows.Next() {
		var r pendingRow
		if err := rows.Scan(&r.at.topic, &r.at.partition, &r.offset, &r.day.MSISDN, &r.day.Day); err != nil {
			return nil, nil, 0, fmt.Errorf("read the pending subscriber-days: %w", err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("read the pending subscriber-days: %w", err)
	}
	seen := map[DayKey]struct{}{}
	var keys []DayKey
	read := map[partitionKey]int64{}
	for _, r := range all {
		if _, ok := seen[r.day]; !ok {
			seen[r.day] = struct{}{}
			keys = append(keys, r.day)
		}
		read[r.at] = max(read[r.at], r.offset)
	}
	return keys, read, len(all), nil
}

var refreshedColumns = []string{"topic", "kafka_partition", "kafka_offset", "refreshed_at"}

func (w *Warehouse) recordRefreshMarks(ctx context.Context, read map[partitionKey]int64) error {
	now := time.Now()
	marks := make([][]any, 0, len(read))
	for k, o := range read {
		marks = append(marks, []any{k.topic, k.partition, o, now})
	}
	if err := w.insert(ctx, "subscriber_daily_refreshed", refreshedColumns, len(marks), func(i int) []any { return marks[i] }); err != nil {
		return fmt.Errorf("record the subscriber_daily refresh marks: %w", err)
	}
	return nil
}

// PendingDays counts the pending rows beyond the refresh marks: the
// subscriber-day deliveries whose recompute is still to come.
func (w *Warehouse) PendingDays(ctx context.Context) (uint64, error) {
	marks, err := w.refreshMarks(ctx)
	if err != nil {
		return 0, err
	}
	beyond, args := beyondMarks(marks)
	var n uint64
	if err := w.conn.QueryRow(ctx, w.sql("SELECT count() FROM {db}.subscriber_daily_pending WHERE "+beyond), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the pending subscriber-days: %w", err)
	}
	return n, nil
}

// beyondMarks is the condition, with its arguments, that keeps the pending
// rows above their partition's mark. transform() maps each marked partition
// to its mark, the others to -1; a partition's rows sort by offset, so the
// server reads only their tail.
func beyondMarks(marks map[partitionKey]int64) (string, []any) {
	names, offsets := make([]string, 0, len(marks)), make([]int64, 0, len(marks))
	for k, o := range marks {
		names, offsets = append(names, fmt.Sprintf("%s/%d", k.topic, k.partition)), append(offsets, o)
	}
	if len(names) == 0 {
		names, offsets = []string{""}, []int64{-1} // 18.16 refuses an empty array literal here
	}
	return "kafka_offset > transform(concat(topic, '/', toString(kafka_partition)), ?, CAST(? AS Array(Int64)), toInt64(-1))",
		[]any{names, offsets}
}

// DropRefreshedPending drops, from subscriber_daily_pending, the days of
// rows recorded before yesterday (its partitions) whose rows are all at or
// below the refresh marks, and returns how many it dropped. A day with a row
// beyond a mark stays until a refresh covers it. It reads the older days
// once; the daily evaluation calls it after its refresh.
func (w *Warehouse) DropRefreshedPending(ctx context.Context) (int, error) {
	marks, err := w.refreshMarks(ctx)
	if err != nil {
		return 0, err
	}
	beyond, args := beyondMarks(marks)
	rows, err := w.conn.Query(ctx, w.sql(`SELECT toYYYYMMDD(recorded_at) AS recorded, countIf(`+beyond+`)
		FROM {db}.subscriber_daily_pending WHERE recorded_at < toDateTime(yesterday())
		GROUP BY recorded ORDER BY recorded`), args...)
	if err != nil {
		return 0, fmt.Errorf("read the refreshed days of subscriber_daily_pending: %w", err)
	}
	var done []uint32
	for rows.Next() {
		var day uint32
		var left uint64
		if err := rows.Scan(&day, &left); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read the refreshed days of subscriber_daily_pending: %w", err)
		}
		if left == 0 {
			done = append(done, day)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	table := w.db + ".subscriber_daily_pending"
	if w.cluster != "" {
		table = fmt.Sprintf("%s%s ON CLUSTER `%s`", table, schemas.LocalSuffix, w.cluster)
	}
	for i, day := range done {
		if err := w.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", table, day)); err != nil {
			return i, fmt.Errorf("drop the refreshed day %d of subscriber_daily_pending: %w", day, err)
		}
	}
	return len(done), nil
}
