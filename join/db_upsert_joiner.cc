#include "join/db_upsert_joiner.h"

#include <algorithm>

namespace cdcjoin {

std::optional<RowCommand> BuildDbUpsertCommand(const TableSchema& schema,
                                               const ChangeEvent& event) {
  const SourceMapping& source = schema.sources[event.source];
  RowCommand command;
  command.key = event.key;
  command.covers.push_back(event.position);
  if (event.op == ChangeOp::kDelete) {
    switch (source.on_delete) {
      case v1::DELETE_ROW:
        command.kind = RowCommandKind::kDelete;
        return command;
      case v1::CLEAR_COLUMNS:
        command.kind = RowCommandKind::kClear;
        for (const FieldMapping& field : source.fields) {
          // An insert-only column was never the source's to maintain, so it is not cleared.
          if (field.update_on_conflict) {
            command.writes.push_back(ColumnWrite{field.column, true, Value{}});
          }
        }
        break;
      default:
        return std::nullopt;
    }
  } else {
    command.kind = RowCommandKind::kUpsert;
    command.writes.reserve(source.fields.size());
    for (size_t i = 0; i < source.fields.size(); ++i) {
      const FieldMapping& field = source.fields[i];
      command.writes.push_back(ColumnWrite{field.column, field.update_on_conflict,
                                           i < event.values.size() ? event.values[i] : Value{}});
    }
  }
  std::sort(command.writes.begin(), command.writes.end(),
            [](const ColumnWrite& a, const ColumnWrite& b) { return a.column < b.column; });
  return command;
}

}  // namespace cdcjoin
