#!/usr/bin/env bash
# The peer benchmark (issue 16): cdcjoin against what a user would pick instead, in one run, on
# the same Debezium topics, into the same MariaDB, each side alone on the machine.
#
#   scripts/peer_bench.sh [--events N] [--partitions P] [--lanes L] [--work DIR] [--keep]
#                         [--sides LIST]
#
#   --events N      change events to produce (default 1000000, over N/10 keys); 20000 is a smoke run
#   --partitions P  partitions of each topic (default 8)
#   --lanes L       cdcjoind's sink lanes = the JDBC sink's tasks.max (default 4)
#   --work DIR      work directory (default /tmp/h2-peer-bench); emptied first
#   --keep          keep the work directory (logs, configs, state) afterwards
#   --jdbc_timeout_s S  stop measuring the JDBC sink after S seconds (default 300) and report its
#                   rate over what it had committed by then, marked "partial"
#   --app_timeout_s S  the same for each Kafka Streams side (default 240)
#   --sides LIST    comma list of sides to run (default all but cdcjoin_windowed_fetch2m):
#                   limit,cdcjoin_db,cdcjoin_db_nocoalesce,jdbc_sink,cdcjoin_windowed,
#                   cdcjoin_windowed_fetch2m,kstreams_stream,kstreams_table
#
# Sides (docs/benchmarks.md, "Peers", has the figures and the exact configurations):
#   limit                  MariaDB alone: the final rows as multi-row INSERT ... ON DUPLICATE KEY
#                          UPDATE, 500 rows per statement, one client, no Kafka (DbLimit.java)
#   cdcjoin_db             cdcjoind DB_UPSERT, hot-key coalescing on (the default)
#   cdcjoin_db_nocoalesce  the same with sink.disable_coalesce_keys
#   jdbc_sink              Debezium's JDBC sink connector in Kafka Connect standalone, upsert,
#                          record_key, ReplaceField renames, batch 500, tasks.max = lanes
#   cdcjoin_windowed       cdcjoind WINDOWED OUTER (window 5000 ms, grace 1000 ms), pinned to core 0
#   cdcjoin_windowed_fetch2m  the same with librdkafka's queued.max.messages.kbytes=2048 (cdcjoind's
#                          default from the run of 2026-12-02 02:53 to service/kafka_prefetch.cc's 64 MiB)
#   kstreams_stream        Kafka Streams KStream-KStream outerJoin, same window and grace, core 0
#   kstreams_table         Kafka Streams KTable-KTable outerJoin, core 0
#
# Needs what the README's setup installs (scripts/install_deps.sh: Bazel, MariaDB, Java 17,
# Maven, kcat) and Maven Central. Builds cdcjoind (bazel -c opt; extra flags in
# $PEER_BENCH_BAZEL_FLAGS, e.g. --disk_cache=...), the Java peers from tools/peers/apps/pom.xml
# and the JDBC sink's class path from tools/peers/connect/pom.xml (fetched once into
# ~/.cache/cdcjoin-peers). Starts its own Kafka broker (scripts/kafka.sh) and MariaDB
# (scripts/mariadb.sh) on free loopback ports and stops everything it started, by PID, on exit.
# Ends with a table and one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=scripts/free_port.sh
source scripts/free_port.sh

log() { echo "peer_bench.sh: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

events=1000000
partitions=8
lanes=4
work=/tmp/h2-peer-bench
keep=false
sides=limit,cdcjoin_db,cdcjoin_db_nocoalesce,jdbc_sink,cdcjoin_windowed,kstreams_stream,kstreams_table
window_ms=5000
grace_ms=1000
jdbc_timeout_s=300
app_timeout_s=240
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) shift; events=$1 ;;
    --events=*) events=${1#*=} ;;
    --partitions) shift; partitions=$1 ;;
    --partitions=*) partitions=${1#*=} ;;
    --lanes) shift; lanes=$1 ;;
    --lanes=*) lanes=${1#*=} ;;
    --work) shift; work=$1 ;;
    --work=*) work=${1#*=} ;;
    --sides) shift; sides=$1 ;;
    --sides=*) sides=${1#*=} ;;
    --jdbc_timeout_s) shift; jdbc_timeout_s=$1 ;;
    --jdbc_timeout_s=*) jdbc_timeout_s=${1#*=} ;;
    --app_timeout_s) shift; app_timeout_s=$1 ;;
    --app_timeout_s=*) app_timeout_s=${1#*=} ;;
    --keep) keep=true ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[[ "$events" =~ ^[0-9]+$ && "$events" -ge 10 ]] || die "--events wants a number >= 10"
