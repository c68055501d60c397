#!/usr/bin/env bash
# Fetches the jars of the real stack (Kafka broker + tools, Kafka Connect, Debezium's MariaDB
# connector, log4j2) pinned by tools/realstack/pom.xml into a directory outside git, once.
# A second run with the same pom is offline and takes milliseconds (a stamp holds the pom's hash).
#
#   scripts/realstack_deps.sh          # prints the jar directory on stdout
#
# The directory is $CDCJOIN_REALSTACK_LIB, default ~/.cache/cdcjoin-realstack/lib.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "realstack_deps.sh: $*" >&2; }

lib=${CDCJOIN_REALSTACK_LIB:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcjoin-realstack/lib}
pom=tools/realstack/pom.xml
want=$(sha256sum "$pom" | cut -d' ' -f1)
if [[ -f "$lib/.pom.sha256" && "$(cat "$lib/.pom.sha256")" == "$want" ]]; then
  echo "$lib"
  exit 0
fi

command -v java >/dev/null || { log "java not found: install openjdk-17-jre-headless"; exit 1; }
command -v mvn >/dev/null || { log "mvn not found: install maven"; exit 1; }
log "fetching the jars pinned by $pom into $lib"
tmp="$lib.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
  tail -n 30 "$tmp.log" >&2
  rm -rf "$tmp" "$tmp.log"
  log "ERROR: mvn could not resolve $pom"
  exit 1
fi
rm -f "$tmp.log"
echo "$want" >"$tmp/.pom.sha256"
rm -rf "$lib"
mv "$tmp" "$lib"
log "$(ls "$lib" | wc -l) jars in $lib"
echo "$lib"
