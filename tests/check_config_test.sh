#!/usr/bin/env bash
# cdcjoind --check_config, and secrets for containers: the database password and the admin token
# come only from a file or an environment variable and never appear in any output.
#   check_config_test.sh CDCJOIND EXAMPLE_CONFIG
# The last case runs the daemon against the private MariaDB (CDCJOIN_MYSQL_PORT) with a wrong
# password, so the connection really fails with it, and checks the log.
set -euo pipefail

cdcjoind=$(realpath "$1")
example=$(realpath "$2")
work=${TEST_TMPDIR:-$(mktemp -d)}/check_config
rm -rf "$work"
mkdir -p "$work"
cd "$work"
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect NAME EXIT_CODE STDERR_SUBSTRING CONFIG_TEXT [ENV...]
expect() {
  local name=$1 want_code=$2 want_stderr=$3 text=$4
  shift 4
  printf '%s\n' "$text" >"$name.textproto"
  local code=0
  env -i PATH=/usr/bin:/bin "$@" "$cdcjoind" --config="$name.textproto" --check_config \
    >"$name.out" 2>"$name.err" || code=$?
  if [ "$code" != "$want_code" ]; then
    fail "$name: exit $code, want $want_code; stderr: $(cat "$name.err")"
  elif [ -n "$want_stderr" ] && ! grep -qF -- "$want_stderr" "$name.err"; then
    fail "$name: stderr lacks '$want_stderr': $(cat "$name.err")"
  elif grep -q "s3cr3t" "$name.out" "$name.err"; then
    fail "$name: a secret was printed"
  else
    echo "ok: $name (exit $code)"
  fi
}

valid=$(cat "$example")
echo "s3cr3t-from-file" >password
echo "s3cr3t-token-from-file" >token

expect valid 0 "" "$valid" CDCJOIN_MYSQL_PASSWORD=s3cr3t-from-env
grep -q ": ok$" valid.out || fail "valid: stdout lacks ': ok': $(cat valid.out)"
expect valid_password_file 0 "" \
  "${valid//password_env: \"CDCJOIN_MYSQL_PASSWORD\"/password_file: \"$work/password\"}"
expect valid_admin_token 0 "" \
  "$valid admin { listen_address: \"127.0.0.1:50051\" token_file: \"$work/token\" }" \
  CDCJOIN_MYSQL_PASSWORD=s3cr3t-from-env
# Off loopback the admin port needs TLS and a token, unless insecure says otherwise.
expect admin_exposed_plaintext 2 "admin.listen_address: '0.0.0.0:50051' is not loopback" \
  "$valid admin { listen_address: \"0.0.0.0:50051\" token_file: \"$work/token\" }" \
  CDCJOIN_MYSQL_PASSWORD=x
expect admin_exposed_insecure 0 "" \
  "$valid admin { listen_address: \"0.0.0.0:50051\" token_file: \"$work/token\" insecure: true }" \
  CDCJOIN_MYSQL_PASSWORD=x

# Invalid: exit 2 and the field named on stderr.
expect bad_identifier 2 "sources[1].columns[0].to" \
  "${valid//to: \"currentNickname\"/to: \"current nickname\"}" CDCJOIN_MYSQL_PASSWORD=x
expect bad_lanes 2 "sink.lanes" "${valid//lanes: 4/lanes: -1}" CDCJOIN_MYSQL_PASSWORD=x
expect missing_table 2 "target.table" "${valid//table: \"Nickname\"/}" CDCJOIN_MYSQL_PASSWORD=x
# There is no field for a password in clear: the parser rejects it, naming it.
expect password_in_clear 2 "password" \
  "${valid//password_env: \"CDCJOIN_MYSQL_PASSWORD\"/password: \"s3cr3t-in-clear\"}"
expect password_env_unset 2 "target.database.password_env" "$valid"
expect password_file_missing 2 "target.database.password_file" \
  "${valid//password_env: \"CDCJOIN_MYSQL_PASSWORD\"/password_file: \"$work/nope\"}"