want_side() { [[ ",$sides," == *",$1,"* ]]; }

for tool in java mvn bazel mariadb taskset python3 jq kcat; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install_deps.sh"
done

# ---------------------------------------------------------------------------------------------
# Everything started here is stopped on exit, by PID.
pids_to_stop=()
cleanup() {
  local status=$?
  set +e
  for pid in "${pids_to_stop[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  [[ -f "$work/kafka/kafka.pid" ]] && scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1
  [[ -f "$work/mariadb/mysqld.pid" ]] && scripts/mariadb.sh stop "$work/mariadb" >/dev/null 2>&1
  if [[ "$keep" == false && $status -eq 0 ]]; then
    rm -rf "$work"
  else
    log "work directory kept: $work"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

# ---------------------------------------------------------------------------------------------
# Build: cdcjoind, the Java peers, the JDBC sink's class path.
log "building cdcjoind (bazel -c opt)"
# shellcheck disable=SC2086
bazel build -c opt ${PEER_BENCH_BAZEL_FLAGS:-} //service:cdcjoind >"$work/bazel.log" 2>&1 ||
  { tail -n 30 "$work/bazel.log" >&2; die "bazel build failed"; }
cp "$(bazel info -c opt bazel-bin 2>/dev/null)/service/cdcjoind" "$work/cdcjoind"
log "building the Java peers (tools/peers/apps/pom.xml)"
mvn -q -B -f tools/peers/apps/pom.xml package -DskipTests >"$work/mvn-apps.log" 2>&1 ||
  { tail -n 30 "$work/mvn-apps.log" >&2; die "mvn package of tools/peers/apps failed"; }
peers_jar="$work/cdcjoin-peers.jar"
cp tools/peers/apps/target/cdcjoin-peers.jar "$peers_jar"
connect_lib=${CDCJOIN_PEERS_CONNECT_LIB:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcjoin-peers/connect-lib}
connect_pom=tools/peers/connect/pom.xml
if [[ ! -f "$connect_lib/.pom.sha256" || "$(cat "$connect_lib/.pom.sha256")" != "$(sha256sum "$connect_pom" | cut -d' ' -f1)" ]]; then
  log "fetching the JDBC sink's class path ($connect_pom) into $connect_lib"
  rm -rf "$connect_lib.tmp"
  mkdir -p "$connect_lib.tmp"
  mvn -q -B -f "$connect_pom" dependency:copy-dependencies -DoutputDirectory="$connect_lib.tmp" \
    >"$work/mvn-connect.log" 2>&1 || { tail -n 30 "$work/mvn-connect.log" >&2; die "mvn could not resolve $connect_pom"; }
  sha256sum "$connect_pom" | cut -d' ' -f1 >"$connect_lib.tmp/.pom.sha256"
  rm -rf "$connect_lib"
  mv "$connect_lib.tmp" "$connect_lib"
fi

# ---------------------------------------------------------------------------------------------
# The real parts: a Kafka 4.1.1 broker and a MariaDB, both private to this run.
eval "$(scripts/mariadb.sh start "$work/mariadb")"
eval "$(scripts/kafka.sh start "$work/kafka")"
db_port=$CDCJOIN_MYSQL_PORT
bootstrap=$KAFKA_BOOTSTRAP
mariadb_pid=$(cat "$work/mariadb/mysqld.pid")
kafka_pid=$(cat "$work/kafka/kafka.pid")
sql() { mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$db_port" -uroot -N -B "$@"; }

jlog4j="$work/log4j2-quiet.xml"
cat >"$jlog4j" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="err" target="SYSTEM_ERR"><PatternLayout pattern="%d{HH:mm:ss} %p %m (%c{1})%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="err"/></Root></Loggers>
</Configuration>
XML
jtool() { java -Xmx512m -Dlog4j2.configurationFile="$jlog4j" -cp "$peers_jar" "$@"; }

# ---------------------------------------------------------------------------------------------
# The topics: one set of Debezium JSON envelopes (with Kafka Connect's schema wrapper) for every
# side, and the final table they must produce, computed by Produce.java from the workload's
# definition (it shares no code with cdcjoin).
log "producing $events change events on $partitions partitions per topic"
jtool dev.cdcjoin.peers.Produce "$bootstrap" "$events" "$partitions" "$work/expected.tsv" \
  >"$work/produce.json" 2>"$work/produce.log" || { cat "$work/produce.log" >&2; die "Produce failed"; }
cat "$work/produce.json" >&2
records=$(jq .records "$work/produce.json")
keys=$(jq .keys "$work/produce.json")

ddl_cols="userId BIGINT NOT NULL PRIMARY KEY, maskingName VARCHAR(128) NULL, dateCreated DATETIME(3) NULL, currentNickname VARCHAR(128) NULL"
sql -e "CREATE DATABASE peer CHARACTER SET utf8mb4;
  CREATE TABLE peer.Expected ($ddl_cols) ENGINE=InnoDB;
  LOAD DATA LOCAL INFILE '$work/expected.tsv' INTO TABLE peer.Expected
    CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' (userId, maskingName, dateCreated, currentNickname);" \
  --local-infile=1
expected_rows=$(sql -e "SELECT COUNT(*) FROM peer.Expected")
log "expected table: $expected_rows rows over $keys keys"

new_target() {  # new_target DB [TABLE]: a fresh database with an empty target table
  sql -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4;
    CREATE TABLE $1.${2:-Nickname} ($ddl_cols) ENGINE=InnoDB;"
}

# judge DB: compares DB.Nickname with peer.Expected; a row whose non-key columns are all NULL is
# no row (what a cleared row stands for). Prints JSON: wrong (a column differs), missing, extra.
judge() {  # judge DB [TABLE]
  local t=$1.${2:-Nickname}
  sql -e "SELECT JSON_OBJECT(
     'wrong', (SELECT COUNT(*) FROM peer.Expected e JOIN $t n USING (userId)
               WHERE NOT (e.maskingName <=> n.maskingName AND e.dateCreated <=> n.dateCreated
                          AND e.currentNickname <=> n.currentNickname)),
     'wrong_user_cols', (SELECT COUNT(*) FROM peer.Expected e JOIN $t n USING (userId)
               WHERE NOT (e.maskingName <=> n.maskingName AND e.dateCreated <=> n.dateCreated)),
     'wrong_ext_cols', (SELECT COUNT(*) FROM peer.Expected e JOIN $t n USING (userId)
               WHERE NOT (e.currentNickname <=> n.currentNickname)),
     'missing', (SELECT COUNT(*) FROM peer.Expected e LEFT JOIN $t n USING (userId)
               WHERE n.userId IS NULL OR (n.maskingName IS NULL AND n.dateCreated IS NULL AND n.currentNickname IS NULL)),
     'extra', (SELECT COUNT(*) FROM $t n LEFT JOIN peer.Expected e USING (userId)
               WHERE e.userId IS NULL AND NOT (n.maskingName IS NULL AND n.dateCreated IS NULL AND n.currentNickname IS NULL)),
     'rows', (SELECT COUNT(*) FROM $t))"
}

# Rows the server wrote (handler calls: inserts, updates, deletes), for rows/s of every side alike.
# (MariaDB 10.11 has no Innodb_rows_* counters.)
innodb_rows() {
  sql -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete')" |
    awk '{ n += $2 } END { print n + 0 }'
}
load1() { cut -d' ' -f1 /proc/loadavg; }
# Waits (up to 120 s) until the machine has been quiet for 3 s in a row (under 15% of all cores
# busy), so a side does not run beside what the one before left behind: mariadbd flushing and
# purging after a database side, a JVM's exit.
settle_machine() {
  local began=$SECONDS quiet=0 before busy
  while ((quiet < 3 && SECONDS - began < 120)); do
    before=$(awk 'NR == 1 { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6; exit }' /proc/stat)
    sleep 1
    busy=$(awk -v before="$before" 'NR == 1 { t = 0; for (i = 2; i <= NF; i++) t += $i
      split(before, b, " "); dt = t - b[1]; di = $5 + $6 - b[2]
      printf "%d", (dt > 0 ? 100 * (dt - di) / dt : 0); exit }' /proc/stat)
    if ((busy < 15)); then quiet=$((quiet + 1)); else quiet=0; fi
  done
  log "machine quiet after $((SECONDS - began)) s (last second ${busy}% busy)"
}
# begin_side NAME: waits for a quiet machine, then sets $load and says which side begins.
begin_side() {
  settle_machine
  load=$(load1)
  log "side $1 (load $load)"
}
cpu_s() { awk '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / 100 }' "/proc/$1/stat"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# The results: one JSON object per side in $work/sides/NAME.json.
mkdir -p "$work/sides"
result() {  # result NAME JSON
  echo "$2" >"$work/sides/$1.json"
  log "$1: $2"
}

# watch_start GROUP TIMEOUT_S BASELINE: starts the judge of progress (Watch.java) and returns once
# it has taken its first sample; the caller then starts the measured process and writes its PIDs
# (comma-separated) to $work/GROUP.pids. watch_wait GROUP prints the judge's JSON line once GROUP
# has committed both topics to their end.
watch_start() {
  rm -f "$work/$1.pids" "$work/$1.ready" "$work/$1.watch.json"
  touch "$work/$1.pids"
  jtool dev.cdcjoin.peers.Watch "$bootstrap" "$1" cdc.azar.User,cdc.azar.UserExtData \
    "$work/$1.pids" "$2" "$3" "$work/$1.ready" >"$work/$1.watch.json" 2>"$work/$1.watch.log" &
  watch_pid=$!
  pids_to_stop+=("$watch_pid")
  until [[ -f "$work/$1.ready" ]]; do
    kill -0 "$watch_pid" 2>/dev/null || { cat "$work/$1.watch.log" >&2; die "Watch exited"; }
    sleep 0.1
  done
}
watch_wait() {  # sets $out (not in a subshell: only this shell can wait for the judge)
  wait "$watch_pid" || { tail -n 20 "$work/$1.watch.log" "$work/$1.watch.json" >&2; return 1; }
  out=$(cat "$work/$1.watch.json")
}

timeout_s=$((300 + events / 2000))  # cdcjoind sides (they are not expected to need it)

cdcjoin_config() {  # cdcjoin_config NAME MODE DB COALESCE(true|false) [KAFKA_PROPERTY_LINES]
  local disable=false
  [[ "$4" == false ]] && disable=true
  cat <<CONF
kafka {
  brokers: "$bootstrap"
  group_id: "$1"
  dead_letter_topic: "cdcjoin.dlq.$1"
  session_timeout_ms: 10000
  commit_interval_ms: 500
${5:-}
}
target {
  table: "Nickname"
  key_columns: "userId"
  database { host: "127.0.0.1" port: $db_port user: "root" database: "$3" }
}
sources {
  name: "user"
  topic: "cdc.azar.User"
  key_fields: "id"
  columns { from: "simpleName" to: "maskingName" }
  columns { from: "dateCreated" to: "dateCreated" type: TIMESTAMP_MILLIS }
  on_delete: CLEAR_COLUMNS
}
sources {
  name: "user_ext"
  topic: "cdc.azar.UserExtData"
  key_fields: "userId"
  columns { from: "originalName" to: "currentNickname" }
  on_delete: CLEAR_COLUMNS
}
sink { lanes: $lanes batch_rows: 500 linger_ms: 5 disable_coalesce_keys: $disable }
mode: $2
window {
  join_type: OUTER
  window_ms: $window_ms
  grace_ms: $grace_ms
  idle_flush_ms: 2000
  state_dir: "$work/$1.state"
}
admin { listen_address: "127.0.0.1:0" }
metrics { disabled: true }
CONF
}

# start_cdcjoind NAME [taskset args...]: sets $daemon_pid.
start_cdcjoind() {
  local name=$1
  shift
  "$@" "$work/cdcjoind" --config="$work/$name.textproto" --progress_interval_ms=5000 \
    --shutdown_timeout_ms=20000 >>"$work/$name.log" 2>&1 &
  daemon_pid=$!
  pids_to_stop+=("$daemon_pid")
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  log "pid $pid still running 30 s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# 1. The limit: MariaDB alone, the final rows, multi-row upserts of 500, one client.
if want_side limit; then
  begin_side limit
  cpu0=$(cpu_s "$mariadb_pid")
  out=$(jtool dev.cdcjoin.peers.DbLimit "jdbc:mariadb://127.0.0.1:$db_port/peer?user=root" \
    NicknameLimit "$work/expected.tsv" 500)
  cpu1=$(cpu_s "$mariadb_pid")
  result limit "$(jq -c --arg load "$load" --argjson mcpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" \
    '. + {load: ($load | tonumber), mariadbd_cpu_s: $mcpu}' <<<"$out")"
fi

# 2. DB-side merge.
run_cdcjoin_db() {  # run_cdcjoin_db SIDE COALESCE
  local side=$1 db="peer_$1" load rows0 rows1 out table
  new_target "$db"
  cdcjoin_config "$side" DB_UPSERT "$db" "$2" >"$work/$side.textproto"
  begin_side "$side"
  rows0=$(innodb_rows)
  watch_start "$side" "$timeout_s" 0
  start_cdcjoind "$side"
  echo "$daemon_pid,$mariadb_pid" >"$work/$side.pids"
  watch_wait "$side" || die "$side did not finish"
  rows1=$(innodb_rows)
  stop_pid "$daemon_pid"
  table=$(judge "$db")
  result "$side" "$(jq -c --arg load "$load" --argjson rows "$((rows1 - rows0))" --argjson table "$table" \
    --arg d "$daemon_pid" --arg m "$mariadb_pid" \
    '{load: ($load | tonumber), records, wall_s, records_per_s, innodb_rows: $rows,
      rows_per_s: ($rows / .wall_s), cpu_s: .["cpu_s_" + $d], mariadbd_cpu_s: .["cpu_s_" + $m],
      rss_mb: .["hwm_mb_" + $d], table: $table}' <<<"$out")"
}
want_side cdcjoin_db && run_cdcjoin_db cdcjoin_db true
want_side cdcjoin_db_nocoalesce && run_cdcjoin_db cdcjoin_db_nocoalesce false

if want_side jdbc_sink; then
  side=jdbc_sink
  db=peer_jdbc_sink
  new_target "$db" NicknameJdbc
  mkdir -p "$work/connect"
  rest_port=$(free_port)
  cat >"$work/connect/worker.properties" <<PROPS
bootstrap.servers=$bootstrap
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=$work/connect/connect.offsets
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$rest_port
plugin.discovery=service_load
consumer.auto.offset.reset=earliest
PROPS
  cat >"$work/connect/jdbc-sink.properties" <<PROPS
name=peer-jdbc-sink
connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
tasks.max=$lanes
topics=cdc.azar.User,cdc.azar.UserExtData
connection.url=jdbc:mariadb://127.0.0.1:$db_port/$db
connection.username=root
connection.password=
insert.mode=upsert
primary.key.mode=record_key
delete.enabled=true
schema.evolution=none
collection.name.format=NicknameJdbc
batch.size=500
# Without quoted identifiers the sink does not find the mixed-case column userId in the table
# ("Cannot ALTER table ... because field 'userId' is not optional but has no default value").
quote.identifiers=true
# Debezium envelope -> the row image. Deletes are dropped: with delete.tombstone.handling.mode=
# tombstone (a delete becomes a tombstone, deleted by key) the sink fails on User's deletes with
# "Cannot ALTER table ... because field 'id' is not optional": its delete path sees the key
# before the ReplaceField\$Key rename below.
transforms=unwrap,userKey,userValue,extValue
transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState
transforms.unwrap.delete.tombstone.handling.mode=drop
# User's key {id} is the target's userId; its fields become maskingName and dateCreated only.
transforms.userKey.type=org.apache.kafka.connect.transforms.ReplaceField\$Key
transforms.userKey.renames=id:userId
transforms.userKey.predicate=isUser
transforms.userValue.type=org.apache.kafka.connect.transforms.ReplaceField\$Value
transforms.userValue.include=simpleName,dateCreated
transforms.userValue.renames=simpleName:maskingName
transforms.userValue.predicate=isUser
# UserExtData's originalName becomes currentNickname only.
transforms.extValue.type=org.apache.kafka.connect.transforms.ReplaceField\$Value
transforms.extValue.include=originalName
transforms.extValue.renames=originalName:currentNickname
transforms.extValue.predicate=isExt
predicates=isUser,isExt
predicates.isUser.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches
predicates.isUser.pattern=cdc\\.azar\\.User
predicates.isExt.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches
predicates.isExt.pattern=cdc\\.azar\\.UserExtData
PROPS
  cat >"$work/connect/log4j2.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><File name="file" fileName="$work/connect/connect.log"><PatternLayout pattern="[%d{ISO8601}] %p %m (%c{1})%n"/></File></Appenders>
  <Loggers>
    <Logger name="org.apache.kafka.connect.runtime.rest.RestServer" level="WARN"/>
    <Logger name="org.hibernate" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
XML
  begin_side "$side"
  rows0=$(innodb_rows)
  watch_start connect-peer-jdbc-sink "$jdbc_timeout_s" 0
  java -Xmx512m -Xms128m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$work/connect/log4j2.xml" -cp "$connect_lib/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$work/connect/worker.properties" \
    "$work/connect/jdbc-sink.properties" </dev/null >"$work/connect/stdout.log" 2>&1 &
  connect_pid=$!
  pids_to_stop+=("$connect_pid")
  echo "$connect_pid,$mariadb_pid" >"$work/connect-peer-jdbc-sink.pids"
  watch_wait connect-peer-jdbc-sink ||
    { tail -n 30 "$work/connect/connect.log" >&2; die "the JDBC sink did not finish"; }
  rows1=$(innodb_rows)
  status=$(curl -sf "http://127.0.0.1:$rest_port/connectors/peer-jdbc-sink/status" || echo null)
  stop_pid "$connect_pid"
  table=$(judge "$db" NicknameJdbc)
  result "$side" "$(jq -c --arg load "$load" --argjson rows "$((rows1 - rows0))" --argjson table "$table" \
    --arg d "$connect_pid" --arg m "$mariadb_pid" --argjson status "$status" \
    '{load: ($load | tonumber), records, wall_s, records_per_s, innodb_rows: $rows,
      rows_per_s: ($rows / .wall_s), cpu_s: .["cpu_s_" + $d], mariadbd_cpu_s: .["cpu_s_" + $m],
      rss_mb: .["hwm_mb_" + $d], table: $table, partial: .timeout,
      connector_state: ($status.connector.state // "?"),
      task_states: ([$status.tasks[]?.state] | join(","))}' <<<"$out")"
fi

# ---------------------------------------------------------------------------------------------
# 3. Application-side join, each pinned to core 0 (taskset -c 0): throughput per core, RSS, state
# on disk, restart after SIGKILL (time from the restart until the group commits again, with new
# records waiting).
extra_key=$((keys + 1000000))
produce_extra() {  # 2,000 more events of new keys
  jtool dev.cdcjoin.peers.Produce "$bootstrap" 2000 "$partitions" /dev/null extra "$extra_key" >/dev/null
  extra_key=$((extra_key + 10000))
}

# restart_after_kill NAME PID START_FN: SIGKILL, new records, restart, time to the next commit;
# the JSON goes to $work/NAME.restart.json (START_FN runs in this shell: its PID is kept).
restart_after_kill() {
  local name=$1 pid=$2 start_fn=$3 baseline=$4 t0 out
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  produce_extra
  cp "$work/$name.watch.json" "$work/$name.watch.main.json"
  watch_start "$name" 120 "$baseline"
  t0=$(date +%s%3N)
  "$start_fn"
  if watch_wait "$name"; then
    jq -c --argjson t0 "$t0" '{restart_to_first_commit_s: ((.t_first_ms - $t0) / 1000),
      restart_to_caught_up_s: (if .timeout then null else (.t_done_ms - $t0) / 1000 end)}' \
      <<<"$out" >"$work/$name.restart.json"
  else
    log "$name did not come back: $out"
    echo null >"$work/$name.restart.json"
  fi
}

