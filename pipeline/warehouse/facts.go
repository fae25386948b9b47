package warehouse

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"churnwatch/schemas"
)

// Provenance is where a fact came from in Kafka; it makes audits and state
// rebuilds possible.
type Provenance struct {
	Partition int32
	Offset    int64
}

// CDRRow is a CDR ready for the cdr table.
type CDRRow struct {
	schemas.CDR
	// Network is peer_network from the message or, when absent, from the
	// prefix table (of forward_to for FWD records).
	Network        schemas.Network
	NetworkDerived bool
	Day            time.Time // local day, as a UTC midnight
	Provenance
}

// BillingRow is a billing event ready for the billing_events table.
type BillingRow struct {
	schemas.BillingEvent
	Day time.Time
	Provenance
}

// CRMRow is a CRM event ready for the crm_events table.
type CRMRow struct {
	schemas.CRMEvent
	ProfileJSON string
	Day         time.Time
	Provenance
}

// DeadLetter is a rejected input message with the reason.
type DeadLetter struct {
	Topic      string
	Partition  int32
	Offset     int64
	Key        []byte
	Error      string
	Raw        []byte
	ReceivedAt time.Time
}

// LocalDay returns the calendar day of t in loc as a UTC midnight, the form
// ClickHouse Date columns take.
func LocalDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (w *Warehouse) insert(ctx context.Context, table string, columns []string, n int, row func(i int) []any) error {
	return w.insertBatch(ctx, table, columns, n, func(batch driver.Batch, lo, hi int) error {
		for i := lo; i < hi; i++ {
			if err := batch.Append(row(i)...); err != nil {
				return fmt.Errorf("insert %s row %d: %w", table, i, err)
			}
		}
		return nil
	})
}

// insertBlockRows is how many rows of an insert travel in one block. The
// server squashes the blocks of one INSERT back into parts of up to
// min_insert_block_size_rows (1,048,576 by default), so a batch still makes
// one part per month; the client's column buffers, emptied and reused from
// block to block, stay this small instead of growing, by repeated copying
// into fresh memory, to a whole batch of 200,000 rows.
const insertBlockRows = 16384

