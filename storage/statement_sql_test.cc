#include "storage/statement_sql.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "join/row_version.h"

namespace cdcjoin {
namespace {

using ::testing::ElementsAre;

// Two sources: user owns simpleName (and sets maskingName on insert only), ext owns
// originalName.
TableSchema Schema(bool guard) {
  v1::Config config;
  google::protobuf::TextFormat::ParseFromString(R"pb(
    target { table: "Nickname" key_columns: "userId" }
    sources {
      name: "user" topic: "t1" key_fields: "id"
      columns { from: "simpleName" to: "simpleName" }
      columns { from: "simpleName" to: "maskingName" insert_only: true shared: true }
      version_column: "_cdc_user_ver"
    }
    sources {
      name: "ext" topic: "t2" key_fields: "userId"
      columns { from: "originalName" to: "originalName" }
      version_column: "_cdc_ext_ver"
    }
  )pb", &config);
  config.mutable_target()->set_stale_write_guard(guard);
  return *TableSchema::FromConfig(config);
}

const std::string kV5 = "200000000100000000000510000000";
const std::string kV9 = "200000000100000000000910000001";

// A statement of `commands`, which it points into; their shape is the first one's.
PlannedStatement Planned(const std::vector<RowCommand>& commands) {
  PlannedStatement planned;
  planned.shape = StatementShape::Of(commands.front());
  for (const RowCommand& command : commands) planned.rows.push_back(&command);
  return planned;
}

RowCommand UserUpsert(int64_t key, std::string name) {
  RowCommand c;
  c.kind = RowCommandKind::kUpsert;
  c.key = {key};
  c.writes = {ColumnWrite{0, true, name}, ColumnWrite{1, false, name}};
  c.versions = {SourceVersion{0, kV5}};
  return c;
}

TEST(StatementSqlTest, UnguardedUpsertUpdatesWithValues) {
  RowCommand c = UserUpsert(1, "a");
  c.versions.clear();
  std::vector<SqlStatement> sql = PlannedStatementSql(Schema(false), Planned({c}));
  ASSERT_EQ(sql.size(), 1u);
  EXPECT_EQ(sql[0].text,
            "INSERT INTO `Nickname` (`userId`, `simpleName`, `maskingName`) VALUES (?, ?, ?) "
            "ON DUPLICATE KEY UPDATE `simpleName` = VALUES(`simpleName`)");
  EXPECT_THAT(sql[0].parameters, ElementsAre(Value{int64_t{1}}, Value{"a"}, Value{"a"}));
}

TEST(StatementSqlTest, GuardedUpsertComparesVersionsAndAssignsTheVersionLast) {
  const std::vector<RowCommand> rows = {UserUpsert(1, "a"), UserUpsert(2, "b")};
  std::vector<SqlStatement> sql = PlannedStatementSql(Schema(true), Planned(rows));
  ASSERT_EQ(sql.size(), 1u);
  EXPECT_EQ(sql[0].text,
            "INSERT INTO `Nickname` (`userId`, `simpleName`, `maskingName`, `_cdc_user_ver`) "
            "VALUES (?, ?, ?, ?), (?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
            "`simpleName` = IF(VALUES(`_cdc_user_ver`) > `_cdc_user_ver` OR `_cdc_user_ver` IS "
            "NULL, VALUES(`simpleName`), `simpleName`), "
            "`_cdc_user_ver` = IF(VALUES(`_cdc_user_ver`) > `_cdc_user_ver` OR `_cdc_user_ver` "
            "IS NULL, VALUES(`_cdc_user_ver`), IF((@cdcjoin_stale := @cdcjoin_stale + 1) > 0, "
            "`_cdc_user_ver`, `_cdc_user_ver`))");
  EXPECT_THAT(sql[0].parameters,
              ElementsAre(Value{int64_t{1}}, Value{"a"}, Value{"a"}, Value{kV5},
                          Value{int64_t{2}}, Value{"b"}, Value{"b"}, Value{kV5}));
}

TEST(StatementSqlTest, GuardedClearMarksEachRowWhereNewer) {
  RowCommand c;
  c.kind = RowCommandKind::kClear;
  c.key = {int64_t{3}};
  c.writes = {ColumnWrite{2, true, Value{}}};
  c.versions = {SourceVersion{1, kV9}};
  std::vector<SqlStatement> sql = PlannedStatementSql(Schema(true), Planned({c}));
  ASSERT_EQ(sql.size(), 1u);
  EXPECT_EQ(sql[0].text,
            "UPDATE `Nickname` SET `originalName` = IF(CAST(? AS DECIMAL(30,0)) > `_cdc_ext_ver` "
            "OR `_cdc_ext_ver` IS NULL, NULL, `originalName`), `_cdc_ext_ver` = IF(CAST(? AS "
            "DECIMAL(30,0)) > `_cdc_ext_ver` OR `_cdc_ext_ver` IS NULL, CAST(? AS "
            "DECIMAL(30,0)), IF((@cdcjoin_stale := @cdcjoin_stale + 1) > 0, `_cdc_ext_ver`, "
            "`_cdc_ext_ver`)) WHERE `userId` = ?");
  EXPECT_THAT(sql[0].parameters,
              ElementsAre(Value{kV9}, Value{kV9}, Value{kV9}, Value{int64_t{3}}));
}

TEST(StatementSqlTest, GuardedDeleteRemovesOnlyWhereTheMarkTook) {
  RowCommand c;
  c.kind = RowCommandKind::kDelete;
  c.key = {int64_t{4}};
  c.versions = {SourceVersion{0, kV9}};
  std::vector<SqlStatement> sql = PlannedStatementSql(Schema(true), Planned({c}));
  ASSERT_EQ(sql.size(), 2u);
  EXPECT_EQ(sql[0].text,
            "UPDATE `Nickname` SET `_cdc_user_ver` = IF(CAST(? AS DECIMAL(30,0)) > "
            "`_cdc_user_ver` OR `_cdc_user_ver` IS NULL, CAST(? AS DECIMAL(30,0)), "
            "IF((@cdcjoin_stale := @cdcjoin_stale + 1) > 0, `_cdc_user_ver`, `_cdc_user_ver`)) "
            "WHERE `userId` = ?");
  EXPECT_EQ(sql[1].text,
            "DELETE FROM `Nickname` WHERE (`userId` = ? AND `_cdc_user_ver` = CAST(? AS "
            "DECIMAL(30,0)))");
  EXPECT_THAT(sql[1].parameters, ElementsAre(Value{int64_t{4}}, Value{kV9}));
}

TEST(StatementSqlTest, ReleaseRemovesOnlyRowsItMarkedThatNoSourceOwns) {
  RowCommand c;
  c.kind = RowCommandKind::kRelease;
  c.key = {int64_t{5}};
  c.writes = {ColumnWrite{0, true, Value{}}};
  c.versions = {SourceVersion{0, kV9}};
  std::vector<SqlStatement> sql = PlannedStatementSql(Schema(true), Planned({c}));
  ASSERT_EQ(sql.size(), 2u);
  EXPECT_EQ(sql[1].text,
            "DELETE FROM `Nickname` WHERE ((`userId` = ? AND `_cdc_user_ver` = CAST(? AS "
            "DECIMAL(30,0)))) AND (`_cdc_user_ver` IS NULL OR MOD(`_cdc_user_ver`, 10) = 1) AND "
            "(`_cdc_ext_ver` IS NULL OR MOD(`_cdc_ext_ver`, 10) = 1)");
  EXPECT_THAT(sql[1].parameters, ElementsAre(Value{int64_t{5}}, Value{kV9}));
}

TEST(StatementSqlTest, DdlAddsOneDecimalVersionColumnPerSource) {
  EXPECT_THAT(VersionColumnDdl(Schema(true)),
              ElementsAre("ALTER TABLE `Nickname` ADD COLUMN `_cdc_user_ver` DECIMAL(30,0) "
                          "UNSIGNED NULL;",
                          "ALTER TABLE `Nickname` ADD COLUMN `_cdc_ext_ver` DECIMAL(30,0) "
                          "UNSIGNED NULL;"));
  EXPECT_TRUE(VersionColumnDdl(Schema(false)).empty());
}

}  // namespace
}  // namespace cdcjoin