expect password_file_and_env 2 "target.database.password_file" \
  "${valid//password_env: \"CDCJOIN_MYSQL_PASSWORD\"/password_env: \"X\" password_file: \"$work/password\"}" \
  X=s3cr3t
expect admin_token_file_missing 2 "admin.token_file" \
  "$valid admin { token_file: \"$work/nope\" }" CDCJOIN_MYSQL_PASSWORD=x
expect admin_bad_address 2 "admin.listen_address" \
  "$valid admin { listen_address: \"nowhere\" }" CDCJOIN_MYSQL_PASSWORD=x
expect metrics_bad_address 2 "metrics.listen_address" \
  "$valid metrics { listen_address: \"9464\" }" CDCJOIN_MYSQL_PASSWORD=x
expect syntax_error 2 "line " "$valid }" CDCJOIN_MYSQL_PASSWORD=x
# The password's error names the file like every other config error.
expect password_error_names_file 2 \
  "password_error_names_file.textproto: target.database.password_env" "$valid"
# A column written by two sources without `shared` is a typo until proven otherwise.
expect unshared_column 2 \
  "sources[1].columns[0].to: 'dateCreated' is also written by sources[0].columns[1]" \
  "${valid//to: \"currentNickname\"/to: \"dateCreated\"}" CDCJOIN_MYSQL_PASSWORD=x
expect out_of_range 2 "sink.linger_ms: must be in [0, 60000], got 2147483647" \
  "${valid//linger_ms: 5/linger_ms: 2147483647}" CDCJOIN_MYSQL_PASSWORD=x
# --help prints the usage and the flags.
code=0
"$cdcjoind" --help >help.out 2>&1 || code=$?
grep -q -- "--config" help.out || fail "--help (exit $code) lists no --config flag: $(head -5 help.out)"
grep -q "cdcjoind --config=FILE" help.out || fail "--help prints no usage: $(head -5 help.out)"

code=0
"$cdcjoind" --check_config >no_config.out 2>&1 || code=$?
[ "$code" = 2 ] || fail "no --config: exit $code, want 2"

# Starting: secrets stay out of the log even when the database rejects the password.
if [ -z "${CDCJOIN_MYSQL_PORT:-}" ]; then
  fail "CDCJOIN_MYSQL_PORT is not set: start MariaDB with scripts/mariadb.sh (see .bazelrc)"
else
  run_config="${valid//port: 3306/port: $CDCJOIN_MYSQL_PORT}"
  run_config="${run_config//host: \"127.0.0.1\"/host: \"${CDCJOIN_MYSQL_HOST:-127.0.0.1}\"}"
  run_config="${run_config//password_env: \"CDCJOIN_MYSQL_PASSWORD\"/password_file: \"$work/password\"}"
  printf '%s\nadmin { listen_address: "127.0.0.1:0" token_env: "ADMIN_TOKEN" }\nmetrics { listen_address: "127.0.0.1:0" }\n' \
    "$run_config" >run.textproto
  # The start-up check meets the wrong password before any event: the daemon refuses to start
  # (exit 2), naming the setting, with the server's answer and without the secret.
  code=0
  env -i PATH=/usr/bin:/bin ADMIN_TOKEN=s3cr3t-admin-token timeout 60 "$cdcjoind" \
    --config=run.textproto --embedded_kafka --shutdown_timeout_ms=2000 >run.log 2>&1 || code=$?
  [ "$code" = 2 ] || fail "a start with a password the database rejects: exit $code, want 2: $(tail -5 run.log)"
  grep -q "target.database: .*Access denied" run.log ||
    fail "the start did not say the database refused the login: $(tail -5 run.log)"
  if grep -q "s3cr3t" run.log; then
    fail "a secret is in the daemon's log: $(grep s3cr3t run.log | head -3)"
  else
    echo "ok: a daemon rejected by the database stops at start; no secret in its log"
  fi
fi

