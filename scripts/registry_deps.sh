#!/usr/bin/env bash
# Builds, once, what the Avro side of the real stack needs from Maven Central:
#   - a runnable Apicurio Registry (tools/registry/pom.xml: apicurio-registry-app re-packaged by
#     quarkus-maven-plugin into a runner jar + lib/), and
#   - Apicurio's Kafka Connect Avro converter with its dependencies
#     (tools/registry/converter/pom.xml), less every jar the real-stack directory already has
#     (Kafka, Jackson, SLF4J: Connect's own versions serve the converter).
# A second run with the same poms is offline and takes milliseconds (a stamp holds their hash).
#
#   scripts/registry_deps.sh               # prints the registry's directory (holds registry-runner.jar)
#   scripts/registry_deps.sh --converter   # prints the converter's jar directory
#
# The directory is $CDCJOIN_REGISTRY_HOME, default ~/.cache/cdcjoin-registry.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "registry_deps.sh: $*" >&2; }

what=app
case "${1:-}" in
  "") ;;
  --converter) what=converter ;;
  *) echo "usage: $0 [--converter]" >&2; exit 2 ;;
esac

root=${CDCJOIN_REGISTRY_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcjoin-registry}
inputs=(tools/registry/pom.xml tools/registry/converter/pom.xml)
# Everything the registry's build copies (its configuration and our Java), in a stable order.
mapfile -t -O ${#inputs[@]} inputs < <(find tools/registry/src -type f | LC_ALL=C sort)
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
realstack=$(scripts/realstack_deps.sh)
# The converter directory depends on what the real-stack directory holds.
want=$(printf '%s %s' "$want" "$(cat "$realstack/.pom.sha256")" | sha256sum | cut -d' ' -f1)
if [[ -f "$root/.stamp" && "$(cat "$root/.stamp")" == "$want" ]]; then
  echo "$root/$what"
  exit 0
fi

command -v java >/dev/null || { log "java not found: install openjdk-17-jre-headless"; exit 1; }
command -v mvn >/dev/null || { log "mvn not found: install maven"; exit 1; }
mkdir -p "$root"
tmp="$root/tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/build" "$tmp/app" "$tmp/converter"
trap 'rm -rf "$tmp"' EXIT

fail() {
  tail -n 40 "$1" >&2
  log "ERROR: $2 (log: $1 above)"
  exit 1
}

# The registry: the Quarkus build runs in a copy, so the work tree gets no target/.
log "building Apicurio Registry from tools/registry/pom.xml (first time: ~2-4 min)"
cp -r tools/registry/pom.xml tools/registry/src "$tmp/build/"
if ! mvn -B -f "$tmp/build/pom.xml" package -DskipTests >"$tmp/build.log" 2>&1; then
  cp "$tmp/build.log" "$root/build.log"
  fail "$root/build.log" "the registry did not build"
fi
runner=$(ls "$tmp"/build/target/*-runner.jar)
mv "$runner" "$tmp/app/registry-runner.jar"
mv "$tmp/build/target/lib" "$tmp/app/lib"

log "fetching the Avro converter pinned by tools/registry/converter/pom.xml"
if ! mvn -q -B -f tools/registry/converter/pom.xml dependency:copy-dependencies \
  -DoutputDirectory="$tmp/converter" >"$tmp/converter.log" 2>&1; then
  cp "$tmp/converter.log" "$root/converter.log"
  fail "$root/converter.log" "mvn could not resolve tools/registry/converter/pom.xml"
fi
# Drop what Connect's class path already has, whatever the version (artifact id = the name
# before the first "-<digit>").
python3 - "$realstack" "$tmp/converter" <<'PY'
import os, re, sys
def artifact(name):
    m = re.match(r'(.*?)-\d', name)
    return m.group(1) if m else name
have = {artifact(n) for n in os.listdir(sys.argv[1]) if n.endswith('.jar')}
for n in sorted(os.listdir(sys.argv[2])):
    if n.endswith('.jar') and artifact(n) in have:
        os.remove(os.path.join(sys.argv[2], n))
        print('registry_deps.sh: converter: Connect already has', artifact(n), '- dropped', n, file=sys.stderr)
PY

echo "$want" >"$tmp/.stamp"
rm -rf "$root/app" "$root/converter" "$root/.stamp"
mv "$tmp/app" "$tmp/converter" "$tmp/.stamp" "$root/"
log "registry in $root/app ($(ls "$root/app/lib" | wc -l) jars), converter in $root/converter ($(ls "$root/converter" | wc -l) jars)"
echo "$root/$what"
