// MySqlWriter against the real MariaDB started by scripts/mariadb.sh:
//
//   eval "$(scripts/mariadb.sh start /tmp/cdcjoin-mysql)"
//   bazel test //tests:mysql_writer_test
//   scripts/mariadb.sh stop /tmp/cdcjoin-mysql
//
// Each test works in a database of its own, dropped at the end.

#include "storage/mysql_writer.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "join/row_version.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {
namespace {

using Text = std::optional<std::string>;

// The target table of the seed; non-key columns in TableSchema order.
constexpr int kMaskingName = 0;
constexpr int kCurrentNickname = 1;
constexpr int kDateCreated = 2;

struct NicknameRow {
  Text masking_name;
  Text current_nickname;
  Text date_created;  // As CAST(... AS CHAR): "YYYY-MM-DD HH:MM:SS.ffffff".

  friend bool operator==(const NicknameRow& a, const NicknameRow& b) {
    return std::tie(a.masking_name, a.current_nickname, a.date_created) ==
           std::tie(b.masking_name, b.current_nickname, b.date_created);
  }
};

std::ostream& operator<<(std::ostream& os, const Text& text) {
  return os << (text.has_value() ? "'" + *text + "'" : "NULL");
}

std::ostream& operator<<(std::ostream& os, const NicknameRow& row) {
  return os << "{" << row.masking_name << ", " << row.current_nickname << ", " << row.date_created
            << "}";
}

using NicknameTable = std::map<int64_t, NicknameRow>;

ColumnWrite W(int column, bool update_on_conflict, Value value) {
  ColumnWrite write;
  write.column = column;
  write.update_on_conflict = update_on_conflict;
  write.value = std::move(value);
  return write;
}

Value V(const Text& text) { return text.has_value() ? Value(*text) : Value(); }

// The seed's `User` source: owns maskingName and dateCreated, both updated on conflict.
RowCommand UserUpsert(int64_t user_id, Text masking_name, Text date_created) {
  RowCommand command;
  command.kind = RowCommandKind::kUpsert;
  command.key = {Value(user_id)};
  command.writes = {W(kMaskingName, true, V(masking_name)),
                    W(kDateCreated, true, V(date_created))};
  return command;
}

// The seed's `UserExtData` source: owns currentNickname, sets maskingName only on insert.
RowCommand ExtUpsert(int64_t user_id, Text masking_name, Text current_nickname) {
  RowCommand command;
  command.kind = RowCommandKind::kUpsert;
  command.key = {Value(user_id)};
  command.writes = {W(kMaskingName, false, V(masking_name)),
                    W(kCurrentNickname, true, V(current_nickname))};
  return command;
}

RowCommand ClearCommand(int64_t user_id, std::vector<int> columns) {
  RowCommand command;
  command.kind = RowCommandKind::kClear;
  command.key = {Value(user_id)};
  for (int column : columns) command.writes.push_back(W(column, false, Value()));
  return command;
}

RowCommand DeleteCommand(int64_t user_id) {
  RowCommand command;
  command.kind = RowCommandKind::kDelete;
  command.key = {Value(user_id)};
  return command;
}

const char* Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

class MySqlWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* host = Env("CDCJOIN_MYSQL_HOST");
    const char* port = Env("CDCJOIN_MYSQL_PORT");
    const char* user = Env("CDCJOIN_MYSQL_USER");
    ASSERT_TRUE(host != nullptr && port != nullptr && user != nullptr)
        << "CDCJOIN_MYSQL_HOST, CDCJOIN_MYSQL_PORT and CDCJOIN_MYSQL_USER must name a running "
           "MariaDB/MySQL. Start one with: eval \"$(scripts/mariadb.sh start /tmp/cdcjoin-mysql)\" "
           "then run: bazel test //tests:mysql_writer_test (.bazelrc passes them through)";
    options_.host = host;
    options_.port = std::atoi(port);
    options_.user = user;
    if (const char* password = Env("CDCJOIN_MYSQL_PASSWORD")) options_.password = password;

    std::mt19937_64 rng(std::random_device{}());
    database_ = absl::StrCat("cdcjoin_writer_", ::getpid(), "_", rng() % 1000000000);
    options_.database = database_;

    admin_ = OpenConnection("");
    Exec(admin_.get(), absl::StrCat("CREATE DATABASE `", database_,
                                    "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"));
    admin_->setSchema(database_);
    Exec(admin_.get(),
         "CREATE TABLE Nickname (userId BIGINT PRIMARY KEY, maskingName VARCHAR(64), "
         "currentNickname VARCHAR(64), dateCreated DATETIME(6)) ENGINE=InnoDB");

