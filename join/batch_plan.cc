#include "join/batch_plan.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <utility>

namespace cdcjoin {
namespace {

void AppendCovers(RowCommand* to, std::vector<EventPosition>* from) {
  to->covers.insert(to->covers.end(), std::make_move_iterator(from->begin()),
                    std::make_move_iterator(from->end()));
  from->clear();
}

// Both write lists are sorted by column with each column at most once.
std::vector<ColumnWrite> MergeUpsertWrites(std::vector<ColumnWrite> first,
                                           std::vector<ColumnWrite> second) {
  std::vector<ColumnWrite> merged;
  merged.reserve(first.size() + second.size());
  size_t i = 0;
  size_t j = 0;
  while (i < first.size() || j < second.size()) {
    if (j == second.size() || (i < first.size() && first[i].column < second[j].column)) {
      // Only the first writes it: the second leaves it alone whether or not the row existed.
      merged.push_back(std::move(first[i++]));
    } else if (i == first.size() || second[j].column < first[i].column) {
      // Only the second writes it. The first always leaves a row behind, so the second can
      // only update: an insert-only write of the second never takes effect.
      if (second[j].update_on_conflict) merged.push_back(std::move(second[j]));
      ++j;
    } else {
      // Both write it. Row absent before: first inserts a, second then updates to b if it
      // updates on conflict. Row present: first updates to a if it does, then second to b if
      // it does. Either way the result is b when second updates, else a when the row was new or
      // first updates, else the old value: exactly one write with these fields.
      ColumnWrite write;
      write.column = first[i].column;
      write.update_on_conflict = first[i].update_on_conflict || second[j].update_on_conflict;
      write.value = second[j].update_on_conflict ? std::move(second[j].value)
                                                 : std::move(first[i].value);
      merged.push_back(std::move(write));
      ++i;
      ++j;
    }
  }
  return merged;
}

// Sorted union of the columns of two clears; values are irrelevant for a clear.
std::vector<ColumnWrite> UnionClearWrites(const std::vector<ColumnWrite>& first,
                                          const std::vector<ColumnWrite>& second) {
  std::vector<ColumnWrite> merged;
  merged.reserve(first.size() + second.size());
  size_t i = 0;
  size_t j = 0;
  while (i < first.size() || j < second.size()) {
    int column;
    if (j == second.size() || (i < first.size() && first[i].column < second[j].column)) {
      column = first[i++].column;
    } else if (i == first.size() || second[j].column < first[i].column) {
      column = second[j++].column;
    } else {
      column = first[i].column;
      ++i;
      ++j;
    }
    ColumnWrite write;
    write.column = column;
    write.update_on_conflict = false;
    merged.push_back(std::move(write));
  }
  return merged;
}

// Every cleared column is in `upsert` with update_on_conflict: an existing row gets it
// overwritten anyway, and on an absent row the clear did nothing.
bool UpsertOverwritesClear(const RowCommand& clear, const RowCommand& upsert) {
  size_t j = 0;
  for (const ColumnWrite& cleared : clear.writes) {
    while (j < upsert.writes.size() && upsert.writes[j].column < cleared.column) ++j;
    if (j == upsert.writes.size() || upsert.writes[j].column != cleared.column ||
        !upsert.writes[j].update_on_conflict) {
      return false;
    }
  }
  return true;
}

// Replaces *a with the single command equivalent to `*a` then `*b`, when there is one. On
// success *b is consumed and true is returned; otherwise both are untouched.
bool TryMerge(RowCommand* a, RowCommand* b) {
  using K = RowCommandKind;
  if (b->kind == K::kDelete) {
    // A delete erases whatever came before it.
    std::vector<EventPosition> covers = std::move(a->covers);
    *a = std::move(*b);
    covers.insert(covers.end(), a->covers.begin(), a->covers.end());
    a->covers = std::move(covers);
    return true;
  }
  switch (a->kind) {
    case K::kDelete:
      if (b->kind == K::kClear) {  // Clearing the row that was just deleted does nothing.
        AppendCovers(a, &b->covers);
        return true;
      }
      return false;  // Delete then upsert: no single statement re-creates the row.
    case K::kUpsert:
      if (b->kind == K::kUpsert) {
        a->writes = MergeUpsertWrites(std::move(a->writes), std::move(b->writes));
      } else {  // kClear: the row exists after the upsert, so the clear always takes effect.
        std::vector<ColumnWrite> nulls;
        nulls.reserve(b->writes.size());
        for (const ColumnWrite& cleared : b->writes) {
          ColumnWrite write;
          write.column = cleared.column;
          write.update_on_conflict = true;
          nulls.push_back(std::move(write));
        }
        a->writes = MergeUpsertWrites(std::move(a->writes), std::move(nulls));
      }
      AppendCovers(a, &b->covers);
      return true;
    case K::kClear:
      if (b->kind == K::kClear) {
        a->writes = UnionClearWrites(a->writes, b->writes);
        AppendCovers(a, &b->covers);
        return true;
      }
      if (UpsertOverwritesClear(*a, *b)) {
        std::vector<EventPosition> covers = std::move(a->covers);
        *a = std::move(*b);
        covers.insert(covers.end(), a->covers.begin(), a->covers.end());
        a->covers = std::move(covers);
        return true;
      }
      return false;
  }
  return false;
}

}  // namespace

StatementShape StatementShape::Of(const RowCommand& command) {
  StatementShape shape;
  shape.kind = command.kind;
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

std::vector<RowCommand> CollapseKeyCommands(std::vector<RowCommand> commands,
                                            std::vector<EventPosition>* orphan_covers) {
  std::vector<RowCommand> out;
  out.reserve(commands.size());
  for (RowCommand& command : commands) {
    if (command.kind == RowCommandKind::kDelete) command.writes.clear();
    if (!out.empty() && TryMerge(&out.back(), &command)) {
      // A merge can make the result mergeable with its predecessor (a clear followed by an
      // upsert that, merged with a later clear, now overwrites the first clear's columns).
      while (out.size() >= 2 && TryMerge(&out[out.size() - 2], &out.back())) out.pop_back();
      continue;
    }
    out.push_back(std::move(command));
  }
  // Merges absorb empty clears into their neighbours; only a lone one can remain.
  if (out.size() == 1 && out[0].kind == RowCommandKind::kClear && out[0].writes.empty()) {
    orphan_covers->insert(orphan_covers->end(), out[0].covers.begin(), out[0].covers.end());
    out.clear();
  }
  return out;
}

BatchPlan PlanBatch(std::vector<RowCommand> commands, const BatchPlanOptions& options) {
  const size_t max_rows = std::max<size_t>(1, options.max_rows_per_statement);
  BatchPlan plan;

  // Key order here is also the row order inside each statement.
  std::map<Key, std::vector<RowCommand>> by_key;
  for (RowCommand& command : commands) by_key[command.key].push_back(std::move(command));

  size_t round_count = 0;
  for (auto& entry : by_key) {
    entry.second = CollapseKeyCommands(std::move(entry.second), &plan.covers_without_statement);
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
