#!/usr/bin/env bash
# cdcjoind --embedded_kafka keeps its mock cluster open to outside clients: kcat (Debian's, a
# client no one here wrote) lists its topics, produces Debezium records into it, and reads the
# dead-letter topic back; the private MariaDB (CDCJOIN_MYSQL_*) shows the records took effect.
#
#   args: cdcjoind seed_feeder nickname.textproto
set -euo pipefail

cdcjoind=$(realpath "$1"); feeder=$(realpath "$2"); example=$(realpath "$3")
: "${CDCJOIN_MYSQL_PORT:?the private MariaDB (scripts/mariadb.sh) must be exported}"
work="${TEST_TMPDIR}/kcat"
mkdir -p "$work"
rm -f "$work/bootstrap"
database="kcat_$$"
sql() {
  mariadb -h 127.0.0.1 -P "$CDCJOIN_MYSQL_PORT" -u "${CDCJOIN_MYSQL_USER:-root}" -N -B \
    -D "$database" -e "$1"
}

daemon_pid=""
cleanup() {
  local status=$?
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
  fi
  [ "$status" -eq 0 ] || { echo "== cdcjoind.log"; tail -n 40 "$work/cdcjoind.log" || true; }
}
trap cleanup EXIT

export CDCJOIN_MYSQL_PASSWORD=""
sed -e "s/port: 3306/port: ${CDCJOIN_MYSQL_PORT}/" \
    -e "s/database: \"cdcjoin_demo\"/database: \"${database}\"/" \
    -e "s/group_id: \"cdcjoin-nickname\"/group_id: \"kcat-$$\"/" \
    -e "s|state_dir: \"/tmp/cdcjoin-state\"|state_dir: \"${work}/state\"|" \
    "$example" > "$work/config.textproto"
"$feeder" --config="$work/config.textproto" --create_database

"$cdcjoind" --config="$work/config.textproto" --embedded_kafka \
  --embedded_kafka_bootstrap_file="$work/bootstrap" --admin_address=127.0.0.1:0 --metrics_address=127.0.0.1:0 \
  --progress_interval_ms=500 >"$work/cdcjoind.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
bootstrap=$(head -n1 "$work/bootstrap")
echo "embedded Kafka at $bootstrap"

kcat -b "$bootstrap" -L | tee "$work/metadata"
grep -q 'topic "cdc.azar.User"' "$work/metadata"
grep -q 'topic "cdc.azar.UserExtData"' "$work/metadata"

# key|value, one per line: a create on each source, then an update, and one record that is not JSON.
cat > "$work/user.txt" <<'RECORDS'
{"id":7001}|{"op":"c","before":null,"after":{"id":7001,"simpleName":"from-kcat","dateCreated":1624233600000},"source":{"ts_ms":1624233600000}}
{"id":7001}|{"op":"u","before":null,"after":{"id":7001,"simpleName":"from-kcat-2","dateCreated":1624233600000},"source":{"ts_ms":1624233600001}}
{"id":7002}|this is not a Debezium envelope
RECORDS
cat > "$work/ext.txt" <<'RECORDS'
{"userId":7001}|{"op":"c","before":null,"after":{"userId":7001,"originalName":"orig-kcat"},"source":{"ts_ms":1624233600002}}
RECORDS
kcat -b "$bootstrap" -P -t cdc.azar.User -K '|' -l "$work/user.txt"
kcat -b "$bootstrap" -P -t cdc.azar.UserExtData -K '|' -l "$work/ext.txt"

row=""
for _ in $(seq 1 200); do
  row=$(sql "SELECT maskingName, currentNickname, DATE_FORMAT(dateCreated, '%Y-%m-%d %H:%i:%s') FROM Nickname WHERE userId = 7001" 2>/dev/null || true)
  [ "$row" = "$(printf 'from-kcat-2\torig-kcat\t2021-06-21 00:00:00')" ] && break
  sleep 0.1
done
echo "Nickname 7001: $row"
[ "$row" = "$(printf 'from-kcat-2\torig-kcat\t2021-06-21 00:00:00')" ]

# The bad record sits on another partition than the good ones: wait for its dead letter.
for _ in $(seq 1 200); do
  kcat -b "$bootstrap" -C -t cdcjoin.dlq -o beginning -e -q -f '%k|%s|%h\n' > "$work/dlq"
  grep -q '^{"id":7002}|this is not a Debezium envelope|' "$work/dlq" && break
  sleep 0.1
done
cat "$work/dlq"
grep -q '^{"id":7002}|this is not a Debezium envelope|' "$work/dlq"
grep -q 'cdcjoin.error=' "$work/dlq"
grep -q 'cdcjoin.source.topic=cdc.azar.User' "$work/dlq"

kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=""
echo "kcat against the embedded cluster: ok"
