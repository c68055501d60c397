#!/usr/bin/python3
"""Assembles an OCI image layout archive (oci-archive) without a container engine.

Run by the oci_image rule (tools/oci/oci_image.bzl); see that file for the attributes. The archive
holds `oci-layout`, `index.json` and `blobs/sha256/...`: one image manifest, its config blob and
two gzip layers:
  1. base: the dynamic loader and every shared library the binaries need (resolved with ldd on
     the build host), host files such as the CA bundle, /etc/passwd and /etc/group with the
     non-root user, /tmp;
  2. app: the binaries and the data files (the default configuration).
The base layer comes first so that a rebuild of the binaries alone changes only the small layer.

Reproducible: every tar entry has mtime 0, owner 0:0, sorted names; gzip headers carry no name
and no time; JSON is written with sorted keys. The same inputs give the same digests.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = 0


def fail(message):
    sys.stderr.write("build_oci: %s\n" % message)
    sys.exit(1)


def split_spec(spec, parts):
    fields = spec.split("=")
    if len(fields) != parts:
        fail("%r: expected %d '='-separated fields" % (spec, parts))
    return fields


def image_path(path):
    """Debian 12 is merged-/usr: /lib and /lib64 are symlinks into /usr, and so are they here."""
    for prefix in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if path.startswith(prefix):
            return "/usr" + path
    return path


def shared_libraries(binary):
    """The loader and the libraries ldd resolves for `binary`, as host paths."""
    out = subprocess.run(["/usr/bin/ldd", binary], check=True, capture_output=True,
                         text=True).stdout
    libraries = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            fail("%s: library %s" % (binary, line))
        match = re.match(r"^\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or re.match(
            r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if match:
            libraries.append(match.group(1))
        elif not line.startswith("linux-vdso"):
            fail("%s: unexpected ldd line %r" % (binary, line))
    return libraries


class Layer:
    """A tar layer built in memory: files, directories and symlinks with fixed metadata."""

    def __init__(self):
        self.entries = {}  # path (no leading /) -> (kind, payload, mode)

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = ("dir", None, 0o755)

    def add_bytes(self, path, data, mode):
        path = path.lstrip("/")
        self._parents(path)
        self.entries[path] = ("file", data, mode)

    def add_file(self, path, source, mode):
        with open(source, "rb") as f:
            self.add_bytes(path, f.read(), mode)

    def add_dir(self, path, mode):
        path = path.lstrip("/")
        self._parents(path)
        self.entries[path] = ("dir", None, mode)

    def add_symlink(self, path, target):
        path = path.lstrip("/")
        self._parents(path)
        self.entries[path] = ("symlink", target, 0o777)

    def tar_bytes(self):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, payload, mode = self.entries[path]
                info = tarfile.TarInfo(path)
                info.mtime = EPOCH
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = mode
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif kind == "symlink":
                    info.type = tarfile.SYMTYPE
                    info.linkname = payload
                    tar.addfile(info)
                else:
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
        return buffer.getvalue()


def gzip_bytes(data):
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=EPOCH, compresslevel=6) as gz:
        gz.write(data)
    return buffer.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def read_status(path):
    status = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            status[key] = value
    return status


def read_version(header):
    with open(header) as f:
        match = re.search(r'kVersion\[\]\s*=\s*"([^"]+)"', f.read())
    if not match:
        fail("%s: no kVersion" % header)
    return match.group(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", required=True)
    parser.add_argument("--binary", action="append", default=[], help="SRC=DEST")
    parser.add_argument("--file", action="append", default=[], help="SRC=DEST=OCTAL_MODE")
    parser.add_argument("--host_file", action="append", default=[], help="HOST_PATH")
    parser.add_argument("--host_library", action="append", default=[],
                        help="HOST_PATH of a dlopen()ed shared object; its libraries come too")
    parser.add_argument("--version_header", required=True)
    parser.add_argument("--stable_status", required=True)
    parser.add_argument("--user", required=True, help="NAME=UID")
    parser.add_argument("--entrypoint", required=True, help="JSON list")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--exposed_port", action="append", default=[])
    parser.add_argument("--workdir", default="/")
    args = parser.parse_args()

    version = read_version(args.version_header)
    revision = read_status(args.stable_status).get("STABLE_GIT_COMMIT", "unknown")
    user, uid = split_spec(args.user, 2)
    uid = int(uid)

    base = Layer()
    app = Layer()
    for lib_dir in ("lib", "lib64", "bin", "sbin"):
        base.add_symlink("/" + lib_dir, "usr/" + lib_dir)
    base.add_dir("/usr/lib64", 0o755)
    base.add_dir("/tmp", 0o1777)
    libraries = set()
    for spec in args.binary:
        source, dest = split_spec(spec, 2)
        app.add_file(dest, source, 0o755)
        libraries.update(shared_libraries(source))
    for host_library in args.host_library:
        libraries.add(host_library)
        libraries.update(shared_libraries(host_library))
    for library in sorted(libraries):
        base.add_file(image_path(library), os.path.realpath(library), 0o755)
    for host_path in args.host_file:
        base.add_file(host_path, os.path.realpath(host_path), 0o644)
    base.add_bytes("/etc/passwd",
                   ("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                    "%s:x:%d:%d:%s:/home/%s:/usr/sbin/nologin\n" % (user, uid, uid, user, user)
                    ).encode(), 0o644)
    base.add_bytes("/etc/group", ("root:x:0:\n%s:x:%d:\n" % (user, uid)).encode(), 0o644)
    base.add_dir("/home/" + user, 0o755)
    for spec in args.file:
        source, dest, mode = split_spec(spec, 3)
        app.add_file(dest, source, int(mode, 8))

    blobs = {}
    layers = []
    diff_ids = []
    for layer in (base, app):
        tar = layer.tar_bytes()
        compressed = gzip_bytes(tar)
        digest = sha256(compressed)
        blobs[digest] = compressed
        diff_ids.append(sha256(tar))
        layers.append({"mediaType": MEDIA_LAYER, "digest": digest, "size": len(compressed)})

    labels = {
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
    }
    for spec in args.label:
        key, _, value = spec.partition("=")
        labels[key] = value
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": "%d:%d" % (uid, uid),
            "Entrypoint": json.loads(args.entrypoint),
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": args.workdir,
            "Labels": labels,
            "ExposedPorts": {port: {} for port in args.exposed_port},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "1970-01-01T00:00:00Z", "created_by": "oci_image: base (ldd, host files)"},
            {"created": "1970-01-01T00:00:00Z", "created_by": "oci_image: binaries and data"},
        ],
    }
    config_blob = canonical_json(config)
    config_digest = sha256(config_blob)
    blobs[config_digest] = config_blob
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_blob)},
        "layers": layers,
        "annotations": {"org.opencontainers.image.version": version},
    }
    manifest_blob = canonical_json(manifest)
    manifest_digest = sha256(manifest_blob)
    blobs[manifest_digest] = manifest_blob
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": len(manifest_blob),
            "annotations": {"org.opencontainers.image.ref.name": version},
        }],
    }

    archive = Layer()
    archive.add_bytes("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}), 0o644)
    archive.add_bytes("index.json", canonical_json(index), 0o644)
    for digest, data in blobs.items():
        archive.add_bytes("blobs/sha256/" + digest.split(":", 1)[1], data, 0o644)
    with open(args.output, "wb") as f:
        f.write(archive.tar_bytes())


if __name__ == "__main__":
    main()
