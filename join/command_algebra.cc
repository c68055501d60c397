#include "join/command_algebra.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace cdcjoin {
namespace {

using K = RowCommandKind;

std::vector<ColumnWrite>::iterator LowerBound(std::vector<ColumnWrite>* writes, int column) {
  return std::lower_bound(writes->begin(), writes->end(), column,
                          [](const ColumnWrite& w, int c) { return w.column < c; });
}

bool Writes(std::vector<ColumnWrite>* writes, int column) {
  auto it = LowerBound(writes, column);
  return it != writes->end() && it->column == column;
}

// Inserts or replaces the write of `write.column` in sorted `writes`.
void SetWrite(std::vector<ColumnWrite>* writes, ColumnWrite write) {
  auto it = LowerBound(writes, write.column);
  if (it != writes->end() && it->column == write.column) {
    *it = std::move(write);
  } else {
    writes->insert(it, std::move(write));
  }
}

ColumnWrite NullWrite(int column) { return ColumnWrite{column, true, Value{}}; }

void AppendCovers(std::vector<EventPosition>* to, std::vector<EventPosition>* from) {
  to->insert(to->end(), std::make_move_iterator(from->begin()),
             std::make_move_iterator(from->end()));
}

// *a becomes `b`, carrying a's covers before b's.
void ReplaceKeepingCovers(RowCommand* a, RowCommand* b) {
  std::vector<EventPosition> covers = std::move(a->covers);
  AppendCovers(&covers, &b->covers);
  *a = std::move(*b);
  a->covers = std::move(covers);
}

// Replaces *a with the one command equivalent to *a then *b, when there is one (consuming *b);
// otherwise leaves both untouched and returns false.
bool Merge(RowCommand* a, RowCommand* b) {
  if (b->kind == K::kDelete) {
    b->writes.clear();
    ReplaceKeepingCovers(a, b);
    return true;
  }
  switch (a->kind) {
    case K::kDelete:
      if (b->kind == K::kUpsert) return false;
      break;  // kClear: nothing to clear on the row just deleted.
    case K::kUpsert:
      if (b->kind == K::kUpsert) {
        for (const ColumnWrite& w : b->writes) {
          MergeLaterUpsertWrite(&a->writes, w.column, w.update_on_conflict, w.value);
        }
      } else {  // kClear: the row exists after the upsert, so the clear always takes effect.
        for (const ColumnWrite& w : b->writes) SetWrite(&a->writes, NullWrite(w.column));
      }
      break;
    case K::kClear:
      if (b->kind == K::kClear) {
        for (ColumnWrite& w : b->writes) SetWrite(&a->writes, std::move(w));
        break;
      }
      for (const ColumnWrite& w : b->writes) {
        if (!w.update_on_conflict && Writes(&a->writes, w.column)) return false;
      }
      {
        std::vector<ColumnWrite> cleared = std::move(a->writes);
        ReplaceKeepingCovers(a, b);
        for (const ColumnWrite& c : cleared) {
          if (!Writes(&a->writes, c.column)) SetWrite(&a->writes, NullWrite(c.column));
        }
      }
      return true;
  }
  AppendCovers(&a->covers, &b->covers);
  return true;
}

}  // namespace

void MergeLaterUpsertWrite(std::vector<ColumnWrite>* earlier, int column,
                           bool update_on_conflict, const Value& value) {
  // An insert-only write after an upsert never takes effect: the row exists by then.
  if (!update_on_conflict) return;
  auto it = LowerBound(earlier, column);
  if (it != earlier->end() && it->column == column) {
    it->update_on_conflict = true;
    it->value = value;
  } else {
    earlier->insert(it, ColumnWrite{column, true, value});
  }
}

void AppendReduced(std::vector<RowCommand>* reduced, RowCommand next) {
  if (reduced->empty() || !Merge(&reduced->back(), &next)) {
    reduced->push_back(std::move(next));
    return;
  }
  while (reduced->size() >= 2 && Merge(&(*reduced)[reduced->size() - 2], &reduced->back())) {
    reduced->pop_back();
  }
}

std::vector<RowCommand> ReduceKeyCommands(std::vector<RowCommand> commands,
                                          std::vector<EventPosition>* orphan_covers) {
  std::vector<RowCommand> reduced;
  for (RowCommand& command : commands) AppendReduced(&reduced, std::move(command));
  // Merges absorb empty clears into their neighbours; only a lone one can remain.
  if (reduced.size() == 1 && reduced[0].kind == K::kClear && reduced[0].writes.empty()) {
    AppendCovers(orphan_covers, &reduced[0].covers);
    reduced.clear();
  }
  return reduced;
}

}  // namespace cdcjoin
