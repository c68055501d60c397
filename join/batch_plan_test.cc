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
#include "join/reference_table.h"

namespace cdcjoin {
namespace {

using K = RowCommandKind;

using testing::ClearCommand;
using testing::DeleteCommand;
using testing::Offsets;
using testing::RowTable;
using testing::UpsertCommand;
using testing::Write;

constexpr int kColumns = 4;

TEST(PlanBatchTest, RoundsGroupsSortingAndSplitting) {
  const std::vector<ColumnWrite> user = {Write(0, true, Value("m")), Write(2, true, Value("d"))};
  const std::vector<ColumnWrite> ext = {Write(0, false, Value("m")), Write(1, true, Value("n"))};
  std::vector<RowCommand> batch = {
      UpsertCommand(5, user, 1), UpsertCommand(3, user, 2), DeleteCommand(9, 3),
      UpsertCommand(9, ext, 4),  UpsertCommand(1, user, 5), UpsertCommand(4, ext, 6),
      DeleteCommand(3, 7),       UpsertCommand(3, user, 8), UpsertCommand(2, user, 9),
      ClearCommand(8, {1}, 10),
  };
  BatchPlan plan = PlanBatch(batch, BatchPlanOptions{2});
  ASSERT_EQ(plan.rounds.size(), 2u);

  // Round 0: user upserts for keys 1, 2, 5 (3 rows -> split 2 + 1), the ext upsert for 4, the
  // clear of 8, and the deletes of 3 and 9 (key 3: upsert then delete collapsed to the delete).
  std::vector<std::pair<K, std::vector<int64_t>>> round0;
  for (const PlannedStatement& statement : plan.rounds[0]) {
    std::vector<int64_t> keys;
    for (const RowCommand* row : statement.rows) {
      EXPECT_EQ(StatementShape::Of(*row), statement.shape);
      keys.push_back(std::get<int64_t>(row->key[0]));
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
    for (const RowCommand* row : statement.rows) keys.push_back(std::get<int64_t>(row->key[0]));
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
    batch.push_back(UpsertCommand(key, {Write(0, true, Value(key))}, key + 1000));
  }
  BatchPlan plan = PlanBatch(batch);
  ASSERT_EQ(plan.rounds.size(), 1u);
  ASSERT_EQ(plan.rounds[0].size(), 1u);
  std::vector<int64_t> keys;
  for (const RowCommand* row : plan.rounds[0][0].rows) keys.push_back(std::get<int64_t>(row->key[0]));
  EXPECT_THAT(keys, ::testing::ElementsAre(-3, 0, 7, 19, 42, 100));
}

TEST(PlanBatchTest, CompositeKeysSortLexicographically) {
  std::vector<RowCommand> batch;
  for (auto key : std::vector<std::pair<int64_t, std::string>>{{2, "a"}, {1, "b"}, {1, "a"}}) {
    RowCommand command = UpsertCommand(0, {Write(0, true, Value("x"))}, 1);
    command.key = {Value(key.first), Value(key.second)};
    batch.push_back(command);
  }
  BatchPlan plan = PlanBatch(batch);
  ASSERT_EQ(plan.StatementCount(), 1u);
  const auto& rows = plan.rounds[0][0].rows;
  EXPECT_EQ(rows[0]->key, (Key{Value(int64_t{1}), Value("a")}));
  EXPECT_EQ(rows[1]->key, (Key{Value(int64_t{1}), Value("b")}));
  EXPECT_EQ(rows[2]->key, (Key{Value(int64_t{2}), Value("a")}));
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
    RowTable initial;
    for (int key = 0; key < keys; ++key) {
      if (pick(2) == 0) continue;
      std::vector<ColumnWrite> row;
      for (int column = 0; column < kColumns; ++column) {
        row.push_back(Write(column, true, random_value()));
      }
      initial.Apply(UpsertCommand(key, row, -1));
    }
    std::vector<RowCommand> batch;
    const int length = pick(25);
    for (int i = 0; i < length; ++i) {
      const int64_t key = pick(keys);
      const int kind = pick(10);
      if (kind < 6) {
        std::vector<ColumnWrite> writes;
        for (int column = 0; column < kColumns; ++column) {
          if (pick(2) == 0) writes.push_back(Write(column, pick(2) == 0, random_value()));
        }
        batch.push_back(UpsertCommand(key, writes, i));
      } else if (kind < 8) {
        std::vector<int> columns;
        for (int column = 0; column < kColumns; ++column) {
          if (pick(3) == 0) columns.push_back(column);
        }
        batch.push_back(ClearCommand(key, columns, i));
      } else {
        batch.push_back(DeleteCommand(key, i));
      }
    }

    RowTable sequential = initial;
    sequential.ApplyAll(batch);

    const size_t max_rows = 1 + pick(4);
    BatchPlan plan = PlanBatch(batch, BatchPlanOptions{max_rows});
    if (plan.rounds.size() > 1) ++multi_round_plans;
    RowTable planned = initial;
    for (auto& round : plan.rounds) {
      std::set<Key> round_keys;
      std::shuffle(round.begin(), round.end(), rng);
      for (const PlannedStatement& statement : round) {
        ASSERT_LE(statement.rows.size(), max_rows);
        ASSERT_FALSE(statement.rows.empty());
        for (size_t r = 0; r < statement.rows.size(); ++r) {
          const RowCommand& row = *statement.rows[r];
          ASSERT_EQ(StatementShape::Of(row), statement.shape);
          if (r > 0) {
            ASSERT_TRUE(statement.rows[r - 1]->key < row.key);
          }
          ASSERT_TRUE(round_keys.insert(row.key).second) << "key twice in one round";
          planned.Apply(row);
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
