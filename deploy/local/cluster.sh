#!/usr/bin/env bash
# Local two-server ClickHouse cluster for churnwatch's cluster DDL (churnwatch migrate --cluster):
# two Debian clickhouse-server 18.16 processes replicating through Debian's ZooKeeper 3.8.
#
# Usage: deploy/local/cluster.sh install|start|stop|status|client ch1|ch2 [clickhouse-client args...]
#
#   install  apt-get install zookeeper (and ClickHouse, through clickhouse.sh), only when missing
#   start    install if needed, start ZooKeeper and the two servers (a quick no-op when all answer)
#   stop     stop what `start` started (SIGTERM, then SIGKILL after 20 s)
#   status   exit 0 and describe the cluster when it is up, exit 1 otherwise
#   client   run clickhouse-client against ch1 or ch2, e.g. client ch2 -q 'SELECT * FROM system.clusters'
#
# Layout: cluster churnwatch_cluster, one shard with two replicas, ch1 and ch2 (macros {shard}=01,
# {replica}=ch1|ch2). Each node runs the single server's config (deploy/local/clickhouse/config.xml)
# with deploy/local/cluster/cluster.xml merged over it; state, logs and ZooKeeper data live in
# $STATE/cluster. Everything listens on 127.0.0.1 only. The single server of clickhouse.sh
# (port 19000) is a different process and is never touched.
#
# Environment:
#   CHURNWATCH_STATE_DIR          state root (default: <repo>/.state); the cluster uses $STATE/cluster
#   CHURNWATCH_CLUSTER_ZK_PORT    ZooKeeper client port (default 19181)
#   CHURNWATCH_CLUSTER_CH1_PORT   native port of ch1 (default 19100; its HTTP port is +23, interserver +9)
#   CHURNWATCH_CLUSTER_CH2_PORT   native port of ch2 (default 19200; likewise)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
TEMPLATE_DIR="$SCRIPT_DIR/cluster"
CH_TEMPLATE_DIR="$SCRIPT_DIR/clickhouse"

