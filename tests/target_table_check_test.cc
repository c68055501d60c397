// CheckTargetTable against the real MariaDB (scripts/mariadb.sh): the column facts it hands
// the decoder are what information_schema says, so typed decoding refuses exactly what the
// column would refuse, round or truncate.

#include "storage/target_table_check.h"

#include <unistd.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin {
namespace {

// Creates `database` with table T (`columns` is its column list) in the test's MariaDB and
// checks it against the config text (`%s` is replaced by the database name).
absl::StatusOr<TargetTableReport> CheckNewTable(const std::string& database,
                                                const std::string& columns,
                                                const std::string& config_template) {
  absl::StatusOr<testing::MySqlEndpoint> endpoint = testing::MySqlFromEnv();
  if (!endpoint.ok()) return endpoint.status();
  absl::Status created = testing::ExecuteSql(
      *endpoint, "",
      {absl::StrCat("DROP DATABASE IF EXISTS ", database),
       absl::StrCat("CREATE DATABASE ", database),
       absl::StrCat("CREATE TABLE ", database, ".T (", columns, ") DEFAULT CHARSET=utf8mb4")});
  if (!created.ok()) return created;
  v1::Config config;
  const std::string config_text = absl::StrReplaceAll(config_template, {{"%s", database}});
  if (!google::protobuf::TextFormat::ParseFromString(config_text, &config)) {
    return absl::InvalidArgumentError(config_text);
  }
  MySqlOptions options;
  options.host = endpoint->host;
  options.port = endpoint->port;
  options.user = endpoint->user;
  options.database = database;
  return CheckTargetTable(options, config);
}

void DropDatabase(const std::string& database) {
  absl::StatusOr<testing::MySqlEndpoint> endpoint = testing::MySqlFromEnv();
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  testing::ExecuteSql(*endpoint, "", {absl::StrCat("DROP DATABASE ", database)}).IgnoreError();
}

TEST(TargetTableCheckTest, ReportsTheFactsOfEveryColumn) {
  const std::string database = absl::StrCat("facts_", getpid());
  absl::StatusOr<TargetTableReport> report = CheckNewTable(
      database,
      "k BIGINT NOT NULL PRIMARY KEY, tiny TINYINT, utiny TINYINT UNSIGNED, ubig BIGINT UNSIGNED, "
      "dec52 DECIMAL(5,2), flt FLOAT, dbl DOUBLE, txt VARCHAR(100) NOT NULL, body TEXT, "
      "bin VARBINARY(4), bits BIT(3), dt DATETIME(6), js JSON",
      "target { table: 'T' key_columns: 'k' database { database: '%s' } } "
      "sources { name: 's' topic: 's' key_fields: 'id' columns { from: 'txt' to: 'txt' } }");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  using K = ColumnFacts::Kind;
  const auto& c = report->columns;
  ASSERT_EQ(c.size(), 13u);
  EXPECT_EQ(c.at("k").kind, K::kInteger);
  EXPECT_FALSE(c.at("k").nullable);
  EXPECT_EQ(c.at("k").min_integer, INT64_MIN);
  EXPECT_EQ(c.at("k").max_integer, uint64_t{INT64_MAX});
  EXPECT_EQ(c.at("tiny").min_integer, -128);
  EXPECT_EQ(c.at("tiny").max_integer, 127u);
  EXPECT_TRUE(c.at("tiny").nullable);
  EXPECT_TRUE(c.at("utiny").is_unsigned);
  EXPECT_EQ(c.at("utiny").min_integer, 0);
  EXPECT_EQ(c.at("utiny").max_integer, 255u);
  EXPECT_EQ(c.at("ubig").max_integer, UINT64_MAX);
  EXPECT_EQ(c.at("dec52").kind, K::kDecimal);
  EXPECT_EQ(c.at("dec52").precision, 5);
  EXPECT_EQ(c.at("dec52").scale, 2);
  EXPECT_EQ(c.at("flt").kind, K::kFloat);
  EXPECT_EQ(c.at("dbl").kind, K::kDouble);
  EXPECT_EQ(c.at("txt").kind, K::kText);
  EXPECT_EQ(c.at("txt").column_type, "varchar(100)");
  EXPECT_EQ(c.at("txt").max_chars, 100);
  EXPECT_EQ(c.at("txt").max_bytes, 400);
  EXPECT_FALSE(c.at("txt").nullable);
  EXPECT_EQ(c.at("body").kind, K::kText);
  EXPECT_EQ(c.at("body").max_bytes, 65535);
  EXPECT_EQ(c.at("bin").kind, K::kBinary);
  EXPECT_EQ(c.at("bin").max_bytes, 4);
  EXPECT_EQ(c.at("bits").kind, K::kBit);
  EXPECT_EQ(c.at("bits").precision, 3);
  EXPECT_EQ(c.at("dt").kind, K::kTemporal);
  EXPECT_EQ(c.at("js").kind, K::kText);  // MariaDB: JSON is LONGTEXT with a check.
  DropDatabase(database);
}

TEST(TargetTableCheckTest, TheGuardNeedsItsVersionColumnsAndSaysHowToAddThem) {
  const std::string database = absl::StrCat("guard_", getpid());
  absl::StatusOr<TargetTableReport> report = CheckNewTable(
      database,
      "k BIGINT NOT NULL PRIMARY KEY, a TEXT, b TEXT, _cdc_s_ver DECIMAL(30,0) UNSIGNED, "
      "_cdc_t_ver BIGINT",
      "target { table: 'T' key_columns: 'k' stale_write_guard: true database { database: '%s' } "
      "} sources { name: 's' topic: 's' key_fields: 'id' columns { from: 'a' to: 'a' } "
      "version_column: '_cdc_s_ver' } "
      "sources { name: 't' topic: 't' key_fields: 'id' columns { from: 'b' to: 'b' } "
      "version_column: '_cdc_t_ver' } "
      "sources { name: 'u' topic: 'u' key_fields: 'id' columns { from: 'b' to: 'b' } "
      "version_column: '_cdc_u_ver' }");
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->problems.size(), 2u);
  EXPECT_EQ(report->problems[0].rfind("sources[1].version_column: column '_cdc_t_ver' is bigint", 0),
            0u)
      << report->problems[0];
  EXPECT_EQ(report->problems[1].rfind("sources[2].version_column: column '_cdc_u_ver' is not in",
                                      0),
            0u)
      << report->problems[1];
  EXPECT_NE(report->problems[1].find("--print_ddl"), std::string::npos) << report->problems[1];
  DropDatabase(database);
}

}  // namespace
}  // namespace cdcjoin
