#include "storage/retry_classifier.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cdcjoin {
namespace {

// Server error numbers (mysqld_error.h) and client error numbers (errmsg.h), named here so the
// switch below reads as a table.
constexpr int kErShutdown = 1053;           // ER_SERVER_SHUTDOWN
constexpr int kErLockWaitTimeout = 1205;    // ER_LOCK_WAIT_TIMEOUT
constexpr int kErLockDeadlock = 1213;       // ER_LOCK_DEADLOCK
constexpr int kErConnectionKilled = 1927;   // ER_CONNECTION_KILLED (MariaDB)
constexpr int kCrConnectionError = 2002;    // CR_CONNECTION_ERROR (local socket)
constexpr int kCrConnHostError = 2003;      // CR_CONN_HOST_ERROR (cannot connect over TCP)
constexpr int kCrServerGoneError = 2006;    // CR_SERVER_GONE_ERROR
constexpr int kCrServerLost = 2013;         // CR_SERVER_LOST
constexpr int kCrServerLostExtended = 2055; // CR_SERVER_LOST_EXTENDED

// The errors that belong to one row: the batch's other rows would be accepted.
bool IsRowErrorCode(int code) {
  switch (code) {
    case 1048:  // ER_BAD_NULL_ERROR
    case 1062:  // ER_DUP_ENTRY
    case 1264:  // ER_WARN_DATA_OUT_OF_RANGE
    case 1265:  // WARN_DATA_TRUNCATED
    case 1292:  // ER_TRUNCATED_WRONG_VALUE
    case 1366:  // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    case 1406:  // ER_DATA_TOO_LONG
    case 1451:  // ER_ROW_IS_REFERENCED_2
    case 1452:  // ER_NO_REFERENCED_ROW_2
    case 4025:  // ER_CONSTRAINT_FAILED (MariaDB CHECK)
      return true;
    default:
      return false;
  }
}

}  // namespace

MySqlErrorClass ClassifyMySqlError(int code) {
  switch (code) {
    case kErLockDeadlock:
    case kErLockWaitTimeout:
      return MySqlErrorClass::kRetryTransaction;
    case kErShutdown:
    case kErConnectionKilled:
    case kCrConnectionError:
    case kCrConnHostError:
    case kCrServerGoneError:
    case kCrServerLost:
    case kCrServerLostExtended:
      return MySqlErrorClass::kRetryAfterReconnect;
    default:
      return MySqlErrorClass::kPermanent;
  }
}

absl::StatusCode StatusCodeForMySqlError(int code) {
  switch (ClassifyMySqlError(code)) {
    case MySqlErrorClass::kRetryTransaction:
      return absl::StatusCode::kAborted;
    case MySqlErrorClass::kRetryAfterReconnect:
      return absl::StatusCode::kUnavailable;
    case MySqlErrorClass::kPermanent:
      break;
  }
  switch (code) {
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1049:  // ER_BAD_DB_ERROR
    case 1142:  // ER_TABLEACCESS_DENIED_ERROR
    case 1146:  // ER_NO_SUCH_TABLE
      return absl::StatusCode::kFailedPrecondition;
    case 1054:  // ER_BAD_FIELD_ERROR
    case 1064:  // ER_PARSE_ERROR
      return absl::StatusCode::kInvalidArgument;
    default:
      // The data is wrong: a row error.
      return IsRowErrorCode(code) ? absl::StatusCode::kInvalidArgument
                                  : absl::StatusCode::kInternal;
  }
}

absl::Status MySqlErrorToStatus(int code, absl::string_view sql_state,
                                absl::string_view message, absl::string_view context) {
  std::string text = absl::StrCat(context, context.empty() ? "" : ": ", "MySQL error ", code);
  if (!sql_state.empty()) absl::StrAppend(&text, " (", sql_state, ")");
  absl::StrAppend(&text, ": ", message);
  absl::Status status(StatusCodeForMySqlError(code), text);
  status.SetPayload(kMySqlErrorCodePayload, absl::Cord(std::to_string(code)));
  return status;
}

std::optional<int> MySqlErrorCode(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kMySqlErrorCodePayload);
  if (!payload.has_value()) return std::nullopt;
  int code = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &code)) return std::nullopt;
  return code;
}

bool IsRetriable(const absl::Status& status) {
  if (status.ok()) return false;
  if (std::optional<int> code = MySqlErrorCode(status)) {
    return ClassifyMySqlError(*code) != MySqlErrorClass::kPermanent;
  }
  return status.code() == absl::StatusCode::kAborted ||
         status.code() == absl::StatusCode::kUnavailable;
}

bool NeedsReconnect(const absl::Status& status) {
  if (status.ok()) return false;
  if (std::optional<int> code = MySqlErrorCode(status)) {
    return ClassifyMySqlError(*code) == MySqlErrorClass::kRetryAfterReconnect;
  }
  return status.code() == absl::StatusCode::kUnavailable;
}

bool IsRowError(const absl::Status& status) {
  return IsRowErrorCode(MySqlErrorCode(status).value_or(0));
}

bool IsDeadlock(const absl::Status& status) { return MySqlErrorCode(status) == kErLockDeadlock; }

bool IsLockWaitTimeout(const absl::Status& status) {
  return MySqlErrorCode(status) == kErLockWaitTimeout;
}

}  // namespace cdcjoin
