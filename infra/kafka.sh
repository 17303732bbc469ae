#!/usr/bin/env bash
# Hotline: a private single-node Apache Kafka broker (KRaft, combined
# broker+controller) on loopback for tests, CI and local dev. No Docker, no
# tarball: the broker's jars come from Maven Central through infra/kafka/pom.xml.
#
#   bash infra/kafka.sh start      # fetch jars once, format storage once, start; prints the bootstrap address
#   bash infra/kafka.sh stop       # SIGTERM (controlled shutdown), SIGKILL after 20 s; data kept
#   bash infra/kafka.sh status     # exit 0 and print the bootstrap address when up, exit 3 when down
#   bash infra/kafka.sh bootstrap  # 127.0.0.1:59092
#
# Environment:
#   HOTLINE_SERVICES_DIR       state root                                (default: $PWD/.services)
#   HOTLINE_KAFKA_PORT         broker port on 127.0.0.1                  (default: 59092)
#   HOTLINE_KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1    (default: 59093)
#   HOTLINE_KAFKA_VERSION      Kafka version fetched from Maven Central  (default: 3.9.1)
#   HOTLINE_KAFKA_HEAP_OPTS    JVM heap options                          (default: -Xms512m -Xmx512m)
#   HOTLINE_MVN_OPTS           extra arguments for mvn (e.g. -Dmaven.repo.local=...)
#
# Layout under $HOTLINE_SERVICES_DIR/kafka: libs/ (jar cache), config/, data/
# (log.dirs and KRaft metadata), kafka.log, kafka.pid.
set -euo pipefail

KAFKA_VERSION="${HOTLINE_KAFKA_VERSION:-3.9.1}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${HOTLINE_KAFKA_PORT:-59092}"
CONTROLLER_PORT="${HOTLINE_KAFKA_CONTROLLER_PORT:-59093}"
# fixed KRaft cluster id (base64url of the 16 bytes "hotline-kafka-01")
CLUSTER_ID="aG90bGluZS1rYWZrYS0wMQ"
HEAP_OPTS="${HOTLINE_KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"
START_TIMEOUT=90
STOP_TIMEOUT=20

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
POM="$SCRIPT_DIR/kafka/pom.xml"

SERVICES_DIR="${HOTLINE_SERVICES_DIR:-$PWD/.services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd -P)"
KDIR="$SERVICES_DIR/kafka"
LIBS="$KDIR/libs"
CONF_DIR="$KDIR/config"
DATA_DIR="$KDIR/data"
LOG_FILE="$KDIR/kafka.log"
PID_FILE="$KDIR/kafka.pid"
LOCK_FILE="$KDIR/kafka.lock"
LIBS_STAMP="$LIBS/.hotline-kafka-version"

SERVICE_NAME=kafka.sh
# shellcheck source=infra/service-common.sh
source "$SCRIPT_DIR/service-common.sh"

bootstrap() { echo "$KAFKA_HOST:$KAFKA_PORT"; }

# ---------------------------------------------------------------- tooling ---
ensure_java() {
    if ! command -v java >/dev/null 2>&1; then
        apt_install openjdk-17-jre-headless
    fi
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    [[ -n "$v" && "${v%%.*}" -ge 11 ]] || die "Kafka $KAFKA_VERSION needs Java 11+ (found: ${v:-unknown}); install openjdk-17-jre-headless"
}

