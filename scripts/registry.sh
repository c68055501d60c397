#!/usr/bin/env bash
# A real Confluent-compatible Schema Registry: Apicurio Registry 2.4.2.Final, in-memory storage,
# built from Maven Central by tools/registry/pom.xml (scripts/registry_deps.sh). Listens on
# 127.0.0.1 only; bounded heap; stopped by its PID. Schemas live as long as the process.
#
#   scripts/registry.sh start DIR [PORT]   # prints `export REGISTRY_URL=http://127.0.0.1:P` and
#                                          # `export REGISTRY_CCOMPAT_URL=$REGISTRY_URL/apis/ccompat/v7`:
#                                          # eval them; returns once the ccompat API answers
#   scripts/registry.sh stop DIR
#
# Options after PORT (for the client's TLS tests):
#   --tls_cert=FILE --tls_key=FILE [--tls_port=P]   also serve HTTPS (PEM files) on P (free port
#                                by default); prints `export REGISTRY_TLS_URL=https://127.0.0.1:P`
#
# The Confluent API (what Confluent's clients and the C++ decoder call) is under /apis/ccompat/v7,
# e.g. GET $REGISTRY_CCOMPAT_URL/schemas/ids/1; Apicurio's own under /apis/registry/v2.
# Environment: CDCJOIN_REGISTRY_HEAP (default 384m), CDCJOIN_REGISTRY_START_TIMEOUT_S (default 180;
# start-up measured 20-71 s here, with the machine loaded by other builds).
set -euo pipefail

log() { echo "registry.sh: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
# shellcheck source=scripts/jvm_common.sh
source "$(dirname "$0")/jvm_common.sh"

usage() {
  echo "usage: $0 start DIR [PORT] [--tls_cert=F --tls_key=F [--tls_port=P]] | stop DIR" >&2
  exit 2
}

start() {
  local dir=$1 port="" home tls_cert="" tls_key="" tls_port=""
  shift
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --tls_cert=*) tls_cert=${1#*=} ;;
      --tls_key=*) tls_key=${1#*=} ;;
      --tls_port=*) tls_port=${1#*=} ;;
      --*) usage ;;
      *) [[ -z "$port" ]] || usage; port=$1 ;;
    esac
    shift
  done
  home=$("$(dirname "$0")/registry_deps.sh") || die "the registry is missing (scripts/registry_deps.sh failed)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/registry.pid" ]] && pid_alive "$(cat "$dir/registry.pid")"; then
    die "a registry already runs from $dir (pid $(cat "$dir/registry.pid")); stop it first"
  fi
  [[ -n "$port" ]] || port=$(free_port)
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT is a number: '$port'"
  port_in_use "$port" && die "port $port on 127.0.0.1 is already in use"

  local extra=()
  if [[ -n "$tls_cert$tls_key" ]]; then
    [[ -f "$tls_cert" && -f "$tls_key" ]] || die "--tls_cert and --tls_key name PEM files"
    [[ -n "$tls_port" ]] || tls_port=$(free_port)
    port_in_use "$tls_port" && die "port $tls_port on 127.0.0.1 is already in use"
    extra+=("-Dquarkus.http.ssl-port=$tls_port"
      "-Dquarkus.http.ssl.certificate.file=$(realpath "$tls_cert")"
      "-Dquarkus.http.ssl.certificate.key-file=$(realpath "$tls_key")")
  fi

  local began
  began=$(now_ms)
  log "starting Apicurio Registry on 127.0.0.1:$port${tls_port:+ (HTTPS $tls_port)}"
  # setsid: the registry outlives this script and ignores the terminal's SIGINT.
  # Quarkus reads -D system properties as configuration: loopback only, our port.
  setsid java -Xmx"${CDCJOIN_REGISTRY_HEAP:-384m}" -Xms64m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.log.file.enable=false "${extra[@]}" \
    -jar "$home/registry-runner.jar" </dev/null >"$dir/registry.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/registry.pid"
  local url="http://127.0.0.1:$port"
  echo "$url" >"$dir/url"

  local timeout=${CDCJOIN_REGISTRY_START_TIMEOUT_S:-180}
  local deadline=$((SECONDS + timeout))
  until curl -sf --max-time 3 "$url/apis/ccompat/v7/subjects" >/dev/null 2>&1; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$dir/registry.log" >&2 || true
      rm -f "$dir/registry.pid"
      die "the registry exited during start-up (see $dir/registry.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$dir/registry.log" >&2 || true
      stop_pid registry "$dir/registry.pid" 20
      die "the registry did not answer on $url within ${timeout}s"
    fi
    sleep 0.25
  done
  local ready
  ready=$(now_ms)
  echo "$((ready - began))" >"$dir/startup_ms"
  log "ready: pid $pid, $url in $((ready - began)) ms"
  echo "export REGISTRY_URL=$url"
  echo "export REGISTRY_CCOMPAT_URL=$url/apis/ccompat/v7"
  [[ -n "$tls_port" ]] && echo "export REGISTRY_TLS_URL=https://127.0.0.1:$tls_port"
  return 0
}

[[ $# -ge 2 ]] || usage
case "$1" in
  start)
    shift
    start "$@"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop_pid registry "$2/registry.pid" "${CDCJOIN_REGISTRY_STOP_TIMEOUT_S:-30}"
    ;;
  *) usage ;;
esac
