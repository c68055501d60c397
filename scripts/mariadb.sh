#!/usr/bin/env bash
# A private MariaDB for tests, benchmarks and the demo: installed into a directory of its own,
# listening on 127.0.0.1 only, run as root without a system service, stopped by its PID.
#
#   scripts/mariadb.sh start DIR [PORT] [--binlog=SERVER_ID] [--env_prefix=NAME]
#                                         # prints `export CDCJOIN_MYSQL_...` lines: eval them
#   scripts/mariadb.sh stop DIR
#
# --binlog=SERVER_ID makes a CDC *source* for Debezium: log_bin, binlog_format=ROW,
# binlog_row_image=FULL and that server_id. --env_prefix renames the printed variables
# (NAME_HOST, NAME_PORT, NAME_USER), so that a source and a target can both be eval'ed:
#   eval "$(scripts/mariadb.sh start /tmp/src --binlog=1 --env_prefix=CDCJOIN_SOURCE_MYSQL)"
#
# Typical use:
#   eval "$(scripts/mariadb.sh start /tmp/cdcjoin-mysql)"
#   bazel test //tests:mysql_writer_test
#   scripts/mariadb.sh stop /tmp/cdcjoin-mysql
set -euo pipefail

usage() {
  echo "usage: $0 start DIR [PORT] [--binlog=SERVER_ID] [--env_prefix=NAME] | stop DIR" >&2
  exit 2
}

# Everything but the export lines goes to stderr so that `eval "$(... start ...)"` stays clean.
log() { echo "mariadb.sh: $*" >&2; }

die() {
  log "ERROR: $*"
  exit 1
}

# shellcheck source=scripts/free_port.sh
source "$(dirname "$0")/free_port.sh"

find_bin() {
  local name
  for name in "$@"; do
    if command -v "${name}" >/dev/null 2>&1; then
      command -v "${name}"
      return 0
    fi
    for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      if [[ -x "${dir}/${name}" ]]; then
        echo "${dir}/${name}"
        return 0
      fi
    done
  done
  return 1
}

error_log_tail() {
  local dir=$1
  if [[ -f "${dir}/error.log" ]]; then
    log "last lines of ${dir}/error.log:"
    tail -n 30 "${dir}/error.log" >&2 || true
  fi
}