ensure_libs() {
    if [[ -f "$LIBS_STAMP" && "$(cat "$LIBS_STAMP")" == "$KAFKA_VERSION" ]] &&
       compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
        return 0
    fi
    [[ -f "$POM" ]] || die "missing $POM"
    if ! command -v mvn >/dev/null 2>&1; then
        apt_install maven
    fi
    log "fetching Kafka $KAFKA_VERSION broker jars from Maven Central into $LIBS (first start only) ..."
    local tmp="$KDIR/libs.tmp" mvn_log="$KDIR/mvn.log"
    rm -rf "$tmp"
    # shellcheck disable=SC2086  # HOTLINE_MVN_OPTS is a list of arguments
    if ! (cd "$SCRIPT_DIR/kafka" && mvn -B -q -f "$POM" dependency:copy-dependencies \
            -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$tmp" \
            ${HOTLINE_MVN_OPTS:-}) >"$mvn_log" 2>&1 9>&-; then
        tail_log "$mvn_log"
        rm -rf "$tmp"
        die "mvn dependency:copy-dependencies failed (is Maven Central reachable? full log: $mvn_log)"
    fi
    compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null ||
        die "mvn finished but $tmp has no kafka_2.13-$KAFKA_VERSION.jar"
    echo "$KAFKA_VERSION" >"$tmp/.hotline-kafka-version"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    log "jars cached ($(ls "$LIBS" | wc -l) files, $(du -sh "$LIBS" | cut -f1))"
}

# ----------------------------------------------------------------- config ---
write_config() {
    mkdir -p "$CONF_DIR" "$DATA_DIR"
    cat >"$CONF_DIR/server.properties" <<EOF
# written by infra/kafka.sh on every start; edits here are overwritten
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$DATA_DIR
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0

num.network.threads=3
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=1073741824
EOF
    cat >"$CONF_DIR/log4j.properties" <<'EOF'
# written by infra/kafka.sh: everything to stdout, which kafka.sh appends to kafka.log
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.kafka.log.LogCleaner=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
EOF
    cat >"$CONF_DIR/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stderr.Target=System.err
EOF
}

format_storage() {
    # once: data kept across stop/start; never re-formatted
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    log "formatting KRaft storage in $DATA_DIR (cluster id $CLUSTER_ID)"
    local fmt_log="$KDIR/format.log"
    if ! java -Xmx256m -Dlog4j.configuration="file:$CONF_DIR/tools-log4j.properties" \
            -cp "$LIBS/*" kafka.tools.StorageTool format \
            -t "$CLUSTER_ID" -c "$CONF_DIR/server.properties" --ignore-formatted \
            >"$fmt_log" 2>&1 9>&-; then
        tail_log "$fmt_log"
        die "kafka storage format failed"
    fi
}

# ---------------------------------------------------------------- process ---
broker_pid() {
    # the pid of our running broker, or nothing
    [[ -f "$PID_FILE" ]] || return 0
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
        echo "$pid"
    fi
}

# Exit 0 when the broker answers a Kafka Metadata request listing >= 1 broker
# (i.e. it is registered with the KRaft controller and unfenced). Plain socket,
# no client library needed.
broker_ready() {
    python3 - "$KAFKA_HOST" "$KAFKA_PORT" <<'PY' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"hotline-ready"
# request header v1 (api_key=3 Metadata, api_version=0, correlation_id, client_id) + body: [] = all topics
req = struct.pack(">hhih", 3, 0, 42, len(client)) + client + struct.pack(">i", 0)
with socket.create_connection((host, port), timeout=3) as s:
    s.settimeout(5)
    s.sendall(struct.pack(">i", len(req)) + req)
    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    size = struct.unpack(">i", read(4))[0]
    body = read(size)
    corr, nbrokers = struct.unpack(">ii", body[:8])
    sys.exit(0 if corr == 42 and nbrokers >= 1 else 1)
PY
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    until broker_ready; do
        if ! alive "$pid"; then
            tail_log
            rm -f "$PID_FILE"
            die "the Kafka broker exited during startup (log: $LOG_FILE)"
        fi
        if (( SECONDS >= deadline )); then
            tail_log
            die "the Kafka broker did not answer on $(bootstrap) within ${START_TIMEOUT}s (pid $pid still running; log: $LOG_FILE)"
        fi
        sleep 0.5
    done
}

# wait up to $2 seconds for pid $1 to exit; 0 when it did
# --------------------------------------------------------------- commands ---
cmd_start() {
    ensure_python
    take_lock 180
    local pid
    pid="$(broker_pid)"
    if [[ -n "$pid" ]]; then
        wait_ready "$pid"
        log "already running (pid $pid)"
        bootstrap
        return 0
    fi
    rm -f "$PID_FILE"
    reserve_ports "$KAFKA_PORT" "$CONTROLLER_PORT"
    for p in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
        if port_in_use "$p" "$KAFKA_HOST"; then
            if [[ "$p" == "$KAFKA_PORT" ]] && broker_ready; then
                # e.g. started from another working directory: reuse it rather than fail
                log "WARNING: another Kafka broker (not ours in $KDIR) already serves $(bootstrap); using it"
                bootstrap
                return 0
            fi
            die "port $KAFKA_HOST:$p is already taken by another process; stop it or set HOTLINE_KAFKA_PORT / HOTLINE_KAFKA_CONTROLLER_PORT"
        fi
    done

    ensure_java
    ensure_libs
    write_config
    format_storage

    log "starting Kafka $KAFKA_VERSION (KRaft broker+controller) on $(bootstrap), controller $KAFKA_HOST:$CONTROLLER_PORT, data $DATA_DIR"
    # keep one previous log once it passes 64 MiB
    if [[ -f "$LOG_FILE" ]] && (( $(stat -c %s "$LOG_FILE") > 67108864 )); then
        mv -f "$LOG_FILE" "$LOG_FILE.1"
    fi
    echo "==== $(date -u +%FT%TZ) kafka.sh start (Kafka $KAFKA_VERSION) ====" >>"$LOG_FILE"
    # shellcheck disable=SC2086,SC2016  # HEAP_OPTS is a list of JVM options; $$ is for the launcher
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launcher "$PID_FILE" \
        java $HEAP_OPTS -server \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$CONF_DIR/log4j.properties" \
        -Dkafka.logs.dir="$KDIR" \
        -cp "$LIBS/*" kafka.Kafka "$CONF_DIR/server.properties" \
        </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    # the launcher writes the pid file before exec'ing java
    await_pid_file broker
    pid="$(cat "$PID_FILE")"
    wait_ready "$pid"
    log "ready (pid $pid, log $LOG_FILE)"
    bootstrap
}

cmd_stop() {
    [[ -d "$KDIR" ]] || { log "not running"; return 0; }
    take_lock 180
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping broker (pid $pid)"
    terminate "$pid" "$STOP_TIMEOUT"
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid
    pid="$(broker_pid)"
    if [[ -n "$pid" ]] && broker_ready; then
        echo "running: $(bootstrap) (pid $pid, Kafka $KAFKA_VERSION, data $DATA_DIR)"
        return 0
    fi
    if [[ -n "$pid" ]]; then
        echo "starting or unhealthy: pid $pid does not answer on $(bootstrap)"
        return 3
    fi
    echo "not running"
    return 3
}

usage() {
    echo "usage: $0 {start|stop|status|bootstrap}" >&2
    exit 2
}

case "${1:-}" in
    start)     cmd_start ;;
    stop)      cmd_stop ;;
    status)    cmd_status ;;
    bootstrap) bootstrap ;;
    *)         usage ;;
esac
