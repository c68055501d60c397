#!/usr/bin/env bash
# Kafka Connect standalone running Debezium's MariaDB connector against a source MariaDB (one
# started by `scripts/mariadb.sh start DIR --binlog=N`), from the jars pinned by
# tools/realstack/pom.xml. Offsets in a file, REST on a free loopback port, bounded heap, stopped
# by its PID.
#
#   scripts/connect.sh start DIR --bootstrap=HOST:PORT --source_port=P --database=NAME \
#       [--schemas=true|false] [--topic_prefix=cdc] [--server_id=5401] [--set KEY=VALUE]...
#       [--converter=json|avro --registry=http://127.0.0.1:R [--avro_references=false|true]]
#       # prints `export CONNECT_URL=http://127.0.0.1:R`; returns once the connector and its
#       # task are RUNNING and a topic of every captured table exists
#   scripts/connect.sh restart DIR     # restarts the connector and its task over REST, waits
#   scripts/connect.sh stop DIR
#
# Topics are PREFIX.DATABASE.TABLE; the JSON converter's schemas.enable is --schemas for keys
# and values. --converter=avro writes keys and values as Avro in the Confluent wire format (magic
# byte 0, 4-byte schema id, Avro body) through Apicurio's AvroConverter, registering the schemas
# in the registry at --registry (one of scripts/registry.sh; the converter's jars come from
# scripts/registry_deps.sh --converter); --schemas does not apply then. By default each schema is
# registered whole (apicurio.registry.dereference-schema=true, like Confluent's AvroConverter);
# --avro_references=true keeps Apicurio's default, where a nested record of another namespace
# (Debezium's `source` block) is registered as a subject of its own and the envelope names it in
# `references` (the reader must fetch GET /subjects/{subject}/versions/{version} for each).
# --set adds connector properties (e.g. --set bigint.unsigned.handling.mode=precise).
# A second `start` of a stopped DIR keeps its offsets file (Debezium resumes from its binlog
# position instead of snapshotting again).
# Environment: CDCJOIN_CONNECT_HEAP (default 512m), CDCJOIN_CONNECT_START_TIMEOUT_S (default 180).
set -euo pipefail