    schema_.table = "Nickname";
    schema_.key_columns = {"userId"};
    schema_.columns = {"maskingName", "currentNickname", "dateCreated"};
  }

  void TearDown() override {
    if (admin_ != nullptr) {
      try {
        Exec(admin_.get(), absl::StrCat("DROP DATABASE IF EXISTS `", database_, "`"));
      } catch (const sql::SQLException& e) {
        ADD_FAILURE() << "dropping " << database_ << ": " << e.what();
      }
    }
  }

  // A plain connector connection (autocommit on), for setting up and checking from outside.
  std::unique_ptr<sql::Connection> OpenConnection(const std::string& schema) {
    sql::ConnectOptionsMap properties;
    properties["hostName"] = sql::SQLString(options_.host);
    properties["port"] = options_.port;
    properties["userName"] = sql::SQLString(options_.user);
    properties["password"] = sql::SQLString(options_.password);
    properties["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    if (!schema.empty()) properties["schema"] = sql::SQLString(schema);
    return std::unique_ptr<sql::Connection>(
        sql::mysql::get_mysql_driver_instance()->connect(properties));
  }

  static void Exec(sql::Connection* connection, const std::string& statement) {
    std::unique_ptr<sql::Statement> s(connection->createStatement());
    s->execute(statement);
  }

  static int64_t QueryInt(sql::Connection* connection, const std::string& query) {
    std::unique_ptr<sql::Statement> s(connection->createStatement());
    std::unique_ptr<sql::ResultSet> result(s->executeQuery(query));
    EXPECT_TRUE(result->next()) << query;
    return result->getInt64(1);
  }

  NicknameTable ReadTable() {
    NicknameTable table;
    std::unique_ptr<sql::Statement> s(admin_->createStatement());
    std::unique_ptr<sql::ResultSet> result(s->executeQuery(
        "SELECT userId, maskingName, currentNickname, CAST(dateCreated AS CHAR) FROM Nickname"));
    while (result->next()) {
      auto text = [&](int index) -> Text {
        std::string value = result->getString(index);
        if (result->wasNull()) return std::nullopt;
        return value;
      };
      NicknameRow row;
      row.masking_name = text(2);
      row.current_nickname = text(3);
      row.date_created = text(4);
      table[result->getInt64(1)] = row;
    }
    return table;
  }

  // Polls until some transaction waits for a row lock. InnoDB refreshes the INNODB_TRX view
  // only when it was not read for 100 ms: faster polling would read a stale snapshot forever.
  bool WaitForLockWait() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      if (QueryInt(admin_.get(), "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                 "WHERE trx_state = 'LOCK WAIT'") > 0) {
        return true;
      }
    }
    return false;
  }

  std::unique_ptr<MySqlWriter> NewWriter(const MySqlOptions& options) {
    absl::StatusOr<std::unique_ptr<MySqlWriter>> writer = MySqlWriter::Connect(options, &schema_);
    EXPECT_TRUE(writer.ok()) << writer.status();
    return writer.ok() ? std::move(*writer) : nullptr;
  }

  std::unique_ptr<MySqlWriter> NewWriter() { return NewWriter(options_); }

  MySqlOptions options_;
  std::string database_;
  TableSchema schema_;
  std::unique_ptr<sql::Connection> admin_;
};

TEST_F(MySqlWriterTest, MultiRowUpsertsWriteOnlyTheSourcesColumns) {
  MySqlOptions options = options_;
  options.max_rows_per_statement = 500;
  std::unique_ptr<MySqlWriter> writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);

  // 1,200 users arrive first: three statements of 500, 500 and 200 rows.
  std::vector<RowCommand> users;
  for (int64_t id = 1; id <= 1200; ++id) {
    users.push_back(UserUpsert(id, absl::StrCat("mask-", id), "2024-01-02 03:04:05.123456"));
  }
  ASSERT_TRUE(writer->Apply(users).ok());
  MySqlWriterStats stats = writer->Stats();
  EXPECT_EQ(stats.transactions, 1u);
  EXPECT_EQ(stats.statements, 3u);
  EXPECT_EQ(stats.rows, 1200u);

  // Then the ext rows for users 1..10 and for 2001..2005 that have no user yet: the ext source
  // must neither overwrite the user's maskingName nor touch dateCreated.
  std::vector<RowCommand> ext;
  for (int64_t id = 1; id <= 10; ++id) {
    ext.push_back(ExtUpsert(id, absl::StrCat("ext-mask-", id), absl::StrCat("nick-", id)));
  }
  for (int64_t id = 2001; id <= 2005; ++id) {
    ext.push_back(ExtUpsert(id, absl::StrCat("ext-mask-", id), absl::StrCat("nick-", id)));
  }
  ASSERT_TRUE(writer->Apply(ext).ok());

  // Finally the user source updates 2001 (created by ext): its maskingName wins.
  ASSERT_TRUE(writer->Apply({UserUpsert(2001, "user-mask-2001", "2025-05-05 05:05:05.000000")}).ok());

  NicknameTable table = ReadTable();
  ASSERT_EQ(table.size(), 1205u);
  EXPECT_EQ(table[1], (NicknameRow{"mask-1", "nick-1", "2024-01-02 03:04:05.123456"}));
  EXPECT_EQ(table[10], (NicknameRow{"mask-10", "nick-10", "2024-01-02 03:04:05.123456"}));
  EXPECT_EQ(table[11], (NicknameRow{"mask-11", std::nullopt, "2024-01-02 03:04:05.123456"}));
  EXPECT_EQ(table[1200], (NicknameRow{"mask-1200", std::nullopt, "2024-01-02 03:04:05.123456"}));
  EXPECT_EQ(table[2001], (NicknameRow{"user-mask-2001", "nick-2001", "2025-05-05 05:05:05.000000"}));
  EXPECT_EQ(table[2002], (NicknameRow{"ext-mask-2002", "nick-2002", std::nullopt}));
  stats = writer->Stats();
  EXPECT_EQ(stats.transactions, 3u);
  EXPECT_EQ(stats.commands, 1216u);
  EXPECT_EQ(stats.failed_transactions, 0u);
}

