#!/usr/bin/env bash
# Local ClickHouse (Debian's 18.16.1) for churnwatch development and tests.
#
# Usage: deploy/local/clickhouse.sh install|start|stop|status|client [clickhouse-client args...]
#
#   install  apt-get install clickhouse-server clickhouse-client, only when they are missing
#   start    install if needed, start a server with the project's own config (no-op if one answers)
#   stop     stop the server started by `start` (SIGTERM, then SIGKILL after 20 s)
#   status   exit 0 and print the version when the server answers, exit 1 otherwise
#   client   run clickhouse-client against the local server, e.g. client -q 'SELECT 1'
#
# Environment:
#   CHURNWATCH_STATE_DIR              state root (default: <repo>/.state); ClickHouse uses $STATE/clickhouse
#   CHURNWATCH_CH_TCP_PORT            native protocol port (default 19000)
#   CHURNWATCH_CH_HTTP_PORT           HTTP port (default 18123)
#   CHURNWATCH_CH_INTERSERVER_PORT    interserver port (default 19009)
#
# The server listens on 127.0.0.1 only and never uses /etc/clickhouse-server or /var/lib/clickhouse.
# Besides the password-less `default`, users.xml defines `churnwatch_secure` (password
# churnwatch-secure-test-password, a local test credential) for the tests of ClickHouse
# credentials; `start` on a running server installs a changed users.xml, which the server reloads.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
TEMPLATE_DIR="$SCRIPT_DIR/clickhouse"

