#include "storage/mysql_connection.h"

#include <cppconn/exception.h>
#include <mysql_driver.h>

#include <exception>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {
namespace {

int CeilSeconds(int ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

}  // namespace

MySqlOptions MySqlOptions::FromConfig(const v1::Config& config, std::string password) {
  const v1::DatabaseConfig& database = config.target().database();
  MySqlOptions options;
  options.host = database.host();
  options.port = database.port();
  options.user = database.user();
  options.password = std::move(password);
  options.database = database.database();
  options.connect_timeout_ms = database.connect_timeout_ms();
  options.read_write_timeout_ms = database.read_write_timeout_ms();
  options.max_rows_per_statement = config.sink().batch_rows();
  return options;
}

absl::Status CatchMySqlErrors(const std::string& context, const std::function<void()>& action) {
  try {
    action();
  } catch (const sql::SQLException& e) {
    return MySqlErrorToStatus(e.getErrorCode(), e.getSQLState(), e.what(), context);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(context, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<sql::Connection>> OpenMySqlConnection(const MySqlOptions& options) {
  // The client library's one-time initialisation is not thread-safe; connecting afterwards is,
  // so one lane's slow handshake never holds up another's.
  static std::once_flag initialised;
  sql::mysql::MySQL_Driver* driver = nullptr;
  std::call_once(initialised, [] { sql::mysql::get_mysql_driver_instance(); });
  driver = sql::mysql::get_mysql_driver_instance();
  sql::ConnectOptionsMap properties;
  properties["hostName"] = sql::SQLString(options.host);
  properties["port"] = options.port;
  properties["userName"] = sql::SQLString(options.user);
  properties["password"] = sql::SQLString(options.password);
  if (!options.database.empty()) properties["schema"] = sql::SQLString(options.database);
  properties["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  // Reconnecting silently inside a transaction would lose its first half: never.
  properties["OPT_RECONNECT"] = false;
  if (options.connect_timeout_ms > 0) {
    properties["OPT_CONNECT_TIMEOUT"] = CeilSeconds(options.connect_timeout_ms);
  }
  if (options.read_write_timeout_ms > 0) {
    properties["OPT_READ_TIMEOUT"] = CeilSeconds(options.read_write_timeout_ms);
    properties["OPT_WRITE_TIMEOUT"] = CeilSeconds(options.read_write_timeout_ms);
  }
  std::unique_ptr<sql::Connection> connection;
  absl::Status status =
      CatchMySqlErrors(absl::StrCat("connect to ", options.host, ":", options.port),
                       [&] { connection.reset(driver->connect(properties)); });
  if (!status.ok()) return status;
  return connection;
}

}  // namespace cdcjoin
