#!/usr/bin/env bash
# The demo on the real stack (`scripts/demo.sh --real`): a Kafka 4 broker, a source MariaDB with
# a ROW binlog captured by Debezium in Kafka Connect, cdcjoind merging User and UserExtData into
# Nickname in a target MariaDB. SQL changes in the source show up in the target within seconds.
# Everything it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
CDCJOIN_REALSTACK_LIB=$(scripts/realstack_deps.sh)
export CDCJOIN_REALSTACK_LIB
bazel build //service:cdcjoind //service:cdcjoinctl
bin=$(bazel info bazel-bin 2>/dev/null)

work=$(mktemp -d /tmp/cdcjoin-demo-real.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
  fi
  scripts/connect.sh stop "$work/connect" || true
  scripts/kafka.sh stop "$work/kafka" || true
  scripts/mariadb.sh stop "$work/source" || true
  scripts/mariadb.sh stop "$work/target" || true
}
trap cleanup EXIT

echo "== starting a Kafka 4 broker, a source MariaDB (ROW binlog) and a target MariaDB"
eval "$(scripts/kafka.sh start "$work/kafka")"
eval "$(scripts/mariadb.sh start "$work/source" --binlog=1 --env_prefix=SOURCE)"
eval "$(scripts/mariadb.sh start "$work/target")"
src() { mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$SOURCE_PORT" -uroot --default-character-set=utf8mb4 azar "$@"; }
tgt() { mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$CDCJOIN_MYSQL_PORT" -uroot --default-character-set=utf8mb4 cdcjoin_demo "$@"; }

mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$SOURCE_PORT" -uroot -e \
  "CREATE DATABASE azar CHARACTER SET utf8mb4"
src <<'SQL'
CREATE TABLE User (id BIGINT PRIMARY KEY, simpleName VARCHAR(100) NULL, dateCreated DATETIME(3) NULL);
CREATE TABLE UserExtData (userId BIGINT PRIMARY KEY, originalName VARCHAR(100) NULL);
INSERT INTO User VALUES (1, 'neo', '2024-03-01 10:00:00.123'), (2, 'trinity', NOW(3)), (3, NULL, NOW(3));
INSERT INTO UserExtData VALUES (1, '네오'), (2, '트리니티'), (4, '모피어스');
SQL
mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$CDCJOIN_MYSQL_PORT" -uroot -e \
  "CREATE DATABASE cdcjoin_demo CHARACTER SET utf8mb4; CREATE TABLE cdcjoin_demo.Nickname (
   userId BIGINT PRIMARY KEY, maskingName VARCHAR(100) NULL, currentNickname VARCHAR(100) NULL,
   dateCreated DATETIME(6) NULL)"

echo "== starting Kafka Connect with Debezium's MariaDB connector (snapshot, then the binlog)"
eval "$(scripts/connect.sh start "$work/connect" --bootstrap="$KAFKA_BOOTSTRAP" \
  --source_port="$SOURCE_PORT" --database=azar --topic_prefix=cdc)"

export CDCJOIN_MYSQL_PASSWORD=""
sed -e "s/brokers: \"127.0.0.1:9092\".*/brokers: \"${KAFKA_BOOTSTRAP}\"\n  properties { key: \"topic.metadata.refresh.interval.ms\" value: \"5000\" }/" \
    -e "s/port: 3306/port: ${CDCJOIN_MYSQL_PORT}/" \
    -e "s|state_dir: \"/tmp/cdcjoin-state\"|state_dir: \"${work}/state\"|" \
    examples/nickname.textproto >"$work/demo.textproto"
echo "== starting cdcjoind on the real topics (log: $work/cdcjoind.log)"
"$bin/service/cdcjoind" --config="$work/demo.textproto" --progress_interval_ms=2000 \
  --admin_address=127.0.0.1:0 --admin_address_file="$work/admin_address" \
  >"$work/cdcjoind.log" 2>&1 &
daemon_pid=$!
ctl() { "$bin/service/cdcjoinctl" --address="$(cat "$work/admin_address")" "$@"; }
deadline=$((SECONDS + 60))
until [ -s "$work/admin_address" ]; do
  ((SECONDS < deadline)) || { tail "$work/cdcjoind.log"; echo "cdcjoind did not start"; exit 1; }
  sleep 0.1
done

checksum() { tgt -N -B -e "CHECKSUM TABLE Nickname" | cut -f2; }
# show_after TEXT SQL: runs SQL in the source, waits (bounded) until the target changes and
# cdcjoind has caught up, prints the target.
show_after() {
  echo "== source: $1"
  local before begin deadline
  before=$(checksum)
  src -e "$2"
  begin=$SECONDS
  deadline=$((SECONDS + 60))
  while [ "$(checksum)" = "$before" ]; do
    ((SECONDS < deadline)) || { echo "   the target did not change within 60 s"; tail "$work/cdcjoind.log"; exit 1; }
    sleep 0.2
  done
  ctl watch --interval_ms=200 --until_caught_up >/dev/null
  echo "   target after $((SECONDS - begin)) s:"
  tgt -t -e "SELECT * FROM Nickname ORDER BY userId"
}
echo "== the snapshot, merged:"
deadline=$((SECONDS + 60))
until [ "$(tgt -N -B -e "SELECT COUNT(*) FROM Nickname")" -ge 3 ]; do
  ((SECONDS < deadline)) || { echo "the snapshot did not arrive within 60 s"; tail "$work/cdcjoind.log"; exit 1; }
  sleep 0.2
done
ctl watch --interval_ms=200 --until_caught_up >/dev/null
tgt -t -e "SELECT * FROM Nickname ORDER BY userId"
show_after "rename user 1, add user 5, delete user 2" \
  "BEGIN; UPDATE User SET simpleName = 'the one' WHERE id = 1; INSERT INTO User VALUES (5, 'oracle', NOW(3)); INSERT INTO UserExtData VALUES (5, '오라클'); DELETE FROM User WHERE id = 2; COMMIT;"
show_after "a new nickname for user 4" "UPDATE UserExtData SET originalName = '모피어스 2' WHERE userId = 4"
echo "== cdcjoinctl status"
ctl status
