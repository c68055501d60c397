#ifndef CDCJOIN_TESTS_SUPPORT_TEST_MYSQL_H_
#define CDCJOIN_TESTS_SUPPORT_TEST_MYSQL_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/reference_model.h"

namespace cdcjoin::testing {

// The private MariaDB that scripts/mariadb.sh started, as the environment names it.
struct MySqlEndpoint {
  std::string host;
  int port = 0;
  std::string user;
};

// From CDCJOIN_MYSQL_HOST / _PORT / _USER; FailedPrecondition naming what is missing.
absl::StatusOr<MySqlEndpoint> MySqlFromEnv();

// Runs statements in order on a fresh connection (no default database when `database` is "").
absl::Status ExecuteSql(const MySqlEndpoint& endpoint, const std::string& database,
                        const std::vector<std::string>& statements);

// Runs one query on a fresh connection; each row's columns as text (nullopt for NULL).
absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>> QueryRows(
    const MySqlEndpoint& endpoint, const std::string& database, const std::string& query);

// One connection kept open, for tests that hold a transaction (locks) while the daemon writes.
class SqlSession {
 public:
  static absl::StatusOr<std::unique_ptr<SqlSession>> Open(const MySqlEndpoint& endpoint,
                                                          const std::string& database);
  virtual ~SqlSession() = default;
  // Runs one statement; errors carry the MySQL error code in the message.
  virtual absl::Status Execute(const std::string& statement) = 0;
};

// A fresh database holding the seed's empty Nickname table.
absl::Status CreateSeedDatabase(const MySqlEndpoint& endpoint, const std::string& database);

// The Nickname table as the reference model writes it (DATETIME as "%Y-%m-%d %H:%i:%s.%f").
absl::StatusOr<ModelTable> DumpSeedTable(const MySqlEndpoint& endpoint,
                                         const std::string& database);

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_TEST_MYSQL_H_