TEST_F(MySqlWriterTest, CommandsForOneKeyCollapseWithinABatch) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({UserUpsert(3, "old-3", "2020-01-01 00:00:00.000000"),
                             UserUpsert(4, "old-4", "2020-01-01 00:00:00.000000")})
                  .ok());

  std::vector<RowCommand> batch = {
      // Key 1 (new): ext inserts maskingName, a second ext event must not replace it, the user
      // source then does.
      ExtUpsert(1, "ext-first", "nick-a"),
      ExtUpsert(1, "ext-second", "nick-b"),
      // Key 2 (new): user twice: the later values win.
      UserUpsert(2, "u2-a", "2021-01-01 00:00:00.000000"),
      UserUpsert(2, "u2-b", "2022-02-02 00:00:00.000000"),
      ExtUpsert(1, "ext-third", "nick-c"),
      UserUpsert(1, "user-1", "2023-03-03 00:00:00.000000"),
      // Key 3 (exists): deleted, then created again by ext only: the old maskingName is gone.
      DeleteCommand(3),
      ExtUpsert(3, "ext-3", "nick-3"),
      // Key 4 (exists): updated then deleted: gone.
      UserUpsert(4, "new-4", "2024-04-04 00:00:00.000000"),
      DeleteCommand(4),
  };
  ASSERT_TRUE(writer->Apply(batch).ok());

  NicknameTable table = ReadTable();
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[1], (NicknameRow{"user-1", "nick-c", "2023-03-03 00:00:00.000000"}));
  EXPECT_EQ(table[2], (NicknameRow{"u2-b", std::nullopt, "2022-02-02 00:00:00.000000"}));
  EXPECT_EQ(table[3], (NicknameRow{"ext-3", "nick-3", std::nullopt}));
  // 10 commands collapse to 5 rows: 1, 2, 3 (delete), 3 (upsert), 4 (delete).
  EXPECT_EQ(writer->Stats().rows, 2u + 5u);
}

TEST_F(MySqlWriterTest, DeleteAndClear) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::vector<RowCommand> setup;
  for (int64_t id = 1; id <= 6; ++id) {
    setup.push_back(UserUpsert(id, absl::StrCat("m", id), "2024-01-01 00:00:00.000000"));
    setup.push_back(ExtUpsert(id, "ignored", absl::StrCat("n", id)));
  }
  ASSERT_TRUE(writer->Apply(setup).ok());

  // Clear the user's columns of 1 and 2, ext's column of 3, delete 4 and 5, clear absent 99.
  ASSERT_TRUE(writer->Apply({ClearCommand(1, {kMaskingName, kDateCreated}),
                             ClearCommand(2, {kMaskingName, kDateCreated}),
                             ClearCommand(3, {kCurrentNickname}), DeleteCommand(5),
                             DeleteCommand(4), ClearCommand(99, {kMaskingName}),
                             DeleteCommand(98)})
                  .ok());

  NicknameTable table = ReadTable();
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table[1], (NicknameRow{std::nullopt, "n1", std::nullopt}));
  EXPECT_EQ(table[2], (NicknameRow{std::nullopt, "n2", std::nullopt}));
  EXPECT_EQ(table[3], (NicknameRow{"m3", std::nullopt, "2024-01-01 00:00:00.000000"}));
  EXPECT_EQ(table[6], (NicknameRow{"m6", "n6", "2024-01-01 00:00:00.000000"}));
  EXPECT_EQ(table.count(4), 0u);
  EXPECT_EQ(table.count(5), 0u);
  EXPECT_EQ(table.count(99), 0u);
}

