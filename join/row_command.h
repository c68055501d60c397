#ifndef CDCJOIN_JOIN_ROW_COMMAND_H_
#define CDCJOIN_JOIN_ROW_COMMAND_H_

#include <string>
#include <vector>

#include "join/change_event.h"
#include "join/value.h"

namespace cdcjoin {

// One target column written by an upsert.
struct ColumnWrite {
  int column = 0;                  // Index into TableSchema::columns.
  bool update_on_conflict = true;  // false: set on insert only.
  Value value;

  friend bool operator==(const ColumnWrite& a, const ColumnWrite& b) {
    return a.column == b.column && a.update_on_conflict == b.update_on_conflict &&
           a.value == b.value;
  }
};

enum class RowCommandKind {
  // INSERT the key and `writes`; on conflict update only the writes with update_on_conflict.
  kUpsert,
  // Set the columns of `writes` to NULL where the row exists (values are ignored).
  kClear,
  // DELETE the row.
  kDelete,
  // Ownership-aware delete (DELETE_ROW_WHEN_ALL_DELETED, stale-write guard only): where the
  // row exists, set the columns of `writes` to NULL and the deleting source's version (in
  // `versions`, marked deleted), where newer; where that took, DELETE the row if no source
  // still owns it (every version column NULL or marked deleted).
  kRelease,
};

// "upsert", "clear", "delete": for logs and dead letters.
inline const char* RowCommandKindName(RowCommandKind kind) {
  switch (kind) {
    case RowCommandKind::kUpsert:
      return "upsert";
    case RowCommandKind::kClear:
      return "clear";
    case RowCommandKind::kDelete:
      return "delete";
    case RowCommandKind::kRelease:
      return "release";
  }
  return "?";
}

// With the stale-write guard, a source's version of the row a command writes
// (join/row_version.h).
struct SourceVersion {
  int source = 0;  // Index into TableSchema::sources.
  std::string version;

  friend bool operator==(const SourceVersion& a, const SourceVersion& b) {
    return a.source == b.source && a.version == b.version;
  }
};

// What reaches the sink. Both joiners emit these; the sink lanes apply them.
struct RowCommand {
  RowCommandKind kind = RowCommandKind::kUpsert;
  Key key;
  // Sorted by column, each column at most once. Empty for kDelete.
  std::vector<ColumnWrite> writes;
  // With the stale-write guard: for each source whose columns the command writes (or whose
  // delete it is), the version of the newest event it carries; the command changes a source's
  // columns only where that version is newer than the row's. Sorted by source, each once.
  // Empty without the guard (the command then applies unconditionally).
  std::vector<SourceVersion> versions;
  // The consumed events whose effect this command carries; acknowledged once it is applied.
  std::vector<EventPosition> covers;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_ROW_COMMAND_H_
