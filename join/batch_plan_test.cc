#include "join/batch_plan.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

using K = RowCommandKind;

constexpr int kColumns = 4;

// The reference semantics of row_command.h on an in-memory table whose columns default to NULL.
using Row = std::vector<Value>;
using Table = std::map<Key, Row>;

void ApplyOne(const RowCommand& command, Table* table) {
  auto it = table->find(command.key);
  switch (command.kind) {
    case K::kUpsert:
      if (it == table->end()) {
        Row row(kColumns);
        for (const ColumnWrite& write : command.writes) row[write.column] = write.value;
        table->emplace(command.key, std::move(row));
      } else {
        for (const ColumnWrite& write : command.writes) {
          if (write.update_on_conflict) it->second[write.column] = write.value;
        }
      }
      break;
    case K::kClear:
      if (it != table->end()) {
        for (const ColumnWrite& write : command.writes) it->second[write.column] = Value();
      }
      break;
    case K::kDelete:
      if (it != table->end()) table->erase(it);
      break;
  }
}

ColumnWrite W(int column, bool update_on_conflict, Value value) {
  ColumnWrite write;
  write.column = column;
  write.update_on_conflict = update_on_conflict;
  write.value = std::move(value);
  return write;
}

EventPosition Pos(int64_t offset, int source = 0) {
  EventPosition position;
  position.partition.source = source;
  position.partition.partition = 0;
  position.offset = offset;
  return position;
}

RowCommand Upsert(int64_t key, std::vector<ColumnWrite> writes, int64_t offset) {
  RowCommand command;
  command.kind = K::kUpsert;
  command.key = {Value(key)};
  command.writes = std::move(writes);
  command.covers = {Pos(offset)};
  return command;
}

RowCommand Clear(int64_t key, std::vector<int> columns, int64_t offset) {
  RowCommand command;
  command.kind = K::kClear;
  command.key = {Value(key)};
  for (int column : columns) command.writes.push_back(W(column, false, Value()));
  command.covers = {Pos(offset)};
  return command;
}

RowCommand Delete(int64_t key, int64_t offset) {
  RowCommand command;
  command.kind = K::kDelete;
  command.key = {Value(key)};
  command.covers = {Pos(offset)};
  return command;
}

std::vector<int64_t> Offsets(const std::vector<EventPosition>& covers) {
  std::vector<int64_t> offsets;
  for (const EventPosition& position : covers) offsets.push_back(position.offset);
  return offsets;
}

std::vector<RowCommand> Collapse(std::vector<RowCommand> commands) {
  std::vector<EventPosition> orphans;
  std::vector<RowCommand> out = CollapseKeyCommands(std::move(commands), &orphans);
  EXPECT_TRUE(orphans.empty());
  return out;
}

// Runs both the sequential commands and the plan against every interesting start state of the
// key: absent, and present with all columns set.
void ExpectEquivalent(const std::vector<RowCommand>& commands, const std::vector<RowCommand>& out) {
  for (bool present : {false, true}) {
    Table sequential;
    if (present) sequential[commands[0].key] = Row{Value("o0"), Value("o1"), Value("o2"), Value("o3")};
    Table collapsed = sequential;
    for (const RowCommand& command : commands) ApplyOne(command, &sequential);
    for (const RowCommand& command : out) ApplyOne(command, &collapsed);
    EXPECT_EQ(sequential, collapsed) << "row present before: " << present;
  }
}

TEST(CollapseTest, SameShapeUpsertsMergeLaterUpdateWinsFirstInsertOnlyWins) {
  std::vector<RowCommand> in = {
      Upsert(1, {W(0, true, Value("a1")), W(1, false, Value("b1"))}, 10),
      Upsert(1, {W(0, true, Value("a2")), W(1, false, Value("b2"))}, 11),
      Upsert(1, {W(0, true, Value("a3")), W(1, false, Value("b3"))}, 12),
  };
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_THAT(out[0].writes, ::testing::ElementsAre(W(0, true, Value("a3")),
                                                    W(1, false, Value("b1"))));
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(10, 11, 12));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, ColumnWrittenByBothWithDifferentFlags) {
  // Update-on-conflict then insert-only: the first value wins and stays update-on-conflict
  // (an existing row got it from the first command; a new row was inserted with it).
  std::vector<RowCommand> in1 = {Upsert(1, {W(0, true, Value("u"))}, 1),
                                 Upsert(1, {W(0, false, Value("i"))}, 2)};
  std::vector<RowCommand> out1 = Collapse(in1);
  ASSERT_EQ(out1.size(), 1u);
  EXPECT_THAT(out1[0].writes, ::testing::ElementsAre(W(0, true, Value("u"))));
  ExpectEquivalent(in1, out1);

  // Insert-only then update-on-conflict: the later value wins in every case.
  std::vector<RowCommand> in2 = {Upsert(1, {W(0, false, Value("i"))}, 1),
                                 Upsert(1, {W(0, true, Value("u"))}, 2)};
  std::vector<RowCommand> out2 = Collapse(in2);
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_THAT(out2[0].writes, ::testing::ElementsAre(W(0, true, Value("u"))));
  ExpectEquivalent(in2, out2);
}