STATE="${CHURNWATCH_STATE_DIR:-$REPO_ROOT/.state}"
case "$STATE" in
    /*) ;;
    *) STATE="$PWD/$STATE" ;;
esac
STATE="${STATE%/}"
CLUSTER_DIR="$STATE/cluster"
ZK_DIR="$CLUSTER_DIR/zookeeper"
ZK_PID_FILE="$ZK_DIR/zookeeper.pid"

CLUSTER=churnwatch_cluster
NODES=(ch1 ch2)
HOST=127.0.0.1
ZK_PORT="${CHURNWATCH_CLUSTER_ZK_PORT:-19181}"
CH1_PORT="${CHURNWATCH_CLUSTER_CH1_PORT:-19100}"
CH2_PORT="${CHURNWATCH_CLUSTER_CH2_PORT:-19200}"

# Debian's zookeeper package: the server jar (its manifest names its dependencies) and the
# log4j binding its dependencies bring.
ZK_CLASSPATH_JARS=(/usr/share/java/zookeeper.jar /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar)
ZK_MAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain

START_TIMEOUT_S=60
STOP_TIMEOUT_S=20

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}


node_dir() { printf '%s/%s\n' "$CLUSTER_DIR" "$1"; }
node_tcp_port() {
    case "$1" in
        ch1) echo "$CH1_PORT" ;;
        ch2) echo "$CH2_PORT" ;;
        *) die "unknown node '$1': want ch1 or ch2" ;;
    esac
}
node_http_port() { echo $(($(node_tcp_port "$1") + 23)); }
node_interserver_port() { echo $(($(node_tcp_port "$1") + 9)); }



zk_installed() {
    local jar
    find_bin java >/dev/null || return 1
    for jar in "${ZK_CLASSPATH_JARS[@]}"; do
        [[ -f "$jar" ]] || return 1
    done
}

ch_installed() {
    find_bin clickhouse-server >/dev/null && find_bin clickhouse-client >/dev/null
}

cmd_install() {
    local quiet=${1:-}
    if ! ch_installed; then
        "$SCRIPT_DIR/clickhouse.sh" install
    fi
    if zk_installed; then
        [[ -n "$quiet" ]] || log "zookeeper and clickhouse-server already installed"
        return 0
    fi
    # Debian's `zookeeper` package has the server; `zookeeperd` only adds a systemd unit, which
    # this script does not use: it runs the server itself, with its own config, data and port.
    apt_install zookeeper
    zk_installed || die "apt-get finished but the ZooKeeper jars (${ZK_CLASSPATH_JARS[*]}) or java are still not found"
}

# Prints the pid in pid_file if that process is alive and its command line contains marker.
running_pid() {
    local pid_file=$1 marker=$2 pid
    [[ -f "$pid_file" ]] || return 1
    pid="$(tr -dc '0-9' <"$pid_file")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: the process must be the one started with our config.
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
    fi
    printf '%s\n' "$pid"
}

zk_pid() { running_pid "$ZK_PID_FILE" "$ZK_MAIN $ZK_DIR/zoo.cfg"; }
node_pid() { running_pid "$(node_dir "$1")/clickhouse-server.pid" "--config-file=$(node_dir "$1")/etc/config.xml"; }

# Succeeds when a ZooKeeper on HOST:ZK_PORT serves requests. ("ruok" is not enough: it answers
# imok while the server still loads its data and closes every session, and a ClickHouse 18.16
# that starts then can crash later on its broken ZooKeeper session.)
zk_ok() {
    local reply
    reply="$(timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$ZK_PORT && printf srvr >&3 && cat <&3" 2>/dev/null)" || true
    [[ "$reply" == *"Mode: "* ]]
}

# Prints "version clusters_hosts zookeeper_ok" for a node that answers; fails otherwise.
# clusters_hosts is how many hosts the node lists for churnwatch_cluster (2 for our nodes).
node_probe() {
    local client
    client="$(find_bin clickhouse-client)" || return 1
    timeout 5 "$client" --host "$HOST" --port "$(node_tcp_port "$1")" -q \
        "SELECT version(), (SELECT count() FROM system.clusters WHERE cluster = '$CLUSTER'), \
                (SELECT count() > 0 FROM system.zookeeper WHERE path = '/')" 2>/dev/null
}

# Like node_probe, but only asks for the version (works before ZooKeeper is reachable).
node_version() {
    local client
    client="$(find_bin clickhouse-client)" || return 1
    timeout 5 "$client" --host "$HOST" --port "$(node_tcp_port "$1")" -q 'SELECT version()' 2>/dev/null
}


render_zk() {
    local dir_esc
    mkdir -p "$ZK_DIR/data" "$ZK_DIR/log"
    dir_esc="$(printf '%s' "$ZK_DIR" | sed -e 's/[\\|&]/\\&/g')"
    sed -e "s|@ZK_DIR@|$dir_esc|g" -e "s|@ZK_PORT@|$ZK_PORT|g" "$TEMPLATE_DIR/zoo.cfg" >"$ZK_DIR/zoo.cfg.tmp"
    mv -f "$ZK_DIR/zoo.cfg.tmp" "$ZK_DIR/zoo.cfg"
    cp -f "$TEMPLATE_DIR/log4j.properties" "$ZK_DIR/log4j.properties"
}

# Renders the single server's config.xml for a node, and cluster.xml beside it in config.d.
render_node() {
    local node=$1 dir conf dir_esc
    dir="$(node_dir "$node")"
    conf="$dir/etc"
    mkdir -p "$conf/config.d" "$dir/log" "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
    dir_esc="$(sed_xml_escape "$dir")"
    sed -e "s|@CH_DIR@|$dir_esc|g" \
        -e "s|@CH_TCP_PORT@|$(node_tcp_port "$node")|g" \
        -e "s|@CH_HTTP_PORT@|$(node_http_port "$node")|g" \
        -e "s|@CH_INTERSERVER_PORT@|$(node_interserver_port "$node")|g" \
        "$CH_TEMPLATE_DIR/config.xml" >"$conf/config.xml.tmp"
    mv -f "$conf/config.xml.tmp" "$conf/config.xml"
    cp -f "$CH_TEMPLATE_DIR/users.xml" "$conf/users.xml"
    sed -e "s|@NODE@|$node|g" \
        -e "s|@ZK_PORT@|$ZK_PORT|g" \
        -e "s|@CH1_TCP_PORT@|$CH1_PORT|g" \
        -e "s|@CH2_TCP_PORT@|$CH2_PORT|g" \
        "$TEMPLATE_DIR/cluster.xml" >"$conf/config.d/cluster.xml.tmp"
    mv -f "$conf/config.d/cluster.xml.tmp" "$conf/config.d/cluster.xml"
}

show_logs() {
    local f
    for f in "$@"; do
        if [[ -s "$f" ]]; then
            printf '\n--- last lines of %s ---\n' "$f" >&2
            tail -n 20 "$f" >&2
        fi
    done
    printf '\n' >&2
}

zk_failure() {
    log "error: $*"
    show_logs "$ZK_DIR/log/zookeeper.log" "$ZK_DIR/log/stdout.log"
    log "hint: is port $ZK_PORT on $HOST free? (ss -ltnp | grep ':$ZK_PORT\\b'); pick another with CHURNWATCH_CLUSTER_ZK_PORT;"
    log "      logs are in $ZK_DIR/log; '$0 stop' cleans up"
    exit 1
}

node_failure() {
    local node=$1
    shift
    log "error: $*"
    show_logs "$(node_dir "$node")/log/clickhouse-server.err.log" "$(node_dir "$node")/log/stdout.log"
    log "hint: are ports $(node_tcp_port "$node")/$(node_http_port "$node")/$(node_interserver_port "$node") on $HOST free?"
    log "      (ss -ltnp | grep -E ':($(node_tcp_port "$node")|$(node_http_port "$node")|$(node_interserver_port "$node"))\\b');"
    log "      pick others with CHURNWATCH_CLUSTER_CH1_PORT / CHURNWATCH_CLUSTER_CH2_PORT; logs are in $(node_dir "$node")/log; '$0 stop' cleans up"
    exit 1
}

start_zk() {
    local java cp jar
    if zk_ok; then
        return 0
    fi
    if zk_pid >/dev/null; then
        return 0 # starting up; wait_zk waits
    fi
    java="$(find_bin java)" || die "java not found; run: $0 install"
    render_zk
    cp="$ZK_DIR"
    for jar in "${ZK_CLASSPATH_JARS[@]}"; do cp="$cp:$jar"; done
    rm -f "$ZK_PID_FILE"
    log "starting ZooKeeper on $HOST:$ZK_PORT (data in $ZK_DIR/data)"
    (
        cd "$ZK_DIR"
        setsid nohup "$java" -Xms32m -Xmx256m -XX:+UseSerialGC \
            -Dzookeeper.log.dir="$ZK_DIR/log" -Dlog4j.configuration="file:$ZK_DIR/log4j.properties" \
            -cp "$cp" "$ZK_MAIN" "$ZK_DIR/zoo.cfg" </dev/null >>"$ZK_DIR/log/stdout.log" 2>&1 9>&- &
        echo "$!" >"$ZK_PID_FILE"
    )
}

wait_zk() {
    local deadline pid
    deadline=$((SECONDS + START_TIMEOUT_S))
    while ! zk_ok; do
        pid="$(zk_pid)" || zk_failure "ZooKeeper exited during startup (or is not the one started from $ZK_DIR)"
        ((SECONDS < deadline)) || zk_failure "ZooKeeper (pid $pid) did not answer on $HOST:$ZK_PORT within ${START_TIMEOUT_S}s"
        sleep 0.2
    done
}

start_node() {
    local node=$1 dir server
    dir="$(node_dir "$node")"
    if node_version "$node" >/dev/null; then
        return 0
    fi
    if node_pid "$node" >/dev/null; then
        return 0 # starting up; wait_node waits
    fi
    server="$(find_bin clickhouse-server)" || die "clickhouse-server not found; run: $0 install"
    render_node "$node"
    rm -f "$dir/clickhouse-server.pid"
    log "starting $node on $HOST:$(node_tcp_port "$node") (config $dir/etc, logs in $dir/log)"
    (
        cd "$dir"
        setsid nohup "$server" --config-file="$dir/etc/config.xml" </dev/null >>"$dir/log/stdout.log" 2>&1 9>&- &
        echo "$!" >"$dir/clickhouse-server.pid"
    )
}

# Waits until the node answers, knows churnwatch_cluster and reaches ZooKeeper.
wait_node() {
    local node=$1 deadline probe hosts zk
    deadline=$((SECONDS + START_TIMEOUT_S))
    while true; do
        if probe="$(node_probe "$node")"; then
            read -r _ hosts zk <<<"$probe"
            [[ "$hosts" == 2 ]] || node_failure "$node" "the server on $HOST:$(node_tcp_port "$node") does not define cluster $CLUSTER: it is not one started from $CLUSTER_DIR"
            [[ "$zk" == 1 ]] && return 0
        elif ! node_version "$node" >/dev/null && ! node_pid "$node" >/dev/null; then
            node_failure "$node" "clickhouse-server $node exited during startup"
        fi
        ((SECONDS < deadline)) || node_failure "$node" "$node did not answer on $HOST:$(node_tcp_port "$node") with ZooKeeper reachable within ${START_TIMEOUT_S}s"
        sleep 0.3
    done
}

# Prints the cluster's description and succeeds when ZooKeeper and both nodes are up and ours.
cluster_ready() {
    local node probe version hosts zk lines=()
    zk_ok || return 1
    for node in "${NODES[@]}"; do
        probe="$(node_probe "$node")" || return 1
        read -r version hosts zk <<<"$probe"
        [[ "$hosts" == 2 && "$zk" == 1 ]] || return 1
        lines+=("  $node: ClickHouse $version on $HOST:$(node_tcp_port "$node") (replica $node of shard 01)")
    done
    printf 'cluster %s ready: ZooKeeper on %s:%s, data in %s\n' "$CLUSTER" "$HOST" "$ZK_PORT" "$CLUSTER_DIR"
    printf '%s\n' "${lines[@]}"
}

cmd_start() {
    local node
    mkdir -p "$CLUSTER_DIR"
    # One start at a time (make test and a test binary may both start the cluster). The servers
    # are started with fd 9 closed, so the lock ends with this script.
    exec 9>"$CLUSTER_DIR/.start.lock"
    flock -w $((2 * START_TIMEOUT_S)) 9 || die "another '$0 start' holds $CLUSTER_DIR/.start.lock"
    cmd_install quiet
    if cluster_ready; then
        return 0
    fi
    start_zk
    wait_zk
    for node in "${NODES[@]}"; do start_node "$node"; done
    for node in "${NODES[@]}"; do wait_node "$node"; done
    cluster_ready || die "the cluster came up but does not answer as expected; see '$0 status'"
}

stop_pid() {
    local what=$1 pid=$2 deadline
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$what (pid $pid) still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    log "stopped $what (pid $pid)"
}

cmd_stop() {
    local node pid pids=() names=() i
    for node in "${NODES[@]}"; do
        if pid="$(node_pid "$node")"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$node")
        fi
    done
    for i in "${!pids[@]}"; do stop_pid "${names[$i]}" "${pids[$i]}"; done
    for node in "${NODES[@]}"; do rm -f "$(node_dir "$node")/clickhouse-server.pid"; done
    if pid="$(zk_pid)"; then
        stop_pid ZooKeeper "$pid"
    fi
    rm -f "$ZK_PID_FILE"
}

cmd_status() {
    local node pid
    if cluster_ready; then
        return 0
    fi
    if zk_ok; then
        echo "ZooKeeper: answering on $HOST:$ZK_PORT"
    elif pid="$(zk_pid)"; then
        echo "ZooKeeper: running (pid $pid) but not answering on $HOST:$ZK_PORT (logs in $ZK_DIR/log)"
    else
        echo "ZooKeeper: not running"
    fi
    for node in "${NODES[@]}"; do
        if node_probe "$node" >/dev/null; then
            echo "$node: answering on $HOST:$(node_tcp_port "$node") but not ready (cluster $CLUSTER not defined, or ZooKeeper not reachable)"
        elif node_version "$node" >/dev/null; then
            echo "$node: answering on $HOST:$(node_tcp_port "$node") but cannot query ZooKeeper"
        elif pid="$(node_pid "$node")"; then
            echo "$node: running (pid $pid) but not answering on $HOST:$(node_tcp_port "$node") (logs in $(node_dir "$node")/log)"
        else
            echo "$node: not running"
        fi
    done
    echo "start the cluster with: $0 start"
    return 1
}

cmd_client() {
    local node=${1:-} client
    [[ "$node" == ch1 || "$node" == ch2 ]] || die "client: name a node, ch1 or ch2"
    shift
    client="$(find_bin clickhouse-client)" || die "clickhouse-client is not installed; run: $0 install"
    exec "$client" --host "$HOST" --port "$(node_tcp_port "$node")" "$@"
}

main() {
    # A node also listens on its port + 9 and + 23, so the ports stop 23 short of 65535.
    check_port CHURNWATCH_CLUSTER_ZK_PORT "$ZK_PORT" $((65535 - 23))
    check_port CHURNWATCH_CLUSTER_CH1_PORT "$CH1_PORT" $((65535 - 23))
    check_port CHURNWATCH_CLUSTER_CH2_PORT "$CH2_PORT" $((65535 - 23))
    dispatch "$@"
}

main "$@"