TEST_F(MySqlWriterTest, ValuesAreBoundNeverInterpolated) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  const std::vector<std::string> nasty = {
      "O'Brien",
      "\"double\" and `backtick`",
      "x'); DROP TABLE Nickname; --",
      "back\\slash \\' \\\\",
      "닉네임 ニックネーム",
      "emoji 😀🎉 four-byte",
      "",
      "percent % underscore _ question ?",
      std::string("nul\0byte", 8),
  };
  std::vector<RowCommand> batch;
  for (size_t i = 0; i < nasty.size(); ++i) {
    batch.push_back(UserUpsert(static_cast<int64_t>(i + 1), nasty[i], std::nullopt));
    batch.push_back(ExtUpsert(static_cast<int64_t>(i + 1), std::nullopt, nasty[nasty.size() - 1 - i]));
  }
  batch.push_back(UserUpsert(100, std::nullopt, std::nullopt));
  ASSERT_TRUE(writer->Apply(batch).ok());

  NicknameTable table = ReadTable();
  ASSERT_EQ(table.size(), nasty.size() + 1);
  for (size_t i = 0; i < nasty.size(); ++i) {
    EXPECT_EQ(table[static_cast<int64_t>(i + 1)],
              (NicknameRow{nasty[i], nasty[nasty.size() - 1 - i], std::nullopt}))
        << "row " << i + 1;
  }
  EXPECT_EQ(table[100], (NicknameRow{std::nullopt, std::nullopt, std::nullopt}));
}

TEST_F(MySqlWriterTest, CompositeKeysAndNumericValues) {
  Exec(admin_.get(),
       "CREATE TABLE Pairs (a BIGINT, b VARCHAR(16), score DOUBLE, n BIGINT, note VARCHAR(16), "
       "PRIMARY KEY (a, b)) ENGINE=InnoDB");
  TableSchema pairs;
  pairs.table = "Pairs";
  pairs.key_columns = {"a", "b"};
  pairs.columns = {"score", "n", "note"};
  absl::StatusOr<std::unique_ptr<MySqlWriter>> writer = MySqlWriter::Connect(options_, &pairs);
  ASSERT_TRUE(writer.ok()) << writer.status();

  auto upsert = [](int64_t a, std::string b, double score, int64_t n) {
    RowCommand command;
    command.key = {Value(a), Value(std::move(b))};
    command.writes = {W(0, true, Value(score)), W(1, true, Value(n)), W(2, false, Value("set"))};
    return command;
  };
  std::vector<RowCommand> batch = {upsert(1, "x", 0.25, -9000000000LL), upsert(1, "y", 1e10, 7),
                                   upsert(2, "x", -3.5, 0), upsert(3, "z", 0, 1)};
  ASSERT_TRUE((*writer)->Apply(batch).ok());

  RowCommand clear;
  clear.kind = RowCommandKind::kClear;
  clear.key = {Value(int64_t{1}), Value("y")};
  clear.writes = {W(0, false, Value())};
  RowCommand del;
  del.kind = RowCommandKind::kDelete;
  del.key = {Value(int64_t{2}), Value("x")};
  RowCommand del_absent = del;
  del_absent.key = {Value(int64_t{2}), Value("y")};
  ASSERT_TRUE((*writer)->Apply({clear, del, del_absent}).ok());

  std::unique_ptr<sql::Statement> s(admin_->createStatement());
  std::unique_ptr<sql::ResultSet> result(s->executeQuery(
      "SELECT a, b, IFNULL(CAST(score AS CHAR), 'NULL'), n, note FROM Pairs ORDER BY a, b"));
  std::vector<std::string> rows;
  while (result->next()) {
    rows.push_back(absl::StrCat(result->getInt64(1), "/", std::string(result->getString(2)), "/",
                                std::string(result->getString(3)), "/", result->getInt64(4), "/",
                                std::string(result->getString(5))));
  }
  EXPECT_EQ(rows, (std::vector<std::string>{"1/x/0.25/-9000000000/set", "1/y/NULL/7/set",
                                            "3/z/0/1/set"}));
}

// A reference model of the target table applied command by command, compared with the writer
// over random batches: the SQL must mean what row_command.h says.
TEST_F(MySqlWriterTest, RandomBatchesMatchTheModel) {
  MySqlOptions options = options_;
  options.max_rows_per_statement = 7;  // Many statements and row counts per batch.
  std::unique_ptr<MySqlWriter> writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);

  std::mt19937 rng(7);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto text = [&]() -> Text {
    if (pick(5) == 0) return std::nullopt;
    return absl::StrCat("v", pick(1000));
  };
  auto date = [&]() -> Text {
    if (pick(5) == 0) return std::nullopt;
    return absl::StrCat("2024-01-", 10 + pick(18), " 12:00:00.", 100000 + pick(899999));
  };

  NicknameTable model;
  for (int batch_index = 0; batch_index < 40; ++batch_index) {
    std::vector<RowCommand> batch;
    const int length = 1 + pick(60);
    for (int i = 0; i < length; ++i) {
      const int64_t id = 1 + pick(25);
      const int kind = pick(10);
      auto it = model.find(id);
      if (kind < 4) {
        Text mask = text();
        Text created = date();
        if (it == model.end()) {
          model[id] = NicknameRow{mask, std::nullopt, created};
        } else {
          it->second.masking_name = mask;
          it->second.date_created = created;
        }
        batch.push_back(UserUpsert(id, mask, created));
      } else if (kind < 8) {
        Text mask = text();
        Text nick = text();
        if (it == model.end()) {
          model[id] = NicknameRow{mask, nick, std::nullopt};
        } else {
          it->second.current_nickname = nick;  // maskingName is insert-only for ext.
        }
        batch.push_back(ExtUpsert(id, mask, nick));
      } else if (kind == 8) {
        const bool user_side = pick(2) == 0;
        if (it != model.end()) {
          if (user_side) {
            it->second.masking_name = std::nullopt;
            it->second.date_created = std::nullopt;
          } else {
            it->second.current_nickname = std::nullopt;
          }
        }
        batch.push_back(user_side ? ClearCommand(id, {kMaskingName, kDateCreated})
                                  : ClearCommand(id, {kCurrentNickname}));
      } else {
        model.erase(id);
        batch.push_back(DeleteCommand(id));
      }
    }
    absl::Status status = writer->Apply(batch);
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(ReadTable(), model) << "after batch " << batch_index;
  }
  EXPECT_EQ(writer->Stats().transactions, 40u);
}