# run_cdcjoin_windowed SIDE [KAFKA_PROPERTY_LINES]
run_cdcjoin_windowed() {
  local side=$1 db="peer_$1" load rows0 rows1 state_mb table restart main_out main_pid
  new_target "$db"
  cdcjoin_config "$side" WINDOWED "$db" true "${2:-}" >"$work/$side.textproto"
  begin_side "$side"
  rows0=$(innodb_rows)
  windowed_side=$side
  start_windowed() { start_cdcjoind "$windowed_side" taskset -c 0; }
  watch_start "$side" "$timeout_s" 0
  start_windowed
  echo "$daemon_pid,$mariadb_pid" >"$work/$side.pids"
  watch_wait "$side" || die "$side did not finish"
  rows1=$(innodb_rows)
  state_mb=$(du -sm "$work/$side.state" | cut -f1)
  table=$(judge "$db")
  main_out=$out
  main_pid=$daemon_pid
  restart_after_kill "$side" "$daemon_pid" start_windowed "$(jq .records_end <<<"$out")"
  out=$main_out
  restart=$(cat "$work/$side.restart.json")
  stop_pid "$daemon_pid"
  result "$side" "$(jq -c --arg load "$load" --argjson rows "$((rows1 - rows0))" --argjson table "$table" \
    --arg d "$main_pid" --arg m "$mariadb_pid" --argjson state "$state_mb" --argjson restart "$restart" \
    '{load: ($load | tonumber), records, wall_s, records_per_s, innodb_rows: $rows,
      cpu_s: .["cpu_s_" + $d], mariadbd_cpu_s: .["cpu_s_" + $m],
      records_per_cpu_s: (if .["cpu_s_" + $d] > 0 then .records / .["cpu_s_" + $d] else null end),
      rss_mb: .["hwm_mb_" + $d], state_mb: $state, table: $table, restart: $restart,
      note: "includes writing the merged rows to MariaDB"}' <<<"$out")"
}
want_side cdcjoin_windowed && run_cdcjoin_windowed cdcjoin_windowed
# The same with a 2 MB prefetch queue (cdcjoind's default 65536 KB, for all partitions together):
# how much of cdcjoind's RSS is the consumer's fetch queue, and what the rate pays for less.
want_side cdcjoin_windowed_fetch2m && run_cdcjoin_windowed cdcjoin_windowed_fetch2m \
  '  properties { key: "queued.max.messages.kbytes" value: "2048" }'

