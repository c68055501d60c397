#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft combined mode: broker + controller in one
# JVM) for the real-stack tests and the demo, from the jars pinned by tools/realstack/pom.xml.
# Listens on 127.0.0.1 only, on free ports; bounded heap; stopped by its PID.
#
#   scripts/kafka.sh start DIR     # prints `export KAFKA_BOOTSTRAP=127.0.0.1:P`: eval it
#   scripts/kafka.sh stop DIR
#   scripts/kafka.sh tool CLASS [ARGS...]   # a Kafka CLI class on the same class path, e.g.
#       scripts/kafka.sh tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
#         --bootstrap-server "$KAFKA_BOOTSTRAP" --describe --group cdcjoin
#
# A second `start` of a stopped DIR reuses its data and ports (a broker restart).
# Environment: CDCJOIN_KAFKA_HEAP (default 512m), CDCJOIN_KAFKA_START_TIMEOUT_S (default 120).
set -euo pipefail

log() { echo "kafka.sh: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
# shellcheck source=scripts/jvm_common.sh
source "$(dirname "$0")/jvm_common.sh"

usage() {
  echo "usage: $0 start DIR | stop DIR | tool CLASS [ARGS...]" >&2
  exit 2
}

start() {
  local dir=$1 lib
  lib=$(realstack_lib) || die "the real-stack jars are missing (scripts/realstack_deps.sh failed)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/kafka.pid" ]] && pid_alive "$(cat "$dir/kafka.pid")"; then
    die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid")); stop it first"
  fi

  local port controller_port
  if [[ -f "$dir/ports" ]]; then
    read -r port controller_port <"$dir/ports"
    log "reusing $dir (ports $port, $controller_port)"
  else
    port=$(free_port)
    controller_port=$(free_port)
    while [[ "$controller_port" == "$port" ]]; do controller_port=$(free_port); done
    echo "$port $controller_port" >"$dir/ports"
  fi
  for p in "$port" "$controller_port"; do
    port_in_use "$p" && die "port $p on 127.0.0.1 is already in use"
  done

  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:${controller_port}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${dir}/data
num.partitions=1
auto.create.topics.enable=true
# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join groups often: no 3 s wait for more members.
group.initial.rebalance.delay.ms=0
PROPS
  write_log4j2 "$dir/log4j2.xml" "$dir/server.log" INFO

  local java_opts=(-Xmx"${CDCJOIN_KAFKA_HEAP:-512m}" -Xms128m -XX:+UseG1GC
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.xml"
    -Dkafka.logs.dir="$dir" -cp "$lib/*")
  local began
  began=$(now_ms)
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(python3 -c 'import base64, uuid
print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
    log "formatting $dir/data (cluster $cluster_id)"
    # "=" keeps an id that starts with "-" (1 in 64) from being read as an option.
    if ! java "${java_opts[@]}" kafka.tools.StorageTool format --cluster-id="$cluster_id" \
      -c "$dir/server.properties" --standalone >"$dir/format.log" 2>&1; then
      tail -n 30 "$dir/format.log" >&2
      die "StorageTool format failed (see $dir/format.log)"
    fi
  fi
  local formatted
  formatted=$(now_ms)

  log "starting the broker on 127.0.0.1:$port (controller $controller_port)"
  # setsid: the broker outlives this script and ignores the terminal's SIGINT.
  setsid java "${java_opts[@]}" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/stdout.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/kafka.pid"

  local timeout=${CDCJOIN_KAFKA_START_TIMEOUT_S:-120}
  local deadline=$((SECONDS + timeout)) seen=""
  # Ready when a client gets metadata naming our broker (what librdkafka needs to work).
  until seen=$(kcat -b "127.0.0.1:$port" -L -m 3 2>&1) && grep -q "broker 1 at 127.0.0.1:$port" <<<"$seen"; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$dir/server.log" "$dir/stdout.log" >&2 || true
      rm -f "$dir/kafka.pid"
      die "the broker exited during start-up (see $dir/server.log)"
    fi
    if ((SECONDS >= deadline)); then
      log "last answer of kcat -L: $seen"
      tail -n 40 "$dir/server.log" >&2 || true
      kill -TERM "$pid" 2>/dev/null || true
      die "the broker did not answer on 127.0.0.1:$port within ${timeout}s"
    fi
    sleep 0.2
  done
  local ready
  ready=$(now_ms)
  echo "$((formatted - began)) $((ready - formatted))" >"$dir/startup_ms"
  log "ready: pid $pid, 127.0.0.1:$port; format $((formatted - began)) ms, broker start $((ready - formatted)) ms"
  echo "export KAFKA_BOOTSTRAP=127.0.0.1:$port"
}

tool() {
  local lib
  lib=$(realstack_lib) || die "the real-stack jars are missing (scripts/realstack_deps.sh failed)"
  local config
  config=$(mktemp /tmp/cdcjoin-kafka-tool-log4j2.XXXXXX.xml)
  cat >"$config" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="err" target="SYSTEM_ERR"><PatternLayout pattern="%p %m%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="err"/></Root></Loggers>
</Configuration>
XML
  local status=0
  java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$config" -cp "$lib/*" "$@" || status=$?
  rm -f "$config"
  return $status
}

[[ $# -ge 2 ]] || usage
case "$1" in
  start)
    [[ $# -eq 2 ]] || usage
    start "$2"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop_pid broker "$2/kafka.pid" "${CDCJOIN_KAFKA_STOP_TIMEOUT_S:-60}"
    ;;
  tool)
    shift
    tool "$@"
    ;;
  *) usage ;;
esac