TEST(CollapseTest, TheSeedsTwoSourcesMergeIntoOneUpsert) {
  // user: maskingName(0) + dateCreated(2) updated; user_ext: currentNickname(1) updated,
  // maskingName(0) insert-only.
  std::vector<RowCommand> in = {
      Upsert(7, {W(0, true, Value("mask")), W(2, true, Value("2024-01-01 00:00:00"))}, 1),
      Upsert(7, {W(0, false, Value("ext-mask")), W(1, true, Value("nick"))}, 2),
  };
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].writes,
              ::testing::ElementsAre(W(0, true, Value("mask")), W(1, true, Value("nick")),
                                     W(2, true, Value("2024-01-01 00:00:00"))));
  ExpectEquivalent(in, out);

  // The other order: user_ext first inserts maskingName, user then overwrites it.
  std::vector<RowCommand> reversed = {in[1], in[0]};
  out = Collapse(reversed);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].writes,
              ::testing::ElementsAre(W(0, true, Value("mask")), W(1, true, Value("nick")),
                                     W(2, true, Value("2024-01-01 00:00:00"))));
  ExpectEquivalent(reversed, out);
}

TEST(CollapseTest, InsertOnlyColumnOnlyInTheLaterUpsertIsDropped) {
  std::vector<RowCommand> in = {Upsert(1, {W(0, true, Value("a"))}, 1),
                                Upsert(1, {W(1, false, Value("b"))}, 2)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].writes, ::testing::ElementsAre(W(0, true, Value("a"))));
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(1, 2));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, UpsertThenDeleteBecomesTheDelete) {
  std::vector<RowCommand> in = {Upsert(1, {W(0, true, Value("a"))}, 1), Clear(1, {1}, 2),
                                Upsert(1, {W(1, true, Value("b"))}, 3), Delete(1, 4)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kDelete);
  EXPECT_TRUE(out[0].writes.empty());
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(1, 2, 3, 4));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, DeleteThenUpsertStaysTwoInOrder) {
  std::vector<RowCommand> in = {Delete(1, 1), Upsert(1, {W(0, true, Value("a"))}, 2),
                                Upsert(1, {W(0, true, Value("b"))}, 3)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, K::kDelete);
  EXPECT_EQ(out[1].kind, K::kUpsert);
  EXPECT_THAT(out[1].writes, ::testing::ElementsAre(W(0, true, Value("b"))));
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(1));
  EXPECT_THAT(Offsets(out[1].covers), ::testing::ElementsAre(2, 3));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, DeleteThenClearIsTheDelete) {
  std::vector<RowCommand> in = {Delete(1, 1), Clear(1, {0, 1}, 2)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kDelete);
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(1, 2));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, ClearsMergeIntoTheirUnion) {
  std::vector<RowCommand> in = {Clear(1, {0, 2}, 1), Clear(1, {1, 2}, 2)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kClear);
  EXPECT_EQ(StatementShape::Of(out[0]).columns,
            (std::vector<std::pair<int, bool>>{{0, false}, {1, false}, {2, false}}));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, UpsertThenClearWritesNulls) {
  std::vector<RowCommand> in = {Upsert(1, {W(0, true, Value("a")), W(1, false, Value("b"))}, 1),
                                Clear(1, {1, 3}, 2)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_THAT(out[0].writes, ::testing::ElementsAre(W(0, true, Value("a")),
                                                    W(1, true, Value()), W(3, true, Value())));
  ExpectEquivalent(in, out);
}

TEST(CollapseTest, ClearThenUpsertMergesOnlyWhenTheUpsertOverwritesEveryClearedColumn) {
  std::vector<RowCommand> in = {Clear(1, {0}, 1),
                                Upsert(1, {W(0, true, Value("a")), W(1, false, Value("b"))}, 2)};
  std::vector<RowCommand> out = Collapse(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(1, 2));
  ExpectEquivalent(in, out);

  // Column 1 is insert-only: an existing row must end with it NULL, a new one with "b".
  std::vector<RowCommand> in2 = {Clear(1, {0, 1}, 1),
                                 Upsert(1, {W(0, true, Value("a")), W(1, false, Value("b"))}, 2)};
  std::vector<RowCommand> out2 = Collapse(in2);
  ASSERT_EQ(out2.size(), 2u);
  EXPECT_EQ(out2[0].kind, K::kClear);
  EXPECT_EQ(out2[1].kind, K::kUpsert);
  ExpectEquivalent(in2, out2);

  // A later clear can make the upsert overwrite the earlier clear: everything folds into one.
  std::vector<RowCommand> in3 = {Clear(1, {0, 1}, 1),
                                 Upsert(1, {W(0, true, Value("a")), W(1, false, Value("b"))}, 2),
                                 Clear(1, {1}, 3)};
  std::vector<RowCommand> out3 = Collapse(in3);
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_THAT(Offsets(out3[0].covers), ::testing::ElementsAre(1, 2, 3));
  ExpectEquivalent(in3, out3);
}

TEST(CollapseTest, LoneEmptyClearLeavesOnlyItsCovers) {
  std::vector<EventPosition> orphans;
  std::vector<RowCommand> out = CollapseKeyCommands({Clear(1, {}, 5), Clear(1, {}, 6)}, &orphans);
  EXPECT_TRUE(out.empty());
  EXPECT_THAT(Offsets(orphans), ::testing::ElementsAre(5, 6));

  orphans.clear();
  out = CollapseKeyCommands({Clear(1, {}, 5), Upsert(1, {W(0, false, Value("x"))}, 6)}, &orphans);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(orphans.empty());
  EXPECT_THAT(Offsets(out[0].covers), ::testing::ElementsAre(5, 6));
}

TEST(PlanBatchTest, RoundsGroupsSortingAndSplitting) {
  const std::vector<ColumnWrite> user = {W(0, true, Value("m")), W(2, true, Value("d"))};
  const std::vector<ColumnWrite> ext = {W(0, false, Value("m")), W(1, true, Value("n"))};
  std::vector<RowCommand> batch = {
      Upsert(5, user, 1), Upsert(3, user, 2), Delete(9, 3),     Upsert(9, ext, 4),
      Upsert(1, user, 5), Upsert(4, ext, 6),  Delete(3, 7),     Upsert(3, user, 8),
      Upsert(2, user, 9), Clear(8, {1}, 10),
  };
  BatchPlan plan = PlanBatch(batch, BatchPlanOptions{2});
  ASSERT_EQ(plan.rounds.size(), 2u);

  // Round 0: user upserts for keys 1, 2, 5 (3 rows -> split 2 + 1), the ext upsert for 4, the
  // clear of 8, and the deletes of 3 and 9 (key 3: upsert then delete collapsed to the delete).
  std::vector<std::pair<K, std::vector<int64_t>>> round0;
  for (const PlannedStatement& statement : plan.rounds[0]) {
    std::vector<int64_t> keys;
    for (const RowCommand& row : statement.rows) {
      EXPECT_EQ(StatementShape::Of(row), statement.shape);
      keys.push_back(std::get<int64_t>(row.key[0]));
    }
    round0.emplace_back(statement.shape.kind, keys);
  }
  EXPECT_THAT(round0, ::testing::UnorderedElementsAre(
                          std::make_pair(K::kUpsert, std::vector<int64_t>{1, 2}),
                          std::make_pair(K::kUpsert, std::vector<int64_t>{5}),
                          std::make_pair(K::kUpsert, std::vector<int64_t>{4}),
                          std::make_pair(K::kClear, std::vector<int64_t>{8}),
                          std::make_pair(K::kDelete, std::vector<int64_t>{3, 9})));
  // The split keeps one shape's rows in key order across the pieces.
  // Round 1: the upserts after the deletes of 3 (user) and 9 (ext): different shapes.
  std::vector<std::pair<K, std::vector<int64_t>>> round1;
  for (const PlannedStatement& statement : plan.rounds[1]) {
    std::vector<int64_t> keys;
    for (const RowCommand& row : statement.rows) keys.push_back(std::get<int64_t>(row.key[0]));
    round1.emplace_back(statement.shape.kind, keys);
  }
  EXPECT_THAT(round1,
              ::testing::UnorderedElementsAre(std::make_pair(K::kUpsert, std::vector<int64_t>{3}),
                                              std::make_pair(K::kUpsert, std::vector<int64_t>{9})));
  EXPECT_EQ(plan.StatementCount(), 7u);
  EXPECT_EQ(plan.RowCount(), 9u);  // Key 3: upsert, delete, upsert -> delete, upsert.
  std::vector<int64_t> covers = Offsets(plan.AllCovers());
  std::sort(covers.begin(), covers.end());
  EXPECT_THAT(covers, ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
}

TEST(PlanBatchTest, RowsAreSortedByKeyWithinAStatement) {
  std::vector<RowCommand> batch;
  for (int64_t key : {42, 7, 19, -3, 100, 0}) {
    batch.push_back(Upsert(key, {W(0, true, Value(key))}, key + 1000));
  }
  BatchPlan plan = PlanBatch(batch);
  ASSERT_EQ(plan.rounds.size(), 1u);
  ASSERT_EQ(plan.rounds[0].size(), 1u);
  std::vector<int64_t> keys;
  for (const RowCommand& row : plan.rounds[0][0].rows) keys.push_back(std::get<int64_t>(row.key[0]));
  EXPECT_THAT(keys, ::testing::ElementsAre(-3, 0, 7, 19, 42, 100));
}

TEST(PlanBatchTest, CompositeKeysSortLexicographically) {
  std::vector<RowCommand> batch;
  for (auto key : std::vector<std::pair<int64_t, std::string>>{{2, "a"}, {1, "b"}, {1, "a"}}) {
    RowCommand command = Upsert(0, {W(0, true, Value("x"))}, 1);
    command.key = {Value(key.first), Value(key.second)};
    batch.push_back(command);
  }
  BatchPlan plan = PlanBatch(batch);
  ASSERT_EQ(plan.StatementCount(), 1u);
  const auto& rows = plan.rounds[0][0].rows;
  EXPECT_EQ(rows[0].key, (Key{Value(int64_t{1}), Value("a")}));
  EXPECT_EQ(rows[1].key, (Key{Value(int64_t{1}), Value("b")}));
  EXPECT_EQ(rows[2].key, (Key{Value(int64_t{2}), Value("a")}));
}

TEST(PlanBatchTest, EmptyBatchIsAnEmptyPlan) {
  BatchPlan plan = PlanBatch({});
  EXPECT_TRUE(plan.rounds.empty());
  EXPECT_EQ(plan.StatementCount(), 0u);
}

// Random batches over few keys and columns, applied one by one and through the plan (with the
// statements of each round shuffled, since their order is free) must give the same table.
TEST(PlanBatchTest, RandomizedPlanEqualsSequentialApplication) {
  std::mt19937 rng(20261126);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto random_value = [&]() -> Value {
    switch (pick(4)) {
      case 0: return Value();
      case 1: return Value(int64_t{pick(5)});
      case 2: return Value(0.5 * pick(5));
      default: return Value(std::string(1, static_cast<char>('a' + pick(5))));
    }
  };
  int multi_round_plans = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    const int keys = 1 + pick(6);
    Table initial;
    for (int key = 0; key < keys; ++key) {
      if (pick(2) == 0) continue;
      Row row(kColumns);
      for (Value& value : row) value = random_value();
      initial[{Value(int64_t{key})}] = row;
    }
    std::vector<RowCommand> batch;
    const int length = pick(25);
    for (int i = 0; i < length; ++i) {
      const int64_t key = pick(keys);
      const int kind = pick(10);
      if (kind < 6) {
        std::vector<ColumnWrite> writes;
        for (int column = 0; column < kColumns; ++column) {
          if (pick(2) == 0) writes.push_back(W(column, pick(2) == 0, random_value()));
        }
        batch.push_back(Upsert(key, writes, i));
      } else if (kind < 8) {
        std::vector<int> columns;
        for (int column = 0; column < kColumns; ++column) {
          if (pick(3) == 0) columns.push_back(column);
        }
        batch.push_back(Clear(key, columns, i));
      } else {
        batch.push_back(Delete(key, i));
      }
    }

    Table sequential = initial;
    for (const RowCommand& command : batch) ApplyOne(command, &sequential);

    const size_t max_rows = 1 + pick(4);
    BatchPlan plan = PlanBatch(batch, BatchPlanOptions{max_rows});
    if (plan.rounds.size() > 1) ++multi_round_plans;
    Table planned = initial;
    for (auto& round : plan.rounds) {
      std::set<Key> round_keys;
      std::shuffle(round.begin(), round.end(), rng);
      for (const PlannedStatement& statement : round) {
        ASSERT_LE(statement.rows.size(), max_rows);
        ASSERT_FALSE(statement.rows.empty());
        for (size_t r = 0; r < statement.rows.size(); ++r) {
          const RowCommand& row = statement.rows[r];
          ASSERT_EQ(StatementShape::Of(row), statement.shape);
          if (r > 0) {
            ASSERT_TRUE(statement.rows[r - 1].key < row.key);
          }
          ASSERT_TRUE(round_keys.insert(row.key).second) << "key twice in one round";
          ApplyOne(row, &planned);
        }
      }
    }
    ASSERT_EQ(sequential, planned) << "iteration " << iteration;

    // Every event stays acknowledged exactly once; a batch never needs more rows than commands.
    std::vector<int64_t> covers = Offsets(plan.AllCovers());
    std::sort(covers.begin(), covers.end());
    std::vector<int64_t> expected(batch.size());
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int64_t>(i);
    ASSERT_EQ(covers, expected) << "iteration " << iteration;
    ASSERT_LE(plan.RowCount(), batch.size());
  }
  EXPECT_GT(multi_round_plans, 100);  // The test exercised cross-round ordering.
}

}  // namespace
}  // namespace cdcjoin
