#!/usr/bin/env bash
# Checks the container image (//:image) with the tools made for the format: skopeo reads the
# oci-archive, umoci unpacks it, and the binaries run from the unpacked root file system under
# chroot as the image's user, so a missing library or loader fails here.
#   image_test.sh IMAGE_TAR VERSION_H BINARY...   (BINARY: path inside the image, e.g.
#                                                  /usr/local/bin/cdcjoind)
# Needs root (chroot); runs unsandboxed (tags in tests/BUILD).
set -euo pipefail

image_tar=$(realpath "$1")
version_h=$2
shift 2
binaries=("$@")
work=${TEST_TMPDIR:-$(mktemp -d)}/image
rm -rf "$work"
mkdir -p "$work"
python=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }

version=$(sed -n 's/.*kVersion\[\] = "\([^"]*\)".*/\1/p' "$version_h")
[ -n "$version" ] || fail "no kVersion in $version_h"

# 1. skopeo: the manifest's labels and the config's user and entrypoint.
skopeo inspect "oci-archive:$image_tar" >"$work/inspect.json"
skopeo inspect --config "oci-archive:$image_tar" >"$work/config.json"
"$python" - "$work/inspect.json" "$work/config.json" "$version" <<'EOF'
import json, re, sys
inspect = json.load(open(sys.argv[1]))
config = json.load(open(sys.argv[2]))
version = sys.argv[3]
labels = inspect["Labels"]
errors = []
def check(ok, what):
    if not ok:
        errors.append(what)
check(labels.get("org.opencontainers.image.version") == version,
      "version label %r != %r" % (labels.get("org.opencontainers.image.version"), version))
revision = labels.get("org.opencontainers.image.revision", "")
# 40 hex digits from git; "unknown" only when built from a tree without .git.
check(re.fullmatch(r"[0-9a-f]{40}|unknown", revision), "revision label %r" % revision)
check(inspect["Os"] == "linux" and inspect["Architecture"] == "amd64", "platform")
check(len(inspect["Layers"]) == 2, "layers %r" % inspect["Layers"])
c = config["config"]
check(c.get("User") == "65532:65532", "user %r" % c.get("User"))
check(c.get("Entrypoint") == ["/usr/local/bin/cdcjoind", "--config=/etc/cdcjoin/config.textproto"],
      "entrypoint %r" % c.get("Entrypoint"))
check(config["rootfs"]["type"] == "layers" and len(config["rootfs"]["diff_ids"]) == 2, "rootfs")
if errors:
    sys.exit("FAIL: " + "; ".join(errors))
print("skopeo: labels, user, entrypoint ok; revision", revision)
EOF

# 2. The layout itself: every blob's name is its sha256 (skopeo trusts index.json, not this).
mkdir "$work/archive"
tar -xf "$image_tar" -C "$work/archive"
[ "$(cat "$work/archive/oci-layout")" = '{"imageLayoutVersion":"1.0.0"}' ] || fail "oci-layout"
for blob in "$work"/archive/blobs/sha256/*; do
  [ "$(sha256sum "$blob" | cut -d' ' -f1)" = "$(basename "$blob")" ] || fail "digest of $blob"
done
# Reproducible layers: fixed mtimes and owners.
for blob in "$work"/archive/blobs/sha256/*; do
  if gzip -t "$blob" 2>/dev/null; then
    if tar -tvzf "$blob" | grep -v ' 0/0 .* 1970-01-01 00:00 ' >/dev/null; then
      fail "layer $blob has entries with a time or owner other than 0"
    fi
  fi
done

# 3. umoci: unpack the tagged image into a runtime bundle.
skopeo --insecure-policy copy -q "oci-archive:$image_tar" "oci:$work/layout:$version"
umoci unpack --rootless --image "$work/layout:$version" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
for path in /etc/ssl/certs/ca-certificates.crt /etc/cdcjoin/config.textproto \
            /usr/lib64/ld-linux-x86-64.so.2 /tmp; do
  [ -e "$rootfs$path" ] || fail "missing $path"
done
grep -q '^nonroot:x:65532:65532:' "$rootfs/etc/passwd" || fail "no uid 65532 in /etc/passwd"
grep -q '^nonroot:x:65532:' "$rootfs/etc/group" || fail "no gid 65532 in /etc/group"
grep -q 'BEGIN CERTIFICATE' "$rootfs/etc/ssl/certs/ca-certificates.crt" || fail "empty CA bundle"
# umoci records the runtime config from the image: the process runs as 65532.
"$python" -c '
import json, sys
p = json.load(open(sys.argv[1]))["process"]
assert p["user"]["uid"] == 65532 and p["user"]["gid"] == 65532, p["user"]
assert p["args"][0] == "/usr/local/bin/cdcjoind", p["args"]
' "$work/bundle/config.json" || fail "bundle runtime config"

# 4. Run the binaries from the image's root file system, as its user, with nothing of the host.
in_image() {
  env -i PATH=/usr/local/bin:/usr/bin:/bin CDCJOIN_MYSQL_PASSWORD=x \
    /usr/sbin/chroot --userspec=65532:65532 "$rootfs" "$@"
}
for binary in "${binaries[@]}"; do
  [ -x "$rootfs$binary" ] || fail "missing $binary"
  case "$binary" in
    */cdcjoind)
      out=$(in_image "$binary" --version) || fail "$binary --version: $out"
      [ "$out" = "cdcjoind $version" ] || fail "$binary --version printed '$out'"
      # The default configuration the entrypoint names is valid inside the image.
      out=$(in_image "$binary" --config=/etc/cdcjoin/config.textproto --check_config 2>&1) \
        || fail "default config: $out"
      ;;
    *)
      # absl's --help exits 1 after printing the flags; what matters is that the program ran:
      # a missing library or loader is exit 127 with "error while loading shared libraries".
      code=0
      out=$(in_image "$binary" --help 2>&1) || code=$?
      if [ "$code" -ge 126 ] || echo "$out" | grep -q "error while loading" || [ -z "$out" ]; then
        fail "$binary --help: exit $code: $out"
      fi
      echo "$out" | grep -q "$(basename "$binary")" || fail "$binary --help printed: $out"
      ;;
  esac
  echo "ran $binary in the image"
done
echo "image size: $(stat -c %s "$image_tar") bytes archive, $(du -sk "$rootfs" | cut -f1) KiB unpacked"
echo PASS
