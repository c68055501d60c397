#!/usr/bin/env bash
# Sets everything up and runs every test: installs the Debian packages, fetches the real stack's
# jars (Kafka, Connect, Debezium, the Avro registry and converter), starts a private MariaDB on a loopback port, runs
# `bazel test //...` against it (the real-stack test starts its own broker, Connect and source
# MariaDB and stops them), stops MariaDB.
#   scripts/run_tests.sh [extra bazel test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
# The jars of the real stack, fetched once (offline and instant afterwards); the real-stack test
# starts and stops its own broker, Connect and source MariaDB from them.
CDCJOIN_REALSTACK_LIB=$(scripts/realstack_deps.sh)
export CDCJOIN_REALSTACK_LIB
# The Schema Registry (Apicurio) and Debezium's Avro converter for the Avro real-stack test, built
# once from the pinned poms (tools/registry) by Maven; a hash check afterwards.
CDCJOIN_REGISTRY_HOME=$(dirname "$(scripts/registry_deps.sh)")
export CDCJOIN_REGISTRY_HOME

mysql_dir=$(mktemp -d /tmp/cdcjoin-test-mysql.XXXXXX)
cleanup() { scripts/mariadb.sh stop "$mysql_dir" || true; rm -rf "$mysql_dir"; }
trap cleanup EXIT
# Assigned first, so that a MariaDB that does not start stops the run here (set -e).
mysql_env=$(scripts/mariadb.sh start "$mysql_dir")
eval "$mysql_env"
export CDCJOIN_MYSQL_HOST CDCJOIN_MYSQL_PORT CDCJOIN_MYSQL_USER

status=0
bazel test //... --test_env=CDCJOIN_MYSQL_HOST --test_env=CDCJOIN_MYSQL_PORT \
  --test_env=CDCJOIN_MYSQL_USER "$@" 2>&1 | tee /tmp/cdcjoin-test-output.log || status=$?
echo
echo "== test summary =="
grep -E "^Executed [0-9]+ out of [0-9]+ tests?" /tmp/cdcjoin-test-output.log || true
exit $status