pid_alive() {
  local pid=$1
  [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null
}

start() {
  local dir=$1
  local port=${2:-}
  local server_id=${3:-}
  local env_prefix=${4:-CDCJOIN_MYSQL}
  local install_db mariadbd admin
  install_db=$(find_bin mariadb-install-db mysql_install_db) ||
    die "mariadb-install-db not found: install mariadb-server (apt-get install mariadb-server)"
  mariadbd=$(find_bin mariadbd mysqld) || die "mariadbd not found: install mariadb-server"
  admin=$(find_bin mariadb-admin mysqladmin) || die "mariadb-admin not found: install mariadb-client"

  mkdir -p "${dir}"
  dir=$(cd "${dir}" && pwd)
  local binlog=()
  if [[ -n "${server_id}" ]]; then
    [[ "${server_id}" =~ ^[0-9]+$ ]] || die "--binlog wants a numeric server id, got '${server_id}'"
    binlog=(--log-bin="${dir}/binlog" --binlog-format=ROW --binlog-row-image=FULL
      --server-id="${server_id}")
  fi

  if [[ -f "${dir}/mysqld.pid" ]] && pid_alive "$(cat "${dir}/mysqld.pid")"; then
    die "a MariaDB already runs from ${dir} (pid $(cat "${dir}/mysqld.pid")); stop it first"
  fi

  if [[ -z "${port}" ]]; then
    port=$(free_port)
  fi
  if ! [[ "${port}" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "port must be a number in 1..65535, got '${port}'"
  fi
  # Otherwise the ping below could be answered by whatever already listens there.
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
    die "port ${port} on 127.0.0.1 is already in use"
  fi

  if [[ ! -d "${dir}/data/mysql" ]]; then
    log "installing a new data directory in ${dir}/data"
    # Once more on a failure: a CI run saw one bootstrap fail on a loaded machine where every
    # later one passed. Its own error lines go to stderr; the tail of its output is boilerplate.
    local attempt
    for attempt in 1 2; do
      if "${install_db}" --no-defaults --datadir="${dir}/data" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"${dir}/install.log" 2>&1; then
        break
      fi
      grep -iE "error|fail|denied|cannot|can't" "${dir}/install.log" | head -n 20 >&2 || true
      ((attempt == 1)) || die "mariadb-install-db failed twice (full output in ${dir}/install.log)"
      log "mariadb-install-db failed; once more on an empty data directory"
      rm -rf "${dir}/data"
    done
  else
    log "reusing the data directory ${dir}/data"
  fi

  rm -f "${dir}/mysqld.pid"
  log "starting mariadbd on 127.0.0.1:${port}"
  # setsid: the server must outlive this script and the shell that eval'ed it, and must not
  # receive the terminal's SIGINT meant for a test run.
  # utf8mb4: with --no-defaults the server default is latin1 (Debian's config file that says
  # otherwise is skipped), and tables created without a charset could not hold the seed's Korean
  # nicknames.
  setsid "${mariadbd}" --no-defaults --user=root --datadir="${dir}/data" --port="${port}" \
    --bind-address=127.0.0.1 --socket="${dir}/mysqld.sock" --pid-file="${dir}/mysqld.pid" \
    --log-error="${dir}/error.log" --skip-name-resolve --innodb_flush_log_at_trx_commit=2 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci "${binlog[@]}" \
    </dev/null >/dev/null 2>&1 &
  local launched=$!

  local deadline=$((SECONDS + ${CDCJOIN_MARIADB_START_TIMEOUT_S:-60}))
  # Ready when our server has written its pid file (it does so once it listens) and answers.
  until [[ -s "${dir}/mysqld.pid" ]] &&
    "${admin}" --no-defaults --protocol=tcp --host=127.0.0.1 --port="${port}" --user=root \
      --connect-timeout=2 ping >/dev/null 2>&1; do
    if ! pid_alive "${launched}"; then
      error_log_tail "${dir}"
      die "mariadbd exited during startup (port ${port} busy? see ${dir}/error.log)"
    fi
    if ((SECONDS >= deadline)); then
      error_log_tail "${dir}"
      kill -TERM "${launched}" 2>/dev/null || true
      die "mariadbd did not answer ping on 127.0.0.1:${port} within ${CDCJOIN_MARIADB_START_TIMEOUT_S:-60}s"
    fi
    sleep 0.1
  done
  echo "${port}" >"${dir}/port"
  log "ready: pid $(cat "${dir}/mysqld.pid"), port ${port}, data ${dir}/data${server_id:+, binlog ROW server_id ${server_id}}"
  echo "export ${env_prefix}_HOST=127.0.0.1 ${env_prefix}_PORT=${port} ${env_prefix}_USER=root"
}

stop() {
  local dir=$1
  local pidfile="${dir}/mysqld.pid"
  if [[ ! -f "${pidfile}" ]]; then
    log "no ${pidfile}: nothing to stop"
    return 0
  fi
  local pid
  pid=$(cat "${pidfile}")
  [[ "${pid}" =~ ^[0-9]+$ ]] || die "${pidfile} does not hold a pid: '${pid}'"
  if ! pid_alive "${pid}"; then
    log "pid ${pid} is not running"
    rm -f "${pidfile}"
    return 0
  fi
  log "stopping mariadbd pid ${pid}"
  kill -TERM "${pid}"
  local deadline=$((SECONDS + ${CDCJOIN_MARIADB_STOP_TIMEOUT_S:-60}))
  while pid_alive "${pid}"; do
    if ((SECONDS >= deadline)); then
      error_log_tail "${dir}"
      die "mariadbd pid ${pid} did not stop within ${CDCJOIN_MARIADB_STOP_TIMEOUT_S:-60}s after SIGTERM"
    fi
    sleep 0.1
  done
  rm -f "${pidfile}"
  log "stopped"
}

[[ $# -ge 2 ]] || usage
case "$1" in
  start)
    start_dir=$2
    start_port=""
    start_server_id=""
    start_prefix=CDCJOIN_MYSQL
    shift 2
    for arg in "$@"; do
      case "${arg}" in
        --binlog=*) start_server_id=${arg#--binlog=} ;;
        --env_prefix=*) start_prefix=${arg#--env_prefix=} ;;
        -*) usage ;;
        *)
          [[ -z "${start_port}" ]] || usage
          start_port=${arg}
          ;;
      esac
    done
    [[ "${start_prefix}" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "--env_prefix must be an upper-case name"
    start "${start_dir}" "${start_port}" "${start_server_id}" "${start_prefix}"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
  *) usage ;;
esac