// The writer locks rows 1 then 2 (sorted); an outside transaction holding 2 and many other rows
// asks for 1: a real deadlock, and InnoDB rolls back the lighter transaction, the writer's.
TEST_F(MySqlWriterTest, RealDeadlockIsRetriableWithTheCode) {
  MySqlOptions options = options_;
  options.lock_wait_timeout_s = 10;  // Only a safety net: the deadlock is detected at once.
  std::unique_ptr<MySqlWriter> writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);
  std::vector<RowCommand> setup;
  for (int64_t id = 1; id <= 2000; ++id) setup.push_back(UserUpsert(id, "orig", std::nullopt));
  ASSERT_TRUE(writer->Apply(setup).ok());

  std::unique_ptr<sql::Connection> outside = OpenConnection(database_);
  outside->setAutoCommit(false);
  Exec(outside.get(), "SET SESSION innodb_lock_wait_timeout = 20");
  // Heavy: 1,000 rows modified, so InnoDB prefers to roll back the writer.
  Exec(outside.get(), "UPDATE Nickname SET currentNickname = 'outside' WHERE userId >= 1000");
  Exec(outside.get(), "UPDATE Nickname SET currentNickname = 'outside' WHERE userId = 2");

  const std::vector<RowCommand> batch = {UserUpsert(2, "writer-2", std::nullopt),
                                         UserUpsert(1, "writer-1", std::nullopt)};
  std::future<absl::Status> applied =
      std::async(std::launch::async, [&writer, &batch] { return writer->Apply(batch); });

  // Wait until the writer holds row 1 and waits for row 2.
  ASSERT_TRUE(WaitForLockWait()) << "the writer never waited for row 2";
  try {
    Exec(outside.get(), "UPDATE Nickname SET currentNickname = 'outside' WHERE userId = 1");
  } catch (const sql::SQLException& e) {
    FAIL() << "InnoDB chose the outside transaction as the victim: " << e.getErrorCode() << " "
           << e.what();
  }
  ASSERT_EQ(applied.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  absl::Status status = applied.get();
  ASSERT_FALSE(status.ok());
  std::cerr << "writer status under deadlock: " << status << "\n";
  ASSERT_TRUE(MySqlErrorCode(status).has_value()) << status;
  EXPECT_TRUE(IsDeadlock(status) || IsLockWaitTimeout(status)) << status;
  EXPECT_EQ(MySqlErrorCode(status), 1213) << "expected a real deadlock: " << status;
  EXPECT_TRUE(IsRetriable(status)) << status;
  EXPECT_FALSE(NeedsReconnect(status)) << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  outside->commit();

  // The writer's half-done transaction was rolled back: row 1 has the outside value, not the
  // writer's.
  NicknameTable table = ReadTable();
  EXPECT_EQ(table[1], (NicknameRow{"orig", "outside", std::nullopt}));

  // The caller retries the same batch on the same writer.
  status = writer->Apply(batch);
  ASSERT_TRUE(status.ok()) << status;
  table = ReadTable();
  EXPECT_EQ(table[1], (NicknameRow{"writer-1", "outside", std::nullopt}));
  EXPECT_EQ(table[2], (NicknameRow{"writer-2", "outside", std::nullopt}));
  MySqlWriterStats stats = writer->Stats();
  EXPECT_EQ(stats.deadlocks, 1u);
  EXPECT_EQ(stats.failed_transactions, 1u);
  EXPECT_EQ(stats.reconnects, 0u);
}