log() { echo "connect.sh: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
# shellcheck source=scripts/jvm_common.sh
source "$(dirname "$0")/jvm_common.sh"

usage() {
  sed -n '7,13p' "$0" >&2
  exit 2
}

readonly CONNECTOR=cdcjoin-source

# The connector's status as JSON, or "" when REST does not answer.
connector_status() {
  curl -sf --max-time 3 "$1/connectors/$CONNECTOR/status" 2>/dev/null || true
}

# wait_running DIR URL PID TIMEOUT_S: the connector and its task RUNNING, and each captured
# table's topic present (Debezium creates them with the snapshot's first records).
wait_running() {
  local dir=$1 url=$2 pid=$3 timeout=$4
  local deadline=$((SECONDS + timeout)) status="" missing=""
  local bootstrap tables
  bootstrap=$(cat "$dir/bootstrap")
  tables=$(cat "$dir/tables")
  while :; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$dir/connect.log" >&2 || true
      die "Kafka Connect exited (see $dir/connect.log)"
    fi
    status=$(connector_status "$url")
    if grep -q '"state":"FAILED"' <<<"$status"; then
      log "connector status: $status"
      die "the connector FAILED (see $dir/connect.log)"
    fi
    if [[ "$(jq -r '.connector.state + "/" + ([.tasks[].state] | join(","))' <<<"${status:-null}" 2>/dev/null)" == "RUNNING/RUNNING" ]]; then
      missing=""
      local listed
      listed=$(kcat -b "$bootstrap" -L -m 3 2>/dev/null | sed -n 's/^  topic "\([^"]*\)".*/\1/p')
      for table in $tables; do
        grep -qxF "$table" <<<"$listed" || missing+="$table "
      done
      [[ -z "$missing" ]] && return 0
    fi
    if ((SECONDS >= deadline)); then
      log "last connector status: ${status:-no answer from $url}"
      [[ -n "$missing" ]] && log "topics still missing: $missing"
      tail -n 40 "$dir/connect.log" >&2 || true
      die "the connector was not RUNNING with its topics within ${timeout}s"
    fi
    sleep 0.25
  done
}

start() {
  local dir=$1
  shift
  local bootstrap="" source_port="" database="" schemas=true prefix=cdc server_id=5401
  local converter=json registry="" avro_references=false
  local extra=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --bootstrap=*) bootstrap=${1#*=} ;;
      --source_port=*) source_port=${1#*=} ;;
      --database=*) database=${1#*=} ;;
      --schemas=*) schemas=${1#*=} ;;
      --topic_prefix=*) prefix=${1#*=} ;;
      --server_id=*) server_id=${1#*=} ;;
      --converter=*) converter=${1#*=} ;;
      --registry=*) registry=${1#*=} ;;
      --avro_references=*) avro_references=${1#*=} ;;
      --set) shift; extra+=("$1") ;;
      --set=*) extra+=("${1#*=}") ;;
      *) usage ;;
    esac
    shift
  done
  [[ -n "$bootstrap" && -n "$source_port" && -n "$database" ]] || usage
  [[ "$schemas" == true || "$schemas" == false ]] || die "--schemas is true or false"
  local lib
  lib=$(realstack_lib) || die "the real-stack jars are missing (scripts/realstack_deps.sh failed)"
  local classpath="$lib/*"
  case "$converter" in
    json) ;;
    avro)
      [[ -n "$registry" ]] || die "--converter=avro needs --registry=URL (scripts/registry.sh start)"
      local converter_lib
      converter_lib=$("$(dirname "$0")/registry_deps.sh" --converter) ||
        die "the Avro converter's jars are missing (scripts/registry_deps.sh failed)"
      # After the real-stack jars: Connect's Kafka, Jackson and SLF4J serve the converter too.
      classpath+=":$converter_lib/*"
      ;;
    *) die "--converter is json or avro" ;;
  esac
  [[ "$avro_references" == true || "$avro_references" == false ]] || die "--avro_references is true or false"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/connect.pid" ]] && pid_alive "$(cat "$dir/connect.pid")"; then
    die "Kafka Connect already runs from $dir (pid $(cat "$dir/connect.pid")); stop it first"
  fi
  local rest_port
  rest_port=$(free_port)
  echo "$bootstrap" >"$dir/bootstrap"
  # The topics to wait for: those of the tables that hold rows now (the snapshot writes their
  # first records; an empty table gets its topic only with its first change).
  local sql=(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$source_port" -uroot -N -B)
  local table_names
  table_names=$("${sql[@]}" -e "SELECT TABLE_NAME FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = '$database' AND TABLE_TYPE = 'BASE TABLE'") ||
    die "cannot list the tables of $database on 127.0.0.1:$source_port"
  : >"$dir/tables"
  for table in $table_names; do
    if [[ "$("${sql[@]}" -e "SELECT EXISTS (SELECT 1 FROM \`$database\`.\`$table\`)")" == 1 ]]; then
      echo "$prefix.$database.$table" >>"$dir/tables"
    fi
  done

  local converters
  if [[ "$converter" == json ]]; then
    converters="key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=$schemas
value.converter.schemas.enable=$schemas"
  else
    # Apicurio 2.4.2.Final's converter in the Confluent format: as-confluent = 4-byte ids,
    # headers.enabled=false puts magic byte + id in the value itself (the default is Kafka
    # headers), use-id=contentId is the id that /apis/ccompat/v7/schemas/ids/{id} serves.
    converters=""
    for side in key value; do
      converters+="$side.converter=io.apicurio.registry.utils.converter.AvroConverter
$side.converter.apicurio.registry.url=$registry/apis/registry/v2
$side.converter.apicurio.registry.auto-register=true
$side.converter.apicurio.registry.find-latest=true
$side.converter.apicurio.registry.as-confluent=true
$side.converter.apicurio.registry.use-id=contentId
$side.converter.apicurio.registry.headers.enabled=false
$side.converter.apicurio.registry.dereference-schema=$([[ $avro_references == true ]] && echo false || echo true)
"
    done
  fi
  cat >"$dir/worker.properties" <<PROPS
bootstrap.servers=$bootstrap
$converters
offset.storage.file.filename=$dir/connect.offsets
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$rest_port
# Every plugin on the class path has ServiceLoader manifests: the default reflective scan of the
# class path took 30 s on 2 cores.
plugin.discovery=service_load
PROPS
  cat >"$dir/connector.properties" <<PROPS
name=$CONNECTOR
connector.class=io.debezium.connector.mariadb.MariaDbConnector
tasks.max=1
database.hostname=127.0.0.1
database.port=$source_port
database.user=root
database.password=
database.server.id=$server_id
database.include.list=$database
topic.prefix=$prefix
snapshot.mode=initial
include.schema.changes=false
schema.history.internal.kafka.bootstrap.servers=$bootstrap
schema.history.internal.kafka.topic=$prefix.schema-history
PROPS
  # Avro names allow [A-Za-z0-9_] only: Debezium's recommended adjustment for Avro.
  [[ "$converter" == avro ]] && echo "schema.name.adjustment.mode=avro" >>"$dir/connector.properties"
  for kv in "${extra[@]}"; do echo "$kv" >>"$dir/connector.properties"; done
  write_log4j2 "$dir/log4j2.xml" "$dir/connect.log" INFO

  local began
  began=$(now_ms)
  log "starting Kafka Connect (REST 127.0.0.1:$rest_port) capturing $database on 127.0.0.1:$source_port"
  setsid java -Xmx"${CDCJOIN_CONNECT_HEAP:-512m}" -Xms128m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.xml" -cp "$classpath" \
    org.apache.kafka.connect.cli.ConnectStandalone "$dir/worker.properties" \
    "$dir/connector.properties" </dev/null >"$dir/stdout.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/connect.pid"
  echo "http://127.0.0.1:$rest_port" >"$dir/url"
  # On failure, stop what was started here.
  if ! (wait_running "$dir" "http://127.0.0.1:$rest_port" "$pid" "${CDCJOIN_CONNECT_START_TIMEOUT_S:-180}"); then
    stop_pid "Kafka Connect" "$dir/connect.pid" 30
    exit 1
  fi
  local ready
  ready=$(now_ms)
  echo "$((ready - began))" >"$dir/startup_ms"
  log "ready: pid $pid, connector RUNNING, topics $(tr '\n' ' ' <"$dir/tables")in $((ready - began)) ms"
  echo "export CONNECT_URL=http://127.0.0.1:$rest_port"
}

restart() {
  local dir=$1 url pid
  url=$(cat "$dir/url")
  pid=$(cat "$dir/connect.pid")
  log "restarting $CONNECTOR and its task"
  curl -sf --max-time 30 -X POST "$url/connectors/$CONNECTOR/restart?includeTasks=true" >/dev/null ||
    die "POST $url/connectors/$CONNECTOR/restart failed"
  # The restart is asynchronous: first see it leave RUNNING (or time out quietly), then wait.
  local deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    [[ "$(connector_status "$url" | jq -r '[.tasks[].state] | join(",")' 2>/dev/null)" != RUNNING ]] && break
    sleep 0.1
  done
  wait_running "$dir" "$url" "$pid" "${CDCJOIN_CONNECT_START_TIMEOUT_S:-180}"
  log "restarted"
}

[[ $# -ge 2 ]] || usage
case "$1" in
  start)
    shift
    start "$@"
    ;;
  restart)
    [[ $# -eq 2 ]] || usage
    restart "$2"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop_pid "Kafka Connect" "$2/connect.pid" "${CDCJOIN_CONNECT_STOP_TIMEOUT_S:-60}"
    ;;
  *) usage ;;
esac
