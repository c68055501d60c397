#ifndef CDCJOIN_JOIN_BATCH_PLAN_H_
#define CDCJOIN_JOIN_BATCH_PLAN_H_

// PlanBatch turns a lane's batch of RowCommands, in consumption order, into the few multi-row
// statements a SQL writer runs inside one transaction:
//
//   BatchPlan plan = PlanBatch(commands, {.max_rows_per_statement = 500});  // points into them
//   for (const auto& round : plan.rounds)
//     for (const PlannedStatement& statement : round) Execute(statement);
//
// Applying the plan's statements in order has the same effect on a table as applying the input
// commands one by one (the contract the randomized test checks), with these steps:
//  1. Reduce: per key, the commands are reduced by the command algebra (join/command_algebra.h),
//     so a hot key's run of commands becomes one row (two at most). Covers are concatenated, so
//     every consumed event stays acknowledged.
//  2. Rounds: round r holds the r-th remaining command of every key. The keys inside a round are
//     distinct, so its statements may run in any order; rounds must run in order.
//  3. Group: inside a round, commands of the same StatementShape form one statement, rows sorted
//     by key (so concurrent writers take row locks in the same order), split at
//     max_rows_per_statement.

#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

#include "join/change_event.h"
#include "join/row_command.h"

namespace cdcjoin {

// What makes two commands share one SQL statement: the kind and the written columns with their
// conflict behaviour. For kClear and kRelease the flags are always false (no insert path); for
// kDelete `columns` is empty.
struct StatementShape {
  RowCommandKind kind = RowCommandKind::kUpsert;
  // (column index, update_on_conflict), sorted by column.
  std::vector<std::pair<int, bool>> columns;
  // The sources whose versions the rows carry (RowCommand::versions), sorted; empty without
  // the stale-write guard.
  std::vector<int> version_sources;

  static StatementShape Of(const RowCommand& command);

  friend bool operator==(const StatementShape& a, const StatementShape& b) {
    return a.kind == b.kind && a.columns == b.columns && a.version_sources == b.version_sources;
  }
  friend bool operator!=(const StatementShape& a, const StatementShape& b) { return !(a == b); }
  friend bool operator<(const StatementShape& a, const StatementShape& b) {
    if (a.kind != b.kind) return a.kind < b.kind;
    if (a.columns != b.columns) return a.columns < b.columns;
    return a.version_sources < b.version_sources;
  }
};

// One SQL statement: every row has `shape` (its writes list exactly shape.columns, in order), the
// keys are distinct and sorted ascending.
struct PlannedStatement {
  StatementShape shape;
  // Commands of the planned batch, or of BatchPlan::reduced: a lane's batch is planned where it
  // is, not copied (it stays the caller's, to retry as is).
  std::vector<const RowCommand*> rows;
};

struct BatchPlan {
  BatchPlan() = default;
  BatchPlan(BatchPlan&&) = default;
  BatchPlan& operator=(BatchPlan&&) = default;
  // A copy's statements would point into the original's `reduced`.
  BatchPlan(const BatchPlan&) = delete;
  BatchPlan& operator=(const BatchPlan&) = delete;

  // Execution order: all statements of rounds[0], then rounds[1], ... Inside a round the
  // statements touch distinct keys and may run in any order.
  std::vector<std::vector<PlannedStatement>> rounds;
  // Covers of commands that need no statement at all (a kClear of no column): they are applied
  // trivially and must be acknowledged with the rest of the batch.
  std::vector<EventPosition> covers_without_statement;
  // Commands the command algebra folded away because the stale-write guard would refuse them
  // (command_algebra.h): stale writes stopped before reaching the database.
  size_t stale_folded = 0;
  // The commands the algebra made of a key's several; a deque, so they stay where rows point.
  std::deque<RowCommand> reduced;

  size_t StatementCount() const;
  size_t RowCount() const;
  // Every cover of the plan: the statements' rows and covers_without_statement.
  std::vector<EventPosition> AllCovers() const;
};

struct BatchPlanOptions {
  // Rows per statement at most; larger groups are split. Values < 1 are treated as 1.
  // Default: 500 (PLATFORM.md: 500-row upserts run ~10x faster than 1-row ones here).
  size_t max_rows_per_statement = 500;
};

// REQUIRES: each command's writes sorted by column, each column at most once (row_command.h);
// `commands` outlive the plan, whose statements point into them.
BatchPlan PlanBatch(const std::vector<RowCommand>& commands,
                    const BatchPlanOptions& options = {});

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_BATCH_PLAN_H_
