#!/usr/bin/env bash
# Hotline: a private PostgreSQL server on loopback for tests, CI and local dev.
#
#   bash infra/postgres.sh start    # install (Debian) if needed, initdb once, start; prints the URL
#   bash infra/postgres.sh stop     # pg_ctl stop -m fast (data kept)
#   bash infra/postgres.sh status   # exit 0 and print the URL when up, exit 3 when down
#   bash infra/postgres.sh url [DB] # postgresql://postgres@127.0.0.1:55432/hotline (or DB)
#
# Environment:
#   HOTLINE_SERVICES_DIR  state root                 (default: $PWD/.services)
#   HOTLINE_PG_PORT       TCP port on 127.0.0.1      (default: 55432)
#   HOTLINE_PG_DATA       data directory             (default: $HOTLINE_SERVICES_DIR/postgres)
#   HOTLINE_PG_BINDIR     PostgreSQL bin directory   (default: newest /usr/lib/postgresql/*/bin)
#
# It never uses the cluster Debian's package creates: it runs its own cluster,
# listening only on 127.0.0.1 (plus a unix socket inside the data directory),
# trust auth, fsync on, max_connections=200, databases hotline and hotline_test.
# PostgreSQL refuses to run as root, so when run as root the server runs as the
# `postgres` system user (created if missing) and owns the data directory.
set -euo pipefail

PG_PORT="${HOTLINE_PG_PORT:-55432}"
PG_HOST=127.0.0.1
PG_USER=postgres
PG_DATABASES=(hotline hotline_test)
START_TIMEOUT=60
# never let psql hang on a port held by something that is not PostgreSQL
export PGCONNECT_TIMEOUT=5

SERVICES_DIR="${HOTLINE_SERVICES_DIR:-$PWD/.services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd -P)"
PGDATA_DIR="${HOTLINE_PG_DATA:-$SERVICES_DIR/postgres}"
LOCK_FILE="$SERVICES_DIR/postgres.lock"

SERVICE_NAME=postgres.sh
# shellcheck source=infra/service-common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/service-common.sh"

url() { echo "postgresql://${PG_USER}@${PG_HOST}:${PG_PORT}/${1:-hotline}"; }

# ---------------------------------------------------------------- binaries ---
find_bindir() {
    if [[ -n "${HOTLINE_PG_BINDIR:-}" ]]; then
        [[ -x "$HOTLINE_PG_BINDIR/postgres" ]] || die "HOTLINE_PG_BINDIR=$HOTLINE_PG_BINDIR has no postgres binary"
        echo "$HOTLINE_PG_BINDIR"
        return
    fi
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$d" && -x "$d/postgres" ]]; then echo "$d"; fi
}

ensure_installed() {
    BINDIR="$(find_bindir)"
    if [[ -z "$BINDIR" ]]; then
        [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres) and we are not root: run 'sudo apt-get install -y postgresql'"
        log "PostgreSQL not found; installing Debian's postgresql package (apt-get) ..."
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2 || die "apt-get update failed"
        apt-get install -y -q postgresql >&2 || die "apt-get install postgresql failed"
        BINDIR="$(find_bindir)"
        [[ -n "$BINDIR" ]] || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/postgres found"
    fi
    for tool in postgres initdb pg_ctl pg_isready psql; do
        [[ -x "$BINDIR/$tool" ]] || die "$BINDIR/$tool is missing (install the postgresql / postgresql-client packages)"
    done
}

# PostGIS (the nearby-work-orders read model's geographic index: projections/nearby.py)
# comes from Debian's package for the server's major version, installed here so a clean
# machine (CI) gets it; without it the read model falls back to its grid index.
postgis_control() { echo "/usr/share/postgresql/$1/extension/postgis.control"; }

ensure_postgis() {
    local major
    major="$("$BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')"
    [[ -f "$(postgis_control "$major")" ]] && return 0
    if [[ "$(id -u)" != 0 ]]; then
        log "WARNING: PostGIS is not installed: run 'sudo apt-get install -y postgresql-$major-postgis-3'"
        return 0
    fi
    log "installing PostGIS (postgresql-$major-postgis-3) with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    # Another apt-get (a parallel install) may hold the lock: wait for it rather than fail.
    if ! { apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "postgresql-$major-postgis-3" >&2 ||
           { apt-get -o DPkg::Lock::Timeout=300 update -q >&2 &&
             apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "postgresql-$major-postgis-3" >&2; }; }; then
        log "WARNING: apt-get install postgresql-$major-postgis-3 failed: nearby work orders use the grid index"
    fi
}

