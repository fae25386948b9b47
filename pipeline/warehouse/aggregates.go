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
// limit, and it works on 18.16.
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
    WHERE msisdn IN (SELECT msisdn FROM touched) AND (msisdn, day) IN (SELECT msisdn, day FROM touched)
    GROUP BY msisdn, day
    UNION ALL
    SELECT msisdn, day,
        toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toFloat64(0), toFloat64(0), toFloat64(0), toFloat64(0),
        toUInt64(0), toUInt64(0), toUInt64(0),
        toUInt64(countIf(type = 'PAYMENT')) AS payments,
        toInt64(sumIf(ifNull(amount_fen, 0), type = 'PAYMENT')) AS payment_fen
    FROM {db}.billing_events FINAL
    WHERE msisdn IN (SELECT msisdn FROM touched) AND (msisdn, day) IN (SELECT msisdn, day FROM touched)
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
	for _, k := range keys {
		if err := touched.Append(k.MSISDN, k.Day); err != nil {
			return fmt.Errorf("refresh subscriber_daily: %w", err)
		}
	}
	home := rules.HomeNetwork
	hot, comp := nonNil(rules.HotlineNumbers), nonNil(rules.CompetitorHotlines)
	err = w.conn.Exec(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), w.sql(refreshDailySQL),
		w.ver.next(), home, home, hot, comp, home)
	if err != nil {
		return fmt.Errorf("refresh subscriber_daily for %d subscriber-days: %w", len(keys), err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Every profile field is the latest non-NULL value by event time (ties broken
// by event_id); status also follows DEACTIVATE and REACTIVATE events.
const refreshSubscribersSQL = `INSERT INTO {db}.subscribers (msisdn, name, birthday, tier, profile_tier, region,
    account_manager, phone_manager, promo_end, join_date, status, first_seen, updated_at, version)
SELECT msisdn,
    ifNull(argMaxIf(profile_name, (ts, event_id), isNotNull(profile_name)), ''),
    ifNull(argMaxIf(profile_birthday, (ts, event_id), isNotNull(profile_birthday)), ''),
    ifNull(argMaxIf(profile_tier, (ts, event_id), isNotNull(profile_tier)), ''),
    ifNull(argMaxIf(profile_tier, (ts, event_id), isNotNull(profile_tier)), ''),
    ifNull(argMaxIf(profile_region, (ts, event_id), isNotNull(profile_region)), ''),
    ifNull(argMaxIf(profile_account_manager, (ts, event_id), isNotNull(profile_account_manager)), ''),
    ifNull(argMaxIf(profile_phone_manager, (ts, event_id), isNotNull(profile_phone_manager)), ''),
    ifNull(argMaxIf(profile_promo_end, (ts, event_id), isNotNull(profile_promo_end)), ''),
    ifNull(argMaxIf(profile_join_date, (ts, event_id), isNotNull(profile_join_date)), ''),
    ifNull(argMaxIf(multiIf(type = 'DEACTIVATE', 'deactivated', type = 'REACTIVATE', 'active', profile_status),
        (ts, event_id), type IN ('DEACTIVATE', 'REACTIVATE') OR isNotNull(profile_status)), ''),
    min(ts), max(ts), ?
FROM {db}.crm_events FINAL
WHERE msisdn IN (SELECT msisdn FROM touched)
GROUP BY msisdn`

// TierRules are the bill averages (fen, last three monthly bills) that give
// a subscriber without a profile tier its tier.
type TierRules struct {
	DiamondFen, GoldFen, SilverFen int64
}

// RefreshSubscribers recomputes the subscribers rows of the given MSISDNs
// from crm_events FINAL.
func (w *Warehouse) RefreshSubscribers(ctx context.Context, msisdns []string, tiers TierRules) error {
	if len(msisdns) == 0 {
		return nil
	}
	touched, err := ext.NewTable("touched", ext.Column("msisdn", column.Type("String")))
	if err != nil {
		return err
	}
	for _, m := range msisdns {
		if err := touched.Append(m); err != nil {
			return fmt.Errorf("refresh subscribers: %w", err)
		}
	}
	err = w.conn.Exec(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), w.sql(refreshSubscribersSQL), w.ver.next())
	if err != nil {
		return fmt.Errorf("refresh subscribers for %d subscribers: %w", len(msisdns), err)
	}
	return nil
}
