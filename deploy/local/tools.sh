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

# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}


have() {
    [[ $1 == /* ]] && { [[ -e $1 ]]; return; }
    find_bin "$1" >/dev/null
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
    apt_install "${missing[@]}"
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
