package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"churnwatch/schemas"
)

// FactStreams receive the stored facts of a time range, each table in event
// order (ties in the order Kafka delivered them), as a replay through the
// real-time rules needs them. A nil function skips its table.
type FactStreams struct {
	CDR     func(*CDRRow) error
	Billing func(*BillingRow) error
	CRM     func(*CRMRow) error
}

// ScanFacts reads the facts with an event time in [from, to) from cdr,
// billing_events and crm_events (FINAL: each event once), one table after
// the other. Profiles are not read: the real-time rules do not need them.
func (w *Warehouse) ScanFacts(ctx context.Context, from, to time.Time, s FactStreams) error {
	if s.CDR != nil {
		err := replayTable(ctx, w, "cdr", `
			SELECT event_id, msisdn, peer, peer_network, toString(direction), start_time, duration_s, forward_to,
				kafka_partition, kafka_offset
			FROM {db}.cdr FINAL WHERE start_time >= ? AND start_time < ?
			ORDER BY start_time, kafka_partition, kafka_offset`, from, to,
			func(rows driver.Rows, r *CDRRow) error {
				var network, direction string
				var dur uint32
				if err := rows.Scan(&r.EventID, &r.MSISDN, &r.Peer, &network, &direction, &r.StartTime, &dur, &r.ForwardTo,
					&r.Partition, &r.Offset); err != nil {
					return err
				}
				r.Network, r.Direction, r.DurationS = schemas.Network(network), schemas.Direction(direction), int64(dur)
				return nil
			}, s.CDR)
		if err != nil {
			return err
		}
	}
	if s.Billing != nil {
		err := replayTable(ctx, w, "billing_events", `
			SELECT event_id, msisdn, toString(type), ts, amount_fen, balance_fen, bill_month, kafka_partition, kafka_offset
			FROM {db}.billing_events FINAL WHERE ts >= ? AND ts < ?
			ORDER BY ts, kafka_partition, kafka_offset`, from, to,
			func(rows driver.Rows, r *BillingRow) error {
				var typ string
				if err := rows.Scan(&r.EventID, &r.MSISDN, &typ, &r.TS, &r.AmountFen, &r.BalanceFen, &r.BillMonth,
					&r.Partition, &r.Offset); err != nil {
					return err
				}
				r.Type = schemas.BillingType(typ)
				return nil
			}, s.Billing)
		if err != nil {
			return err
		}
	}
	if s.CRM != nil {
		return replayTable(ctx, w, "crm_events", `
			SELECT event_id, msisdn, toString(type), ts, kafka_partition, kafka_offset
			FROM {db}.crm_events FINAL WHERE ts >= ? AND ts < ?
			ORDER BY ts, kafka_partition, kafka_offset`, from, to,
			func(rows driver.Rows, r *CRMRow) error {
				var typ string
				if err := rows.Scan(&r.EventID, &r.MSISDN, &typ, &r.TS, &r.Partition, &r.Offset); err != nil {
					return err
				}
				r.Type = schemas.CRMType(typ)
				return nil
			}, s.CRM)
	}
	return nil
}

// replayTable runs one table's replay query over [from, to) and hands every
// row, as scan reads it, to emit.
func replayTable[R any](ctx context.Context, w *Warehouse, table, query string, from, to time.Time,
	scan func(driver.Rows, *R) error, emit func(*R) error) error {
	rows, err := w.conn.Query(ctx, w.sql(query), from, to)
	if err != nil {
		return fmt.Errorf("replay %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r R
		if err := scan(rows, &r); err != nil {
			return fmt.Errorf("replay %s: %w", table, err)
		}
		if err := emit(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replay %s: %w", table, err)
	}
	return nil
}

// Subscribers returns the MSISDN of every known subscriber.
func (w *Warehouse) Subscribers(ctx context.Context) ([]string, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT DISTINCT msisdn FROM {db}.subscribers`))
	if err != nil {
		return nil, fmt.Errorf("read subscribers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
