#ifndef CDCJOIN_JOIN_ROW_COMMAND_H_
#define CDCJOIN_JOIN_ROW_COMMAND_H_

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
  }
  return "?";
}

// What reaches the sink. Both joiners emit these; the sink lanes apply them.
struct RowCommand {
  RowCommandKind kind = RowCommandKind::kUpsert;
  Key key;
  // Sorted by column, each column at most once. Empty for kDelete.
  std::vector<ColumnWrite> writes;
  // The consumed events whose effect this command carries; acknowledged once it is applied.
  std::vector<EventPosition> covers;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_ROW_COMMAND_H_
