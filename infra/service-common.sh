# Shared by the scripts that start a private service on loopback (infra/kafka.sh,
# infra/keycloak.sh, infra/postgres.sh): logging, the log's tail on failure, Debian
# packages, process and port checks, and the start/stop lock. Source it after setting
# SERVICE_NAME (e.g. "kafka.sh") and, before calling tail_log or take_lock, LOG_FILE and
# LOCK_FILE.
# shellcheck shell=bash

log() { echo "${SERVICE_NAME}: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

tail_log() {
    local f="${1:-${LOG_FILE:-}}"
    if [[ -f "$f" ]]; then
        log "---- last lines of $f ----"
        tail -n 40 "$f" >&2 || true
        log "----------------------------"
    fi
}

apt_install() {
    [[ "$(id -u)" == 0 ]] || die "$1 is missing and we are not root: run 'sudo apt-get install -y $*'"
    log "installing $* with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q "$@" >&2 || die "apt-get install $* failed"
}

ensure_python() {
    command -v python3 >/dev/null 2>&1 || die "python3 is needed for the readiness check"
}

port_in_use() {
    # $1 port, $2 host (default 127.0.0.1)
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") >/dev/null 2>&1
}

alive() {
    # running and not a zombie
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

wait_exit() {
    local pid="$1" deadline=$((SECONDS + $2))
    while alive "$pid"; do
        (( SECONDS < deadline )) || return 1
        sleep 0.2
    done
}

take_lock() {
    # $1 seconds to wait for another start or stop to finish
    mkdir -p "$(dirname "$LOCK_FILE")"
    exec 9>"$LOCK_FILE"
    flock -w "${1:-180}" 9 || die "timed out waiting for the lock $LOCK_FILE"
}

await_pid_file() {
    # $1 what (for the message): the launcher writes $PID_FILE before exec'ing the server
    local deadline=$((SECONDS + 10))
    until [[ -s "$PID_FILE" ]]; do
        (( SECONDS < deadline )) || { tail_log; die "the $1 process did not start"; }
        sleep 0.1
    done
}

terminate() {
    # $1 pid, $2 seconds to wait after SIGTERM, $3 "group" to SIGKILL its process group too
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" "$2"; then
        log "no exit after ${2}s: SIGKILL"
        if [[ "${3:-}" == group ]]; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        else
            kill -KILL "$pid" 2>/dev/null || true
        fi
        if ! wait_exit "$pid" 15; then
            tail_log
            die "could not stop pid $pid"
        fi
    fi
}

reserve_ports() {
    # $@ ports. Keeps the kernel from handing them out as the local end of outgoing
    # connections: they lie in Linux's ephemeral range (32768-60999), and a client
    # connection that had taken one made a later start of the service fail with "Address
    # already in use" (seen after a benchmark's thousand connections; the tests restart
    # the broker mid-suite). Needs root; elsewhere nothing changes.
    local file=/proc/sys/net/ipv4/ip_local_reserved_ports current wanted p
    [[ -w "$file" ]] || return 0
    current="$(cat "$file" 2>/dev/null || true)"
    wanted="$current"
    for p in "$@"; do
        [[ ",$wanted," == *",$p,"* ]] || wanted="${wanted:+$wanted,}$p"
    done
    [[ "$wanted" == "$current" ]] || echo "$wanted" > "$file" 2>/dev/null || true
}
