#!/usr/bin/python3
"""The real stack end to end, judged by the source database.

    realstack_e2e_test.py --cdcjoind=PATH --cdcjoinctl=PATH --scripts=DIR [--variants=...]

Starts, and stops by PID whatever happens, its own parts: a real Kafka 4 broker
(scripts/kafka.sh), a private source MariaDB with a ROW binlog (scripts/mariadb.sh --binlog),
Kafka Connect with Debezium's MariaDB connector (scripts/connect.sh) and cdcjoind. The target is
the test MariaDB named by CDCJOIN_MYSQL_*; the jars come from CDCJOIN_REALSTACK_LIB
(scripts/realstack_deps.sh prints it; scripts/run_tests.sh sets it).

For each variant (JSON with schemas.enable true or false; `avro`: Avro through Apicurio's converter
and a real Apicurio Schema Registry, scripts/registry.sh, read with value_format/key_format AVRO;
cdcjoind reaches it over HTTPS with schema_registry.ca_file naming a CA made here, and with HTTP
basic auth whose secret is in schema_registry.basic_auth_file (the registry demands it on its
Confluent-compatible API); one daemon without the CA file and one with a wrong password each hold,
DEGRADED, saying why, dead-lettering and committing nothing) the seed's tables User and
UserExtData, and a
pair of tables with the types Debezium encodes in special ways (Typed, TypedExt), are filled,
captured while a workload of SQL transactions runs (during the snapshot and while streaming), and
consumed by one cdcjoind in DB_UPSERT mode and one in WINDOWED OUTER mode. The judge is the source
database: the target table must equal a FULL OUTER join of the source tables computed by a SELECT
in the source database (UNION of the keys, LEFT JOINs), both sides rendered by SQL in the same
format. Both sources use the CLEAR_COLUMNS delete policy, so a target row whose every non-key
column is NULL stands for "no row". Then operations: Kafka's ConsumerGroupCommand and
`cdcjoinctl status --json` must report the same committed offsets, and a connector restart must
converge. Prints `N passed, M failed`; exits non-zero on any failure.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

START = time.monotonic()


def log(*parts):
    print(f"[{time.monotonic() - START:7.1f}s]", *parts, flush=True)


class Failure(Exception):
    pass


def run(cmd, *, timeout=300, check=True, input_text=None, env=None):
    """Runs a command; returns stdout. On failure raises with its stderr."""
    done = subprocess.run(cmd, input=input_text, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise Failure(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


def eval_exports(text):
    """The variables of `export A=1 B=2` lines (what the start scripts print)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            for pair in line[len("export "):].split():
                name, _, value = pair.partition("=")
                found[name] = value
    return found


def wait_for(what, condition, timeout, interval=0.5):
    """Polls condition() -> (done, seen) until done or the deadline; raises with what was seen."""
    deadline = time.monotonic() + timeout
    seen = None
    while True:
        done, seen = condition()
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what}; last seen:\n{seen}")
        time.sleep(interval)


