#!/usr/bin/env python3
"""Smoke check of the Avro side of the real stack: Debezium writes Avro through a real registry.

Starts a real Apicurio Registry (scripts/registry.sh), a source MariaDB with ROW binlog
(scripts/mariadb.sh), a real Kafka broker (scripts/kafka.sh) and Kafka Connect with Debezium's
MariaDB connector and Apicurio's AvroConverter in the Confluent format (scripts/connect.sh
--converter=avro); snapshots some rows, then inserts, updates and deletes while streaming, reads
the topic back with kcat (raw bytes) and checks, record by record:

  - a key and a value start with the magic byte 0 and a 4-byte big-endian schema id;
  - the registry answers GET /apis/ccompat/v7/schemas/ids/{id} for every id seen: a key schema
    (a record holding the primary key) and a Debezium envelope (before/after/source/op);
  - the ops seen are exactly those of the workload (r, c, u, d and a tombstone after each d);
  - ALTER TABLE ADD COLUMN and DROP COLUMN mid-stream give the later records new schema ids.

Everything it started is stopped by PID, on failure too. Not part of `bazel test //...` (it takes
1.5-3 minutes of three JVMs on 2 shared cores). Run:

  tests/realstack_avro_smoke.py                       # prints "11 passed, 0 failed"
  tests/realstack_avro_smoke.py --save_fixtures=tests/testdata/avro   # also rewrites the fixtures
  tests/realstack_avro_smoke.py --avro_references=true   # Apicurio's default: `source` by reference

CDCJOIN_KEEP_WORK=1 keeps the work directory (logs, configs); it is kept anyway on failure.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
DATABASE = "azar"
PREFIX = "avro"
TOPIC = f"{PREFIX}.{DATABASE}.Typed"

# The table of the fixtures: a DECIMAL, DATETIME(6) and (3), a TIMESTAMP, a DATE, text with
# Korean characters, BIGINT UNSIGNED, BIT(1); every non-key column nullable.
TABLE = """CREATE TABLE Typed (
  id BIGINT PRIMARY KEY,
  amount DECIMAL(20,4) NULL,
  happenedAt DATETIME(6) NULL,
  createdAt DATETIME(3) NULL,
  stamped TIMESTAMP(3) NULL,
  day DATE NULL,
  note VARCHAR(40) NULL,
  big BIGINT UNSIGNED NULL,
  flag BIT(1) NULL
) DEFAULT CHARSET=utf8mb4"""

# Rows present before Connect starts: they arrive as op "r" (the snapshot).
SNAPSHOT_ROWS = [
    "(1, 12.3400, '2024-03-01 10:00:00.123456', '2024-03-01 10:00:00.123', "
    "'2024-03-01 10:00:00.500', '2024-03-01', '닉네임 hello', 18446744073709551615, b'1')",
    "(2, -9999999999999999.9999, '1969-12-31 23:59:59.000001', '1000-01-01 00:00:00.000', "
    "NULL, '1000-01-01', NULL, NULL, NULL)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]

# Statements run while Connect streams, in order, and the (key, op) each must produce.
STREAM = [
    ("INSERT INTO Typed VALUES (4, 9999999999999999.9999, '2038-01-19 03:14:07.999999', "
     "'9999-12-31 23:59:59.999', '2038-01-19 03:14:07.999', '9999-12-31', '', 9223372036854775808, b'0')",
     [(4, "c")]),
    ("UPDATE Typed SET amount = 0.0001, note = '바뀐 이름', stamped = NULL WHERE id = 1", [(1, "u")]),
    ("UPDATE Typed SET note = 'set from null', amount = 42 WHERE id = 3", [(3, "u")]),
    ("DELETE FROM Typed WHERE id = 2", [(2, "d"), (2, None)]),  # None: the tombstone
    ("INSERT INTO Typed (id) VALUES (5)", [(5, "c")]),
    ("DELETE FROM Typed WHERE id = 4", [(4, "d"), (4, None)]),
    # Schema evolution: each change of the table gives its records a new writer schema id.
    ("ALTER TABLE Typed ADD COLUMN extra INT NULL", []),
    ("INSERT INTO Typed (id, amount, note, extra) VALUES (6, 6.5, 'with extra', 66)", [(6, "c")]),
    ("ALTER TABLE Typed DROP COLUMN note", []),
    ("UPDATE Typed SET extra = 11 WHERE id = 1", [(1, "u")]),
]
# Envelope schema ids the workload must produce: the table as created, after ADD, after DROP.
ENVELOPE_VERSIONS = 3

# Records saved as fixtures (--save_fixtures): (name, key, op, what it shows).
FIXTURES = [
    ("snapshot_full_row", 1, "r", "snapshot read; every column set: DECIMAL(20,4) 12.3400, "
     "DATETIME(6), DATETIME(3), TIMESTAMP(3), DATE, Korean text, BIGINT UNSIGNED 2^64-1 (long: -1), BIT(1) true"),
    ("snapshot_edges_and_nulls", 2, "r", "snapshot read; DECIMAL -9999999999999999.9999 (9 bytes), "
     "DATETIME(6) before 1970 (negative micros), DATETIME(3) and DATE at year 1000, the rest NULL"),
    ("snapshot_all_null", 3, "r", "snapshot read; every non-key column NULL"),
    ("insert_max_values", 4, "c", "insert; DECIMAL 9999999999999999.9999, DATETIME(6)/(3) and "
     "TIMESTAMP(3) at their maxima, empty string, BIGINT UNSIGNED 2^63 (long: -2^63), BIT(1) false"),
    ("update_before_after", 1, "u", "update; before and after both set; TIMESTAMP set to NULL, "
     "DECIMAL 0.0001"),
    ("update_from_nulls", 3, "u", "update; before has NULLs, after has values"),
    ("delete", 2, "d", "delete; before set, after null"),
    ("tombstone", 2, None, "the tombstone after the delete: a key, a null value"),
    ("insert_only_key", 5, "c", "insert of the key alone; every other column NULL"),
    ("after_add_column", 6, "c", "insert after ALTER TABLE ADD COLUMN extra INT NULL: a new "
     "writer schema id (the envelope with `extra`)"),
    ("after_drop_column", 1, "u", "update after ALTER TABLE DROP COLUMN note: a third writer "
     "schema id; before and after lack `note`"),
]


def log(*args):
    print("realstack_avro_smoke:", *args, file=sys.stderr, flush=True)


def parse_exports(text, env):
    """The `export A=1 B=2` lines the scripts print."""
    for line in text.splitlines():
        if line.startswith("export "):
            for assignment in line[len("export "):].split():
                k, v = assignment.split("=", 1)
                env[k] = v


class Stack:
    """The parts, each started by its script and stopped by its script (by PID)."""

    def __init__(self, work):
        self.work = work
        self.stops = []
        self.env = {}

    def run(self, args, timeout=600):
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout)

    def start(self, name, args, stop_args):
        log(f"starting {name}")
        began = time.monotonic()
        try:
            out = self.run(args)
        except subprocess.CalledProcessError as e:
            sys.stderr.write(e.stderr[-4000:])
            self.stops.append((name, stop_args))
            raise
        self.stops.append((name, stop_args))
        parse_exports(out.stdout, self.env)
        log(f"{name} ready in {time.monotonic() - began:.1f} s")

    def stop_all(self):
        for name, args in reversed(self.stops):
            try:
                subprocess.run(args, capture_output=True, text=True, timeout=120)
            except Exception as e:  # keep stopping the others
                log(f"stopping {name} failed: {e}")
        self.stops = []


def sql(port, statement, database=DATABASE):
    args = ["mariadb", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port}", "-uroot",
            "-N", "-B", "--default-character-set=utf8mb4"]
    if database:
        args.append(database)
    return subprocess.run(args + ["-e", statement], check=True, capture_output=True,
                          text=True).stdout


def read_topic(bootstrap, topic, want, timeout_s):
    """Every record of the topic as dicts with raw key/value bytes (None for null), once at
    least `want` records are there (or the deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run(
            ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
             "-f", "%p %o %K %S\n%k%s"],
            check=True, capture_output=True, timeout=120).stdout
        records = []
        i = 0
        while i < len(out):
            nl = out.index(b"\n", i)
            p, o, k, s = (int(x) for x in out[i:nl].split())
            i = nl + 1
            key = out[i:i + k] if k >= 0 else None
            i += max(k, 0)
            value = out[i:i + s] if s >= 0 else None
            i += max(s, 0)
            records.append({"partition": p, "offset": o, "key": key, "value": value})
        if len(records) >= want or time.monotonic() >= deadline:
            return records
        time.sleep(1)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            log(f"ok: {what}")
        else:
            self.failed += 1
            log(f"FAILED: {what}")
        return ok


