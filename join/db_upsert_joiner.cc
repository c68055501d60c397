#include "join/db_upsert_joiner.h"

#include <algorithm>

#include "join/row_version.h"

namespace cdcjoin {

SourceCommands::SourceCommands(const SourceMapping& source, int source_index, bool guarded)
    : source_index_(source_index),
      guarded_(guarded),
      on_delete_(source.on_delete),
      value_count_(source.fields.size()) {
  for (size_t i = 0; i < source.fields.size(); ++i) {
    const FieldMapping& f = source.fields[i];
    auto it = std::find_if(fields_.begin(), fields_.end(),
                           [&](const Field& x) { return x.column == f.column; });
    if (it != fields_.end()) {
      *it = Field{f.column, f.update_on_conflict, i};
    } else {
      fields_.push_back(Field{f.column, f.update_on_conflict, i});
    }
  }
  std::sort(fields_.begin(), fields_.end(),
            [](const Field& a, const Field& b) { return a.column < b.column; });
  for (const Field& f : fields_) {
    if (f.update_on_conflict) clear_writes_.push_back(ColumnWrite{f.column, true, Value{}});
  }
}

std::vector<SourceVersion> SourceCommands::Versions(const ChangeEvent& event) const {
  if (!guarded_) return {};
  return {SourceVersion{source_index_, RowVersionOf(event)}};
}

std::optional<RowCommand> SourceCommands::Command(const ChangeEvent& event) const {
  RowCommand command;
  command.versions = Versions(event);
  if (event.op == ChangeOp::kUpsert) {
    command.kind = RowCommandKind::kUpsert;
    command.writes.reserve(fields_.size());
    for (const Field& f : fields_) {
      command.writes.push_back(ColumnWrite{
          f.column, f.update_on_conflict,
          f.value_index < event.values.size() ? event.values[f.value_index] : Value{}});
    }
    return command;
  }
  switch (on_delete_) {
    case v1::DELETE_ROW:
      command.kind = RowCommandKind::kDelete;
      return command;
    case v1::CLEAR_COLUMNS:
      command.kind = RowCommandKind::kClear;
      command.writes = clear_writes_;
      return command;
    case v1::DELETE_ROW_WHEN_ALL_DELETED:
      command.kind = RowCommandKind::kRelease;
      command.writes = clear_writes_;
      return command;
    default:
      return std::nullopt;
  }
}

std::optional<RowCommand> BuildDbUpsertCommand(const TableSchema& schema,
                                               const ChangeEvent& event) {
  std::optional<RowCommand> command =
      SourceCommands(schema.sources[event.source], event.source, schema.stale_write_guard)
          .Command(event);
  if (!command.has_value()) return std::nullopt;
  command->key = event.key;
  command->covers.push_back(event.position);
  return command;
}

}  // namespace cdcjoin
