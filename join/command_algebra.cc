#include "join/command_algebra.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "join/row_version.h"

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

// Sets the versions of `later` over those of *earlier: a merged command carries, per source, the
// version of the last command whose writes of that source it kept.
void MergeVersions(std::vector<SourceVersion>* earlier, std::vector<SourceVersion>* later) {
  for (SourceVersion& v : *later) {
    auto it = std::lower_bound(
        earlier->begin(), earlier->end(), v.source,
        [](const SourceVersion& e, int source) { return e.source < source; });
    if (it != earlier->end() && it->source == v.source) {
      it->version = std::move(v.version);
    } else {
      earlier->insert(it, std::move(v));
    }
  }
}

// *a becomes `b`, carrying a's covers before b's (and a's versions of sources b has none of).
void ReplaceKeepingCovers(RowCommand* a, RowCommand* b) {
  std::vector<EventPosition> covers = std::move(a->covers);
  AppendCovers(&covers, &b->covers);
  std::vector<SourceVersion> versions = std::move(a->versions);
  MergeVersions(&versions, &b->versions);
  *a = std::move(*b);
  a->covers = std::move(covers);
  a->versions = std::move(versions);
}

// Whether *b, a command of one source, is not newer than *a's version of that source: then
// whatever state the row is in, the guard refuses b after a (a applied leaves a's version; a refused
// means a newer one is stored), so a alone has the effect of both. Except an upsert after
// anything but an upsert: the row may be absent then, and an insert has nothing to compare.
bool IsStaleAfter(const RowCommand& a, const RowCommand& b) {
  if (b.kind == K::kUpsert && a.kind != K::kUpsert) return false;
  if (b.versions.size() != 1) return false;
  for (const SourceVersion& v : a.versions) {
    if (v.source == b.versions[0].source) {
      return !IsNewerRowVersion(b.versions[0].version, v.version);
    }
  }
  return false;
}

// Replaces *a with the one command equivalent to *a then *b, when there is one (consuming *b);
// otherwise leaves both untouched and returns false.
bool Merge(RowCommand* a, RowCommand* b) {
  const bool guarded = !a->versions.empty() || !b->versions.empty();
  // A guarded delete or release happens only where its version wins: it can neither erase what
  // came before it nor make what follows it moot, so it stands alone.
  if (guarded && (a->kind == K::kDelete || a->kind == K::kRelease || b->kind == K::kDelete ||
                  b->kind == K::kRelease)) {
    return false;
  }
  // A guarded clear of an absent row leaves no version behind, but the one upsert standing for
  // both would store the clear's version on the row it inserts.
  if (guarded && a->kind == K::kClear && b->kind == K::kUpsert) return false;
  if (b->kind == K::kDelete) {
    b->writes.clear();
    ReplaceKeepingCovers(a, b);
    return true;
  }
  switch (a->kind) {
    case K::kRelease:  // Always guarded: handled above.
      return false;
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
  MergeVersions(&a->versions, &b->versions);
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

bool AppendReduced(std::vector<RowCommand>* reduced, RowCommand next) {
  if (!reduced->empty() && IsStaleAfter(reduced->back(), next)) {
    AppendCovers(&reduced->back().covers, &next.covers);
    return true;
  }
  if (reduced->empty() || !Merge(&reduced->back(), &next)) {
    reduced->push_back(std::move(next));
    return false;
  }
  while (reduced->size() >= 2 && Merge(&(*reduced)[reduced->size() - 2], &reduced->back())) {
    reduced->pop_back();
  }
  return false;
}

std::vector<RowCommand> ReduceKeyCommands(std::vector<RowCommand> commands,
                                          std::vector<EventPosition>* orphan_covers,
                                          size_t* stale_folded) {
  std::vector<RowCommand> reduced;
  for (RowCommand& command : commands) {
    if (AppendReduced(&reduced, std::move(command)) && stale_folded != nullptr) ++*stale_folded;
  }
  // Merges absorb empty clears into their neighbours; only a lone one can remain.
  if (reduced.size() == 1 && reduced[0].kind == K::kClear && reduced[0].writes.empty()) {
    AppendCovers(orphan_covers, &reduced[0].covers);
    reduced.clear();
  }
  return reduced;
}

}  // namespace cdcjoin