TEST_F(MySqlWriterTest, LockWaitTimeoutIsRetriable) {
  MySqlOptions options = options_;
  options.lock_wait_timeout_s = 1;
  std::unique_ptr<MySqlWriter> writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({UserUpsert(1, "orig", std::nullopt)}).ok());

  std::unique_ptr<sql::Connection> outside = OpenConnection(database_);
  outside->setAutoCommit(false);
  Exec(outside.get(), "UPDATE Nickname SET currentNickname = 'held' WHERE userId = 1");

  // Row 5 is inserted first (key order), then row 1 waits and times out.
  absl::Status status = writer->Apply({UserUpsert(5, "new", std::nullopt),
                                       UserUpsert(1, "writer", std::nullopt)});
  outside->rollback();
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(IsLockWaitTimeout(status)) << status;
  EXPECT_TRUE(IsRetriable(status)) << status;
  EXPECT_FALSE(NeedsReconnect(status)) << status;
  // 1205 alone rolls back only the statement in InnoDB; the writer rolls back the rest.
  EXPECT_EQ(ReadTable().count(5), 0u);

  ASSERT_TRUE(writer->Apply({UserUpsert(5, "new", std::nullopt),
                             UserUpsert(1, "writer", std::nullopt)})
                  .ok());
  EXPECT_EQ(ReadTable()[1].masking_name, Text("writer"));
  EXPECT_EQ(writer->Stats().lock_wait_timeouts, 1u);
}

TEST_F(MySqlWriterTest, KilledConnectionIsRetriableAndTheNextApplyReconnects) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({UserUpsert(1, "before", std::nullopt)}).ok());

  const int64_t writer_id = QueryInt(
      admin_.get(), absl::StrCat("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '",
                                 database_, "' AND ID <> CONNECTION_ID()"));
  Exec(admin_.get(), absl::StrCat("KILL CONNECTION ", writer_id));

  absl::Status status = writer->Apply({UserUpsert(2, "during", std::nullopt)});
  ASSERT_FALSE(status.ok());
  std::cerr << "writer status after KILL: " << status << "\n";
  EXPECT_TRUE(IsRetriable(status)) << status;
  EXPECT_TRUE(NeedsReconnect(status)) << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  ASSERT_TRUE(MySqlErrorCode(status).has_value());

  status = writer->Apply({UserUpsert(2, "after", std::nullopt)});
  ASSERT_TRUE(status.ok()) << status;
  NicknameTable table = ReadTable();
  EXPECT_EQ(table[1].masking_name, Text("before"));
  EXPECT_EQ(table[2].masking_name, Text("after"));
  EXPECT_EQ(writer->Stats().reconnects, 1u);
  EXPECT_NE(QueryInt(admin_.get(),
                     absl::StrCat("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '",
                                  database_, "' AND ID <> CONNECTION_ID()")),
            writer_id);
}

// Killed while it waits for a lock in the middle of a transaction: nothing of it survives.
TEST_F(MySqlWriterTest, ConnectionKilledMidTransactionLeavesNothing) {
  MySqlOptions options = options_;
  options.lock_wait_timeout_s = 10;  // Bounds the wait should the kill not arrive.
  std::unique_ptr<MySqlWriter> writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({UserUpsert(2, "orig", std::nullopt)}).ok());
  const int64_t writer_id = QueryInt(
      admin_.get(), absl::StrCat("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '",
                                 database_, "' AND ID <> CONNECTION_ID()"));

  std::unique_ptr<sql::Connection> outside = OpenConnection(database_);
  outside->setAutoCommit(false);
  Exec(outside.get(), "UPDATE Nickname SET currentNickname = 'held' WHERE userId = 2");

  const std::vector<RowCommand> batch = {UserUpsert(1, "new-1", std::nullopt),
                                         UserUpsert(2, "new-2", std::nullopt)};
  std::future<absl::Status> applied =
      std::async(std::launch::async, [&writer, &batch] { return writer->Apply(batch); });
  ASSERT_TRUE(WaitForLockWait()) << "the writer never waited for row 2";
  Exec(admin_.get(), absl::StrCat("KILL CONNECTION ", writer_id));
  ASSERT_EQ(applied.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  absl::Status status = applied.get();
  outside->rollback();
  std::cerr << "writer status when killed mid-transaction: " << status << "\n";
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(NeedsReconnect(status)) << status;
  EXPECT_EQ(ReadTable().count(1), 0u);  // Row 1 was inserted, then rolled back with the kill.

  ASSERT_TRUE(writer->Apply(batch).ok());
  NicknameTable table = ReadTable();
  EXPECT_EQ(table[1].masking_name, Text("new-1"));
  EXPECT_EQ(table[2].masking_name, Text("new-2"));
}

