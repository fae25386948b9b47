package warehouse

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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

var cdrColumns = []string{"event_id", "msisdn", "peer", "peer_network", "network_derived", "direction", "start_time",
	"day", "duration_s", "forward_to", "cell_id", "kafka_partition", "kafka_offset", "ingested_at"}

// InsertCDR writes a batch of CDRs to the cdr table, column by column: the
// busiest insert skips the per-row boxing and type switch of Append.
func (w *Warehouse) InsertCDR(ctx context.Context, rows []CDRRow) error {
	n := len(rows)
	ids, msisdns, peers, networks, directions := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	forwards, cells := make([]string, n), make([]string, n)
	derived, durations := make([]uint8, n), make([]uint32, n)
	starts, days, ingested := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	partitions, offsets := make([]int32, n), make([]int64, n)
	now := time.Now()
	for i := range rows {
		r := &rows[i]
		ids[i], msisdns[i], peers[i], networks[i], directions[i] = r.EventID, r.MSISDN, r.Peer, string(r.Network), string(r.Direction)
		forwards[i], cells[i] = r.ForwardTo, r.CellID
		if r.NetworkDerived {
			derived[i] = 1
		}
		durations[i] = uint32(r.DurationS)
		starts[i], days[i], ingested[i] = r.StartTime, r.Day, now
		partitions[i], offsets[i] = r.Partition, r.Offset
	}
	return w.insertColumns(ctx, "cdr", cdrColumns, n, []any{ids, msisdns, peers, networks, derived, directions, starts,
		days, durations, forwards, cells, partitions, offsets, ingested})
}

// insertColumns writes n rows given as one slice of n values per column, in
// the order of columns.
func (w *Warehouse) insertColumns(ctx context.Context, table string, columns []string, n int, values []any) error {
	return w.insertBatch(ctx, table, columns, n, func(batch driver.Batch, lo, hi int) error {
		for i, v := range values {
			if err := batch.Column(i).Append(reflect.ValueOf(v).Slice(lo, hi).Interface()); err != nil {
				return fmt.Errorf("insert %s column %s: %w", table, columns[i], err)
			}
		}
		return nil
	})
}

var billingColumns = []string{"event_id", "msisdn", "type", "ts", "day", "amount_fen", "balance_fen", "channel",
	"bill_month", "kafka_partition", "kafka_offset", "ingested_at"}

// InsertBilling writes a batch of billing events to billing_events.
func (w *Warehouse) InsertBilling(ctx context.Context, rows []BillingRow) error {
	now := time.Now()
	return w.insert(ctx, "billing_events", billingColumns, len(rows), func(i int) []any {
		r := &rows[i]
		return []any{r.EventID, r.MSISDN, string(r.Type), r.TS, r.Day, r.AmountFen, r.BalanceFen, r.Channel,
			r.BillMonth, r.Partition, r.Offset, now}
	})
}

var crmColumns = []string{"event_id", "msisdn", "type", "ts", "day", "profile_name", "profile_birthday",
	"profile_tier", "profile_region", "profile_account_manager", "profile_phone_manager", "profile_promo_end",
	"profile_join_date", "profile_status", "profile_json", "kafka_partition", "kafka_offset", "ingested_at",
	"profile_interests", "profile_has_interests", "profile_products", "profile_has_products", "profile_group_id",
	"profile_group_name", "profile_group_level", "profile_network_age_months"}

// InsertCRM writes a batch of CRM events to crm_events.
func (w *Warehouse) InsertCRM(ctx context.Context, rows []CRMRow) error {
	now := time.Now()
	return w.insert(ctx, "crm_events", crmColumns, len(rows), func(i int) []any {
		r := &rows[i]
		p := r.Profile
		if p == nil {
			p = &schemas.Profile{}
		}
		var tier *string
		if p.Tier != nil {
			t := string(*p.Tier)
			tier = &t
		}
		interests, hasInterests := listColumn(p.Interests)
		products, hasProducts := listColumn(p.Products)
		var groupID, groupName, groupLevel *string
		if g := p.Group; g != nil {
			level := string(g.Level)
			groupID, groupName, groupLevel = &g.ID, &g.Name, &level
		}
		var age *uint32
		if p.NetworkAgeMonths != nil {
			a := uint32(*p.NetworkAgeMonths) // 0 to MaxNetworkAgeMonths, checked by the decoder
			age = &a
		}
		return []any{r.EventID, r.MSISDN, string(r.Type), r.TS, r.Day, p.Name, p.Birthday, tier, p.Region,
			p.AccountManager, p.PhoneManager, p.PromoEnd, p.JoinDate, p.Status, r.ProfileJSON, r.Partition, r.Offset, now,
			interests, hasInterests, products, hasProducts, groupID, groupName, groupLevel, age}
	})
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
