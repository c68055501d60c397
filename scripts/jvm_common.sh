# Shared by scripts/kafka.sh and scripts/connect.sh (sourced, not run): the jar directory,
# loopback ports, PIDs, deadlines and log4j2 configuration for the JVMs of the real stack.
# The caller defines log() and die().

# The jar directory of tools/realstack/pom.xml, fetched on first use.
realstack_lib() {
  "$(dirname "${BASH_SOURCE[0]}")/realstack_deps.sh"
}

# shellcheck source=scripts/free_port.sh
source "$(dirname "${BASH_SOURCE[0]}")/free_port.sh"

pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Milliseconds since the epoch (start-up times are reported in ms).
now_ms() { date +%s%3N; }

# write_log4j2 FILE LOGFILE LEVEL: a log4j2 configuration sending everything at LEVEL to LOGFILE
# (the published POMs carry no backend configuration: without one the JVMs log nothing useful).
write_log4j2() {
  cat >"$1" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="$2" append="true">
      <PatternLayout pattern="[%d{ISO8601}] %p %m (%c{1})%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="org.apache.kafka" level="$3"/>
    <Logger name="kafka" level="$3"/>
    <Logger name="io.debezium" level="$3"/>
    <Logger name="org.reflections" level="ERROR"/>
    <!-- One line per REST request: the readiness polls would fill the log. -->
    <Logger name="org.apache.kafka.connect.runtime.rest.RestServer" level="WARN"/>
    <Root level="$3"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
XML
}

# stop_pid NAME PIDFILE TIMEOUT_S: SIGTERM, wait with a deadline, then SIGKILL (said loudly).
stop_pid() {
  local name=$1 pidfile=$2 timeout=$3 pid
  if [[ ! -f "$pidfile" ]]; then
    log "no $pidfile: nothing to stop"
    return 0
  fi
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || die "$pidfile does not hold a pid: '$pid'"
  if ! pid_alive "$pid"; then
    log "$name pid $pid is not running"
    rm -f "$pidfile"
    return 0
  fi
  log "stopping $name pid $pid"
  kill -CONT "$pid" 2>/dev/null || true  # a SIGSTOPped JVM (fault tests) could not act on TERM
  kill -TERM "$pid"
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$name pid $pid still running ${timeout}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 30))
      while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
  log "$name stopped"
}
