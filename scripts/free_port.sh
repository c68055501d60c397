# Sourced (not run) by the scripts that start servers: free_port prints a TCP port that is free
# on 127.0.0.1 now.
#
# Never one of the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
# default): a server binds its port seconds after it is chosen (a JVM starting), and in the
# meantime a port of that range can become the local end of any outgoing connection on the
# machine. That happened to Kafka Connect's REST port in a full test run ("Failed to bind to
# 127.0.0.1:37743 ... Address already in use"). Random below that range, so scripts starting
# servers at the same time rarely pick the same port, and bound once here to see it is free.
free_port() {
  python3 - <<'PY'
import random
import socket

try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        ephemeral_low = int(ports.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 32768
low = 10000
for _ in range(1000):
    port = random.randrange(low, max(ephemeral_low, low + 1))
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    # Nothing free below the ephemeral range: the kernel's choice is better than none.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        print(probe.getsockname()[1])
PY
}
