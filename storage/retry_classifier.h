#ifndef CDCJOIN_STORAGE_RETRY_CLASSIFIER_H_
#define CDCJOIN_STORAGE_RETRY_CLASSIFIER_H_

// The one place that decides which database errors are worth retrying. Everything that talks SQL
// converts its errors with MySqlErrorToStatus; everything that retries asks IsRetriable /
// NeedsReconnect on the status, never on codes or messages of its own:
//
//   absl::Status status = writer->Apply(batch);
//   if (IsRetriable(status)) { if (NeedsReconnect(status)) ...; back off; retry the batch; }
//   else if (!status.ok()) { hold the lane: a person must look }

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cdcjoin {

// The type URL of the status payload that carries the MySQL/MariaDB error number as decimal text.
// (absl::string_view: Debian's Abseil is built with its own string_view, not std's.)
inline constexpr absl::string_view kMySqlErrorCodePayload = "cdcjoin/mysql_error_code";

enum class MySqlErrorClass {
  // The server gave up on the transaction (deadlock 1213, lock wait timeout 1205): roll back
  // and run the same transaction again on the same connection.
  kRetryTransaction,
  // The connection is gone or never came up (2002, 2003, 2006, 2013, 2055, 1927 killed, 1053
  // shutdown): open a new connection, then run the transaction again.
  kRetryAfterReconnect,
  // Retrying cannot help (1062 duplicate, 1064 syntax, 1406 too long, 1366 bad value, 1054
  // unknown column, 1146 no table, and every code not listed above).
  kPermanent,
};

MySqlErrorClass ClassifyMySqlError(int code);

// kAborted for kRetryTransaction, kUnavailable for kRetryAfterReconnect; for permanent errors
// kInvalidArgument (the data or statement is wrong: 1054, 1064, 1264, 1292, 1366, 1406, 1048,
// 1062, 1452...), kFailedPrecondition (the schema is not what we expect: 1044/1045/1049/1142/1146)
// and kInternal for the rest.
absl::StatusCode StatusCodeForMySqlError(int code);

// A status with StatusCodeForMySqlError(code), a message "context: MySQL error CODE (SQLSTATE):
// message", and the code attached as the kMySqlErrorCodePayload payload.
absl::Status MySqlErrorToStatus(int code, absl::string_view sql_state,
                                absl::string_view message, absl::string_view context);

// The MySQL error code carried by the status, if any.
std::optional<int> MySqlErrorCode(const absl::Status& status);

// Whether running the same work again may succeed. Statuses with a MySQL code are classified by
// the code; others by their status code (kAborted and kUnavailable are retriable, as Abseil
// documents them). OK is not retriable.
bool IsRetriable(const absl::Status& status);

// Retriable, and the connection must be replaced first (lost connection, killed, shutdown,
// cannot connect). Without a MySQL code: kUnavailable.
bool NeedsReconnect(const absl::Status& status);

// The database refused one row for its own data (1048 NULL into NOT NULL, 1062 duplicate on a
// unique index, 1264 out of range, 1265 truncated, 1292/1366 wrong value, 1406 too long, 1451/1452
// foreign key, 4025 CHECK constraint): the batch's other rows would be accepted. Errors that
// concern every row (1054 no such column, 1146 no such table, 1045/1142 access, 1290/1836 read
// only) are not row errors: they hold the lane until someone fixes the database.
bool IsRowError(const absl::Status& status);

// The server chose this transaction as a deadlock victim (1213).
bool IsDeadlock(const absl::Status& status);

// The transaction waited longer than innodb_lock_wait_timeout for a row lock (1205).
bool IsLockWaitTimeout(const absl::Status& status);

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_RETRY_CLASSIFIER_H_
