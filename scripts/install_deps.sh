#!/usr/bin/env bash
# Installs every Debian 12 package cdcjoin builds, tests and runs with. Idempotent: it only
# calls apt-get when something is missing. Run as root.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap g++ git ca-certificates python3
  librdkafka-dev librocksdb-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler libmysqlcppconn-dev libabsl-dev libgtest-dev libgmock-dev googletest
  libsimdjson-dev
  # Avro sources: Avro C 1.11 decodes the records (Debian 12 has no Avro C++ package), libcurl
  # fetches writer schemas from the Schema Registry.
  libavro-dev libcurl4-openssl-dev
  mariadb-server mariadb-client kcat
  python3-grpcio python3-grpc-tools grpc-proto umoci skopeo
  prometheus-cpp-dev python3-yaml openssl
  # The real stack (tests/realstack_e2e_test): Kafka, Connect and Debezium run on Java 17; their
  # jars come from Maven Central through tools/realstack/pom.xml (scripts/realstack_deps.sh).
  openjdk-17-jre-headless maven curl jq
  # The peer benchmark (scripts/peer_bench.sh) compiles its Java peers (tools/peers/apps): javac.
  openjdk-17-jdk-headless
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi
echo "install_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
