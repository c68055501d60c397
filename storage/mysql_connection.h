#ifndef CDCJOIN_STORAGE_MYSQL_CONNECTION_H_
#define CDCJOIN_STORAGE_MYSQL_CONNECTION_H_

// Where the target database is and how to reach it, and the one place that opens connections to
// it (mysql-connector-c++ 1.1): the writer's lanes and the start-up check of the target table.
//
//   absl::StatusOr<std::unique_ptr<sql::Connection>> c = OpenMySqlConnection(options);

#include <cppconn/connection.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

struct MySqlOptions {
  // Default: "127.0.0.1".
  std::string host = "127.0.0.1";
  // Default: 3306.
  int port = 3306;
  // Default: "root".
  std::string user = "root";
  // Default: "" (no password).
  std::string password;
  // The schema holding the target table. Default: "" (none selected; the table name must then
  // resolve on its own, which it rarely does).
  std::string database;
  // Connecting gives up after this long (the connector counts whole seconds, rounded up).
  // Default: 10000.
  int connect_timeout_ms = 10000;
  // Reading or writing one packet gives up after this long and the connection counts as lost
  // (2013, retriable). Must exceed the lock wait timeout, or lock waits turn into reconnects.
  // The connector counts whole seconds, rounded up. Default: 30000 (0: wait forever).
  int read_write_timeout_ms = 30000;
  // Rows per multi-row statement at most; also capped so a statement binds at most 65,535
  // parameters. Default: 500 (PLATFORM.md: ~10x the rows/s of one-row statements here).
  size_t max_rows_per_statement = 500;
  // When > 0, `SET SESSION innodb_lock_wait_timeout` to this after every connect (tests lower it
  // to see 1205 quickly). Default: 0 (the server's setting, 50 s out of the box).
  int lock_wait_timeout_s = 0;
  // READ COMMITTED instead of the server's REPEATABLE READ for the writer's transactions: the
  // writer never reads, and READ COMMITTED takes no gap locks, so concurrent lanes inserting
  // neighbouring new keys cannot deadlock on gaps. Default: true.
  bool read_committed = true;
  // Prepared statements kept per connection, keyed by statement shape and row count; the whole
  // cache is dropped when it would grow past this (the server caps prepared statements at
  // max_prepared_stmt_count, 16,382 by default, for all connections together). Default: 64.
  size_t max_cached_statements = 64;

  // The target database of `config` (defaults applied), one statement per sink batch at most.
  // The password comes from the caller: the config only says where to find it.
  static MySqlOptions FromConfig(const v1::Config& config, std::string password);
};

// Opens a connection (utf8mb4, no silent reconnect, the options' timeouts). Never throws: a
// connector error is returned classified (storage/retry_classifier), e.g. Unavailable with the
// server's code when it cannot be reached. Thread-safe: connections open in parallel.
absl::StatusOr<std::unique_ptr<sql::Connection>> OpenMySqlConnection(const MySqlOptions& options);

// Runs `action` and converts whatever the connector throws into a classified status naming
// `context`.
absl::Status CatchMySqlErrors(const std::string& context, const std::function<void()>& action);

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_MYSQL_CONNECTION_H_