class MariaDb:
    """A MariaDB reached with the mariadb client; rows come back as JSON arrays (no escaping
    ambiguity: NULL is null, binary columns are rendered by the query with HEX)."""

    def __init__(self, port, host="127.0.0.1", user="root"):
        self.base = ["mariadb", "--no-defaults", "--protocol=tcp", f"-h{host}", f"-P{port}",
                     f"-u{user}", "--default-character-set=utf8mb4"]

    def execute(self, sql, database="", timeout=300):
        cmd = self.base + ([database] if database else [])
        run(cmd, input_text=sql, timeout=timeout)

    def rows(self, select_json_array, database=""):
        cmd = self.base + ["-N", "-B", "--raw"] + ([database] if database else [])
        out = run(cmd + ["-e", select_json_array], timeout=120)
        return [json.loads(line) for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# The two pairs of tables: DDL, seed rows, workload, the judge's SELECTs and cdcjoind's mapping.

KOREAN = [chr(0xAC00 + i) for i in range(0, 11172, 97)]


def korean(rng, lo=2, hi=6):
    return "".join(rng.choice(KOREAN) for _ in range(rng.randint(lo, hi)))


def sql_text(value):
    if value is None:
        return "NULL"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


class SeedPair:
    """The seed's User and UserExtData, merged into Nickname."""
    name = "seed"
    tables = ("User", "UserExtData")
    target = "Nickname"

    source_ddl = [
        "CREATE TABLE User (id BIGINT NOT NULL PRIMARY KEY, simpleName VARCHAR(100) NULL,"
        " dateCreated DATETIME(3) NULL, age INT NULL) DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE UserExtData (userId BIGINT NOT NULL PRIMARY KEY,"
        " originalName VARCHAR(100) NULL, updatedAt DATETIME(3) NULL) DEFAULT CHARSET=utf8mb4",
    ]
    target_ddl = ("CREATE TABLE Nickname (userId BIGINT NOT NULL PRIMARY KEY,"
                  " maskingName VARCHAR(100) NULL, currentNickname VARCHAR(100) NULL,"
                  " dateCreated DATETIME(3) NULL) DEFAULT CHARSET=utf8mb4")

    # The judge: a FULL OUTER join of the source tables (UNION of the keys, then LEFT JOINs).
    expected_sql = (
        "SELECT JSON_ARRAY(k.id, u.simpleName, e.originalName,"
        " DATE_FORMAT(u.dateCreated, '%Y-%m-%d %H:%i:%s.%f'))"
        " FROM (SELECT id FROM User UNION SELECT userId FROM UserExtData) k"
        " LEFT JOIN User u ON u.id = k.id LEFT JOIN UserExtData e ON e.userId = k.id")
    actual_sql = ("SELECT JSON_ARRAY(userId, maskingName, currentNickname,"
                  " DATE_FORMAT(dateCreated, '%Y-%m-%d %H:%i:%s.%f')) FROM Nickname")
    columns = ("userId", "maskingName", "currentNickname", "dateCreated")

    @staticmethod
    def sources(prefix, database, schemas):
        del schemas  # AUTO reads the schema when there is one; the explicit types work either way.
        return f"""
sources {{
  name: "user"
  topic: "{prefix}.{database}.User"
  key_fields: "id"
  columns {{ from: "simpleName" to: "maskingName" }}
  columns {{ from: "dateCreated" to: "dateCreated" type: TIMESTAMP_MILLIS }}
  on_delete: CLEAR_COLUMNS
}}
sources {{
  name: "user_ext"
  topic: "{prefix}.{database}.UserExtData"
  key_fields: "userId"
  columns {{ from: "originalName" to: "currentNickname" }}
  on_delete: CLEAR_COLUMNS
}}
"""

    def __init__(self, rng):
        self.rng = rng
        self.next_id = 1

    def _user_values(self, key):
        rng = self.rng
        name = None if rng.random() < 0.1 else rng.choice(["user", "nick", "이름"]) + str(
            rng.randint(0, 10**6))
        created = None if rng.random() < 0.1 else (
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            f".{rng.randint(0, 999):03d}")
        return f"({key}, {sql_text(name)}, {sql_text(created)}, {rng.randint(10, 90)})"

    def _ext_values(self, key):
        name = None if self.rng.random() < 0.1 else korean(self.rng)
        return f"({key}, {sql_text(name)}, NOW(3))"

    def seed(self, users):
        statements = []
        ids = list(range(self.next_id, self.next_id + users))
        self.next_id += users
        for begin in range(0, len(ids), 500):
            chunk = ids[begin:begin + 500]
            statements.append("REPLACE INTO User VALUES " +
                              ",".join(self._user_values(k) for k in chunk) + ";")
            ext = [k for k in chunk if self.rng.random() < 0.8]
            if ext:
                statements.append("REPLACE INTO UserExtData VALUES " +
                                  ",".join(self._ext_values(k) for k in ext) + ";")
        return statements

    def _one_change(self):
        rng = self.rng
        key = rng.randint(1, self.next_id + 20)
        choice = rng.random()
        if choice < 0.15:
            return f"REPLACE INTO User VALUES {self._user_values(key)};"
        if choice < 0.35:
            return (f"UPDATE User SET simpleName = "
                    f"{sql_text(None if rng.random() < 0.15 else 'upd' + str(rng.randint(0, 10**6)))}"
                    f" WHERE id = {key};")
        if choice < 0.45:
            return f"UPDATE User SET dateCreated = NOW(3) - INTERVAL {rng.randint(0, 10**6)} SECOND WHERE id = {key};"
        if choice < 0.52:
            return f"DELETE FROM User WHERE id = {key};"
        if choice < 0.67:
            return (f"INSERT INTO UserExtData VALUES {self._ext_values(key)}"
                    " ON DUPLICATE KEY UPDATE originalName = VALUES(originalName),"
                    " updatedAt = VALUES(updatedAt);")
        if choice < 0.9:
            return (f"UPDATE UserExtData SET originalName = "
                    f"{sql_text(None if rng.random() < 0.1 else korean(rng))} WHERE userId = {key};")
        return f"DELETE FROM UserExtData WHERE userId = {key};"

    def transactions(self, count):
        """count transactions: single changes, multi-row transactions, new users, and one key
        updated many times in a row."""
        out = []
        for i in range(count):
            kind = self.rng.random()
            if kind < 0.5:
                out.append(self._one_change())
            elif kind < 0.8:
                out.append("BEGIN; " + " ".join(self._one_change()
                                                 for _ in range(self.rng.randint(2, 6)))
                           + " COMMIT;")
            else:
                out.extend(self.seed(self.rng.randint(1, 5)))
            if i == count // 2:
                hot = 7
                for n in range(150):
                    out.append(f"UPDATE User SET simpleName = 'hot{n}' WHERE id = {hot};"
                               if n % 2 == 0 else
                               f"INSERT INTO UserExtData VALUES ({hot}, '뜨거운{n}', NOW(3))"
                               " ON DUPLICATE KEY UPDATE originalName = VALUES(originalName);")
        return out


class TypedPair:
    """Debezium's special encodings: DECIMAL (base64 bytes + scale), DATETIME(6) (micros), DATE
    (days), TIME (micros), TIMESTAMP (ZonedTimestamp), BIT(1), BOOLEAN, BIGINT UNSIGNED near
    2^64, ENUM, JSON, VARBINARY, BLOB; NULLs everywhere."""
    name = "typed"
    tables = ("Typed", "TypedExt")
    target = "TypedJoined"
    type_columns = ("amount DECIMAL(20,4) NULL, happenedAt DATETIME(6) NULL, day DATE NULL,"
                    " clock TIME(6) NULL, stamped TIMESTAMP(3) NULL DEFAULT NULL, flag BIT(1) NULL,"
                    " active BOOLEAN NULL, big BIGINT UNSIGNED NULL,"
                    " color ENUM('red','green','blue') NULL, doc JSON NULL,"
                    " raw VARBINARY(16) NULL, body BLOB NULL")
    source_ddl = [
        f"CREATE TABLE Typed (id BIGINT NOT NULL PRIMARY KEY, {type_columns}) DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE TypedExt (typedId BIGINT NOT NULL PRIMARY KEY, note VARCHAR(100) NULL)"
        " DEFAULT CHARSET=utf8mb4",
    ]
    target_ddl = (f"CREATE TABLE TypedJoined (id BIGINT NOT NULL PRIMARY KEY, {type_columns},"
                  " note VARCHAR(100) NULL) DEFAULT CHARSET=utf8mb4")
    fields = ("amount", "happenedAt", "day", "clock", "stamped", "flag", "active", "big", "color",
              "doc", "raw", "body")
    # Rendered by SQL the same way on both sides: exact text for numbers and times, HEX for bytes.
    rendered = ("CAST({t}.amount AS CHAR)", "DATE_FORMAT({t}.happenedAt, '%Y-%m-%d %H:%i:%s.%f')",
                "CAST({t}.day AS CHAR)", "CAST({t}.clock AS CHAR)",
                "DATE_FORMAT({t}.stamped, '%Y-%m-%d %H:%i:%s.%f')", "{t}.flag + 0",
                "{t}.active", "CAST({t}.big AS CHAR)", "{t}.color", "{t}.doc", "HEX({t}.raw)",
                "HEX({t}.body)")
    expected_sql = (
        "SELECT JSON_ARRAY(k.id, " + ", ".join(r.format(t="s") for r in rendered) + ", e.note)"
        " FROM (SELECT id FROM Typed UNION SELECT typedId FROM TypedExt) k"
        " LEFT JOIN Typed s ON s.id = k.id LEFT JOIN TypedExt e ON e.typedId = k.id")
    actual_sql = ("SELECT JSON_ARRAY(id, " + ", ".join(r.format(t="t") for r in rendered) +
                  ", note) FROM TypedJoined t")
    columns = ("id",) + fields + ("note",)

    @staticmethod
    def sources(prefix, database, schemas):
        # With the schema every column is AUTO: its Debezium schema says how to read it. Without,
        # nothing in the JSON says that a string is base64 bytes or that an integer is a TIME:
        # those columns need their type in the mapping.
        types = {}
        if not schemas:
            types = {"happenedAt": "TIMESTAMP_MICROS", "day": "DATE_DAYS", "clock": "TIME_MICROS",
                     "stamped": "ZONED_TIMESTAMP", "raw": "BYTES", "body": "BYTES",
                     "flag": "BOOL", "big": "UINT64"}
        columns = "\n".join(
            f'  columns {{ from: "{f}" to: "{f}"'
            + (f" type: {types[f]}" if f in types else "") + " }"
            for f in TypedPair.fields)
        return f"""
sources {{
  name: "typed"
  topic: "{prefix}.{database}.Typed"
  key_fields: "id"
{columns}
  on_delete: CLEAR_COLUMNS
}}
sources {{
  name: "typed_ext"
  topic: "{prefix}.{database}.TypedExt"
  key_fields: "typedId"
  columns {{ from: "note" to: "note" }}
  on_delete: CLEAR_COLUMNS
}}
"""

    def __init__(self, rng):
        self.rng = rng
        self.next_id = 1

    def _values(self, key):
        rng = self.rng

        def maybe(text):
            return "NULL" if rng.random() < 0.15 else text

        big = rng.choice([0, 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1, rng.randint(0, 2**64 - 1)])
        amount = rng.choice(["0.0000", "-0.0001", "9999999999999999.9999",
                             "-9999999999999999.9999", "1234567890123456.7891",
                             f"{rng.randint(-10**9, 10**9)}.{rng.randint(0, 9999):04d}"])
        micros = rng.randint(0, 999999)
        return ("(" + ", ".join([
            str(key),
            maybe(f"'{amount}'"),
            maybe(f"'{rng.randint(1971, 2037)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                  f" {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
                  f".{micros:06d}'"),
            maybe(rng.choice(["'1000-01-01'", "'1970-01-01'", "'2024-02-29'", "'9999-12-31'",
                              "'1969-12-31'"])),
            maybe(rng.choice(["'00:00:00'", "'23:59:59.999999'", "'-838:59:59'", "'838:59:59'",
                              f"'{rng.randint(0, 99)}:{rng.randint(0, 59):02d}:00.{micros:06d}'",
                              "'-00:00:01.5'"])),
            maybe(f"'20{rng.randint(10, 37)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                  f" 0{rng.randint(0, 9)}:00:00.{rng.randint(0, 999):03d}'"),
            maybe(rng.choice(["b'0'", "b'1'"])),
            maybe(rng.choice(["TRUE", "FALSE"])),
            maybe(str(big)),
            maybe(rng.choice(["'red'", "'green'", "'blue'"])),
            maybe(rng.choice(["'{\"a\": [1, 2.5, \"x\"]}'", "'null'", "'\"문자열\"'", "'[]'"])),
            maybe(rng.choice(["x''", "x'00'", "x'00ff10'", "x'deadbeefcafebabe0001'"])),
            maybe(rng.choice(["x''", "x'0a0d00275c22'", f"x'{os.urandom(40).hex()}'"])),
        ]) + ")")

    def seed(self, rows):
        ids = list(range(self.next_id, self.next_id + rows))
        self.next_id += rows
        notes = [k for k in ids if self.rng.random() < 0.8]
        return ["REPLACE INTO Typed VALUES " + ",".join(self._values(k) for k in ids) + ";"] + (
            ["REPLACE INTO TypedExt VALUES " +
             ",".join(f"({k}, {sql_text(korean(self.rng))})" for k in notes) + ";"] if notes else [])

    def transactions(self, count):
        out = []
        for _ in range(count):
            key = self.rng.randint(1, self.next_id + 5)
            kind = self.rng.random()
            if kind < 0.4:
                out.append(f"REPLACE INTO Typed VALUES {self._values(key)};")
            elif kind < 0.55:
                out.append(f"DELETE FROM Typed WHERE id = {key};")
            elif kind < 0.8:
                out.append(f"REPLACE INTO TypedExt VALUES ({key}, {sql_text(korean(self.rng))});")
            elif kind < 0.9:
                out.append(f"DELETE FROM TypedExt WHERE typedId = {key};")
            else:
                out.extend(self.seed(2))
        return out


# ---------------------------------------------------------------------------------------------


class Stack:
    """What this test started, to be stopped by PID in reverse order whatever happens."""

    def __init__(self, scripts, work):
        self.scripts = scripts
        self.work = work
        self.stops = []

    def script(self, name, *args, timeout=300):
        return run([os.path.join(self.scripts, name), *args], timeout=timeout)

    def stop_all(self):
        for what, stop in reversed(self.stops):
            try:
                stop()
            except Exception as error:  # Keep stopping the rest.
                log(f"stopping {what} failed: {error}")
        self.stops.clear()


class Daemon:
    def __init__(self, binary, config_path, work, name):
        self.name = name
        self.config_path = config_path
        self.log_path = os.path.join(work, f"{name}.log")
        self.admin_file = os.path.join(work, f"{name}.admin")
        self.command = [binary, f"--config={config_path}", "--progress_interval_ms=1000",
                        f"--admin_address_file={self.admin_file}", "--shutdown_timeout_ms=20000"]
        self.process = subprocess.Popen(self.command, stdout=open(self.log_path, "w"),
                                        stderr=subprocess.STDOUT)

    def restart(self):
        """Starts it again (after it died); its log goes on in the same file."""
        if os.path.exists(self.admin_file):
            os.remove(self.admin_file)
        self.process = subprocess.Popen(self.command, stdout=open(self.log_path, "a"),
                                        stderr=subprocess.STDOUT)

    def assignments(self):
        with open(self.log_path, errors="replace") as f:
            return f.read().count(" INFO assigned ")

    def admin_address(self):
        def written():
            self.check_running()
            text = open(self.admin_file).read().strip() if os.path.exists(self.admin_file) else ""
            return text != "", text or self.log_tail()
        return wait_for(f"{self.name}'s admin address", written, 60, 0.2)

    def log_tail(self, lines=30):
        try:
            return "".join(open(self.log_path, errors="replace").readlines()[-lines:])
        except OSError:
            return ""

    def check_running(self):
        if self.process.poll() is not None:
            raise Failure(f"cdcjoind {self.name} exited {self.process.returncode}:\n"
                          f"{self.log_tail()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                log(f"cdcjoind {self.name} still running 60 s after SIGTERM: SIGKILL")
                self.process.kill()
                self.process.wait(30)


def kafka_group_offsets(scripts, bootstrap, group):
    """Kafka's own view: ConsumerGroupCommand --describe -> ({(topic, partition): (committed,
    log end)}, its output)."""
    out = run([os.path.join(scripts, "kafka.sh"), "tool",
               "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
               "--bootstrap-server", bootstrap, "--describe", "--group", group],
              timeout=120, check=False)
    offsets = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 5 and cells[0] == group and cells[2].isdigit():
            committed = int(cells[3]) if cells[3].lstrip("-").isdigit() else -1
            offsets[(cells[1], int(cells[2]))] = (committed, int(cells[4]))
    return offsets, out


class CheckedRun:
    """Named checks in a work directory: one failed check never hides the others; the work
    directory is kept when anything failed (or CDCJOIN_KEEP_WORK is set)."""

    def __init__(self, prefix):
        self.work = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        self.passed = 0
        self.failed = 0

    def check(self, name, body):
        try:
            body()
            self.passed += 1
            log(f"PASS {name}")
        except Exception as error:  # One failed check must not hide the others.
            self.fail(name, error if isinstance(error, Failure) else traceback.format_exc())

    def fail(self, name, detail):
        self.failed += 1
        log(f"FAIL {name}\n{detail}")

    def finish(self, suffixes):
        """Copies the work files ending in `suffixes` to Bazel's outputs, removes the work
        directory unless kept, prints the summary; returns the exit code."""
        outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if outputs:
            for name in os.listdir(self.work):
                if name.endswith(suffixes):
                    shutil.copy(os.path.join(self.work, name), outputs)
        if self.failed == 0 and not os.environ.get("CDCJOIN_KEEP_WORK"):
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"work directory kept: {self.work}")
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


class RealStackTest(CheckedRun):
    def __init__(self, args):
        super().__init__("cdcjoin-realstack.")
        self.args = args
        self.stack = Stack(args.scripts, self.work)
        self.timings = {}
        self.encodings = {}
        self.degraded_report = []

    # -- parts ----------------------------------------------------------------------------------

    def start_kafka(self):
        kafka_dir = os.path.join(self.work, "kafka")
        began = time.monotonic()
        out = self.stack.script("kafka.sh", "start", kafka_dir)
        self.stack.stops.append(("kafka", lambda: self.stack.script("kafka.sh", "stop", kafka_dir)))
        self.timings["broker start (format + ready), s"] = round(time.monotonic() - began, 1)
        self.bootstrap = eval_exports(out)["KAFKA_BOOTSTRAP"]
        self.kafka_dir = kafka_dir
        log(f"broker at {self.bootstrap}")

    def start_source(self):
        source_dir = os.path.join(self.work, "source")
        out = self.stack.script("mariadb.sh", "start", source_dir, "--binlog=1",
                                "--env_prefix=SOURCE")
        self.stack.stops.append(("source MariaDB",
                                 lambda: self.stack.script("mariadb.sh", "stop", source_dir)))
        self.source = MariaDb(eval_exports(out)["SOURCE_PORT"])
        self.source_port = eval_exports(out)["SOURCE_PORT"]

    def target(self):
        host = os.environ.get("CDCJOIN_MYSQL_HOST")
        port = os.environ.get("CDCJOIN_MYSQL_PORT")
        if not host or not port:
            raise Failure("CDCJOIN_MYSQL_HOST/PORT must name the target MariaDB: run through "
                          "scripts/run_tests.sh")
        return MariaDb(port, host, os.environ.get("CDCJOIN_MYSQL_USER", "root"))

    def group_offsets(self, group):
        return kafka_group_offsets(self.args.scripts, self.bootstrap, group)

    # -- one variant ----------------------------------------------------------------------------

    def registry_certificate(self):
        """A CA and the registry's certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
        tls = os.path.join(self.work, "registry-tls")
        os.makedirs(tls, exist_ok=True)
        path = lambda name: os.path.join(tls, name)  # noqa: E731
        with open(path("san.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        for command in (
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=cdcjoin realstack test CA", "-keyout", path("ca.key"), "-out", path("ca.pem")],
                ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                 "-keyout", path("server.key"), "-out", path("server.csr")],
                ["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"),
                 "-CAkey", path("ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", path("san.cnf"), "-out", path("server.pem")]):
            run(["openssl", *command], timeout=60)
        return path("ca.pem"), path("server.pem"), path("server.key")

    def registry_secrets(self):
        """The registry's user (file self.registry_auth) and the same user with a wrong password
        (file self.registry_wrong_auth), fresh for each run: `user:password` files, mode 0600."""
        password = secrets.token_urlsafe(18)
        wrong = secrets.token_urlsafe(18)
        for attribute, secret in (("registry_auth", f"cdcjoin:{password}"),
                                  ("registry_wrong_auth", f"cdcjoin:{wrong}")):
            path = os.path.join(self.work, f"{attribute}.secret")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(secret + "\n")
            setattr(self, attribute, path)

    def begin_registry(self):
        """Starts the registry (a JVM taking 5-70 s) while the broker starts too. It serves
        HTTP (for Connect's converter) and HTTPS (for cdcjoind, which trusts self.registry_ca),
        and its Confluent-compatible API demands the user of self.registry_auth."""
        registry_dir = os.path.join(self.work, "registry")
        self.registry_ca, cert, key = self.registry_certificate()
        self.registry_secrets()
        self.registry_began = time.monotonic()
        self.registry_start = subprocess.Popen(
            [os.path.join(self.args.scripts, "registry.sh"), "start", registry_dir,
             f"--tls_cert={cert}", f"--tls_key={key}",
             f"--basic_auth_file={self.registry_auth}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stack.stops.append(("registry", lambda: self.stack.script(
            "registry.sh", "stop", registry_dir)))

    def finish_registry(self):
        try:
            out, err = self.registry_start.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            self.registry_start.kill()
            raise Failure("registry.sh start did not return in 300 s")
        if self.registry_start.returncode != 0:
            raise Failure(f"registry.sh start failed:\n{err[-4000:]}")
        self.timings["registry start (beside the broker's), s"] = round(
            time.monotonic() - self.registry_began, 1)
        exports = eval_exports(out)
        self.registry_url = exports["REGISTRY_URL"]
        self.registry_ccompat_url = exports["REGISTRY_CCOMPAT_URL"]
        self.registry_tls_ccompat_url = exports["REGISTRY_TLS_URL"] + "/apis/ccompat/v7"
        log(f"registry at {self.registry_url} and {self.registry_tls_ccompat_url}")

    def variant(self, kind):
        """kind: "true"/"false" (JSON, schemas.enable) or "avro"."""
        avro = kind == "avro"
        # Avro always carries its schema: every column is AUTO, as with schemas.enable=true.
        schemas = kind != "false"
        full = kind == "true"  # The operations checks run once, on the JSON variant with schemas.
        tag = {"true": "s", "false": "n", "avro": "a"}[kind]
        database = f"rs_{tag}"
        prefix = f"cdc{tag}"
        rng = random.Random({"true": 11, "false": 12, "avro": 13}[kind])
        pairs = [pair_kind(rng) for pair_kind in (SeedPair, TypedPair)
                 if pair_kind.name in self.args.pairs]
        log(f"== variant {kind}: source database {database}, topics {prefix}.*")
        self.source.execute(f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"
                            " CHARACTER SET utf8mb4;")
        for pair in pairs:
            self.source.execute(";\n".join(pair.source_ddl) + ";", database)
        # Snapshot material: rows that exist before the connector starts.
        self.source.execute("\n".join(s for p in pairs for s in p.seed(
            1500 if p.name == "seed" else 60)), database)

        # Connect starts (and snapshots) while the first transactions run.
        connect_dir = os.path.join(self.work, f"connect-{tag}")
        if schemas:
            # BIGINT UNSIGNED as an exact Decimal (scale 0) instead of a wrapped int64.
            extra = ["--set", "bigint.unsigned.handling.mode=precise"]
        else:
            # Without the schema a DECIMAL's base64 bytes cannot be read (the scale is in the
            # schema): Debezium writes it as exact text instead. BIGINT UNSIGNED stays a Decimal
            # in `precise` mode even then, so it keeps the default `long` (wrapped int64) and the
            # mapping says UINT64.
            extra = ["--set", "decimal.handling.mode=string"]
        began = time.monotonic()
        connect_args = [
            f"--bootstrap={self.bootstrap}", f"--source_port={self.source_port}",
            f"--database={database}", f"--schemas={'true' if schemas else 'false'}",
            f"--topic_prefix={prefix}", f"--server_id={5400 + 'sna'.index(tag)}", *extra]
        if avro:
            connect_args += ["--converter=avro", f"--registry={self.registry_url}"]
        connect = subprocess.Popen(
            [os.path.join(self.args.scripts, "connect.sh"), "start", connect_dir, *connect_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stack.stops.append((f"connect-{tag}", lambda: self.stack.script(
            "connect.sh", "stop", connect_dir)))

        daemons = self.start_daemons(tag, prefix, database, pairs, schemas, avro)
        during_snapshot = [t for p in pairs for t in p.transactions(150)]
        self.source.execute("\n".join(during_snapshot), database)
        try:
            out, err = connect.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            connect.kill()
            raise Failure("connect.sh start did not return in 300 s")
        if connect.returncode != 0:
            raise Failure(f"connect.sh start failed:\n{err[-4000:]}")
        self.timings[f"Connect start to RUNNING + snapshot topics ({tag}), s"] = round(
            time.monotonic() - began, 1)
        log(f"connector RUNNING after {time.monotonic() - began:.1f}s")
        streaming = [t for p in pairs for t in p.transactions(300)]
        self.source.execute("\n".join(streaming), database)
        log(f"workload done: {len(during_snapshot)} statements during the snapshot, "
            f"{len(streaming)} while streaming")
        if not avro:  # kcat shows Avro as bytes: nothing to learn from it here.
            self.capture(prefix, database, schemas, pairs)

        for daemon in daemons:
            self.check(f"{daemon.name}: target equals the source join",
                       lambda d=daemon: self.converges(d, pairs, timeout=240))
        if avro:
            ca_file_setting = f' ca_file: "{self.registry_ca}"'
            self.check(f"{daemons[0].name}: without schema_registry.ca_file the registry is refused",
                       lambda: self.registry_refuses(
                           daemons[0], "noca", lambda config: config.replace(ca_file_setting, ""),
                           "the registry's certificate refused", "certificate"))
            self.check(f"{daemons[0].name}: with a wrong password the registry answers 401",
                       lambda: self.registry_refuses(
                           daemons[0], "badauth",
                           lambda config: config.replace(self.registry_auth,
                                                         self.registry_wrong_auth),
                           "the registry's 401", "HTTP 401, the registry refused the user"))

        # Operations: Kafka's view of the group equals cdcjoinctl's.
        for daemon in daemons:
            self.check(f"{daemon.name}: ConsumerGroupCommand == cdcjoinctl status --json",
                       lambda d=daemon: self.offsets_agree(d))

        # A connector restart (Debezium resumes from its stored binlog position) converges.
        if full:
            def restart():
                self.stack.script("connect.sh", "restart", connect_dir)
                self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)),
                                    database)
                for daemon in daemons:
                    self.converges(daemon, pairs, timeout=180)
            self.check(f"{tag}: connector restart, more changes, converges", restart)

            # A re-snapshot: Connect restarted without its offsets snapshots every row again
            # ("r" events long after streaming began), then streams on. Nothing changes while it
            # is down: a delete made then would never reach Kafka (the new snapshot only reads
            # the rows that exist), and the target would rightly keep the row.
            # connect.sh returns once the connector runs (the topics exist already): changes
            # made before the new snapshot has taken its position would be invisible too, so
            # wait for the snapshot to complete.
            def snapshots_completed():
                with open(os.path.join(connect_dir, "connect.log"), errors="replace") as f:
                    return f.read().count("Snapshot ended with SnapshotResult [status=COMPLETED")

            def resnapshot():
                self.stack.script("connect.sh", "stop", connect_dir)
                os.remove(os.path.join(connect_dir, "connect.offsets"))
                done_before = snapshots_completed()
                self.stack.script("connect.sh", "start", connect_dir, *connect_args)
                wait_for("the re-snapshot to complete",
                         lambda: (snapshots_completed() > done_before,
                                  f"{snapshots_completed()} snapshots completed"), 180, 0.5)
                self.source.execute("\n".join(t for p in pairs for t in p.transactions(20)),
                                    database)
                for daemon in daemons:
                    self.converges(daemon, pairs, timeout=180)
            self.check(f"{tag}: re-snapshot (r events after streaming) converges", resnapshot)

        if full:
            self.check(f"{daemons[0].name}: static member SIGKILLed and restarted is assigned "
                       "at once, converges",
                       lambda: self.static_member_restart(daemons[0], pairs, database))

            self.check(f"{daemons[0].name}: fenced by a copy with its group.instance.id, "
                       "replaces its consumer once the copy is gone, converges",
                       lambda: self.fenced_static_member(daemons[0], pairs, database))

        if full and self.args.broker_faults:
            self.check(f"{tag}: broker SIGSTOP 20 s mid-stream, SIGCONT, converges",
                       lambda: self.broker_pause(daemons, pairs, database))
            self.check(f"{tag}: broker SIGKILL mid-stream, restart, converges",
                       lambda: self.broker_kill(daemons, pairs, database))

        for daemon in daemons:
            daemon.stop()
            if daemon.process.returncode != 0:
                self.fail(f"{daemon.name}: exit code {daemon.process.returncode}",
                          daemon.log_tail())
        self.stack.script("connect.sh", "stop", connect_dir)

    def start_daemons(self, tag, prefix, database, pairs, schemas, avro=False):
        daemons = []
        target = self.target()
        for mode in ("DB_UPSERT", "WINDOWED"):
            for pair in pairs:
                name = f"{pair.name}-{tag}-{mode.lower()}"
                target_db = f"realstack_{tag}_{pair.name}_{mode.lower()}"
                target.execute(f"DROP DATABASE IF EXISTS {target_db}; CREATE DATABASE {target_db}"
                               f" CHARACTER SET utf8mb4; USE {target_db}; {pair.target_ddl};")
                window = ""
                if mode == "WINDOWED":
                    window = (f'window {{ join_type: OUTER window_ms: 2000 grace_ms: 500'
                              f' idle_flush_ms: 300 state_dir: "{self.work}/state-{name}" }}')
                config = f"""
kafka {{
  brokers: "{self.bootstrap}"
  group_id: "cdcjoin-{name}"
  # Static membership: a restart takes the old member's place without waiting out its session.
  group_instance_id: "{name}-0"
  dead_letter_topic: "cdcjoin.dlq.{name}"
  session_timeout_ms: 30000
  commit_interval_ms: 300
  # The daemons start before Debezium has created the topics; librdkafka notices a new topic
  # of its subscription only at its next metadata refresh (default 5 minutes).
  properties {{ key: "topic.metadata.refresh.interval.ms" value: "2000" }}
}}
target {{
  table: "{pair.target}"
  key_columns: "{pair.columns[0]}"
  database {{
    host: "{os.environ['CDCJOIN_MYSQL_HOST']}"
    port: {os.environ['CDCJOIN_MYSQL_PORT']}
    user: "{os.environ.get('CDCJOIN_MYSQL_USER', 'root')}"
    database: "{target_db}"
  }}
}}
{self.source_config(pair, prefix, database, schemas, avro)}
sink {{ lanes: 2 batch_rows: 200 linger_ms: 5 }}
mode: {mode}
{window}
admin {{ listen_address: "127.0.0.1:0" }}
metrics {{ disabled: true }}
"""
                path = os.path.join(self.work, f"{name}.textproto")
                with open(path, "w") as f:
                    f.write(config)
                daemon = Daemon(self.args.cdcjoind, path, self.work, name)
                daemon.pair = pair
                daemon.group = f"cdcjoin-{name}"
                daemon.target = target
                daemon.target_db = target_db
                daemon.topics = [f"{prefix}.{database}.{t}" for t in pair.tables]
                daemon.dlq = f"cdcjoin.dlq.{name}"
                self.stack.stops.append((name, daemon.stop))
                daemons.append(daemon)
        return daemons

    def source_config(self, pair, prefix, database, schemas, avro):
        sources = pair.sources(prefix, database, schemas)
        if not avro:
            return sources
        # The same mapping; both keys and values in Avro, schemas from the registry over HTTPS,
        # with basic auth.
        sources = sources.replace("  key_fields:",
                                  "  value_format: AVRO\n  key_format: AVRO\n  key_fields:")
        return sources + (f'schema_registry {{ url: "{self.registry_tls_ccompat_url}"'
                          f' ca_file: "{self.registry_ca}"'
                          f' basic_auth_file: "{self.registry_auth}" }}\n')

    def registry_refuses(self, daemon, suffix, edit, what, reason):
        """`daemon`'s configuration changed by `edit` (text -> text), in a group and a dead-letter
        topic of its own: the registry refuses it, so it holds its partitions: DEGRADED with
        `reason` in its last error, and over several commit intervals it dead-letters nothing,
        writes nothing and commits nothing (its view and then Kafka's). Then stopped."""
        name = f"{daemon.name}-{suffix}"
        with open(os.path.join(self.work, f"{daemon.name}.textproto")) as f:
            config = f.read()
        changed = edit(config)
        derived = (changed.replace(f'"cdcjoin-{daemon.name}"', f'"cdcjoin-{name}"')
                   .replace(f'"{daemon.name}-0"', f'"{name}-0"')
                   .replace(f'"cdcjoin.dlq.{daemon.name}"', f'"cdcjoin.dlq.{name}"'))
        if changed == config or derived.count(name) != 3:
            raise Failure(f"cannot derive {name}'s configuration from:\n{config}")
        path = os.path.join(self.work, f"{name}.textproto")
        with open(path, "w") as f:
            f.write(derived)
        probe = Daemon(self.args.cdcjoind, path, self.work, name)
        self.stack.stops.append((name, probe.stop))
        try:
            address = probe.admin_address()

            def status():
                return json.loads(run([self.args.cdcjoinctl, f"--address={address}", "status",
                                       "--json"], timeout=30))

            def passed_nothing(seen):
                """What the probe let through: dead letters, rows, commits (empty: nothing)."""
                counters = seen.get("counters", {})
                leaks = {k: counters.get(k, 0) for k in ("dead_lettered", "rows_written",
                                                         "offset_commits")}
                leaks = {k: v for k, v in leaks.items() if int(v) != 0}
                committed = [p for p in seen.get("partitions", [])
                             if int(p.get("committed_offset", -1)) >= 0]
                if committed:
                    leaks["committed partitions"] = committed
                return leaks

            def refused():
                seen = status()
                leaks = passed_nothing(seen)
                if leaks:
                    raise Failure(f"{name} let records through while refused: {leaks}\n{seen}")
                held = [p for p in seen.get("partitions", [])
                        if int(p.get("high_watermark", -1)) > 0]
                return (seen.get("state", "").startswith("DEGRADED")
                        and reason in seen.get("last_error", "") and bool(held)), seen
            seen = wait_for(f"{name}: DEGRADED, {what}", refused, 120, 1.0)
            log(f"{name}: {seen.get('state')}: {seen.get('last_error', '')[:240]}")
            # Holding is a property over time: it keeps refusing, through ten commit intervals
            # (300 ms) and several of the registry client's retries (1 s), with nothing let through.
            held_until = time.monotonic() + 5.0

            def still_refused():
                holding, seen = refused()
                if not holding:
                    raise Failure(f"{name} stopped holding:\n{seen}")
                return time.monotonic() >= held_until, seen
            wait_for(f"{name}: still holding, nothing let through, for 5 s", still_refused, 30,
                     0.5)
            offsets, text = self.group_offsets(f"cdcjoin-{name}")
            committed = {k: v for k, v in offsets.items() if v[0] >= 0}
            if committed:
                raise Failure(f"Kafka has offsets committed by {name}: {committed}\n{text}")
        finally:
            probe.stop()

    def capture(self, prefix, database, schemas, pairs):
        """Keeps the real Debezium events (first records of each topic) beside the logs, and
        collects the field encodings the schemas name."""
        for table in ("User", "UserExtData", "Typed", "TypedExt"):
            if not any(table in p.tables for p in pairs):
                continue
            topic = f"{prefix}.{database}.{table}"
            out = run(["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-o", "beginning",
                       "-c", "5", "-e", "-q", "-f", "KEY: %k\\nVALUE: %s\\n"], timeout=60,
                      check=False)
            with open(os.path.join(self.work, f"events.{topic}.txt"), "w") as f:
                f.write(out)
            if not schemas:
                continue
            for line in out.splitlines():
                if not line.startswith("VALUE: {"):
                    continue
                envelope = json.loads(line[len("VALUE: "):])
                for field in envelope["schema"]["fields"]:
                    if field["field"] != "after":
                        continue
                    for column in field["fields"]:
                        encoding = column["type"] + (f" {column['name']}" if "name" in column else "")
                        if "parameters" in column:
                            encoding += " " + json.dumps(column["parameters"], sort_keys=True)
                        self.encodings[f"{table}.{column['field']}"] = encoding
                break

    # -- broker faults --------------------------------------------------------------------------

    def broker_pid(self):
        with open(os.path.join(self.kafka_dir, "kafka.pid")) as f:
            return int(f.read().strip())

    def sample_states(self, daemons, seconds):
        """What each daemon's status says, once a second, for `seconds`: {name: [states]}."""
        seen = {d.name: [] for d in daemons}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for daemon in daemons:
                daemon.check_running()
                out = subprocess.run([self.args.cdcjoinctl, f"--address={daemon.admin_address()}",
                                      "status", "--json"], capture_output=True, text=True,
                                     timeout=10)
                state = "no answer"
                if out.returncode == 0:
                    status = json.loads(out.stdout)
                    state = status.get("state", "?")
                    if status.get("last_error"):
                        state += f" ({status['last_error'][:80]})"
                if not seen[daemon.name] or seen[daemon.name][-1] != state:
                    seen[daemon.name].append(state)
            time.sleep(1)
        return seen

    def report_states(self, what, seen):
        for name, states in seen.items():
            degraded = any(s.startswith("DEGRADED") for s in states)
            self.degraded_report.append(f"{what}: {name} states {states}")
            log(f"{what}: {name} reported {' -> '.join(states)}"
                + ("" if degraded else "  << never DEGRADED"))
            if self.args.strict_degraded and not degraded:
                raise Failure(f"{name} never reported DEGRADED during {what}: {states}")

    def broker_pause(self, daemons, pairs, database):
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)), database)
        pid = self.broker_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)),
                                database)
            seen = self.sample_states(daemons, 20)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.report_states("broker SIGSTOP 20 s", seen)
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(20)), database)
        for daemon in daemons:
            self.converges(daemon, pairs, timeout=240)

    def static_member_restart(self, daemon, pairs, database):
        """SIGKILL leaves the member registered for its 30 s session; a dynamic member's restart
        would wait that out (the group rebalances only once the dead member expires). The same
        group.instance.id takes its place at once."""
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)), database)
        before = daemon.assignments()
        daemon.process.kill()
        daemon.process.wait(30)
        began = time.monotonic()
        daemon.restart()
        wait_for(f"{daemon.name} to be assigned again, well inside the dead member's session",
                 lambda: (daemon.assignments() > before, daemon.log_tail(5)), 15, 0.1)
        self.timings["static member restart after SIGKILL to assignment, s"] = round(
            time.monotonic() - began, 1)
        self.converges(daemon, pairs, timeout=180)

    def fenced_static_member(self, daemon, pairs, database):
        """A copy started with the member's group.instance.id (a pod started twice by mistake)
        takes its place, and the broker fences the member: librdkafka makes that fatal for its
        consumer. Once the copy is SIGKILLed the member must replace its consumer and serve its
        partitions again, not stand still for ever."""
        def count(line):
            with open(daemon.log_path, errors="replace") as f:
                return f.read().count(line)
        failed_before = count("kafka consumer failed for good")
        replaced_before = count("a new kafka consumer joins group")
        assigned_before = daemon.assignments()
        copy = Daemon(self.args.cdcjoind, daemon.config_path, self.work, f"{daemon.name}-copy")
        self.stack.stops.append((copy.name, copy.stop))
        wait_for(f"{copy.name} to take the member's partitions",
                 lambda: (copy.assignments() > 0, copy.log_tail(5)), 60, 0.2)
        wait_for(f"{daemon.name} to find itself fenced",
                 lambda: (count("kafka consumer failed for good") > failed_before,
                          daemon.log_tail(10)), 60, 0.2)
        copy.process.kill()
        copy.process.wait(30)
        began = time.monotonic()
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)), database)
        wait_for(f"{daemon.name} to be assigned again with a new consumer",
                 lambda: (count("a new kafka consumer joins group") > replaced_before and
                          daemon.assignments() > assigned_before, daemon.log_tail(10)), 120, 0.2)
        self.timings["fenced static member: copy SIGKILLed to reassignment, s"] = round(
            time.monotonic() - began, 1)
        self.converges(daemon, pairs, timeout=180)

    def broker_kill(self, daemons, pairs, database):
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)), database)
        pid = self.broker_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for("the broker to die", lambda: (not os.path.exists(f"/proc/{pid}") or
                                               open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                                               pid), 30, 0.1)
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(40)), database)
        seen = self.sample_states(daemons, 15)
        began = time.monotonic()
        self.stack.script("kafka.sh", "start", self.kafka_dir)
        self.timings["broker restart after SIGKILL, s"] = round(time.monotonic() - began, 1)
        self.report_states("broker SIGKILL, down 15 s", seen)
        self.source.execute("\n".join(t for p in pairs for t in p.transactions(20)), database)
        for daemon in daemons:
            self.converges(daemon, pairs, timeout=300)

    # -- judgements -----------------------------------------------------------------------------

    def table_diff(self, daemon):
        pair = daemon.pair
        expected = {row[0]: row for row in self.source.rows(pair.expected_sql, self.database_of(
            daemon))}
        actual = {row[0]: row for row in daemon.target.rows(pair.actual_sql, daemon.target_db)}
        diffs = []
        for key in sorted(set(expected) | set(actual)):
            want = expected.get(key)
            got = actual.get(key)
            # CLEAR_COLUMNS on both sides: a row whose every non-key column is NULL is "no row".
            if want is not None and all(v is None for v in want[1:]):
                want = None
            if got is not None and all(v is None for v in got[1:]):
                got = None
            if want != got:
                if want is None or got is None:
                    diffs.append(f"key {key}: expected {want}, target has {got}")
                else:
                    cells = [f"{pair.columns[i]}: expected {want[i]!r}, target {got[i]!r}"
                             for i in range(len(want)) if want[i] != got[i]]
                    diffs.append(f"key {key}: " + "; ".join(cells))
        return diffs, len(expected)

    def database_of(self, daemon):
        return daemon.topics[0].split(".")[1]

    def converges(self, daemon, pairs, timeout):
        """Waits until the group committed the end of its topics and the target equals the
        source join, with a deadline; on timeout prints the differences."""
        del pairs

        def condition():
            daemon.check_running()
            offsets, text = self.group_offsets(daemon.group)
            lagging = [f"{t}[{p}] {c}/{e}" for (t, p), (c, e) in offsets.items() if c < e]
            missing = [t for t in daemon.topics if not any(k[0] == t for k in offsets)]
            if lagging or missing:
                return False, f"group {daemon.group}: lagging {lagging}, no offsets for {missing}\n{text}"
            diffs, rows = self.table_diff(daemon)
            if diffs:
                return False, (f"{len(diffs)} rows differ (of {rows} expected), first ones:\n  " +
                               "\n  ".join(diffs[:25]))
            return True, rows

        try:
            rows = wait_for(f"{daemon.name} to converge", condition, timeout, 1.0)
        except Failure as failure:
            raise Failure(f"{failure}\n-- dead letters of {daemon.name}:\n{self.dead_letters(daemon)}"
                          f"\n-- log of {daemon.name}:\n{daemon.log_tail(40)}")
        log(f"{daemon.name}: target equals the source join ({rows} keys)")

    def dead_letters(self, daemon):
        return run(["kcat", "-b", self.bootstrap, "-C", "-t", daemon.dlq, "-o", "beginning", "-e",
                    "-q", "-c", "5", "-f", "HEADERS: %h\\nVALUE: %s\\n"], timeout=30,
                   check=False)[:6000] or "(none)"

    def offsets_agree(self, daemon):
        def condition():
            kafka_view, text = self.group_offsets(daemon.group)
            status = json.loads(run([self.args.cdcjoinctl, f"--address={daemon.admin_address()}",
                                     "status", "--json"], timeout=30))
            ours = {(p["topic"], int(p.get("partition", 0))):
                    int(p.get("committed_offset", p.get("committedOffset", -1)))
                    for p in status.get("partitions", [])}
            theirs = {k: v[0] for k, v in kafka_view.items()}
            agreed = ours == theirs and ours and all(v >= 0 for v in ours.values())
            return agreed, (f"ConsumerGroupCommand: {theirs}\n"
                                             f"cdcjoinctl: {ours}\n{text}")
        seen = wait_for(f"{daemon.name}: equal committed offsets", condition, 30, 1.0)
        log(f"{daemon.name}: ConsumerGroupCommand and cdcjoinctl agree: {seen}")

    def main(self):
        try:
            if "avro" in self.args.variants:
                self.begin_registry()
            self.start_kafka()
            self.start_source()
            if "avro" in self.args.variants:
                self.finish_registry()
            for kind in self.args.variants:
                try:
                    self.variant(kind)
                except Exception:
                    self.fail(f"variant {kind}", traceback.format_exc())
        except Exception:
            self.fail("real stack start", traceback.format_exc())
        finally:
            self.stack.stop_all()
            log("start-up times: " + json.dumps(self.timings))
            try:
                with open(os.path.join(self.kafka_dir, "startup_ms")) as f:
                    log(f"broker format / start, ms: {f.read().strip()}")
            except (OSError, AttributeError):
                pass
            for line in self.degraded_report:
                log(f"states during a broker fault: {line}")
            if self.encodings:
                log("Debezium field encodings seen (schemas.enable=true):")
                for field, encoding in sorted(self.encodings.items()):
                    print(f"  {field}: {encoding}")
        return self.finish((".log", ".txt", ".textproto"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdcjoind", required=True)
    parser.add_argument("--cdcjoinctl", required=True)
    parser.add_argument("--scripts", required=True, help="the directory of kafka.sh & co.")
    parser.add_argument("--variants", default="true,false",
                        help="variants to run, comma-separated: true, false (JSON with and "
                        "without schemas.enable), avro")
    parser.add_argument("--pairs", default="seed,typed", help="table pairs: seed, typed")
    parser.add_argument("--broker_faults", default="true",
                        help="SIGSTOP and SIGKILL the broker mid-stream (schemas variant)")
    parser.add_argument("--strict_degraded", default="true",
                        help="fail when a daemon never reports DEGRADED during a broker fault")
    args = parser.parse_args()
    args.pairs = args.pairs.split(",")
    args.broker_faults = args.broker_faults == "true"
    args.strict_degraded = args.strict_degraded == "true"
    args.variants = args.variants.split(",")
    if not os.environ.get("CDCJOIN_REALSTACK_LIB"):
        print("CDCJOIN_REALSTACK_LIB is not set: run through scripts/run_tests.sh, or "
              "export CDCJOIN_REALSTACK_LIB=$(scripts/realstack_deps.sh)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    if "avro" in args.variants and not os.environ.get("CDCJOIN_REGISTRY_HOME"):
        print("CDCJOIN_REGISTRY_HOME is not set: run through scripts/run_tests.sh, or export "
              "CDCJOIN_REGISTRY_HOME=$(dirname $(scripts/registry_deps.sh))", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    # Bazel ends a test that overruns its timeout with SIGTERM: turn it into SystemExit so the
    # `finally` stops the broker, Connect, the source MariaDB and the daemons by PID.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return RealStackTest(args).main()


if __name__ == "__main__":
    sys.exit(main())