TEST_F(MySqlWriterTest, PermanentErrorRollsBackTheWholeTransaction) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({UserUpsert(7, "seven", "2024-07-07 07:07:07.000000")}).ok());
  ASSERT_EQ(QueryInt(admin_.get(), "SELECT @@GLOBAL.sql_mode LIKE '%STRICT_TRANS_TABLES%'"), 1)
      << "the test needs strict mode (MariaDB's default)";

  // Round 0: insert 1 (ext shape) and delete 7; round 1: re-create 7 with a value too long for
  // VARCHAR(64). The statements of round 0 succeed before the failure and must be undone.
  const std::string too_long(65, 'x');
  absl::Status status = writer->Apply({ExtUpsert(1, "one", "nick-1"), DeleteCommand(7),
                                       UserUpsert(7, too_long, std::nullopt)});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(MySqlErrorCode(status), 1406) << status;
  EXPECT_FALSE(IsRetriable(status)) << status;
  EXPECT_FALSE(NeedsReconnect(status)) << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  NicknameTable table = ReadTable();
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[7], (NicknameRow{"seven", std::nullopt, "2024-07-07 07:07:07.000000"}));

  // The connection survives a permanent error.
  ASSERT_TRUE(writer->Apply({ExtUpsert(1, "one", "nick-1")}).ok());
  EXPECT_EQ(ReadTable().size(), 2u);
  EXPECT_EQ(writer->Stats().reconnects, 0u);
  EXPECT_EQ(writer->Stats().failed_transactions, 1u);
}

TEST_F(MySqlWriterTest, MissingTableIsPermanent) {
  TableSchema missing = schema_;
  missing.table = "NoSuchTable";
  absl::StatusOr<std::unique_ptr<MySqlWriter>> writer = MySqlWriter::Connect(options_, &missing);
  ASSERT_TRUE(writer.ok()) << writer.status();
  absl::Status status = (*writer)->Apply({UserUpsert(1, "x", std::nullopt)});
  EXPECT_EQ(MySqlErrorCode(status), 1146) << status;
  EXPECT_FALSE(IsRetriable(status));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MySqlWriterTest, UnreachableServerIsRetriableAfterReconnect) {
  MySqlOptions options = options_;
  options.port = 1;  // Nothing listens there.
  options.connect_timeout_ms = 2000;
  absl::StatusOr<std::unique_ptr<MySqlWriter>> writer = MySqlWriter::Connect(options, &schema_);
  ASSERT_FALSE(writer.ok());
  std::cerr << "connect to a closed port: " << writer.status() << "\n";
  // MariaDB's client library reports a refused TCP connection as 2002, MySQL's as 2003.
  const std::optional<int> code = MySqlErrorCode(writer.status());
  EXPECT_TRUE(code == 2002 || code == 2003) << writer.status();
  EXPECT_TRUE(IsRetriable(writer.status()));
  EXPECT_TRUE(NeedsReconnect(writer.status()));
}

TEST_F(MySqlWriterTest, EmptyBatchDoesNothing) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  EXPECT_TRUE(writer->Apply({}).ok());
  EXPECT_EQ(writer->Stats().transactions, 0u);
}

// The stale-write guard (storage/statement_sql.h) on the same table with version columns:
// user (source 0) guards maskingName and dateCreated, ext (source 1) currentNickname.
class GuardedMySqlWriterTest : public MySqlWriterTest {
 protected:
  void SetUp() override {
    MySqlWriterTest::SetUp();
    Exec(admin_.get(), "ALTER TABLE Nickname ADD COLUMN _cdc_user_ver DECIMAL(30,0) UNSIGNED NULL, "
                       "ADD COLUMN _cdc_ext_ver DECIMAL(30,0) UNSIGNED NULL");
    schema_.sources.resize(2);
    schema_.sources[0].version_column = "_cdc_user_ver";
    schema_.sources[1].version_column = "_cdc_ext_ver";
    schema_.stale_write_guard = true;
    schema_.column_guard = {0, 1, 0};
  }

  // The version of binlog position `pos` (file 1), deleted for a delete.
  static std::string Version(uint64_t pos, bool deleted = false) {
    ChangeEvent event;
    event.op = deleted ? ChangeOp::kDelete : ChangeOp::kUpsert;
    event.binlog = BinlogCoordinates{1, pos, 0, false};
    return RowVersionOf(event);
  }

  static RowCommand Versioned(RowCommand command, int source, uint64_t pos) {
    command.versions = {SourceVersion{source, Version(pos, command.kind != RowCommandKind::kUpsert)}};
    return command;
  }

  static RowCommand Release(int64_t user_id, int source, uint64_t pos) {
    RowCommand command = ClearCommand(
        user_id, source == 0 ? std::vector<int>{kMaskingName, kDateCreated}
                             : std::vector<int>{kCurrentNickname});
    command.kind = RowCommandKind::kRelease;
    return Versioned(std::move(command), source, pos);
  }

  std::string StoredVersion(int64_t user_id, const char* column) {
    std::unique_ptr<sql::Statement> s(admin_->createStatement());
    std::unique_ptr<sql::ResultSet> result(s->executeQuery(
        absl::StrCat("SELECT CAST(", column, " AS CHAR) FROM Nickname WHERE userId = ", user_id)));
    if (!result->next()) return "<no row>";
    std::string value = result->getString(1);
    return result->wasNull() ? "NULL" : value;
  }
};

