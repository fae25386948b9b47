package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// DayKey names one subscriber-day whose aggregates must be recomputed.
type DayKey struct {
	MSISDN string
	Day    time.Time
}

// DailyRules are the number lists subscriber_daily counts by.
type DailyRules struct {
	HomeNetwork        string
	HotlineNumbers     []string
	CompetitorHotlines []string
}

// The recompute reads the facts of the touched keys, which travel with the
// query as an external table: no temporary table to clean up, no query-size
// limit, and it works on 18.16. The bounds on day, the touched keys' first and
// last, let the server skip the parts (and month partitions) of other days:
// the set conditions alone do not, and every refresh would read the whole
// table, ever more as it grows.
const refreshDailySQL = `INSERT INTO {db}.subscriber_daily (msisdn, day, calls, mo_calls, mt_calls, fwd_calls, minutes,
    mo_minutes, onnet_minutes, offnet_minutes, hotline_calls, competitor_hotline_calls, offnet_fwd_calls,
    payments, payment_fen, version)
SELECT msisdn, day, sum(calls), sum(mo_calls), sum(mt_calls), sum(fwd_calls), sum(minutes), sum(mo_minutes),
    sum(onnet_minutes), sum(offnet_minutes), sum(hotline_calls), sum(competitor_hotline_calls),
    sum(offnet_fwd_calls), sum(payments), sum(payment_fen), ?
FROM
(
    SELECT msisdn, day,
        toUInt64(countIf(direction != 'FWD')) AS calls,
        toUInt64(countIf(direction = 'MO')) AS mo_calls,
        toUInt64(countIf(direction = 'MT')) AS mt_calls,
        toUInt64(countIf(direction = 'FWD')) AS fwd_calls,
        toFloat64(sumIf(duration_s, direction != 'FWD') / 60) AS minutes,
        toFloat64(sumIf(duration_s, direction = 'MO') / 60) AS mo_minutes,
        toFloat64(sumIf(duration_s, direction = 'MO' AND peer_network = ?) / 60) AS onnet_minutes,
        toFloat64(sumIf(duration_s, direction = 'MO' AND peer_network NOT IN (?, 'SPECIAL')) / 60) AS offnet_minutes,
        toUInt64(countIf(direction = 'MO' AND has(?, peer))) AS hotline_calls,
        toUInt64(countIf(direction = 'MO' AND has(?, peer))) AS competitor_hotline_calls,
        toUInt64(countIf(direction = 'FWD' AND peer_network NOT IN (?, 'SPECIAL'))) AS offnet_fwd_calls,
        toUInt64(0) AS payments,
        toInt64(0) AS payment_fen
    FROM {db}.cdr FINAL
    WHERE day BETWEEN ? AND ? AND msisdn IN (SELECT msisdn FROM touched) AND (msisdn, day) IN (SELECT msisdn, day FROM touched)
    GROUP BY msisdn, day
    UNION ALL
    SELECT msisdn, day,
        toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toFloat64(0), toFloat64(0), toFloat64(0), toFloat64(0),
        toUInt64(0), toUInt64(0), toUInt64(0),
        toUInt64(countIf(type = 'PAYMENT')) AS payments,
        toInt64(sumIf(ifNull(amount_fen, 0), type = 'PAYMENT')) AS payment_fen
    FROM {db}.billing_events FINAL
    WHERE day BETWEEN ? AND ? AND msisdn IN (SELECT msisdn FROM touched) AND (msisdn, day) IN (SELECT msisdn, day FROM touched)
    GROUP BY msisdn, day
)
GROUP BY msisdn, day`

// RefreshDaily recomputes subscriber_daily for the given subscriber-days
// from cdr FINAL and billing_events FINAL. Because it recomputes rather than
// adds, a replayed fact never doubles a count, and any order of concurrent
// refreshes ends with the one that saw every fact (it carries the highest
// version).
func (w *Warehouse) RefreshDaily(ctx context.Context, keys []DayKey, rules DailyRules) error {
	if len(keys) == 0 {
		return nil
	}
	touched, err := ext.NewTable("touched", ext.Column("msisdn", column.Type("String")), ext.Column("day", column.Type("Date")))
	if err != nil {
		return err
	}
	first, last := keys[0].Day, keys[0].Day
	for _, k := range keys {
		if err := touched.Append(k.MSISDN, k.Day); err != nil {
			return fmt.Errorf("refresh subscriber_daily: %w", err)
		}
		if k.Day.Before(first) {
			first = k.Day
		}
		if k.Day.After(last) {
			last = k.Day
		}
	}
	from, to := first.Format(time.DateOnly), last.Format(time.DateOnly)
	home := rules.HomeNetwork
	hot, comp := numberList(rules.HotlineNumbers), numberList(rules.CompetitorHotlines)
	err = w.conn.Exec(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), w.sql(refreshDailySQL),
		w.ver.next(), home, home, hot, comp, home, from, to, from, to)
	if err != nil {
		return fmt.Errorf("refresh subscriber_daily for %d subscriber-days: %w", len(keys), err)
	}
	return nil
}

// numberList is a number list bound for has(list, peer). An empty list
// would be the literal [], an Array(Nothing), which 18.16's has() refuses
// against a String column, failing every query; peers are never empty, so
// a list of one empty string matches nothing instead.
func numberList(s []string) []string {
	if len(s) == 0 {
		return []string{""}
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
