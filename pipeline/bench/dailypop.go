package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"churnwatch/pipeline/warehouse"
)

// DailyPopulationSQL fills subscriber_daily ({db}) with {n} subscribers, each
// with a row on every one of the {days} days up to {last}. Most subscribers
// are steady and pay every 30 days; by a hash of the number, 3% stop calling
// for the last 7 days, 3% are silent on the last day, 3% move their MO
// minutes off-net and 3% stop paying, so every daily signal has work. It runs
// inside ClickHouse, which makes a population of millions in seconds, where
// the simulator and the pipeline would take an hour.
const DailyPopulationSQL = `INSERT INTO {db}.subscriber_daily (msisdn, day, calls, mo_calls, mt_calls, minutes, mo_minutes,
    onnet_minutes, offnet_minutes, payments, payment_fen, version)
SELECT msisdn, day, calls, mo_calls, calls - mo_calls, minutes, mo_minutes, mo_minutes - offnet_minutes, offnet_minutes,
    payments, payments * 5000, 1
FROM
(
    SELECT toString(13000000000 + s) AS msisdn, day, kind,
        if(kind = 1 AND day = toDate('{last}'), 0, 2 + h % 6) AS calls,
        toUInt64(intDiv(calls, 2)) AS mo_calls,
        if(kind = 0 AND day > toDate('{last}') - 7, 0.1, 1) * calls * (1 + h % 5) AS minutes,
        minutes / 2 AS mo_minutes,
        mo_minutes * if(kind = 2 AND day > toDate('{last}') - 7, 0.7, 0.2) AS offnet_minutes,
        toUInt64((i + s) % 30 = 0 AND NOT (kind = 3 AND day > toDate('{last}') - 90)) AS payments
    FROM
    (
        SELECT intDiv(number, {days}) AS s, number % {days} AS i,
            toDate('{last}') - ({days} - 1) + i AS day,
            intHash32(number) AS h,
            multiIf(intHash32(s) % 100 < 3, 0, intHash32(s) % 100 < 6, 1, intHash32(s) % 100 < 9, 2,
                intHash32(s) % 100 < 12, 3, 4) AS kind
        FROM system.numbers LIMIT {rows}
    )
)`

// DailyProfilesSQL gives the {n} subscribers of DailyPopulationSQL a profile:
// a birthday, a tier, a promotion end and a status (1% deactivated).
const DailyProfilesSQL = `INSERT INTO {db}.subscribers (msisdn, birthday, tier, promo_end, status, version)
SELECT toString(13000000000 + number),
    toString(toDate('1970-01-01') + intHash32(number) % 15000),
    arrayElement(['diamond', 'gold', 'silver', 'standard'], 1 + intHash32(number + 1) % 4),
    toString(toDate('{last}') - 21 + intHash32(number + 2) % 400),
    if(intHash32(number + 3) % 100 = 0, 'deactivated', 'active'), 1
FROM system.numbers LIMIT {n}`

// LoadDailyPopulation fills the warehouse's subscriber_daily and
// subscribers with the synthetic population of DailyPopulationSQL and
// DailyProfilesSQL: subscribers x days, the last day being last.
func LoadDailyPopulation(ctx context.Context, wh *warehouse.Warehouse, subscribers, days int, last time.Time) error {
	r := strings.NewReplacer("{db}", wh.Database(), "{n}", strconv.Itoa(subscribers), "{days}", strconv.Itoa(days),
		"{rows}", strconv.Itoa(subscribers*days), "{last}", last.Format(time.DateOnly))
	for _, q := range []string{DailyPopulationSQL, DailyProfilesSQL} {
		if err := wh.Conn().Exec(ctx, r.Replace(q)); err != nil {
			return fmt.Errorf("generate the daily population: %w", err)
		}
	}
	return nil
}