run_kstreams() {  # run_kstreams SIDE MODE
  local side=$1 mode=$2 load out state_mb topics_mb
  begin_side "$side"
  ks_side=$side
  ks_mode=$mode
  start_ks() {
    taskset -c 0 java -Xmx512m -Xms128m -XX:+UseG1GC -Dlog4j2.configurationFile="$jlog4j" \
      -cp "$peers_jar" dev.cdcjoin.peers.JoinApp "$bootstrap" "$ks_side" "$ks_mode" \
      "$work/$ks_side.state" "$window_ms" "$grace_ms" "peer.out.$ks_side" \
      >>"$work/$ks_side.log" 2>&1 &
    ks_pid=$!
    pids_to_stop+=("$ks_pid")
  }
  watch_start "$side" "$app_timeout_s" 0
  start_ks
  echo "$ks_pid" >"$work/$side.pids"
  watch_wait "$side" || die "$side did not finish"
  state_mb=$(du -sm "$work/$side.state" | cut -f1)
  # The broker side of Kafka Streams' state: its repartition and changelog topics.
  topics_mb=$(du -smc "$work"/kafka/data/"$side"-* 2>/dev/null | tail -1 | cut -f1)
  local restart
  local main_out=$out main_pid=$ks_pid
  restart_after_kill "$side" "$ks_pid" start_ks "$(jq .records_end <<<"$out")"
  out=$main_out
  restart=$(cat "$work/$side.restart.json")
  stop_pid "$ks_pid"
  result "$side" "$(jq -c --arg load "$load" --arg d "$main_pid" --argjson state "$state_mb" \
    --argjson topics "${topics_mb:-0}" --argjson restart "$restart" \
    '{load: ($load | tonumber), records, wall_s, records_per_s, cpu_s: .["cpu_s_" + $d],
      records_per_cpu_s: (if .["cpu_s_" + $d] > 0 then .records / .["cpu_s_" + $d] else null end), rss_mb: .["hwm_mb_" + $d],
      state_mb: $state, internal_topics_mb: $topics, restart: $restart, partial: .timeout,
      note: "writes the merged rows to an output topic"}' <<<"$out")"
}
want_side kstreams_stream && run_kstreams kstreams_stream stream
want_side kstreams_table && run_kstreams kstreams_table table

