"""Calls a running cdcjoind with stubs generated from proto/cdcjoin/v1/*.proto: GetStatus,
WatchStatus, an invalid SwitchMode, and the standard grpc.health.v1 Check.

usage: python_admin_client.py HOST:PORT RECORDS_PRODUCED
"""
import sys
import time

import grpc

from proto.cdcjoin.v1 import admin_pb2, admin_pb2_grpc, config_pb2

try:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError:  # generated from /usr/share/grpc-proto by the test script
    from health_gen import health_pb2, health_pb2_grpc


def main():
    address, produced = sys.argv[1], int(sys.argv[2])
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=10)
    admin = admin_pb2_grpc.AdminStub(channel)

    # The table already equals the reference model; offsets are committed every second.
    deadline = time.time() + 30
    while True:
        status = admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=5)
        if status.total_lag == 0 and len(status.partitions) == 16 or time.time() > deadline:
            break
        time.sleep(0.2)
    print("GetStatus: mode=%s state=%s partitions=%d events=%d rows=%d lag=%d version=%s" % (
        config_pb2.JoinMode.Name(status.mode), admin_pb2.State.Name(status.state),
        len(status.partitions), status.counters.events_total, status.counters.rows_written,
        status.total_lag, status.version))
    assert status.mode == config_pb2.DB_UPSERT, status
    assert status.state == admin_pb2.RUNNING, status
    assert status.assigned
    assert len(status.partitions) == 16, status.partitions
    assert sum(p.high_watermark for p in status.partitions) == produced
    assert status.counters.events_total == produced, status.counters
    assert status.total_lag == 0
    assert {p.source for p in status.partitions} == {"user", "user_ext"}
    assert status.version

    updates = []
    for update in admin.WatchStatus(admin_pb2.WatchStatusRequest(interval_ms=100), timeout=5):
        updates.append(update)
        if len(updates) == 3:
            break
    assert [u.time_unix_ms for u in updates] == sorted(u.time_unix_ms for u in updates)
    print("WatchStatus: %d updates, %d ms apart" % (
        len(updates), updates[-1].time_unix_ms - updates[0].time_unix_ms))

    try:
        admin.SwitchMode(admin_pb2.SwitchModeRequest(), timeout=5)
        raise AssertionError("an unspecified mode was accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert error.details().startswith("mode:"), error.details()
        print("SwitchMode(UNSPECIFIED): %s %s" % (error.code().name, error.details()))

    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.time() + 20
    while True:
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        if reply.status == health_pb2.HealthCheckResponse.SERVING or time.time() > deadline:
            break
        time.sleep(0.2)
    print("health Check: %s" % health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reply = health.Check(health_pb2.HealthCheckRequest(service="cdcjoin.v1.Admin"), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        raise AssertionError("an unknown service was reported")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
    print("python admin client: ok")


if __name__ == "__main__":
    main()
