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

// refreshSubscribersSQL recomputes subscribers rows. Three branches meet in
// one GROUP BY msisdn (18.16 allows one JOIN per SELECT, so none is used):
//
//   - the profile from crm_events FINAL: every field its latest non-NULL
//     value by event time (ties broken by event_id); status also follows
//     DEACTIVATE and REACTIVATE events;
//   - the three latest monthly bills from billing_events FINAL: one amount per
//     bill_month (the latest by ts, then event_id, when a month was billed
//     twice), one row per month;
//   - the first and last BILL times, which date a subscriber known only from
//     its bills (first_seen and updated_at otherwise come from the CRM events).
//
// The workbench fields follow the same rule: interests and products are the
// latest list a PROFILE carried (an empty list included), the group the
// latest group object (its parts together), network_age_months the latest
// value (NULL when never sent).
//
// bill_avg_fen is the average of those bills rounded down to the fen; as the
// thresholds are whole fen, comparing it equals comparing the exact average.
// tier is the profile's when the latest PROFILE naming a tier set a non-empty
// one, else it follows from bill_avg_fen; no bill gives standard. The bound
// arguments are the diamond, gold and silver thresholds, then the version.
const refreshSubscribersSQL = `INSERT INTO {db}.subscribers (msisdn, name, birthday, tier, profile_tier, bill_avg_fen,
    region, account_manager, phone_manager, promo_end, join_date, status, first_seen, updated_at, version,
    interests, group_id, group_name, group_level, products, network_age_months)
SELECT msisdn, name, birthday,
    if(profile_tier != '', profile_tier,
        multiIf(bills = 0, 'standard', bill_avg_fen >= ?, 'diamond', bill_avg_fen >= ?, 'gold',
            bill_avg_fen >= ?, 'silver', 'standard')),
    profile_tier, bill_avg_fen, region, account_manager, phone_manager, promo_end, join_date, status,
    first_seen, updated_at, ?, interests, group_id, group_name, group_level, products, network_age_months
FROM
(
    SELECT msisdn,
        max(p_name) AS name, max(p_birthday) AS birthday, max(p_tier) AS profile_tier, max(p_region) AS region,
        max(p_account_manager) AS account_manager, max(p_phone_manager) AS phone_manager,
        max(p_promo_end) AS promo_end, max(p_join_date) AS join_date, max(p_status) AS status,
        sum(bill_fen) AS bill_sum, sum(bill_n) AS bills,
        intDiv(bill_sum, toInt64(greatest(bills, 1))) AS bill_avg_fen,
        if(max(from_crm) = 1, minIf(first_ts, from_crm = 1), min(first_ts)) AS first_seen,
        if(max(from_crm) = 1, maxIf(last_ts, from_crm = 1), max(last_ts)) AS updated_at,
        argMax(p_interests, from_crm) AS interests, max(p_group_id) AS group_id, max(p_group_name) AS group_name,
        max(p_group_level) AS group_level, argMax(p_products, from_crm) AS products,
        max(p_network_age_months) AS network_age_months
    FROM
    (
        SELECT msisdn,
            ifNull(argMaxIf(profile_name, (ts, event_id), isNotNull(profile_name)), '') AS p_name,
            ifNull(argMaxIf(profile_birthday, (ts, event_id), isNotNull(profile_birthday)), '') AS p_birthday,
            ifNull(argMaxIf(profile_tier, (ts, event_id), isNotNull(profile_tier)), '') AS p_tier,
            ifNull(argMaxIf(profile_region, (ts, event_id), isNotNull(profile_region)), '') AS p_region,
            ifNull(argMaxIf(profile_account_manager, (ts, event_id), isNotNull(profile_account_manager)), '') AS p_account_manager,
            ifNull(argMaxIf(profile_phone_manager, (ts, event_id), isNotNull(profile_phone_manager)), '') AS p_phone_manager,
            ifNull(argMaxIf(profile_promo_end, (ts, event_id), isNotNull(profile_promo_end)), '') AS p_promo_end,
            ifNull(argMaxIf(profile_join_date, (ts, event_id), isNotNull(profile_join_date)), '') AS p_join_date,
            ifNull(argMaxIf(multiIf(type = 'DEACTIVATE', 'deactivated', type = 'REACTIVATE', 'active', profile_status),
                (ts, event_id), type IN ('DEACTIVATE', 'REACTIVATE') OR isNotNull(profile_status)), '') AS p_status,
            min(ts) AS first_ts, max(ts) AS last_ts,
            toInt64(0) AS bill_fen, toUInt64(0) AS bill_n, toUInt8(1) AS from_crm,
            argMaxIf(profile_interests, (ts, event_id), profile_has_interests = 1) AS p_interests,
            ifNull(argMaxIf(profile_group_id, (ts, event_id), isNotNull(profile_group_id)), '') AS p_group_id,
            ifNull(argMaxIf(profile_group_name, (ts, event_id), isNotNull(profile_group_id)), '') AS p_group_name,
            ifNull(argMaxIf(profile_group_level, (ts, event_id), isNotNull(profile_group_id)), '') AS p_group_level,
            argMaxIf(profile_products, (ts, event_id), profile_has_products = 1) AS p_products,
            argMaxIf(profile_network_age_months, (ts, event_id), isNotNull(profile_network_age_months)) AS p_network_age_months
        FROM {db}.crm_events FINAL
        WHERE msisdn IN (SELECT msisdn FROM touched)
        GROUP BY msisdn
        UNION ALL
        SELECT msisdn, '', '', '', '', '', '', '', '', '', month_ts, month_ts, month_fen, toUInt64(1), toUInt8(0),
            emptyArrayString(), '', '', '', emptyArrayString(), CAST(NULL AS Nullable(UInt32))
        FROM
        (
            SELECT msisdn, bill_month,
                toInt64(argMax(ifNull(amount_fen, 0), (ts, event_id))) AS month_fen, max(ts) AS month_ts
            FROM {db}.billing_events FINAL
            WHERE msisdn IN (SELECT msisdn FROM touched) AND type = 'BILL' AND bill_month != '' AND isNotNull(amount_fen)
            GROUP BY msisdn, bill_month
            ORDER BY msisdn, bill_month DESC
            LIMIT 3 BY msisdn
        )
        UNION ALL
        SELECT msisdn, '', '', '', '', '', '', '', '', '', min(ts), max(ts), toInt64(0), toUInt64(0), toUInt8(0),
            emptyArrayString(), '', '', '', emptyArrayString(), CAST(NULL AS Nullable(UInt32))
        FROM {db}.billing_events FINAL
        WHERE msisdn IN (SELECT msisdn FROM touched) AND type = 'BILL'
        GROUP BY msisdn
    )
    GROUP BY msisdn
)`

