#!/usr/bin/env bash
# Developer/test tools for churnwatch, from Debian packages.
#
# Usage: deploy/local/tools.sh install
#
#   install  apt-get install each tool whose command is missing (a quick no-op when all are there):
#              kcat      Kafka CLI (librdkafka), to check interoperability with the test broker
#              chromium  headless browser the dashboard test drives (/usr/bin/chromium)
#              fonts-wqy-zenhei  a Chinese font, so that the dashboard's screenshots show the signal names
set -euo pipefail

# "command:debian-package" pairs (or "/absolute/file:debian-package"); add a line per tool.
TOOLS=(
    "kcat:kcat"
    "chromium:chromium"
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc:fonts-wqy-zenhei"
)

log() { printf 'tools.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing packages needs root: run '$*' as root, or install sudo"
    fi
}

have() {
    local name=$1 dir
    [[ $name == /* ]] && { [[ -e $name ]]; return; }
    command -v "$name" >/dev/null 2>&1 && return 0
    for dir in /usr/sbin /usr/bin /sbin /usr/local/bin; do
        [[ -x "$dir/$name" ]] && return 0
    done
    return 1
}

cmd_install() {
    local entry missing=()
    for entry in "${TOOLS[@]}"; do
        have "${entry%%:*}" || missing+=("${entry#*:}")
    done
    if ((${#missing[@]} == 0)); then
        log "all tools already installed"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages (${missing[*]}) and apt-get is not available; install them by hand"
    log "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed; check the network/apt sources and retry"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed; see the apt output above"
    for entry in "${TOOLS[@]}"; do
        have "${entry%%:*}" || die "'${entry%%:*}' still not found after installing ${entry#*:}"
    done
}

main() {
    local cmd=${1:-}
    case "$cmd" in
        install) cmd_install ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            [[ -z "$cmd" ]] && die "missing subcommand"
            die "unknown subcommand '$cmd'"
            ;;
    esac
}

main "$@"
