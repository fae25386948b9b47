#!/usr/bin/env bash
# The demo behind `make demo`: starts the embedded broker and the pipeline against the local
# ClickHouse (already started by make), drives them with a simulated subscriber population,
# and shows the data arriving in ClickHouse until Ctrl-C (or for CHURNWATCH_DEMO_SECONDS).
#
# Usage: deploy/local/demo.sh [path/to/churnwatch]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-$repo/bin/churnwatch}
state=${CHURNWATCH_STATE_DIR:-$repo/.state}
logs=$state/demo
subscribers=${CHURNWATCH_DEMO_SUBSCRIBERS:-2000}
seconds=${CHURNWATCH_DEMO_SECONDS:-0}
mkdir -p "$logs"
export CHURNWATCH_BROKER_DATA_DIR=${CHURNWATCH_BROKER_DATA_DIR:-$state/broker}
export CHURNWATCH_LOG_FORMAT=${CHURNWATCH_LOG_FORMAT:-console}
# subscriber_daily is recomputed every refresh_interval (1 min by default); the demo shows its
# rows within seconds.
export CHURNWATCH_REFRESH_INTERVAL=${CHURNWATCH_REFRESH_INTERVAL:-2s}

[[ -x $bin ]] || { echo "demo: $bin not found: run 'make build' first" >&2; exit 1; }
ch() { "$repo/deploy/local/clickhouse.sh" client "$@"; }
ch -q 'SELECT 1' >/dev/null || { echo "demo: ClickHouse is not running: run 'make clickhouse'" >&2; exit 1; }

pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping (pipeline first, so it flushes and commits) ..."
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    echo "demo: stopped. Logs in $logs; ClickHouse keeps running (make clickhouse-stop stops it)."
    exit 0
}
trap stop INT TERM EXIT

"$bin" broker >"$logs/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break
    sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null || { echo "demo: broker did not start; see $logs/broker.log" >&2; tail -5 "$logs/broker.log" >&2; exit 1; }
echo "demo: embedded broker on 127.0.0.1:19092 (data in $CHURNWATCH_BROKER_DATA_DIR)"

"$bin" run >"$logs/run.log" 2>&1 &
pids=("${pids[0]}" $!)
http_addr=${CHURNWATCH_HTTP_ADDR:-127.0.0.1:8080}
dashboard="http://$http_addr/"
if [[ -n ${CHURNWATCH_HTTP_TOKEN:-} ]]; then dashboard+="?token=$CHURNWATCH_HTTP_TOKEN"; fi
echo "demo: pipeline running (log: $logs/run.log, health: http://$http_addr/readyz, metrics: http://$http_addr/metrics)"
echo
echo "    dashboard (live warnings, tasks, pipeline health):  $dashboard"
echo

echo "demo: simulating $subscribers subscribers, 35 days of calls, billing and CRM events (0.2% deliberately invalid) ..."
"$bin" simulate --subscribers "$subscribers" --days 35 --invalid-share 0.002 --seed 7

show() {
    ch --format PrettyCompactMonoBlock -q "
        SELECT 'cdr' AS table, count() AS rows FROM churnwatch.cdr FINAL
        UNION ALL SELECT 'billing_events', count() FROM churnwatch.billing_events FINAL
        UNION ALL SELECT 'crm_events', count() FROM churnwatch.crm_events FINAL
        UNION ALL SELECT 'subscribers', count() FROM churnwatch.subscribers FINAL
        UNION ALL SELECT 'subscriber_daily', count() FROM churnwatch.subscriber_daily FINAL
        UNION ALL SELECT 'dead_letters', count() FROM churnwatch.dead_letters FINAL"
}
sleep 3
echo
echo "== rows in ClickHouse (database churnwatch, read with FINAL):"
show
echo
echo "== busiest subscriber-days (subscriber_daily):"
ch --format PrettyCompactMonoBlock -q "
    SELECT msisdn, day, calls, round(minutes, 1) AS minutes, round(offnet_minutes, 1) AS offnet_min, hotline_calls, payments
    FROM churnwatch.subscriber_daily FINAL ORDER BY calls DESC LIMIT 5"
echo
echo "== why messages were rejected (dead_letters; also on <topic>.dlq):"
ch --format PrettyCompactMonoBlock -q "
    SELECT topic, substring(error, 1, 70) AS error, count() AS n FROM churnwatch.dead_letters FINAL
    GROUP BY topic, error ORDER BY n DESC LIMIT 8"
echo
echo "Try it yourself:"
echo "  open $dashboard   (warnings appear there as the pipeline fires them)"
echo "  $bin warnings tail --severity high,critical     $bin tasks list --overdue"
echo "  deploy/local/clickhouse.sh client -q 'SELECT tier, count() FROM churnwatch.subscribers FINAL GROUP BY tier'"
echo "  kcat -b 127.0.0.1:19092 -C -t cdr.voice.dlq -J -e | head"
echo
if ((seconds > 0)); then
    echo "demo: running for $seconds s ..."
    sleep "$seconds"
else
    echo "demo: running; press Ctrl-C to stop. Table counts every 10 s:"
    while sleep 10; do show | tail -n +3 | tr -s ' ' | paste -sd' ' ; done
fi
