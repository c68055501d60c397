#!/usr/bin/env bash
# A client no one here wrote: Python stubs generated at test time by Debian's python3-grpc-tools
# from the project's protos, over Debian's python3-grpcio, against a running cdcjoind (embedded
# Kafka, the private MariaDB from CDCJOIN_MYSQL_*, the seed's example fed by seed_feeder).
#
#   args: cdcjoind seed_feeder nickname.textproto admin_client.py
set -euo pipefail

cdcjoind=$(realpath "$1"); feeder=$(realpath "$2"); example=$(realpath "$3"); client=$(realpath "$4")
: "${CDCJOIN_MYSQL_PORT:?the private MariaDB (scripts/mariadb.sh) must be exported}"
python=/usr/bin/python3   # Debian's interpreter: the one with grpc.
# The workspace root inside the runfiles: protoc resolves "proto/cdcjoin/v1/config.proto" from it.
root="${TEST_SRCDIR}/${TEST_WORKSPACE:-cdcjoin}"
work="${TEST_TMPDIR}/py"
mkdir -p "$work/gen"

echo "== generating Python stubs with grpc_tools.protoc"
"$python" -m grpc_tools.protoc -I"$root" --python_out="$work/gen" --grpc_python_out="$work/gen" \
  "$root"/proto/cdcjoin/v1/config.proto "$root"/proto/cdcjoin/v1/admin.proto
if ! "$python" -c "import grpc_health.v1.health_pb2" 2>/dev/null; then
  # Not installed (python3-grpcio-health-checking): generate it from Debian's grpc-proto. The
  # module path must not start with grpc/ (that is the grpc package itself); the proto package,
  # which is what goes on the wire, stays grpc.health.v1.
  mkdir -p "$work/health_src/health_gen"
  cp /usr/share/grpc-proto/grpc/health/v1/health.proto "$work/health_src/health_gen/"
  "$python" -m grpc_tools.protoc -I"$work/health_src" --python_out="$work/gen" \
    --grpc_python_out="$work/gen" "$work/health_src/health_gen/health.proto"
fi
ls -R "$work/gen" | grep -E "_pb2(_grpc)?\.py$"

daemon_pid=""
cleanup() {
  local status=$?
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/cdcjoind.log" ]; then
    echo "== cdcjoind.log (the test failed)"; tail -n 60 "$work/cdcjoind.log"
  fi
}
trap cleanup EXIT

database="py_admin_$$"
export CDCJOIN_MYSQL_PASSWORD=""   # root of the private instance has no password
sed -e "s/port: 3306/port: ${CDCJOIN_MYSQL_PORT}/" \
    -e "s/user: \"root\"/user: \"${CDCJOIN_MYSQL_USER:-root}\"/" \
    -e "s/database: \"cdcjoin_demo\"/database: \"${database}\"/" \
    -e "s/group_id: \"cdcjoin-nickname\"/group_id: \"py-admin-$$\"/" \
    -e "s|state_dir: \"/tmp/cdcjoin-state\"|state_dir: \"${work}/state\"|" \
    "$example" > "$work/config.textproto"
grep -q "$database" "$work/config.textproto"
"$feeder" --config="$work/config.textproto" --create_database

echo "== starting cdcjoind (embedded Kafka, admin on a free port)"
# Files of an earlier run would hand out addresses of daemons that are gone.
rm -f "$work/bootstrap" "$work/admin_address"
"$cdcjoind" --config="$work/config.textproto" --embedded_kafka \
  --embedded_kafka_bootstrap_file="$work/bootstrap" --admin_address=127.0.0.1:0 --metrics_address=127.0.0.1:0 \
  --admin_address_file="$work/admin_address" --progress_interval_ms=1000 \
  >"$work/cdcjoind.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 200); do [ -s "$work/admin_address" ] && break; sleep 0.1; done
[ -s "$work/admin_address" ] || { cat "$work/cdcjoind.log"; exit 1; }
address=$(head -n1 "$work/admin_address")
echo "admin at $address"

echo "== feeding the seed's example until the table equals the reference model"
"$feeder" --config="$work/config.textproto" --bootstrap_file="$work/bootstrap" --records=12000 \
  --live_batches=2 --timeout_s=120 | tee "$work/feeder.log"
produced=$(sed -n 's/^records produced: \([0-9]*\).*/\1/p' "$work/feeder.log")
[ -n "$produced" ]

echo "== the Python client"
PYTHONPATH="$work/gen" "$python" "$client" "$address" "$produced"
kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=""
echo "1 passed, 0 failed"
