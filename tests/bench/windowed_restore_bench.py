#!/usr/bin/python3
"""How long a new owner takes to serve a WINDOWED partition whose previous owner held 1M keys.

    windowed_restore_bench.py --cdcjoind=PATH --cdcjoinctl=PATH --scripts=DIR [--keys=1000000]

On the real broker (scripts/kafka.sh) and the target MariaDB of CDCJOIN_MYSQL_*: one partition
of the seed's User topic gets one Debezium create event per key, all inside one 10-minute window,
so the owner holds every key in an open window and can commit nothing past the first event. The
owner consumes everything and is SIGKILLed. Then, each alone:

- a new owner with an empty state directory (another machine): it rebuilds the windows by
  consuming the partition again from the group's committed offset, which is all it can do
  without a changelog topic;
- the old owner restarted on its own state directory (the same pod): it starts where its state
  says, past everything it holds.

Printed: the time from start to consuming the partition's end, for each, and as one JSON line.
Not part of `bazel test` (a benchmark: it takes minutes and measures this machine).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from realstack_e2e_test import (  # noqa: E402  (the real-stack test's parts, shared)
    Daemon, MariaDb, SeedPair, Stack, eval_exports, log, run, wait_for)

PREFIX = "rb"
DATABASE = "restore"


def consumed(cdcjoinctl, daemon):
    if daemon.process.poll() is not None or not os.path.exists(daemon.admin_file):
        return 0
    address = open(daemon.admin_file).read().strip()
    out = subprocess.run([cdcjoinctl, f"--address={address}", "status", "--json"],
                         capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        return 0
    counters = json.loads(out.stdout).get("counters", {})
    return int(counters.get("eventsTotal", counters.get("events_total", 0)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdcjoind", required=True)
    parser.add_argument("--cdcjoinctl", required=True)
    parser.add_argument("--scripts", required=True)
    parser.add_argument("--keys", type=int, default=1000000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="cdcjoin-restore.", dir="/tmp")
    stack = Stack(args.scripts, work)
    figures = {"keys": args.keys}
    try:
        kafka_dir = os.path.join(work, "kafka")
        out = stack.script("kafka.sh", "start", kafka_dir)
        stack.stops.append(("kafka", lambda: stack.script("kafka.sh", "stop", kafka_dir)))
        bootstrap = eval_exports(out)["KAFKA_BOOTSTRAP"]
        topics = [f"{PREFIX}.{DATABASE}.{table}" for table in SeedPair.tables]
        for topic in topics:
            run([os.path.join(args.scripts, "kafka.sh"), "tool", "org.apache.kafka.tools.TopicCommand",
                 "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--partitions", "1",
                 "--replication-factor", "1"], timeout=120)
        began = time.monotonic()
        events = os.path.join(work, "events.txt")
        base_ms = 1_700_000_000_000
        with open(events, "w") as f:
            for key in range(1, args.keys + 1):
                f.write(f'{{"id":{key}}}\t{{"op":"c","after":{{"id":{key},"simpleName":"n{key}",'
                        f'"dateCreated":null}},"source":{{"ts_ms":{base_ms + key % 1000}}}}}\n')
        run(["kcat", "-b", bootstrap, "-P", "-t", topics[0], "-K", "\t", "-z", "lz4",
             "-X", "linger.ms=50", "-l", events], timeout=600)
        log(f"{args.keys} events produced in {time.monotonic() - began:.1f} s")

        target = MariaDb(os.environ["CDCJOIN_MYSQL_PORT"], os.environ["CDCJOIN_MYSQL_HOST"],
                         os.environ.get("CDCJOIN_MYSQL_USER", "root"))
        target.execute("DROP DATABASE IF EXISTS restore_bench; CREATE DATABASE restore_bench"
                       f" CHARACTER SET utf8mb4; USE restore_bench; {SeedPair.target_ddl};")

        def start(name, state_dir):
            config = f"""
kafka {{
  brokers: "{bootstrap}"
  group_id: "cdcjoin-restore"
  dead_letter_topic: "cdcjoin.dlq.restore"
  session_timeout_ms: 6000
}}
target {{
  table: "Nickname"
  key_columns: "userId"
  database {{
    host: "{os.environ['CDCJOIN_MYSQL_HOST']}"
    port: {os.environ['CDCJOIN_MYSQL_PORT']}
    user: "{os.environ.get('CDCJOIN_MYSQL_USER', 'root')}"
    database: "restore_bench"
  }}
}}
{SeedPair.sources(PREFIX, DATABASE, True)}
mode: WINDOWED
window {{ join_type: OUTER window_ms: 600000 grace_ms: 0 idle_flush_ms: 3600000
          state_dir: "{state_dir}" }}
admin {{ listen_address: "127.0.0.1:0" }}
metrics {{ disabled: true }}
"""
            path = os.path.join(work, f"{name}.textproto")
            with open(path, "w") as f:
                f.write(config)
            daemon = Daemon(args.cdcjoind, path, work, name)
            stack.stops.append((name, daemon.stop))
            return daemon

        def serve(daemon, what):
            """From assignment (a dead member's session must expire first) to the end."""
            wait_for(f"{what} to be assigned", lambda: (daemon.assignments() > 0,
                                                        daemon.log_tail(3)), 120, 0.05)
            began = time.monotonic()
            wait_for(f"{what} to consume all {args.keys}",
                     lambda: (consumed(args.cdcjoinctl, daemon) >= args.keys,
                              consumed(args.cdcjoinctl, daemon)), 900, 0.2)
            return round(time.monotonic() - began, 1)

        old_state = os.path.join(work, "state-old")
        owner = start("owner", old_state)
        figures["first_owner_s"] = serve(owner, "the first owner")
        owner.process.send_signal(signal.SIGKILL)
        owner.process.wait(30)
        log(f"the first owner consumed every key in {figures['first_owner_s']} s; SIGKILLed")

        newcomer = start("new-owner", os.path.join(work, "state-new"))
        figures["new_owner_empty_state_s"] = serve(newcomer, "a new owner with an empty state")
        newcomer.process.send_signal(signal.SIGKILL)
        newcomer.process.wait(30)
        log(f"a new owner (empty state) served the partition after "
            f"{figures['new_owner_empty_state_s']} s")

        back = start("owner-again", old_state)
        began = time.monotonic()
        wait_for("the old owner to be assigned again",
                 lambda: (back.assignments() > 0, back.log_tail(3)), 120, 0.1)
        figures["old_owner_own_state_assigned_s"] = round(time.monotonic() - began, 1)
        with open(back.log_path) as f:
            text = f.read()
        figures["old_owner_start_offset"] = text.split(f"{topics[0]}[0]@", 1)[1].split()[0]
        log(f"the old owner on its own state: assigned after "
            f"{figures['old_owner_own_state_assigned_s']} s, consuming from offset "
            f"{figures['old_owner_start_offset']}")
        back.process.send_signal(signal.SIGKILL)
        back.process.wait(30)
    finally:
        stack.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