# --check_config --connect: the target table against the config, before any event.
if [ -n "${CDCJOIN_MYSQL_PORT:-}" ]; then
  db="check_config_$$"
  sql() {
    /usr/bin/mariadb -h "${CDCJOIN_MYSQL_HOST:-127.0.0.1}" -P "$CDCJOIN_MYSQL_PORT" \
      -u "${CDCJOIN_MYSQL_USER:-root}" -e "$1"
  }
  sql "CREATE DATABASE $db; CREATE TABLE $db.Nickname (userId BIGINT NOT NULL PRIMARY KEY,
       maskingName VARCHAR(100) NULL, currentNickname VARCHAR(100) NULL,
       dateCreated DATETIME(6) NULL); CREATE TABLE $db.Typo (userId BIGINT NOT NULL PRIMARY KEY,
       maskingName VARCHAR(100) NULL, currentNickame VARCHAR(100) NULL, dateCreated INT NULL);
       CREATE TABLE $db.NoKey (userId BIGINT NOT NULL, maskingName VARCHAR(100) NULL,
       currentNickname VARCHAR(100) NULL, dateCreated DATETIME NULL)"
  connect_config="${valid//port: 3306/port: $CDCJOIN_MYSQL_PORT}"
  connect_config="${connect_config//host: \"127.0.0.1\"/host: \"${CDCJOIN_MYSQL_HOST:-127.0.0.1}\"}"
  connect_config="${connect_config//database: \"cdcjoin_demo\"/database: \"$db\"}"
  connect_config="${connect_config//password_env: \"CDCJOIN_MYSQL_PASSWORD\"/}"
  connect() {
    local name=$1 want_code=$2 text=$3
    printf '%s\n' "$text" >"$name.textproto"
    local code=0
    "$cdcjoind" --config="$name.textproto" --check_config --connect >"$name.out" 2>"$name.err" ||
      code=$?
    [ "$code" = "$want_code" ] || fail "$name: exit $code, want $want_code: $(cat "$name.err")"
  }
  connect connect_ok 0 "$connect_config"
  grep -q ": ok$" connect_ok.out || fail "connect_ok: stdout lacks ': ok': $(cat connect_ok.out)"
  connect connect_typo 2 "${connect_config//table: \"Nickname\"/table: \"Typo\"}"
  grep -qF "sources[1].columns[0].to: column 'currentNickname' is not in $db.Typo (did you mean 'currentNickame'?)" \
    connect_typo.err || fail "connect_typo: the misspelt column is not named: $(cat connect_typo.err)"
  grep -qF "sources[0].columns[1].type: TIMESTAMP_MILLIS does not fit column 'dateCreated' of type int" \
    connect_typo.err || fail "connect_typo: the wrong type is not named: $(cat connect_typo.err)"
  [ "$(grep -c "" connect_typo.err)" = 2 ] || fail "connect_typo: want one line per problem: $(cat connect_typo.err)"
  connect connect_no_table 2 "${connect_config//table: \"Nickname\"/table: \"Nope\"}"
  grep -qF "target.table: table $db.Nope does not exist" connect_no_table.err ||
    fail "connect_no_table: $(cat connect_no_table.err)"
  connect connect_no_key 2 "${connect_config//table: \"Nickname\"/table: \"NoKey\"}"
  grep -qF "target.key_columns: [userId] but the primary key of $db.NoKey is []" \
    connect_no_key.err || fail "connect_no_key: $(cat connect_no_key.err)"
  connect connect_unreachable 1 "${connect_config//port: $CDCJOIN_MYSQL_PORT/port: 1}"
  grep -qF "cannot check the target table" connect_unreachable.err ||
    fail "connect_unreachable: $(cat connect_unreachable.err)"
  # cdcjoind itself refuses to start on a table that does not fit, before consuming anything.
  code=0
  "$cdcjoind" --config=connect_typo.textproto --embedded_kafka >start_typo.log 2>&1 || code=$?
  [ "$code" = 2 ] || fail "start on a mistyped table: exit $code, want 2: $(tail -3 start_typo.log)"
  grep -qF "currentNickname" start_typo.log || fail "start_typo: $(tail -3 start_typo.log)"
  sql "DROP DATABASE $db"
  echo "ok: --check_config --connect names each problem of the target table"
fi

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo PASS