// TierRules are the bill averages (fen, last three monthly bills) that give
// a subscriber without a profile tier its tier.
type TierRules struct {
	DiamondFen, GoldFen, SilverFen int64
}

// RefreshSubscribers recomputes the subscribers rows of the given MSISDNs
// from crm_events FINAL and the BILL events of billing_events FINAL: the
// latest profile, the lifecycle status and the value tier (SPEC 3). The tier
// is the profile's when it names one; otherwise the average of the last three
// monthly bills (also stored as bill_avg_fen) against tiers; with neither it
// is standard. A subscriber known only from its bills gets a row too.
func (w *Warehouse) RefreshSubscribers(ctx context.Context, msisdns []string, tiers TierRules) error {
	if len(msisdns) == 0 {
		return nil
	}
	touched, err := msisdnTable(msisdns)
	if err != nil {
		return fmt.Errorf("refresh subscribers: %w", err)
	}
	err = w.conn.Exec(clickhouse.Context(ctx, clickhouse.WithExternalTable(touched)), w.sql(refreshSubscribersSQL),
		tiers.DiamondFen, tiers.GoldFen, tiers.SilverFen, w.ver.next())
	if err != nil {
		return fmt.Errorf("refresh subscribers for %d subscribers: %w", len(msisdns), err)
	}
	return nil
}
