#include "tests/support/test_mysql.h"

#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>

#include <cstdlib>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/seed_workload.h"

namespace cdcjoin::testing {
namespace {

absl::StatusOr<std::unique_ptr<sql::Connection>> Connect(const MySqlEndpoint& endpoint,
                                                         const std::string& database) {
  try {
    sql::mysql::MySQL_Driver* driver = sql::mysql::get_mysql_driver_instance();
    std::unique_ptr<sql::Connection> connection(driver->connect(
        absl::StrCat("tcp://", endpoint.host, ":", endpoint.port), endpoint.user, ""));
    if (!database.empty()) connection->setSchema(database);
    return connection;
  } catch (const sql::SQLException& e) {
    return absl::UnavailableError(absl::StrCat("mysql connect: ", e.what()));
  }
}

class ConnectorSession : public SqlSession {
 public:
  explicit ConnectorSession(std::unique_ptr<sql::Connection> connection)
      : connection_(std::move(connection)) {}

  absl::Status Execute(const std::string& text) override {
    try {
      std::unique_ptr<sql::Statement> statement(connection_->createStatement());
      // A result (SELECT ... FOR UPDATE) must be read, or the next statement is out of sync.
      if (statement->execute(text)) std::unique_ptr<sql::ResultSet>(statement->getResultSet());
    } catch (const sql::SQLException& e) {
      return absl::InternalError(absl::StrCat("mysql: ", e.what(), " (", e.getErrorCode(), ")"));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<sql::Connection> connection_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqlSession>> SqlSession::Open(const MySqlEndpoint& endpoint,
                                                             const std::string& database) {
  absl::StatusOr<std::unique_ptr<sql::Connection>> connection = Connect(endpoint, database);
  if (!connection.ok()) return connection.status();
  return std::unique_ptr<SqlSession>(new ConnectorSession(*std::move(connection)));
}

absl::StatusOr<MySqlEndpoint> MySqlFromEnv() {
  const char* host = std::getenv("CDCJOIN_MYSQL_HOST");
  const char* port = std::getenv("CDCJOIN_MYSQL_PORT");
  const char* user = std::getenv("CDCJOIN_MYSQL_USER");
  MySqlEndpoint endpoint;
  if (host == nullptr || port == nullptr || !absl::SimpleAtoi(port, &endpoint.port)) {
    return absl::FailedPreconditionError(
        "CDCJOIN_MYSQL_HOST and CDCJOIN_MYSQL_PORT must name the test MariaDB: run the tests "
        "through scripts/run_tests.sh (or `eval \"$(scripts/mariadb.sh start DIR)\"` first)");
  }
  endpoint.host = host;
  endpoint.user = user != nullptr ? user : "root";
  return endpoint;
}

absl::Status ExecuteSql(const MySqlEndpoint& endpoint, const std::string& database,
                        const std::vector<std::string>& statements) {
  absl::StatusOr<std::unique_ptr<sql::Connection>> connection = Connect(endpoint, database);
  if (!connection.ok()) return connection.status();
  try {
    std::unique_ptr<sql::Statement> statement((*connection)->createStatement());
    for (const std::string& text : statements) statement->execute(text);
  } catch (const sql::SQLException& e) {
    return absl::InternalError(absl::StrCat("mysql: ", e.what(), " (", e.getErrorCode(), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>> QueryRows(
    const MySqlEndpoint& endpoint, const std::string& database, const std::string& query) {
  absl::StatusOr<std::unique_ptr<sql::Connection>> connection = Connect(endpoint, database);
  if (!connection.ok()) return connection.status();
  std::vector<std::vector<std::optional<std::string>>> result;
  try {
    std::unique_ptr<sql::Statement> statement((*connection)->createStatement());
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(query));
    const unsigned columns = rows->getMetaData()->getColumnCount();
    while (rows->next()) {
      std::vector<std::optional<std::string>>& row = result.emplace_back();
      for (unsigned column = 1; column <= columns; ++column) {
        if (rows->isNull(column)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(rows->getString(column)));
        }
      }
    }
  } catch (const sql::SQLException& e) {
    return absl::InternalError(absl::StrCat("mysql: ", e.what(), " (", e.getErrorCode(), ")"));
  }
  return result;
}

absl::Status CreateSeedDatabase(const MySqlEndpoint& endpoint, const std::string& database) {
  if (absl::Status s = ExecuteSql(endpoint, "",
                                  {absl::StrCat("DROP DATABASE IF EXISTS `", database, "`"),
                                   absl::StrCat("CREATE DATABASE `", database,
                                                "` CHARACTER SET utf8mb4")});
      !s.ok()) {
    return s;
  }
  return ExecuteSql(endpoint, database, {SeedTargetTableDdl()});
}

absl::StatusOr<ModelTable> DumpSeedTable(const MySqlEndpoint& endpoint,
                                         const std::string& database) {
  absl::StatusOr<std::unique_ptr<sql::Connection>> connection = Connect(endpoint, database);
  if (!connection.ok()) return connection.status();
  ModelTable table;
  try {
    std::unique_ptr<sql::Statement> statement((*connection)->createStatement());
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(
        "SELECT userId, maskingName, currentNickname,"
        " DATE_FORMAT(dateCreated, '%Y-%m-%d %H:%i:%s.%f') FROM Nickname"));
    auto text = [&rows](int column) -> std::optional<std::string> {
      if (rows->isNull(column)) return std::nullopt;
      return std::string(rows->getString(column));
    };
    while (rows->next()) {
      ModelRow& row = table[rows->getInt64(1)];
      row["maskingName"] = text(2);
      row["currentNickname"] = text(3);
      row["dateCreated"] = text(4);
    }
  } catch (const sql::SQLException& e) {
    return absl::InternalError(absl::StrCat("mysql: ", e.what(), " (", e.getErrorCode(), ")"));
  }
  return table;
}

}  // namespace cdcjoin::testing
