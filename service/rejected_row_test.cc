#include "service/rejected_row.h"

#include <limits>

#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

TableSchema Schema() {
  TableSchema schema;
  schema.table = "users";
  schema.key_columns = {"id"};
  schema.columns = {"name", "score", "note"};
  return schema;
}

TEST(RejectedRowJsonTest, AnUpsertNamesTableKeyAndColumns) {
  RowCommand command;
  command.key = {Value(int64_t{7})};
  command.writes = {ColumnWrite{0, true, Value(std::string("Ann \"A\"\n\\"))},
                    ColumnWrite{1, true, Value(2.5)}, ColumnWrite{2, false, Value()}};
  EXPECT_EQ(RejectedRowJson(command, Schema()),
            R"({"table":"users","command":"upsert","key":{"id":7},)"
            R"("columns":{"name":"Ann \"A\"\n\\","score":2.5,"note":null}})");
}

TEST(RejectedRowJsonTest, ControlCharactersAndNonFiniteNumbersStayValidJson) {
  RowCommand command;
  command.key = {Value(std::string("k\x01"))};
  command.writes = {ColumnWrite{1, true, Value(std::numeric_limits<double>::infinity())}};
  EXPECT_EQ(RejectedRowJson(command, Schema()),
            R"({"table":"users","command":"upsert","key":{"id":"k\u0001"},)"
            R"("columns":{"score":"inf"}})");
}

TEST(RejectedRowJsonTest, AClearNullsItsColumnsAndADeleteHasNone) {
  RowCommand clear;
  clear.kind = RowCommandKind::kClear;
  clear.key = {Value(int64_t{1})};
  clear.writes = {ColumnWrite{0, true, Value(std::string("ignored"))}};
  EXPECT_EQ(RejectedRowJson(clear, Schema()),
            R"({"table":"users","command":"clear","key":{"id":1},"columns":{"name":null}})");
  RowCommand remove;
  remove.kind = RowCommandKind::kDelete;
  remove.key = {Value(int64_t{1})};
  EXPECT_EQ(RejectedRowJson(remove, Schema()),
            R"({"table":"users","command":"delete","key":{"id":1},"columns":{}})");
}

}  // namespace
}  // namespace cdcjoin
