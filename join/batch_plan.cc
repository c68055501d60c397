#include "join/batch_plan.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <utility>

#include "join/command_algebra.h"

namespace cdcjoin {

StatementShape StatementShape::Of(const RowCommand& command) {
  StatementShape shape;
  shape.kind = command.kind;
  shape.version_sources.reserve(command.versions.size());
  for (const SourceVersion& version : command.versions) {
    shape.version_sources.push_back(version.source);
  }
  if (command.kind == RowCommandKind::kDelete) return shape;
  shape.columns.reserve(command.writes.size());
  for (const ColumnWrite& write : command.writes) {
    shape.columns.emplace_back(write.column, command.kind == RowCommandKind::kUpsert &&
                                                 write.update_on_conflict);
  }
  return shape;
}

size_t BatchPlan::StatementCount() const {
  size_t count = 0;
  for (const auto& round : rounds) count += round.size();
  return count;
}

size_t BatchPlan::RowCount() const {
  size_t count = 0;
  for (const auto& round : rounds) {
    for (const PlannedStatement& statement : round) count += statement.rows.size();
  }
  return count;
}

std::vector<EventPosition> BatchPlan::AllCovers() const {
  std::vector<EventPosition> covers = covers_without_statement;
  for (const auto& round : rounds) {
    for (const PlannedStatement& statement : round) {
      for (const RowCommand& row : statement.rows) {
        covers.insert(covers.end(), row.covers.begin(), row.covers.end());
      }
    }
  }
  return covers;
}

BatchPlan PlanBatch(std::vector<RowCommand> commands, const BatchPlanOptions& options) {
  const size_t max_rows = std::max<size_t>(1, options.max_rows_per_statement);
  BatchPlan plan;

  // Key order here is also the row order inside each statement.
  std::map<Key, std::vector<RowCommand>> by_key;
  for (RowCommand& command : commands) by_key[command.key].push_back(std::move(command));

  size_t round_count = 0;
  for (auto& entry : by_key) {
    entry.second = ReduceKeyCommands(std::move(entry.second), &plan.covers_without_statement,
                                     &plan.stale_folded);
    round_count = std::max(round_count, entry.second.size());
  }

  plan.rounds.resize(round_count);
  for (size_t round = 0; round < round_count; ++round) {
    std::map<StatementShape, std::vector<RowCommand>> groups;
    for (auto& entry : by_key) {
      if (round >= entry.second.size()) continue;
      RowCommand& command = entry.second[round];
      groups[StatementShape::Of(command)].push_back(std::move(command));
    }
    for (auto& group : groups) {
      std::vector<RowCommand>& rows = group.second;
      for (size_t begin = 0; begin < rows.size(); begin += max_rows) {
        const size_t end = std::min(rows.size(), begin + max_rows);
        PlannedStatement statement;
        statement.shape = group.first;
        statement.rows.assign(std::make_move_iterator(rows.begin() + begin),
                              std::make_move_iterator(rows.begin() + end));
        plan.rounds[round].push_back(std::move(statement));
      }
    }
  }
  return plan;
}

}  // namespace cdcjoin