TEST_F(GuardedMySqlWriterTest, AnOlderUpsertNeverWinsOverANewerOneAndIsCounted) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "new", "2024-01-02 00:00:00"), 0, 900),
                             Versioned(ExtUpsert(1, "ext", "nick9"), 1, 900)})
                  .ok());
  // Replayed older events, in a later batch each: refused by the database.
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "old", "2023-01-01 00:00:00"), 0, 500)}).ok());
  ASSERT_TRUE(writer->Apply({Versioned(ExtUpsert(1, "x", "nick5"), 1, 500)}).ok());
  // A redelivery of the same event (equal version) changes nothing either.
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "new", "2024-01-02 00:00:00"), 0, 900)}).ok());
  NicknameTable expected = {{1, {"new", "nick9", "2024-01-02 00:00:00.000000"}}};
  EXPECT_EQ(ReadTable(), expected);
  EXPECT_EQ(StoredVersion(1, "_cdc_user_ver"), Version(900));
  EXPECT_EQ(writer->Stats().stale_writes_stopped, 3u);

  // Newer wins; older after it inside one batch is folded away by the algebra, and counted.
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "newer", "2025-01-01 00:00:00"), 0, 950),
                             Versioned(UserUpsert(1, "old", "2023-01-01 00:00:00"), 0, 600)})
                  .ok());
  expected[1] = {"newer", "nick9", "2025-01-01 00:00:00.000000"};
  EXPECT_EQ(ReadTable(), expected);
  EXPECT_EQ(writer->Stats().stale_writes_stopped, 4u);
  EXPECT_EQ(writer->TakeStaleWritesStopped(), 4);
  EXPECT_EQ(writer->TakeStaleWritesStopped(), 0);
}

TEST_F(GuardedMySqlWriterTest, AnOlderUpsertDoesNotUndoANewerClearNorAnOlderClearANewerUpsert) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "a", "2024-01-01 00:00:00"), 0, 100),
                             Versioned(ExtUpsert(2, "b", "nick"), 1, 100),
                             Versioned(UserUpsert(2, "b", "2024-01-01 00:00:00"), 0, 100)})
                  .ok());
  ASSERT_TRUE(
      writer->Apply({Versioned(ClearCommand(1, {kMaskingName, kDateCreated}), 0, 300)}).ok());
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "stale", "2020-01-01 00:00:00"), 0, 200)}).ok());
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(2, "c", "2024-02-02 00:00:00"), 0, 400)}).ok());
  ASSERT_TRUE(
      writer->Apply({Versioned(ClearCommand(2, {kMaskingName, kDateCreated}), 0, 350)}).ok());
  NicknameTable expected = {{1, {std::nullopt, std::nullopt, std::nullopt}},
                            {2, {"c", "nick", "2024-02-02 00:00:00.000000"}}};
  EXPECT_EQ(ReadTable(), expected);
  EXPECT_EQ(writer->Stats().stale_writes_stopped, 2u);
}

TEST_F(GuardedMySqlWriterTest, AnOlderDeleteDoesNotRemoveANewerRow) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "a", "2024-01-01 00:00:00"), 0, 500),
                             Versioned(UserUpsert(2, "b", "2024-01-01 00:00:00"), 0, 500)})
                  .ok());
  ASSERT_TRUE(writer->Apply({Versioned(DeleteCommand(1), 0, 400)}).ok());  // Stale.
  ASSERT_TRUE(writer->Apply({Versioned(DeleteCommand(2), 0, 600)}).ok());  // Newer.
  NicknameTable expected = {{1, {"a", std::nullopt, "2024-01-01 00:00:00.000000"}}};
  EXPECT_EQ(ReadTable(), expected);
  EXPECT_EQ(writer->Stats().stale_writes_stopped, 1u);
}

TEST_F(GuardedMySqlWriterTest, ReleaseRemovesTheRowOnlyAfterTheLastSourceDeletedItsPart) {
  std::unique_ptr<MySqlWriter> writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Apply({Versioned(UserUpsert(1, "a", "2024-01-01 00:00:00"), 0, 100),
                             Versioned(ExtUpsert(1, "a", "nick"), 1, 100),
                             Versioned(UserUpsert(2, "b", "2024-01-01 00:00:00"), 0, 100)})
                  .ok());
  ASSERT_TRUE(writer->Apply({Release(1, 0, 200), Release(2, 0, 200)}).ok());
  // Row 1 is still ext's; row 2 had only user as a writer.
  NicknameTable expected = {{1, {std::nullopt, "nick", std::nullopt}}};
  EXPECT_EQ(ReadTable(), expected);
  EXPECT_EQ(StoredVersion(1, "_cdc_user_ver"), Version(200, /*deleted=*/true));
  // A stale release of ext does not count as its delete; its newer one removes the row.
  ASSERT_TRUE(writer->Apply({Release(1, 1, 50)}).ok());
  EXPECT_EQ(ReadTable(), expected);
  ASSERT_TRUE(writer->Apply({Release(1, 1, 300)}).ok());
  EXPECT_EQ(ReadTable(), NicknameTable{});
  EXPECT_EQ(writer->Stats().stale_writes_stopped, 1u);
}

}  // namespace
}  // namespace cdcjoin