# ---------------------------------------------------------------------------------------------
# The table and the JSON line.
python3 - "$work/sides" "$records" "$events" "$keys" "$expected_rows" <<'PY'
import json, os, sys
d, records, events, keys, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = {}
for f in os.listdir(d):
    try:
        s[f[:-5]] = json.load(open(os.path.join(d, f)))
    except ValueError:
        print(f"(no result for {f[:-5]}: see the log above)")
def g(side, *path):
    v = s.get(side)
    for p in path:
        if not isinstance(v, dict) or p not in v:
            return None
        v = v[p]
    return v
def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)
def table_ok(side):
    t = g(side, "table")
    if t is None:
        return "-"
    bad = t["wrong"] + t["missing"] + t["extra"]
    if g(side, "partial"):
        return f"not judged: stopped after the timeout ({t['rows']:,} rows by then)"
    return "equal" if bad == 0 else f"differs: {t['wrong']} wrong ({t['wrong_user_cols']} User cols, {t['wrong_ext_cols']} Ext cols), {t['missing']} missing, {t['extra']} extra"
print(f"\nPeer benchmark: {events:,} change events ({records:,} records with tombstones) over {keys:,} keys, expected rows {expected:,}\n")
print("| side | load (1 min) | records | wall s | events/s | rows/s (Handler_write+update+delete) | CPU s (side) | CPU s (mariadbd) | events per CPU-s | RSS MB (VmHWM) | state MB | restart s (to first commit / caught up) | final table vs oracle |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for side in ["limit", "cdcjoin_db", "cdcjoin_db_nocoalesce", "jdbc_sink", "cdcjoin_windowed", "cdcjoin_windowed_fetch2m", "kstreams_stream", "kstreams_table"]:
    if side not in s:
        continue
    if side == "limit":
        print(f"| limit (MariaDB alone, 500-row upserts) | {fmt(g(side,'load'),1)} | {fmt(g(side,'rows'))} rows x2 | {fmt((g(side,'insert_s') or 0)+(g(side,'update_s') or 0),2)} | - | {fmt(g(side,'handler_rows_per_s'))} (statement rows: {fmt(g(side,'rows_per_s'))}; insert {fmt(g(side,'insert_rows_per_s'))}, update {fmt(g(side,'update_rows_per_s'))}) | - | {fmt(g(side,'mariadbd_cpu_s'),2)} | - | - | - | - | - |")
        continue
    rst = g(side, "restart")
    rs = "-" if not rst else f"{rst['restart_to_first_commit_s']:.1f} / " + ("-" if rst.get('restart_to_caught_up_s') is None else f"{rst['restart_to_caught_up_s']:.1f}")
    state = g(side, "state_mb")
    if g(side, "internal_topics_mb") is not None:
        state = f"{state} (+{g(side,'internal_topics_mb')} in topics)"
    name = side + (" (partial: timeout)" if g(side, "partial") else "")
    print(f"| {name} | {fmt(g(side,'load'),1)} | {fmt(g(side,'records'))} | {fmt(g(side,'wall_s'),1)} | {fmt(g(side,'records_per_s'))} | {fmt(g(side,'rows_per_s'))} | {fmt(g(side,'cpu_s'),1)} | {fmt(g(side,'mariadbd_cpu_s'),1)} | {fmt(g(side,'records_per_cpu_s'))} | {fmt(g(side,'rss_mb'),1)} | {fmt(state)} | {rs} | {table_ok(side)} |")
def ratio(a, b):
    return round(a / b, 2) if a and b else None
cdb = g("cdcjoin_db", "records_per_s")
jdb = g("jdbc_sink", "records_per_s")
lim = g("limit", "handler_rows_per_s")
cw = g("cdcjoin_windowed", "records_per_cpu_s")
ksw = g("kstreams_stream", "records_per_cpu_s")
kst = g("kstreams_table", "records_per_cpu_s")
out = {
    "events": events, "records": records, "keys": keys,
    "cdcjoin_db_events_per_s": round(cdb) if cdb else None,
    "cdcjoin_db_nocoalesce_events_per_s": round(g("cdcjoin_db_nocoalesce", "records_per_s") or 0) or None,
    "jdbc_sink_events_per_s": round(jdb) if jdb else None,
    "db_ratio": ratio(cdb, jdb),
    "db_ratio_nocoalesce": ratio(g("cdcjoin_db_nocoalesce", "records_per_s"), jdb),
    "cdcjoin_db_rows_per_s": round(g("cdcjoin_db", "rows_per_s") or 0) or None,
    "db_limit_rows_per_s": round(lim) if lim else None,
    "db_fraction_of_limit": ratio(g("cdcjoin_db", "rows_per_s"), lim),
    "db_limit_rows_per_s_statement_rows": round(g("limit", "rows_per_s") or 0) or None,
    "cdcjoin_windowed_events_per_s_core": round(cw) if cw else None,
    "kstreams_events_per_s_core": round(ksw) if ksw else None,
    "kstreams_table_events_per_s_core": round(kst) if kst else None,
    "windowed_ratio": ratio(cw, ksw),
    "windowed_ratio_table": ratio(cw, kst),
    "cdcjoin_windowed_fetch2m_events_per_s_core": round(g("cdcjoin_windowed_fetch2m", "records_per_cpu_s") or 0) or None,
    "rss_ratio": ratio(g("cdcjoin_windowed", "rss_mb"), g("kstreams_stream", "rss_mb")),
    "rss_ratio_fetch2m": ratio(g("cdcjoin_windowed_fetch2m", "rss_mb"), g("kstreams_stream", "rss_mb")),
    "rss_mb": {k: g(k, "rss_mb") for k in ["cdcjoin_db", "cdcjoin_db_nocoalesce", "jdbc_sink", "cdcjoin_windowed", "cdcjoin_windowed_fetch2m", "kstreams_stream", "kstreams_table"] if k in s},
    "load": {k: g(k, "load") for k in s},
}
print()
print(json.dumps(out))
PY