def zigzag_long(buf, i):
    """Avro's zig-zag varint at buf[i:]: (value, next index). Only to find the key's id and the
    op in the smoke check; the decoder proper is cdcjoind's, with a real Avro library."""
    shift = 0
    acc = 0
    while True:
        b = buf[i]
        i += 1
        acc |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return (acc >> 1) ^ -(acc & 1), i


def split_wire(data):
    """(magic, schema id, body) of a Confluent-framed record."""
    return data[0], int.from_bytes(data[1:5], "big"), data[5:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save_fixtures", default="", help="directory to write the fixtures to")
    ap.add_argument("--avro_references", default="false", choices=["true", "false"])
    ap.add_argument("--deadline_s", type=int, default=180)
    ap.add_argument("--work_prefix", default="/tmp/cdcjoin-avro-smoke-",
                    help="the work directory is a new directory with this prefix")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix=args.work_prefix)
    log(f"work directory {work}")
    stack = Stack(work)
    checks = Checks()
    keep = os.environ.get("CDCJOIN_KEEP_WORK") == "1"
    try:
        # The registry is the slowest to start (~10-50 s): start it beside the broker.
        reg_dir, kafka_dir = os.path.join(work, "registry"), os.path.join(work, "kafka")
        subprocess.run([os.path.join(SCRIPTS, "registry_deps.sh")], check=True,
                       capture_output=True)
        subprocess.run([os.path.join(SCRIPTS, "realstack_deps.sh")], check=True,
                       capture_output=True)
        reg = subprocess.Popen([os.path.join(SCRIPTS, "registry.sh"), "start", reg_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stack.stops.append(("registry", [os.path.join(SCRIPTS, "registry.sh"), "stop", reg_dir]))
        stack.start("source MariaDB",
                    [os.path.join(SCRIPTS, "mariadb.sh"), "start", os.path.join(work, "source"),
                     "--binlog=1", "--env_prefix=SOURCE"],
                    [os.path.join(SCRIPTS, "mariadb.sh"), "stop", os.path.join(work, "source")])
        port = stack.env["SOURCE_PORT"]
        sql(port, f"CREATE DATABASE {DATABASE}", database=None)
        sql(port, TABLE)
        sql(port, "INSERT INTO Typed VALUES " + ", ".join(SNAPSHOT_ROWS))
        stack.start("broker", [os.path.join(SCRIPTS, "kafka.sh"), "start", kafka_dir],
                    [os.path.join(SCRIPTS, "kafka.sh"), "stop", kafka_dir])
        out, err = reg.communicate(timeout=300)
        if reg.returncode != 0:
            sys.stderr.write(err[-4000:])
            raise RuntimeError("the registry did not start")
        parse_exports(out, stack.env)
        log(err.strip().splitlines()[-1])
        registry = stack.env["REGISTRY_URL"]
        ccompat = stack.env["REGISTRY_CCOMPAT_URL"]
        bootstrap = stack.env["KAFKA_BOOTSTRAP"]
        connect_dir = os.path.join(work, "connect")
        stack.start("Kafka Connect (Debezium, Avro)",
                    [os.path.join(SCRIPTS, "connect.sh"), "start", connect_dir,
                     f"--bootstrap={bootstrap}", f"--source_port={port}", f"--database={DATABASE}",
                     f"--topic_prefix={PREFIX}", "--converter=avro", f"--registry={registry}",
                     f"--avro_references={args.avro_references}"],
                    [os.path.join(SCRIPTS, "connect.sh"), "stop", connect_dir])

        # The snapshot is complete once its three rows are on the topic; then stream.
        snap = read_topic(bootstrap, TOPIC, len(SNAPSHOT_ROWS), args.deadline_s)
        checks.check(len(snap) == len(SNAPSHOT_ROWS),
                     f"the snapshot's {len(SNAPSHOT_ROWS)} rows are on {TOPIC} (saw {len(snap)})")
        expected = [(i + 1, "r") for i in range(len(SNAPSHOT_ROWS))]
        for statement, produces in STREAM:
            sql(port, statement)
            expected += produces
        records = read_topic(bootstrap, TOPIC, len(expected), args.deadline_s)
        checks.check(len(records) == len(expected),
                     f"{len(expected)} records on {TOPIC} (saw {len(records)})")

        schemas = {}  # id -> the registry's answer

        def schema(i):
            if i not in schemas:
                try:
                    schemas[i] = get_json(f"{ccompat}/schemas/ids/{i}")
                except urllib.error.HTTPError as e:
                    schemas[i] = {"error": e.code}
            return schemas[i]

        seen = []
        framing_ok = True
        for r in records:
            kmagic, kid, kbody = split_wire(r["key"])
            framing_ok &= kmagic == 0 and "schema" in schema(kid)
            key_schema = json.loads(schema(kid)["schema"])
            framing_ok &= key_schema["type"] == "record" and key_schema["fields"][0]["name"] == "id"
            key, _ = zigzag_long(kbody, 0)  # Key {id: long}
            r["key_id"], r["key_value"] = kid, key
            if r["value"] is None:
                r["op"] = None
                seen.append((key, None))
                continue
            vmagic, vid, vbody = split_wire(r["value"])
            framing_ok &= vmagic == 0 and "schema" in schema(vid)
            r["value_id"] = vid
            # op sits after before/after/source/transaction: found from the end instead, since
            # it is followed by ts_ms, ts_us, ts_ns (three [null, long] unions, all set): the
            # smoke check reads it by searching the 1-character string before them.
            r["op"] = find_op(vbody)
            seen.append((key, r["op"]))
        checks.check(framing_ok, "every key and value is magic byte 0 + a 4-byte id that "
                     "/apis/ccompat/v7/schemas/ids/{id} answers")
        checks.check(seen == expected, f"keys and ops in order: {seen} == {expected}")

        value_ids = sorted({r["value_id"] for r in records if r.get("value_id") is not None})
        checks.check(len(value_ids) == ENVELOPE_VERSIONS,
                     f"{ENVELOPE_VERSIONS} envelope schema ids (created, ADD COLUMN, DROP COLUMN):"
                     f" {value_ids}")
        for vid in value_ids:
            s = schema(vid)
            env = json.loads(s["schema"])
            names = [f["name"] for f in env.get("fields", [])]
            checks.check(env.get("name") == "Envelope" and
                         all(n in names for n in ("before", "after", "source", "op")),
                         f"schema id {vid} is a Debezium envelope "
                         f"({env.get('namespace')}.{env.get('name')}: {names})")
            refs = s.get("references", [])
            if args.avro_references == "true":
                checks.check(any(ref.get("name") == "io.debezium.connector.mariadb.Source"
                                 for ref in refs),
                             f"schema id {vid} references Debezium's Source: {refs}")
                for ref in refs:
                    sub = get_json(f"{ccompat}/subjects/{ref['subject']}/versions/{ref['version']}")
                    checks.check(json.loads(sub["schema"]).get("name") == "Source",
                                 f"reference {ref['subject']} v{ref['version']} resolves "
                                 f"(schema id {sub['id']})")
            else:
                checks.check(refs == [] and isinstance(
                    next(f for f in env["fields"] if f["name"] == "source")["type"], dict),
                             f"schema id {vid} is whole (no references, `source` inline)")
        info = get_json(f"{registry}/apis/registry/v2/system/info")
        info["ccompat"] = ccompat
        log(f"registry {info.get('name')} {info.get('version')}")

        if args.save_fixtures:
            save_fixtures(args.save_fixtures, records, schema, info, args.avro_references)
    except Exception as e:
        checks.check(False, f"the run: {type(e).__name__}: {e}")
    finally:
        stack.stop_all()
        if checks.failed or keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


def find_op(body):
    """The envelope's op: the last 1-character Avro string ("\\x02" + one of crud) that is
    followed by exactly the three set [null, long] unions ts_ms, ts_us, ts_ns."""
    for i in range(len(body) - 2, -1, -1):
        if body[i] == 0x02 and chr(body[i + 1]) in "crud":
            j = i + 2
            try:
                for _ in range(3):
                    if body[j] != 0x02:  # union branch 1 (long), zig-zag encoded
                        raise ValueError
                    _, j = zigzag_long(body, j + 1)
            except (ValueError, IndexError):
                continue
            if j == len(body):
                return chr(body[i + 1])
    return "?"


def ccompat_of(info):
    return info["ccompat"]


def save_fixtures(directory, records, schema, info, references):
    os.makedirs(directory, exist_ok=True)
    saved = []
    used_ids = set()
    taken = set()
    for name, key, op, what in FIXTURES:
        r = next(r for r in records
                 if r["key_value"] == key and r["op"] == op and r["offset"] not in taken)
        taken.add(r["offset"])
        entry = {
            "name": name,
            "description": what,
            "topic": TOPIC,
            "partition": r["partition"],
            "offset": r["offset"],
            "op": op,
            "key_hex": r["key"].hex(),
            "key_schema_id": r["key_id"],
            "value_hex": None if r["value"] is None else r["value"].hex(),
            "value_schema_id": r.get("value_id"),
        }
        used_ids.add(r["key_id"])
        if r.get("value_id") is not None:
            used_ids.add(r["value_id"])
        saved.append(entry)
    ids = {}
    referenced = []  # the schemas the envelopes reference, in an order that parses
    for i in sorted(used_ids):
        ids[str(i)] = schema(i)
        for ref in ids[str(i)].get("references", []):
            sub = get_json(f"{ccompat_of(info)}/subjects/{ref['subject']}/versions/{ref['version']}")
            if sub["schema"] not in referenced:
                referenced.append(sub["schema"])
    doc = {
        "about": "Real Debezium records in the Confluent wire format (magic byte 0, 4-byte "
                 "big-endian schema id, Avro binary body), written by Debezium's MariaDB connector "
                 "3.5.0.Final through Apicurio's AvroConverter 2.4.2.Final into Kafka 4.1.1, with "
                 "the writer schemas as the registry's GET /apis/ccompat/v7/schemas/ids/{id} "
                 "answered them. Made by tests/realstack_avro_smoke.py --save_fixtures.",
        "registry": f"{info.get('name')} {info.get('version')}",
        "converter": "io.apicurio:apicurio-registry-utils-converter 2.4.2.Final "
                     "(as-confluent=true, use-id=contentId, headers.enabled=false, "
                     f"dereference-schema={'false' if references == 'true' else 'true'})",
        "table": TABLE,
        "snapshot_rows": SNAPSHOT_ROWS,
        "statements": [s for s, _ in STREAM],
        "records": saved,
        "schemas_by_id": ids,
    }
    if references == "true":
        doc["referenced_schemas"] = referenced
    base = "debezium_mariadb_records" + ("_with_references" if references == "true" else "")
    path = os.path.join(directory, base + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log(f"saved {len(saved)} records and {len(ids)} schemas to {path}")
    # An independent decoding of the same bytes by Apache Avro's Java library.
    lib = subprocess.run([os.path.join(SCRIPTS, "realstack_deps.sh")], check=True,
                         capture_output=True, text=True).stdout.strip()
    conv = subprocess.run([os.path.join(SCRIPTS, "registry_deps.sh"), "--converter"], check=True,
                          capture_output=True, text=True).stdout.strip()
    decoded = subprocess.run(
        ["java", "-Xmx256m", "-cp", f"{conv}/*:{lib}/*",
         os.path.join(REPO, "tools", "registry", "avrodump", "AvroDump.java"), path],
        check=True, capture_output=True, text=True, timeout=300).stdout
    with open(os.path.join(directory, base + ".decoded.json"), "w", encoding="utf-8") as f:
        f.write(decoded)
    log(f"saved Avro's own decoding to {base}.decoded.json")


if __name__ == "__main__":
    sys.exit(main())
