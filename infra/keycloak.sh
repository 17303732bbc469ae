#!/usr/bin/env bash
# Hotline: a private Keycloak (dev mode, H2 file storage) on loopback for tests,
# CI and local dev. No Docker: the keycloak-quarkus-dist archive comes from Maven
# Central through mvn (same settings as infra/kafka.sh), is unpacked once under
# the services dir and reused. The realm "hotline" (roles, the public client
# hotline-console, the test users kc-*) is imported from infra/keycloak/hotline-realm.json.
#
#   bash infra/keycloak.sh start    # fetch + unpack once, start, wait for the realm; prints the base URL
#   bash infra/keycloak.sh stop     # SIGTERM, SIGKILL after 30 s; data kept
#   bash infra/keycloak.sh status   # exit 0 and print the base URL when the realm answers, exit 3 when down
#   bash infra/keycloak.sh issuer   # http://127.0.0.1:58080/realms/hotline
#
# Environment:
#   HOTLINE_SERVICES_DIR          state root                                  (default: $PWD/.services)
#   HOTLINE_KEYCLOAK_PORT         http port on 127.0.0.1                      (default: 58080)
#   HOTLINE_KEYCLOAK_VERSION      org.keycloak:keycloak-quarkus-dist version  (default: 26.5.6)
#   HOTLINE_KEYCLOAK_HEAP_OPTS    JVM heap options                            (default: -Xms64m -Xmx512m)
#   HOTLINE_KEYCLOAK_JAVA_OPTS    other JVM options                           (default: -XX:TieredStopAtLevel=1)
#   HOTLINE_KEYCLOAK_JAVA_HOME    the JDK to run it with                      (default: the newest JDK >= 17 found:
#                                 $JAVA_HOME, java on PATH, /usr/lib/jvm/*; 21+ preferred)
#   KC_BOOTSTRAP_ADMIN_USERNAME   master-realm admin created on the first start (default: admin)
#   KC_BOOTSTRAP_ADMIN_PASSWORD   its password                                (default: admin)
#   HOTLINE_MVN_OPTS              extra arguments for mvn (e.g. -Dmaven.repo.local=...)
#
# Layout under $HOTLINE_SERVICES_DIR/keycloak: keycloak-<version>/ (the unpacked
# distribution; its data/import gets the realm file), data/h2/ (the H2 database),
# keycloak.log, keycloak.pid, keycloak.lock, mvn.log.
#
# The realm file is imported only when the realm does not exist yet (Keycloak's
# --import-realm skips existing realms). So that an edited realm file takes effect,
# start drops the H2 database when the realm file's sha256 (or the Keycloak version)
# differs from the one it was imported from: dev data only, nothing else is kept there.
# The admin account (admin/admin) is Keycloak's temporary bootstrap admin: fine
# because the server listens on 127.0.0.1 only; never expose this instance.
set -euo pipefail

KC_VERSION="${HOTLINE_KEYCLOAK_VERSION:-26.5.6}"
KC_HOST=127.0.0.1
KC_PORT="${HOTLINE_KEYCLOAK_PORT:-58080}"
KC_REALM=hotline
HEAP_OPTS="${HOTLINE_KEYCLOAK_HEAP_OPTS:--Xms64m -Xmx512m}"
# C1 only: starts ~3-5 s faster on 2 cores; a test IdP never needs C2's peak speed
EXTRA_JAVA_OPTS="${HOTLINE_KEYCLOAK_JAVA_OPTS:--XX:TieredStopAtLevel=1}"
ADMIN_USER="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}"
MIN_JAVA=17        # Keycloak 26 supports OpenJDK 17, 21 and 25
PREFERRED_JAVA=21  # the newest found is used; 21+ starts faster
START_TIMEOUT=180
STOP_TIMEOUT=30

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REALM_FILE="$SCRIPT_DIR/keycloak/hotline-realm.json"

