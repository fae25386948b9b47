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
