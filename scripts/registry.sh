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
# Options after PORT (for the client's TLS and auth tests):
#   --tls_cert=FILE --tls_key=FILE [--tls_port=P]   also serve HTTPS (PEM files) on P (free port
#                                by default); prints `export REGISTRY_TLS_URL=https://127.0.0.1:P`
#   --basic_auth_file=FILE       the Confluent-compatible API (/apis/ccompat/...) demands HTTP basic
#                                auth: FILE's first line is `user:password` (the format of
#                                cdcjoind's schema_registry.basic_auth_file, so one file serves
#                                both). Anonymous callers and wrong passwords get 401. Apicurio's
#                                own API (/apis/registry/v2, where Debezium's converter registers
#                                schemas) stays open. The user is [A-Za-z0-9._-]+ and the password
#                                [A-Za-z0-9._~+-]+ (they are written into a Quarkus properties file,
#                                where other characters would need escaping).
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
  echo "usage: $0 start DIR [PORT] [--tls_cert=F --tls_key=F [--tls_port=P]] [--basic_auth_file=F]" \
    "| stop DIR" >&2
  exit 2
}

start() {
  local dir=$1 port="" home tls_cert="" tls_key="" tls_port="" basic_auth_file=""
  shift
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --tls_cert=*) tls_cert=${1#*=} ;;
      --tls_key=*) tls_key=${1#*=} ;;
      --tls_port=*) tls_port=${1#*=} ;;
      --basic_auth_file=*) basic_auth_file=${1#*=} ;;
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

  # Configuration read at start-up from the working directory (Quarkus reads
  # ./config/application.properties), so that the password is on no command line.
  rm -rf "$dir/config" "$dir/curl-auth"
  local curl_auth=()
  if [[ -n "$basic_auth_file" ]]; then
    [[ -f "$basic_auth_file" ]] || die "--basic_auth_file: no file $basic_auth_file"
    local secret user password
    secret=$(head -n 1 "$basic_auth_file")
    user=${secret%%:*}
    password=${secret#*:}
    [[ "$secret" == *:* && "$user" =~ ^[A-Za-z0-9._-]+$ && "$password" =~ ^[A-Za-z0-9._~+-]+$ ]] ||
      die "--basic_auth_file: the first line must be user:password, user [A-Za-z0-9._-]+," \
        "password [A-Za-z0-9._~+-]+"
    (
      umask 077
      mkdir -p "$dir/config"
      printf '%s\n' "cdcjoin.registry.ccompat-basic-auth=true" \
        "quarkus.security.users.embedded.users.$user=$password" >"$dir/config/application.properties"
      # For our own readiness poll (curl -K): the secret stays off the command line here too.
      printf 'user = "%s"\n' "$secret" >"$dir/curl-auth"
    )
    curl_auth=(-K "$dir/curl-auth")
  fi

  local began
  began=$(now_ms)
  log "starting Apicurio Registry on 127.0.0.1:$port${tls_port:+ (HTTPS $tls_port)}"
  # setsid: the registry outlives this script and ignores the terminal's SIGINT.
  # Quarkus reads -D system properties as configuration: loopback only, our port.
  # The working directory is $dir: Quarkus reads $dir/config/application.properties (if any).
  (cd "$dir" && exec setsid java -Xmx"${CDCJOIN_REGISTRY_HEAP:-384m}" -Xms64m -XX:+UseG1GC \
    -Djava.awt.headless=true -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.log.file.enable=false "${extra[@]}" \
    -jar "$(realpath "$home/registry-runner.jar")") </dev/null >"$dir/registry.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/registry.pid"
  local url="http://127.0.0.1:$port"
  echo "$url" >"$dir/url"

  local timeout=${CDCJOIN_REGISTRY_START_TIMEOUT_S:-180}
  local deadline=$((SECONDS + timeout))
  until curl -sf --max-time 3 "${curl_auth[@]}" "$url/apis/ccompat/v7/subjects" >/dev/null 2>&1; do
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
  if [[ -n "$basic_auth_file" ]]; then
    # The switch is read at start-up: prove it took, or a test would pass against an open API.
    local anonymous
    anonymous=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/apis/ccompat/v7/subjects")
    if [[ "$anonymous" != 401 ]]; then
      stop_pid registry "$dir/registry.pid" 20
      die "--basic_auth_file given, but an anonymous GET of the ccompat API answered $anonymous, not 401"
    fi
  fi
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
    rm -rf "$2/config" "$2/curl-auth"  # The copies of the basic-auth secret, if any.
    ;;
  *) usage ;;
esac
