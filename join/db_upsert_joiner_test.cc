#include "join/db_upsert_joiner.h"

#include <gtest/gtest.h>

#include "google/protobuf/text_format.h"

namespace cdcjoin {
namespace {

TableSchema SeedSchema(v1::DeletePolicy ext_delete) {
  v1::Config config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(R"pb(
    target { table: "Nickname" key_columns: "userId" }
    sources {
      name: "user" topic: "u" key_fields: "id"
      columns { from: "simpleName" to: "maskingName" }
      columns { from: "dateCreated" to: "dateCreated" }
    }
    sources {
      name: "ext" topic: "e" key_fields: "userId"
      columns { from: "originalName" to: "currentNickname" }
      columns { from: "originalName" to: "maskingName" insert_only: true }
    }
  )pb", &config));
  config.mutable_sources(1)->set_on_delete(ext_delete);
  return *TableSchema::FromConfig(config);
}

ChangeEvent Event(int source, ChangeOp op, int64_t key, std::vector<Value> values) {
  ChangeEvent event;
  event.source = source;
  event.op = op;
  event.key = {Value{key}};
  event.values = std::move(values);
  event.position = EventPosition{SourcePartition{source, 2}, 41};
  return event;
}

TEST(DbUpsertJoinerTest, UpsertWritesOnlyTheSourcesColumnsSortedWithInsertOnlyFlags) {
  TableSchema schema = SeedSchema(v1::IGNORE);
  // Columns in schema order: maskingName(0), dateCreated(1), currentNickname(2).
  auto command = BuildDbUpsertCommand(
      schema, Event(1, ChangeOp::kUpsert, 7, {Value{std::string("neo")}, Value{std::string("neo")}}));
  ASSERT_TRUE(command.has_value());
  EXPECT_EQ(command->kind, RowCommandKind::kUpsert);
  EXPECT_EQ(command->key, Key{Value{int64_t{7}}});
  ASSERT_EQ(command->writes.size(), 2u);
  EXPECT_EQ(command->writes[0], (ColumnWrite{0, false, Value{std::string("neo")}}));
  EXPECT_EQ(command->writes[1], (ColumnWrite{2, true, Value{std::string("neo")}}));
  ASSERT_EQ(command->covers.size(), 1u);
  EXPECT_EQ(command->covers[0].offset, 41);
  EXPECT_EQ(command->covers[0].partition, (SourcePartition{1, 2}));
}

TEST(DbUpsertJoinerTest, DeletePolicies) {
  EXPECT_FALSE(BuildDbUpsertCommand(SeedSchema(v1::IGNORE), Event(1, ChangeOp::kDelete, 7, {}))
                   .has_value());

  auto clear =
      BuildDbUpsertCommand(SeedSchema(v1::CLEAR_COLUMNS), Event(1, ChangeOp::kDelete, 7, {}));
  ASSERT_TRUE(clear.has_value());
  EXPECT_EQ(clear->kind, RowCommandKind::kClear);
  ASSERT_EQ(clear->writes.size(), 1u) << "the insert-only column is not the source's to clear";
  EXPECT_EQ(clear->writes[0].column, 2);

  auto remove =
      BuildDbUpsertCommand(SeedSchema(v1::DELETE_ROW), Event(1, ChangeOp::kDelete, 7, {}));
  ASSERT_TRUE(remove.has_value());
  EXPECT_EQ(remove->kind, RowCommandKind::kDelete);
  EXPECT_TRUE(remove->writes.empty());
}

TEST(DbUpsertJoinerTest, SourceCommandsSortColumnsAndTheLaterMappingOfAColumnWins) {
  SourceMapping source;
  source.on_delete = v1::CLEAR_COLUMNS;
  source.fields = {FieldMapping{"a", 3, true, false, v1::VALUE_TYPE_AUTO},
                   FieldMapping{"b", 1, false, false, v1::VALUE_TYPE_AUTO},
                   FieldMapping{"c", 3, false, false, v1::VALUE_TYPE_AUTO}};
  const SourceCommands commands(source, 0, /*guarded=*/false);
  EXPECT_EQ(commands.value_count(), 3u);
  ASSERT_EQ(commands.fields().size(), 2u);
  EXPECT_EQ(commands.fields()[0].column, 1);
  EXPECT_EQ(commands.fields()[1].column, 3);
  EXPECT_EQ(commands.fields()[1].value_index, 2u);
  EXPECT_TRUE(commands.clear_writes().empty()) << "both columns end up insert-only";

  ChangeEvent upsert = Event(0, ChangeOp::kUpsert, 1, {Value{"x"}, Value{"y"}, Value{"z"}});
  std::optional<RowCommand> command = commands.Command(upsert);
  ASSERT_TRUE(command.has_value());
  EXPECT_TRUE(command->key.empty()) << "keys and covers are the caller's";
  EXPECT_EQ(command->writes, (std::vector<ColumnWrite>{ColumnWrite{1, false, Value{"y"}},
                                                       ColumnWrite{3, false, Value{"z"}}}));
}

TEST(DbUpsertJoinerTest, GuardedCommandsCarryTheEventsVersionAndReleaseOnOwnershipDelete) {
  TableSchema schema = SeedSchema(v1::DELETE_ROW_WHEN_ALL_DELETED);
  schema.stale_write_guard = true;
  ChangeEvent upsert = Event(1, ChangeOp::kUpsert, 7, {Value{"n"}, Value{"n"}});
  upsert.binlog = BinlogCoordinates{3, 120, 1, false};
  std::optional<RowCommand> command = BuildDbUpsertCommand(schema, upsert);
  ASSERT_TRUE(command.has_value());
  ASSERT_EQ(command->versions.size(), 1u);
  EXPECT_EQ(command->versions[0].source, 1);
  EXPECT_EQ(command->versions[0].version, "200000000300000000012010000010");

  ChangeEvent remove = Event(1, ChangeOp::kDelete, 7, {});
  command = BuildDbUpsertCommand(schema, remove);
  ASSERT_TRUE(command.has_value());
  EXPECT_EQ(command->kind, RowCommandKind::kRelease);
  EXPECT_EQ(command->writes.size(), 1u) << "the updatable column only";
  ASSERT_EQ(command->versions.size(), 1u);
  EXPECT_EQ(command->versions[0].version.back(), '1') << "offset version, marked deleted";
}

}  // namespace
}  // namespace cdcjoin
