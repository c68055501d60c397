#!/usr/bin/env bash
# The demo: installs what it needs, builds, starts a private MariaDB, starts cdcjoind with its
# embedded Kafka, feeds it the seed's example (User + UserExtData -> Nickname: a snapshot, then
# live changes) and shows progress until the target table equals the reference model.
#   scripts/demo.sh          # embedded Kafka (the default)
#   scripts/demo.sh --real   # real Kafka 4 + Debezium from a source MariaDB (scripts/demo_real.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--real" ]; then exec scripts/demo_real.sh; fi

scripts/install_deps.sh
bazel build //service:cdcjoind //service:cdcjoinctl //tests/support:seed_feeder
bin=$(bazel info bazel-bin 2>/dev/null)

work=$(mktemp -d /tmp/cdcjoin-demo.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
  fi
  scripts/mariadb.sh stop "$work/mysql" || true
}
trap cleanup EXIT

echo "== starting a private MariaDB"
eval "$(scripts/mariadb.sh start "$work/mysql")"
export CDCJOIN_MYSQL_PASSWORD=""   # root of the private instance has no password
sed -e "s/port: 3306/port: ${CDCJOIN_MYSQL_PORT}/" \
    -e "s|state_dir: \"/tmp/cdcjoin-state\"|state_dir: \"${work}/state\"|" \
    examples/nickname.textproto > "$work/demo.textproto"
"$bin/tests/support/seed_feeder" --config="$work/demo.textproto" --create_database

echo "== starting cdcjoind with embedded Kafka (log: $work/cdcjoind.log)"
"$bin/service/cdcjoind" --config="$work/demo.textproto" --embedded_kafka \
  --embedded_kafka_bootstrap_file="$work/bootstrap" --progress_interval_ms=2000 \
  --admin_address=127.0.0.1:0 --admin_address_file="$work/admin_address" \
  >"$work/cdcjoind.log" 2>&1 &
daemon_pid=$!
tail -n +1 -f "$work/cdcjoind.log" --pid=$daemon_pid | grep --line-buffered -E "progress|embedded|assigned|ERROR|WARN" | sed 's/^/  cdcjoind | /' &

echo "== feeding the seed's example"
"$bin/tests/support/seed_feeder" --config="$work/demo.textproto" --bootstrap_file="$work/bootstrap" \
  --records="${DEMO_RECORDS:-20000}"

for _ in $(seq 1 100); do [ -s "$work/admin_address" ] && break; sleep 0.1; done
echo "== cdcjoinctl status (gRPC admin API at $(cat "$work/admin_address"))"
"$bin/service/cdcjoinctl" --address="$(cat "$work/admin_address")" status

echo "== stopping cdcjoind (SIGTERM: drain, commit, leave the group)"
kill -TERM "$daemon_pid"
wait "$daemon_pid" && echo "cdcjoind exited 0"
daemon_pid=""
sleep 0.5