# ------------------------------------------------------------ run as user ---
# PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
if [[ "$(id -u)" == 0 ]]; then AS_ROOT=1; else AS_ROOT=0; fi

ensure_pg_user() {
    [[ "$AS_ROOT" == 1 ]] || return 0
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        log "creating system user $PG_USER"
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /bin/sh "$PG_USER" || die "could not create user $PG_USER"
    fi
}

# Run a command as the server's owner (cd / so an unreadable $PWD does not matter;
# 9>&- so the postmaster never inherits, and so holds forever, our lock fd).
as_owner() {
    if [[ "$AS_ROOT" == 1 ]]; then
        (cd / && runuser -u "$PG_USER" -- "$@") 9>&-
    else
        (cd / && "$@") 9>&-
    fi
}

# ------------------------------------------------------------------ paths ---
resolve_data_dir() {
    mkdir -p "$PGDATA_DIR"
    PGDATA_DIR="$(cd "$PGDATA_DIR" && pwd -P)"
    if [[ "$AS_ROOT" == 1 ]]; then
        chown "$PG_USER:" "$PGDATA_DIR"
        if ! as_owner test -w "$PGDATA_DIR"; then
            die "user $PG_USER cannot reach $PGDATA_DIR (a parent directory is not searchable by others, e.g. /root is 0700). Set HOTLINE_SERVICES_DIR or HOTLINE_PG_DATA to a path under /work, /srv, /var/tmp or /tmp, or 'chmod o+x' the parents."
        fi
    fi
    SOCKET_DIR="$PGDATA_DIR/socket"
    PG_LOG="$PGDATA_DIR/postgres.log"
    # unix socket paths are limited to 107 bytes
    if (( ${#SOCKET_DIR} + 20 > 107 )); then
        die "data directory path too long for a unix socket inside it ($SOCKET_DIR); use a shorter HOTLINE_SERVICES_DIR / HOTLINE_PG_DATA"
    fi
}

is_ready() {
    "$BINDIR/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -t 2 >/dev/null 2>&1
}

server_running() {
    # our cluster's postmaster is alive (pg_ctl status: 0 running, 3 not running, 4 no data dir)
    [[ -f "$PGDATA_DIR/postmaster.pid" ]] && as_owner "$BINDIR/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

# --------------------------------------------------------------- cluster ---
init_cluster() {
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
        local have want
        have="$(cat "$PGDATA_DIR/PG_VERSION")"
        want="$("$BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')"
        if [[ "$have" != "$want" ]]; then
            die "data directory $PGDATA_DIR was made by PostgreSQL $have but the binaries in $BINDIR are $want: remove it (bash infra/postgres.sh stop; rm -rf $PGDATA_DIR) or set HOTLINE_PG_BINDIR"
        fi
        return 0
    fi
    if [[ -n "$(ls -A "$PGDATA_DIR" 2>/dev/null)" ]]; then
        die "$PGDATA_DIR is not empty but holds no cluster (no PG_VERSION): remove it and start again"
    fi
    log "initdb $PGDATA_DIR"
    local initdb_log="$SERVICES_DIR/postgres-initdb.log"
    if ! as_owner "$BINDIR/initdb" -D "$PGDATA_DIR" -U "$PG_USER" --auth=trust \
            --encoding=UTF8 --locale=C.UTF-8 >"$initdb_log" 2>&1; then
        cat "$initdb_log" >&2
        # leave no half-made cluster behind: the next start retries from scratch
        find "$PGDATA_DIR" -mindepth 1 -delete 2>/dev/null || true
        die "initdb failed (see above)"
    fi
    echo "include_if_exists = 'hotline.conf'" | as_owner tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
}

write_config() {
    # rewritten on each start so HOTLINE_PG_PORT changes are picked up
    as_owner mkdir -p "$SOCKET_DIR"
    as_owner chmod 0700 "$SOCKET_DIR"
    as_owner tee "$PGDATA_DIR/hotline.conf" >/dev/null <<EOF
# written by infra/postgres.sh on every start; edits here are overwritten
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$SOCKET_DIR'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 256MB
# Read-model rows (a request's status, its timers, positions) are updated many times a
# second: vacuum them soon, or scans wade through dead versions (the default naptime is 1 min).
autovacuum_naptime = 5s
autovacuum_vacuum_scale_factor = 0.05
autovacuum_vacuum_insert_scale_factor = 0.1
log_timezone = 'UTC'
timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    as_owner tee "$PGDATA_DIR/pg_hba.conf" >/dev/null <<EOF
# written by infra/postgres.sh: trust on the unix socket and on loopback only
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
}

create_databases() {
    local db exists
    for db in "${PG_DATABASES[@]}"; do
        exists="$("$BINDIR/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '$db'")" || die "could not query databases on $(url postgres)"
        if [[ "$exists" != 1 ]]; then
            log "creating database $db"
            # a concurrent creator may win the race: only fail if it is still missing
            "$BINDIR/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
                -c "CREATE DATABASE \"$db\"" >/dev/null 2>&1 ||
            [[ "$("$BINDIR/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
                "SELECT 1 FROM pg_database WHERE datname = '$db'")" == 1 ]] ||
                die "could not create database $db"
        fi
    done
    enable_postgis
}

# CREATE EXTENSION postgis in template1 (so every database created later has it, the
# tests' included) and in the databases above; once per cluster (a marker in its data
# directory): a connection to template1 makes a concurrent CREATE DATABASE fail.
enable_postgis() {
    local major db marker="$PGDATA_DIR/hotline-postgis-enabled"
    major="$("$BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')"
    [[ -f "$(postgis_control "$major")" && ! -f "$marker" ]] || return 0
    for db in template1 "${PG_DATABASES[@]}"; do
        "$BINDIR/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" \
            -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null 2>&1 || { log "WARNING: CREATE EXTENSION postgis failed in $db"; return 0; }
    done
    as_owner touch "$marker"
}

wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until is_ready; do
        if ! server_running; then
            tail_log "${PG_LOG:-}"
            die "PostgreSQL exited during startup (log: $PG_LOG)"
        fi
        if (( SECONDS >= deadline )); then
            tail_log "${PG_LOG:-}"
            die "PostgreSQL did not answer pg_isready on $PG_HOST:$PG_PORT within ${START_TIMEOUT}s (log: $PG_LOG)"
        fi
        sleep 0.5
    done
}

# ------------------------------------------------------------- commands ---
cmd_start() {
    ensure_installed
    ensure_postgis
    ensure_pg_user
    resolve_data_dir
    # one starter at a time (pytest-xdist workers may all call start)
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "timed out waiting for the lock $LOCK_FILE"

    if server_running; then
        wait_ready
        create_databases
        log "already running ($PGDATA_DIR)"
        url
        return 0
    fi
    reserve_ports "$PG_PORT"
    if port_in_use "$PG_PORT" "$PG_HOST"; then
        local other
        other="$("$BINDIR/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
            "SHOW data_directory" 2>/dev/null || true)"
        if [[ -n "$other" ]]; then
            # e.g. started from another working directory: reuse it rather than fail
            log "WARNING: a PostgreSQL with data directory $other already serves $PG_HOST:$PG_PORT; using it"
            create_databases
            url
            return 0
        fi
        die "port $PG_HOST:$PG_PORT is already taken by another process (not our cluster in $PGDATA_DIR); stop it or set HOTLINE_PG_PORT"
    fi

    init_cluster
    write_config
    as_owner touch "$PG_LOG"
    log "starting PostgreSQL ($("$BINDIR/postgres" --version)) on $PG_HOST:$PG_PORT, data $PGDATA_DIR"
    if ! as_owner "$BINDIR/pg_ctl" start -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$START_TIMEOUT" -s >/dev/null 2>&1; then
        tail_log "${PG_LOG:-}"
        die "pg_ctl start failed (log: $PG_LOG)"
    fi
    wait_ready
    create_databases
    log "ready"
    url
}

cmd_stop() {
    ensure_installed
    resolve_data_dir_quiet || { log "not running (no data directory $PGDATA_DIR)"; return 0; }
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "timed out waiting for the lock $LOCK_FILE"
    if ! server_running; then
        log "not running"
        return 0
    fi
    if ! as_owner "$BINDIR/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 -s; then
        tail_log "${PG_LOG:-}"
        die "pg_ctl stop failed"
    fi
    log "stopped"
}

# like resolve_data_dir, but never creates or chowns anything
resolve_data_dir_quiet() {
    [[ -d "$PGDATA_DIR" ]] || return 1
    PGDATA_DIR="$(cd "$PGDATA_DIR" && pwd -P)"
    SOCKET_DIR="$PGDATA_DIR/socket"
    PG_LOG="$PGDATA_DIR/postgres.log"
}

cmd_status() {
    BINDIR="$(find_bindir)"
    if [[ -z "$BINDIR" ]]; then echo "not installed"; return 3; fi
    if resolve_data_dir_quiet && server_running && is_ready; then
        echo "running: $(url) (data $PGDATA_DIR)"
        return 0
    fi
    echo "not running"
    return 3
}

usage() {
    echo "usage: $0 {start|stop|status|url [DB]}" >&2
    exit 2
}

case "${1:-}" in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    url)    url "${2:-hotline}" ;;
    *)      usage ;;
esac