// insertBatch prepares an insert of n rows into table, has fill add rows
// [lo, hi) for each block of at most insertBlockRows rows and sends each
// block, and ends the insert.
func (w *Warehouse) insertBatch(ctx context.Context, table string, columns []string, n int, fill func(batch driver.Batch, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	batch, err := w.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", w.db, table, strings.Join(columns, ", ")))
	if err != nil {
		return fmt.Errorf("insert %s: %w", table, err)
	}
	defer batch.Abort()
	for lo := 0; lo < n; lo += insertBlockRows {
		hi := min(lo+insertBlockRows, n)
		if err := fill(batch, lo, hi); err != nil {
			return err
		}
		if hi == n {
			break // Send sends the last block
		}
		if err := batch.Flush(); err != nil {
			return fmt.Errorf("insert %s batch of %d, rows %d-%d: %w", table, n, lo, hi-1, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %s batch of %d: %w", table, n, err)
	}
	return nil
}

// cdrColumns are the columns of cdr an insert writes.
func cdrColumns(now time.Time) []insertColumn[CDRRow] {
	return []insertColumn[CDRRow]{
		col("event_id", func(r *CDRRow) string { return r.EventID }),
		col("msisdn", func(r *CDRRow) string { return r.MSISDN }),
		col("peer", func(r *CDRRow) string { return r.Peer }),
		col("peer_network", func(r *CDRRow) string { return string(r.Network) }),
		col("network_derived", func(r *CDRRow) uint8 { return boolUInt8(r.NetworkDerived) }),
		col("direction", func(r *CDRRow) string { return string(r.Direction) }),
		col("start_time", func(r *CDRRow) time.Time { return r.StartTime }),
		col("day", func(r *CDRRow) time.Time { return r.Day }),
		col("duration_s", func(r *CDRRow) uint32 { return uint32(r.DurationS) }),
		col("forward_to", func(r *CDRRow) string { return r.ForwardTo }),
		col("cell_id", func(r *CDRRow) string { return r.CellID }),
		col("kafka_partition", func(r *CDRRow) int32 { return r.Partition }),
		col("kafka_offset", func(r *CDRRow) int64 { return r.Offset }),
		col("ingested_at", func(*CDRRow) time.Time { return now }),
	}
}

// InsertCDR writes a batch of CDRs to the cdr table. A batch of at least
// splitCDRRows goes as two INSERTs side by side, its halves: ClickHouse
// 18.16 sorts and writes the part of one INSERT in one thread, and while it
// does, the consumer's storer waits and the second core idled in the
// CDR-only half of a catch-up (17-36% idle). When one half fails, the whole
// batch is retried; the facts' ReplacingMergeTree absorbs the copies.
func (w *Warehouse) InsertCDR(ctx context.Context, rows []CDRRow) error {
	now := time.Now()
	if len(rows) < splitCDRRows {
		return insertRows(ctx, w, "cdr", cdrColumns(now), rows)
	}
	half := len(rows) / 2
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return insertRows(gctx, w, "cdr", cdrColumns(now), rows[:half]) })
	g.Go(func() error { return insertRows(gctx, w, "cdr", cdrColumns(now), rows[half:]) })
	return g.Wait()
}

// splitCDRRows is the smallest CDR batch InsertCDR splits: a catch-up's
// batches (200,000 rows by default), not the small ones of a steady stream,
// whose two parts would only mean more merging.
const splitCDRRows = 4 * insertBlockRows

func boolUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// InsertBilling writes a batch of billing events to billing_events.
func (w *Warehouse) InsertBilling(ctx context.Context, rows []BillingRow) error {
	now := time.Now()
	return insertRows(ctx, w, "billing_events", []insertColumn[BillingRow]{
		col("event_id", func(r *BillingRow) string { return r.EventID }),
		col("msisdn", func(r *BillingRow) string { return r.MSISDN }),
		col("type", func(r *BillingRow) string { return string(r.Type) }),
		col("ts", func(r *BillingRow) time.Time { return r.TS }),
		col("day", func(r *BillingRow) time.Time { return r.Day }),
		col("amount_fen", func(r *BillingRow) *int64 { return r.AmountFen }),
		col("balance_fen", func(r *BillingRow) *int64 { return r.BalanceFen }),
		col("channel", func(r *BillingRow) string { return r.Channel }),
		col("bill_month", func(r *BillingRow) string { return r.BillMonth }),
		col("kafka_partition", func(r *BillingRow) int32 { return r.Partition }),
		col("kafka_offset", func(r *BillingRow) int64 { return r.Offset }),
		col("ingested_at", func(*BillingRow) time.Time { return now }),
	}, rows)
}

// InsertCRM writes a batch of CRM events to crm_events.
func (w *Warehouse) InsertCRM(ctx context.Context, rows []CRMRow) error {
	now := time.Now()
	none := &schemas.Profile{}
	profile := func(r *CRMRow) *schemas.Profile {
		if r.Profile == nil {
			return none
		}
		return r.Profile
	}
	field := func(name string, get func(*schemas.Profile) *string) insertColumn[CRMRow] {
		return col(name, func(r *CRMRow) *string { return get(profile(r)) })
	}
	group := func(name string, get func(*schemas.Group) string) insertColumn[CRMRow] {
		return col(name, func(r *CRMRow) *string {
			if g := profile(r).Group; g != nil {
				v := get(g)
				return &v
			}
			return nil
		})
	}
	return insertRows(ctx, w, "crm_events", []insertColumn[CRMRow]{
		col("event_id", func(r *CRMRow) string { return r.EventID }),
		col("msisdn", func(r *CRMRow) string { return r.MSISDN }),
		col("type", func(r *CRMRow) string { return string(r.Type) }),
		col("ts", func(r *CRMRow) time.Time { return r.TS }),
		col("day", func(r *CRMRow) time.Time { return r.Day }),
		field("profile_name", func(p *schemas.Profile) *string { return p.Name }),
		field("profile_birthday", func(p *schemas.Profile) *string { return p.Birthday }),
		col("profile_tier", func(r *CRMRow) *string {
			if t := profile(r).Tier; t != nil {
				v := string(*t)
				return &v
			}
			return nil
		}),
		field("profile_region", func(p *schemas.Profile) *string { return p.Region }),
		field("profile_account_manager", func(p *schemas.Profile) *string { return p.AccountManager }),
		field("profile_phone_manager", func(p *schemas.Profile) *string { return p.PhoneManager }),
		field("profile_promo_end", func(p *schemas.Profile) *string { return p.PromoEnd }),
		field("profile_join_date", func(p *schemas.Profile) *string { return p.JoinDate }),
		field("profile_status", func(p *schemas.Profile) *string { return p.Status }),
		col("profile_json", func(r *CRMRow) string { return r.ProfileJSON }),
		col("kafka_partition", func(r *CRMRow) int32 { return r.Partition }),
		col("kafka_offset", func(r *CRMRow) int64 { return r.Offset }),
		col("ingested_at", func(*CRMRow) time.Time { return now }),
		col("profile_interests", func(r *CRMRow) []string { l, _ := listColumn(profile(r).Interests); return l }),
		col("profile_has_interests", func(r *CRMRow) uint8 { _, has := listColumn(profile(r).Interests); return has }),
		col("profile_products", func(r *CRMRow) []string { l, _ := listColumn(profile(r).Products); return l }),
		col("profile_has_products", func(r *CRMRow) uint8 { _, has := listColumn(profile(r).Products); return has }),
		group("profile_group_id", func(g *schemas.Group) string { return g.ID }),
		group("profile_group_name", func(g *schemas.Group) string { return g.Name }),
		group("profile_group_level", func(g *schemas.Group) string { return string(g.Level) }),
		col("profile_network_age_months", func(r *CRMRow) *uint32 {
			if a := profile(r).NetworkAgeMonths; a != nil {
				v := uint32(*a) // 0 to MaxNetworkAgeMonths, checked by the decoder
				return &v
			}
			return nil
		}),
	}, rows)
}

// listColumn turns an optional profile list into its column and the flag
// saying whether the message carried it (an empty list clears the stored
// one; an absent list keeps it).
func listColumn(l *[]string) ([]string, uint8) {
	if l == nil {
		return []string{}, 0
	}
	return nonNil(*l), 1
}

var deadLetterColumns = []string{"topic", "kafka_partition", "kafka_offset", "kafka_key", "error", "raw", "received_at"}

// InsertDeadLetters writes rejected messages to dead_letters.
func (w *Warehouse) InsertDeadLetters(ctx context.Context, rows []DeadLetter) error {
	return w.insert(ctx, "dead_letters", deadLetterColumns, len(rows), func(i int) []any {
		r := &rows[i]
		return []any{r.Topic, r.Partition, r.Offset, string(r.Key), r.Error, string(r.Raw), r.ReceivedAt}
	})
}

// versionClock hands out increasing versions for ReplacingMergeTree rows:
// nanoseconds of wall time, bumped when the clock stalls or steps back, so a
// recompute issued later always wins over an earlier one.
type versionClock struct {
	mu   sync.Mutex
	last uint64
}

func (c *versionClock) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := uint64(time.Now().UnixNano())
	if v <= c.last {
		v = c.last + 1
	}
	c.last = v
	return v
}
