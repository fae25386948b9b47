# shellcheck shell=bash
# Shared by the deploy/local scripts (sourced, not run). The sourcing script
# defines log and die first.

# Path of a binary, also looking in sbin directories that a non-root PATH may lack.
find_bin() {
    local name=$1 dir
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for dir in /usr/sbin /usr/bin /sbin /usr/local/bin; do
        if [[ -x "$dir/$name" ]]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
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

# apt_install PACKAGE...: apt-get update and install, with errors that say what failed.
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages ($*) and apt-get is not available; install them by hand"
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed; check the network/apt sources and retry"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ||
        die "apt-get install $* failed; see the apt output above"
}

# check_port NAME VALUE [MAX]: dies unless VALUE is a port number from 1 to MAX (65535).
check_port() {
    local name=$1 value=$2 max=${3:-65535}
    if ! [[ "$value" =~ ^[1-9][0-9]{0,4}$ ]] || ((value > max)); then
        die "$name must be a port number (1-$max), got '$value'"
    fi
}

# Escapes a string for use as a sed replacement with '|' as delimiter, and for XML text.
sed_xml_escape() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/[\\|&]/\\&/g'
}

# dispatch SUBCOMMAND [ARGS...]: runs cmd_install, cmd_start, cmd_stop, cmd_status or
# cmd_client (with ARGS), as the sourcing script defines them, or prints its usage.
dispatch() {
    local cmd=${1:-}
    if (($# > 0)); then shift; fi
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        client) cmd_client "$@" ;;
        -h | --help | help)
            usage
            ;;
        *)
            usage >&2
            [[ -z "$cmd" ]] && die "missing subcommand"
            die "unknown subcommand '$cmd'"
            ;;
    esac
}