STATE="${CHURNWATCH_STATE_DIR:-$REPO_ROOT/.state}"
case "$STATE" in
    /*) ;;
    *) STATE="$PWD/$STATE" ;;
esac
STATE="${STATE%/}"
CH_DIR="$STATE/clickhouse"
CONF_DIR="$CH_DIR/etc"
LOG_DIR="$CH_DIR/log"
PID_FILE="$CH_DIR/clickhouse-server.pid"
STDOUT_LOG="$LOG_DIR/stdout.log"

HOST=127.0.0.1
TCP_PORT="${CHURNWATCH_CH_TCP_PORT:-19000}"
HTTP_PORT="${CHURNWATCH_CH_HTTP_PORT:-18123}"
INTERSERVER_PORT="${CHURNWATCH_CH_INTERSERVER_PORT:-19009}"

START_TIMEOUT_S=60
USERS_RELOAD_TIMEOUT_S=20
# The password-protected user of users.xml, used to check that a changed users.xml is in effect.
SECURE_USER=churnwatch_secure
SECURE_PASSWORD=churnwatch-secure-test-password
STOP_TIMEOUT_S=20

log() { printf 'clickhouse.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}




installed() {
    find_bin clickhouse-server >/dev/null && find_bin clickhouse-client >/dev/null
}

cmd_install() {
    local quiet=${1:-}
    if installed; then
        [[ -n "$quiet" ]] || log "clickhouse-server and clickhouse-client already installed"
        return 0
    fi
    apt_install clickhouse-server clickhouse-client
    installed || die "apt-get finished but clickhouse-server/clickhouse-client are still not found"
}

client_bin() {
    find_bin clickhouse-client ||
        die "clickhouse-client is not installed; run: $0 install"
}

# Prints the server version if a ClickHouse server answers on HOST:TCP_PORT.
server_version() {
    local client
    client="$(find_bin clickhouse-client)" || return 1
    timeout 5 "$client" --host "$HOST" --port "$TCP_PORT" -q 'SELECT version()' 2>/dev/null
}

# Prints the pid from the pid file if that process is alive and is our clickhouse-server.
running_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: the process must be a clickhouse-server using our config.
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "clickhouse-server.*$CONF_DIR/config.xml" || return 1
    fi
    printf '%s\n' "$pid"
}


render_config() {
    local dir_esc tmp
    mkdir -p "$CONF_DIR" "$LOG_DIR" "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas"
    dir_esc="$(sed_xml_escape "$CH_DIR")"
    tmp="$CONF_DIR/config.xml.tmp"
    sed -e "s|@CH_DIR@|$dir_esc|g" \
        -e "s|@CH_TCP_PORT@|$TCP_PORT|g" \
        -e "s|@CH_HTTP_PORT@|$HTTP_PORT|g" \
        -e "s|@CH_INTERSERVER_PORT@|$INTERSERVER_PORT|g" \
        "$TEMPLATE_DIR/config.xml" >"$tmp"
    mv -f "$tmp" "$CONF_DIR/config.xml"
    cp -f "$TEMPLATE_DIR/users.xml" "$CONF_DIR/users.xml"
}

# Installs users.xml into the running server's config when it changed; the server re-reads
# users.xml by itself within seconds (no restart). Waits until the password-protected user
# logs in, so that tests started right after see the new users.
sync_users() {
    local client deadline
    if [[ -f "$CONF_DIR/users.xml" ]] && cmp -s "$TEMPLATE_DIR/users.xml" "$CONF_DIR/users.xml"; then
        return 0
    fi
    cp -f "$TEMPLATE_DIR/users.xml" "$CONF_DIR/users.xml.tmp"
    mv -f "$CONF_DIR/users.xml.tmp" "$CONF_DIR/users.xml"
    log "users.xml changed; the running server reloads it"
    client="$(client_bin)"
    deadline=$((SECONDS + USERS_RELOAD_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if timeout 5 "$client" --host "$HOST" --port "$TCP_PORT" --user "$SECURE_USER" --password "$SECURE_PASSWORD" \
            -q 'SELECT 1' >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    log "warning: the server did not pick up users.xml within ${USERS_RELOAD_TIMEOUT_S}s; restart it: $0 stop && $0 start"
}

print_failure() {
    local f
    log "error: $*"
    for f in "$LOG_DIR/clickhouse-server.err.log" "$STDOUT_LOG"; do
        if [[ -s "$f" ]]; then
            printf '\n--- last lines of %s ---\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
    printf '\n' >&2
    log "hint: check that ports $TCP_PORT/$HTTP_PORT/$INTERSERVER_PORT on $HOST are free (ss -ltnp | grep -E ':($TCP_PORT|$HTTP_PORT|$INTERSERVER_PORT)\\b'),"
    log "      or pick others with CHURNWATCH_CH_TCP_PORT / CHURNWATCH_CH_HTTP_PORT / CHURNWATCH_CH_INTERSERVER_PORT;"
    log "      full logs are in $LOG_DIR; '$0 stop' cleans up a half-started server"
}

# Prints the ready line; says so when the answering server is not the one started from this state dir.
ready_message() {
    local version=$1
    if running_pid >/dev/null; then
        printf 'ClickHouse %s ready on %s:%s (data in %s)\n' "$version" "$HOST" "$TCP_PORT" "$CH_DIR/data"
    else
        printf 'ClickHouse %s ready on %s:%s (a server not started from %s: its data is elsewhere)\n' \
            "$version" "$HOST" "$TCP_PORT" "$CH_DIR"
        log "note: to use a separate server for this state dir, pick free ports with CHURNWATCH_CH_TCP_PORT / CHURNWATCH_CH_HTTP_PORT / CHURNWATCH_CH_INTERSERVER_PORT"
    fi
}

cmd_start() {
    local version pid server deadline
    cmd_install quiet
    if version="$(server_version)"; then
        if running_pid >/dev/null; then
            sync_users
        fi
        ready_message "$version"
        return 0
    fi

    if pid="$(running_pid)"; then
        log "clickhouse-server (pid $pid) is running but not answering yet; waiting for it"
    else
        server="$(find_bin clickhouse-server)" || die "clickhouse-server not found; run: $0 install"
        render_config
        rm -f "$PID_FILE"
        log "starting clickhouse-server (config $CONF_DIR/config.xml, logs in $LOG_DIR)"
        # cd into the state dir: the server writes some files relative to its working directory.
        (
            cd "$CH_DIR"
            setsid nohup "$server" --config-file="$CONF_DIR/config.xml" </dev/null >>"$STDOUT_LOG" 2>&1 &
            echo "$!" >"$PID_FILE"
        )
        pid="$(tr -dc '0-9' <"$PID_FILE")"
    fi

    deadline=$((SECONDS + START_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if version="$(server_version)"; then
            ready_message "$version"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            print_failure "clickhouse-server (pid $pid) exited during startup"
            exit 1
        fi
        sleep 0.5
    done
    print_failure "clickhouse-server (pid $pid) did not answer on $HOST:$TCP_PORT within ${START_TIMEOUT_S}s"
    exit 1
}

cmd_stop() {
    local pid deadline
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "clickhouse-server (pid $pid) still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    log "stopped clickhouse-server (pid $pid)"
}

cmd_status() {
    local version pid
    if version="$(server_version)"; then
        ready_message "$version"
        return 0
    fi
    if pid="$(running_pid)"; then
        echo "ClickHouse not answering on $HOST:$TCP_PORT, but clickhouse-server (pid $pid) is running: starting up or unhealthy (logs in $LOG_DIR)"
    else
        echo "ClickHouse not running on $HOST:$TCP_PORT (start it with: $0 start)"
    fi
    return 1
}

cmd_client() {
    local client
    client="$(client_bin)"
    exec "$client" --host "$HOST" --port "$TCP_PORT" "$@"
}

main() {
    check_port CHURNWATCH_CH_TCP_PORT "$TCP_PORT"
    check_port CHURNWATCH_CH_HTTP_PORT "$HTTP_PORT"
    check_port CHURNWATCH_CH_INTERSERVER_PORT "$INTERSERVER_PORT"
    dispatch "$@"
}

main "$@"