SERVICES_DIR="${HOTLINE_SERVICES_DIR:-$PWD/.services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd -P)"
KCDIR="$SERVICES_DIR/keycloak"
DIST="$KCDIR/keycloak-$KC_VERSION"
DIST_STAMP="$DIST/.hotline-keycloak-version"
DATA_DIR="$KCDIR/data"
REALM_STAMP="$DATA_DIR/.hotline-realm-import"
LOG_FILE="$KCDIR/keycloak.log"
PID_FILE="$KCDIR/keycloak.pid"
LOCK_FILE="$KCDIR/keycloak.lock"

SERVICE_NAME=keycloak.sh
# shellcheck source=infra/service-common.sh
source "$SCRIPT_DIR/service-common.sh"

base_url() { echo "http://$KC_HOST:$KC_PORT"; }
issuer() { echo "$(base_url)/realms/$KC_REALM"; }

# ---------------------------------------------------------------- tooling ---
java_major() {
    # the major version of the java binary $1 (17, 21, 25 ...), or nothing
    local v
    v="$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')" || true
    v="${v#1.}"
    [[ "${v%%.*}" =~ ^[0-9]+$ ]] && echo "${v%%.*}"
    return 0
}

# Sets JAVA_HOME to a JDK Keycloak $KC_VERSION runs on: HOTLINE_KEYCLOAK_JAVA_HOME
# when set, else the newest >= $MIN_JAVA among $JAVA_HOME, java on PATH and /usr/lib/jvm/*.
ensure_java() {
    local home major
    if [[ -n "${HOTLINE_KEYCLOAK_JAVA_HOME:-}" ]]; then
        home="$HOTLINE_KEYCLOAK_JAVA_HOME"
        [[ -x "$home/bin/java" ]] || die "HOTLINE_KEYCLOAK_JAVA_HOME=$home has no bin/java"
        major="$(java_major "$home/bin/java")"
        [[ -n "$major" && "$major" -ge "$MIN_JAVA" ]] ||
            die "HOTLINE_KEYCLOAK_JAVA_HOME=$home is Java ${major:-unknown}; Keycloak $KC_VERSION needs Java $MIN_JAVA+ (21 or 25 preferred)"
        export JAVA_HOME="$home"
        return 0
    fi
    local -a candidates=()
    [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME")
    if command -v java >/dev/null 2>&1; then
        candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
    fi
    local d
    for d in /usr/lib/jvm/*/; do
        [[ -d "$d" ]] && candidates+=("${d%/}")
    done
    local best="" best_major=0 found=""
    for home in "${candidates[@]}"; do
        [[ -x "$home/bin/java" ]] || continue
        major="$(java_major "$home/bin/java")"
        [[ -n "$major" ]] || continue
        found+=" $home=$major"
        if (( major > best_major )); then
            best="$home"
            best_major="$major"
        fi
    done
    if (( best_major < MIN_JAVA )); then
        die "Keycloak $KC_VERSION needs Java $MIN_JAVA+ (21 or 25 preferred); found:${found:- no JDK at all}. Install one (e.g. apt-get install openjdk-17-jre-headless, or a Temurin 21/25 JDK under /usr/lib/jvm) or set HOTLINE_KEYCLOAK_JAVA_HOME"
    fi
    (( best_major >= PREFERRED_JAVA )) || log "note: using Java $best_major ($best); Java $PREFERRED_JAVA+ is preferred"
    export JAVA_HOME="$best"
}

# The unpacked distribution, fetched with mvn once (mvn also keeps the archive in
# its local repository, so even a re-unpack does not download again).
ensure_dist() {
    if [[ -f "$DIST_STAMP" && "$(cat "$DIST_STAMP")" == "$KC_VERSION" && -f "$DIST/bin/kc.sh" ]]; then
        return 0
    fi
    if ! command -v mvn >/dev/null 2>&1; then
        apt_install maven
    fi
    log "fetching org.keycloak:keycloak-quarkus-dist:$KC_VERSION:tar.gz from Maven Central (first start only) ..."
    local tmp="$KCDIR/download.tmp" mvn_log="$KCDIR/mvn.log"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # shellcheck disable=SC2086  # HOTLINE_MVN_OPTS is a list of arguments
    if ! (cd "$tmp" && mvn -B -q \
            org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
            -Dartifact="org.keycloak:keycloak-quarkus-dist:$KC_VERSION:tar.gz" \
            -DoutputDirectory="$tmp" -Dmdep.overWriteReleases=true \
            ${HOTLINE_MVN_OPTS:-}) >"$mvn_log" 2>&1 9>&-; then
        tail_log "$mvn_log"
        rm -rf "$tmp"
        die "mvn dependency:copy of keycloak-quarkus-dist $KC_VERSION failed (is Maven Central reachable? full log: $mvn_log)"
    fi
    local archive="$tmp/keycloak-quarkus-dist-$KC_VERSION.tar.gz"
    [[ -f "$archive" ]] || die "mvn finished but there is no $archive"
    log "unpacking into $DIST ..."
    mkdir -p "$tmp/unpacked"
    tar -xzf "$archive" -C "$tmp/unpacked" || { rm -rf "$tmp"; die "could not unpack $archive"; }
    [[ -f "$tmp/unpacked/keycloak-$KC_VERSION/bin/kc.sh" ]] ||
        { rm -rf "$tmp"; die "$archive has no keycloak-$KC_VERSION/bin/kc.sh"; }
    echo "$KC_VERSION" >"$tmp/unpacked/keycloak-$KC_VERSION/.hotline-keycloak-version"
    rm -rf "$DIST"
    mv "$tmp/unpacked/keycloak-$KC_VERSION" "$DIST"
    rm -rf "$tmp"
    log "distribution cached ($(du -sh "$DIST" | cut -f1))"
}

# Copy the realm file into the distribution's import folder; drop the H2 database
# when the realm file or the Keycloak version changed since it was imported.
prepare_realm() {
    [[ -f "$REALM_FILE" ]] || die "missing $REALM_FILE"
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$REALM_FILE" 2>/dev/null ||
        die "$REALM_FILE is not valid JSON"
    local want have=""
    want="$(sha256sum "$REALM_FILE" | cut -d' ' -f1) $KC_VERSION"
    [[ -f "$REALM_STAMP" ]] && have="$(cat "$REALM_STAMP")"
    if [[ "$have" != "$want" ]]; then
        if [[ -d "$DATA_DIR/h2" ]]; then
            log "realm file or Keycloak version changed since the last import: dropping the dev database $DATA_DIR/h2"
        fi
        rm -rf "$DATA_DIR/h2"
        mkdir -p "$DATA_DIR"
        echo "$want" >"$REALM_STAMP"
    fi
    rm -rf "$DIST/data/import"
    mkdir -p "$DIST/data/import"
    cp "$REALM_FILE" "$DIST/data/import/$KC_REALM-realm.json"
}

# ---------------------------------------------------------------- process ---
server_pid() {
    # the pid of our running server (the kc.sh launcher, or the java it exec'd), or nothing
    [[ -f "$PID_FILE" ]] || return 0
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIST/"; then
        echo "$pid"
    fi
}

# Exit 0 when the realm's discovery document answers with our issuer.
realm_ready() {
    python3 - "$(issuer)" <<'PY' 2>/dev/null
import json, sys, urllib.request
issuer = sys.argv[1]
with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=3) as r:
    doc = json.load(r)
sys.exit(0 if doc.get("issuer") == issuer else 1)
PY
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    until realm_ready; do
        if ! alive "$pid"; then
            tail_log
            rm -f "$PID_FILE"
            die "Keycloak exited during startup (log: $LOG_FILE)"
        fi
        if (( SECONDS >= deadline )); then
            tail_log
            die "the realm $KC_REALM did not answer at $(issuer)/.well-known/openid-configuration within ${START_TIMEOUT}s (pid $pid still running; log: $LOG_FILE)"
        fi
        sleep 0.5
    done
}

# wait up to $2 seconds for pid $1 to exit; 0 when it did
# --------------------------------------------------------------- commands ---
cmd_start() {
    ensure_python
    take_lock 300
    local pid
    pid="$(server_pid)"
    if [[ -n "$pid" ]]; then
        wait_ready "$pid"
        log "already running (pid $pid)"
        base_url
        return 0
    fi
    rm -f "$PID_FILE"
    reserve_ports "$KC_PORT"
    if port_in_use "$KC_PORT" "$KC_HOST"; then
        if realm_ready; then
            # e.g. started from another working directory: reuse it rather than fail
            log "WARNING: another Keycloak (not ours in $KCDIR) already serves $(issuer); using it"
            base_url
            return 0
        fi
        die "port $KC_HOST:$KC_PORT is already taken by another process; stop it or set HOTLINE_KEYCLOAK_PORT"
    fi

    ensure_java
    ensure_dist
    prepare_realm

    log "starting Keycloak $KC_VERSION (dev mode, Java $(java_major "$JAVA_HOME/bin/java")) on $(base_url), data $DATA_DIR"
    # keep one previous log once it passes 64 MiB
    if [[ -f "$LOG_FILE" ]] && (( $(stat -c %s "$LOG_FILE") > 67108864 )); then
        mv -f "$LOG_FILE" "$LOG_FILE.1"
    fi
    echo "==== $(date -u +%FT%TZ) keycloak.sh start (Keycloak $KC_VERSION, JAVA_HOME=$JAVA_HOME) ====" >>"$LOG_FILE"
    # kc.sh runs java as its child (and re-execs it after a re-augmentation) and
    # forwards SIGTERM to it; setsid makes the launcher a process-group leader so
    # that stop can SIGKILL the whole group if it must.
    # -Dkc.db-url-path moves the dev-file H2 database out of the distribution to $DATA_DIR/h2.
    # --hostname pins the issuer to http://127.0.0.1:<port> whatever Host a client uses.
    # shellcheck disable=SC2016  # $$ is for the launcher
    JAVA_OPTS_KC_HEAP="$HEAP_OPTS" \
    JAVA_OPTS_APPEND="-Dkc.db-url-path=$KCDIR $EXTRA_JAVA_OPTS" \
    KC_BOOTSTRAP_ADMIN_USERNAME="$ADMIN_USER" \
    KC_BOOTSTRAP_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' keycloak-launcher "$PID_FILE" \
        "$DIST/bin/kc.sh" start-dev \
        --http-host="$KC_HOST" --http-port="$KC_PORT" \
        --hostname="$(base_url)" \
        --import-realm \
        --log-console-color=false \
        </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    # the launcher writes the pid file before exec'ing kc.sh
    await_pid_file Keycloak
    pid="$(cat "$PID_FILE")"
    wait_ready "$pid"
    log "ready (pid $pid, issuer $(issuer), admin console $(base_url)/admin as $ADMIN_USER, log $LOG_FILE)"
    base_url
}

cmd_stop() {
    [[ -d "$KCDIR" ]] || { log "not running"; return 0; }
    take_lock 300
    local pid
    pid="$(server_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping Keycloak (pid $pid)"
    terminate "$pid" "$STOP_TIMEOUT" group
    # java (kc.sh's child, same process group) may outlive the launcher by a moment
    local deadline=$((SECONDS + 15))
    while pgrep -g "$pid" >/dev/null 2>&1 || port_in_use "$KC_PORT" "$KC_HOST"; do
        if (( SECONDS >= deadline )); then
            die "pid $pid stopped but its process group or port $KC_PORT is still busy"
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid
    pid="$(server_pid)"
    if [[ -n "$pid" ]] && realm_ready; then
        echo "running: $(base_url) (pid $pid, Keycloak $KC_VERSION, issuer $(issuer), data $DATA_DIR)"
        return 0
    fi
    if [[ -n "$pid" ]]; then
        echo "starting or unhealthy: pid $pid does not serve $(issuer)"
        return 3
    fi
    echo "not running"
    return 3
}

usage() {
    echo "usage: $0 {start|stop|status|issuer}" >&2
    exit 2
}

case "${1:-}" in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    issuer) issuer ;;
    *)      usage ;;
esac
