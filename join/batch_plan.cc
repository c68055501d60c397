#include "join/batch_plan.h"

#include <algorithm>
#include <numeric>
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
      for (const RowCommand* row : statement.rows) {
        covers.insert(covers.end(), row->covers.begin(), row->covers.end());
      }
    }
  }
  return covers;
}

namespace {

// StatementShape::Of(command) == shape, without building the shape (one allocation per row).
bool HasShape(const RowCommand& command, const StatementShape& shape) {
  if (command.kind != shape.kind) return false;
  if (command.kind == RowCommandKind::kDelete) return true;
  if (command.writes.size() != shape.columns.size()) return false;
  for (size_t i = 0; i < command.writes.size(); ++i) {
    const ColumnWrite& write = command.writes[i];
    if (shape.columns[i].first != write.column ||
        shape.columns[i].second !=
            (command.kind == RowCommandKind::kUpsert && write.update_on_conflict)) {
      return false;
    }
  }
  return true;
}

}  // namespace

// A lane applies hundreds of batches per second, so the plan is built from sorted indices and
// pointers: no copy of the batch, no per-row map nodes, key copies or shape vectors.
BatchPlan PlanBatch(const std::vector<RowCommand>& commands, const BatchPlanOptions& options) {
  const size_t max_rows = std::max<size_t>(1, options.max_rows_per_statement);
  BatchPlan plan;

  // Key order here is also the row order inside each statement; stable, so a key's commands
  // keep their consumption order.
  std::vector<size_t> order(commands.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return commands[a].key < commands[b].key; });

  // Every key's reduced commands, keys in order: key k owns reduced[begins[k], begins[k + 1]).
  std::vector<const RowCommand*> reduced;
  reduced.reserve(commands.size());
  std::vector<size_t> begins;
  size_t round_count = 0;
  for (size_t i = 0; i < order.size();) {
    size_t end = i + 1;
    while (end < order.size() && commands[order[end]].key == commands[order[i]].key) ++end;
    begins.push_back(reduced.size());
    const RowCommand& first = commands[order[i]];
    if (end == i + 1 && !(first.kind == RowCommandKind::kClear && first.writes.empty())) {
      reduced.push_back(&first);  // A lone command reduces to itself.
    } else {
      std::vector<RowCommand> run;
      run.reserve(end - i);
      for (size_t j = i; j < end; ++j) run.push_back(commands[order[j]]);
      for (RowCommand& command : ReduceKeyCommands(std::move(run), &plan.covers_without_statement,
                                                         &plan.stale_folded)) {
        plan.reduced.push_back(std::move(command));
        reduced.push_back(&plan.reduced.back());
      }
      if (reduced.size() == begins.back()) begins.pop_back();  // Nothing left to write.
    }
    if (!begins.empty()) round_count = std::max(round_count, reduced.size() - begins.back());
    i = end;
  }
  begins.push_back(reduced.size());

  plan.rounds.resize(round_count);
  std::vector<std::pair<StatementShape, std::vector<const RowCommand*>>> groups;
  for (size_t round = 0; round < round_count; ++round) {
    groups.clear();
    size_t last = 0;  // Consecutive rows mostly share a shape.
    for (size_t k = 0; k + 1 < begins.size(); ++k) {
      if (begins[k] + round >= begins[k + 1]) continue;
      const RowCommand* command = reduced[begins[k] + round];
      if (last >= groups.size() || !HasShape(*command, groups[last].first)) {
        last = 0;
        while (last < groups.size() && !HasShape(*command, groups[last].first)) ++last;
        if (last == groups.size()) {
          groups.emplace_back(StatementShape::Of(*command), std::vector<const RowCommand*>());
        }
      }
      groups[last].second.push_back(command);
    }
    std::sort(groups.begin(), groups.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [shape, rows] : groups) {
      for (size_t begin = 0; begin < rows.size(); begin += max_rows) {
        const size_t end = std::min(rows.size(), begin + max_rows);
        PlannedStatement statement;
        statement.shape = shape;
        if (begin == 0 && end == rows.size()) {
          statement.rows = std::move(rows);
        } else {
          statement.rows.assign(rows.begin() + begin, rows.begin() + end);
        }
        plan.rounds[round].push_back(std::move(statement));
      }
    }
  }
  return plan;
}

}  // namespace cdcjoin
