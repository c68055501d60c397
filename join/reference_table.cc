#include "join/reference_table.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace cdcjoin {
namespace testing {

void RowTable::Set(Row* row, int column, const Value& value) {
  if (IsNull(value)) {
    row->erase(column);
  } else {
    (*row)[column] = value;
  }
}

RowTable::RowTable(const TableSchema& schema) : guard_(schema.column_guard) {
  if (!schema.stale_write_guard) guard_.clear();
  for (size_t s = 0; s < schema.sources.size(); ++s) sources_.push_back(static_cast<int>(s));
}

void RowTable::Apply(const RowCommand& command) {
  const std::string key = EncodeKey(command.key);
  auto it = rows_.find(key);
  // With versions: which sources' writes win over what the row holds (an absent row holds none).
  std::map<int, bool> wins;
  Versions& stored = versions_[key];
  for (const SourceVersion& v : command.versions) {
    auto s = stored.find(v.source);
    wins[v.source] = it == rows_.end() || s == stored.end() || v.version > s->second;
  }
  auto may_write = [&](int column) {
    if (command.versions.empty() || guard_.empty() || guard_[column] < 0) return true;
    auto w = wins.find(guard_[column]);
    return w == wins.end() || w->second;
  };
  auto set_versions = [&] {
    for (const SourceVersion& v : command.versions) {
      if (wins[v.source]) stored[v.source] = v.version;
    }
  };
  auto erase = [&] {
    rows_.erase(key);
    versions_.erase(key);
  };
  switch (command.kind) {
    case RowCommandKind::kDelete:
      if (it == rows_.end()) break;
      if (command.versions.empty() || wins[command.versions[0].source]) erase();
      return;
    case RowCommandKind::kClear:
    case RowCommandKind::kRelease: {
      if (it == rows_.end()) break;
      for (const ColumnWrite& w : command.writes) {
        if (may_write(w.column)) it->second.erase(w.column);
      }
      set_versions();
      if (command.kind == RowCommandKind::kClear || !wins[command.versions[0].source]) return;
      for (int source : sources_) {
        auto s = stored.find(source);
        if (s != stored.end() && s->second.back() != '1') return;  // Still owned.
      }
      erase();
      return;
    }
    case RowCommandKind::kUpsert: {
      const bool inserted = it == rows_.end();
      if (inserted) it = rows_.try_emplace(key).first;
      for (const ColumnWrite& w : command.writes) {
        if (inserted || (w.update_on_conflict && may_write(w.column))) {
          Set(&it->second, w.column, w.value);
        }
      }
      set_versions();
      return;
    }
  }
  if (stored.empty()) versions_.erase(key);
}

void RowTable::ApplyEvent(const TableSchema& schema, const ChangeEvent& event) {
  const SourceMapping& source = schema.sources[event.source];
  const std::string key = EncodeKey(event.key);
  if (event.op == ChangeOp::kUpsert) {
    for (size_t i = 0; i < source.fields.size(); ++i) {
      if (source.fields[i].skip_event_if_null && IsNull(event.values[i])) return;
    }
    auto [it, created] = rows_.try_emplace(key);
    for (size_t i = 0; i < source.fields.size(); ++i) {
      const FieldMapping& field = source.fields[i];
      if (created || field.update_on_conflict) Set(&it->second, field.column, event.values[i]);
    }
    return;
  }
  switch (source.on_delete) {
    case v1::DELETE_ROW:
      rows_.erase(key);
      return;
    case v1::CLEAR_COLUMNS: {
      auto it = rows_.find(key);
      if (it == rows_.end()) return;
      for (const FieldMapping& field : source.fields) {
        if (field.update_on_conflict) it->second.erase(field.column);
      }
      return;
    }
    default:
      return;
  }
}

std::string RowTable::DebugString(const TableSchema& schema) const {
  std::string out;
  for (const auto& [encoded, row] : rows_) {
    Key key;
    DecodeKey(encoded, &key);
    absl::StrAppend(&out, KeyDebugString(key), " {");
    for (const auto& [column, value] : row) {
      absl::StrAppend(&out, schema.columns[column], "=", ValueDebugString(value), " ");
    }
    absl::StrAppend(&out, "}\n");
  }
  return out;
}

ColumnWrite Write(int column, bool update_on_conflict, Value value) {
  return ColumnWrite{column, update_on_conflict, std::move(value)};
}

namespace {

RowCommand Command(RowCommandKind kind, int64_t key, int64_t offset) {
  RowCommand command;
  command.kind = kind;
  command.key = {Value(key)};
  EventPosition position;
  position.offset = offset;
  command.covers = {position};
  return command;
}

}  // namespace

RowCommand UpsertCommand(int64_t key, std::vector<ColumnWrite> writes, int64_t offset) {
  RowCommand command = Command(RowCommandKind::kUpsert, key, offset);
  command.writes = std::move(writes);
  return command;
}

RowCommand ClearCommand(int64_t key, const std::vector<int>& columns, int64_t offset) {
  RowCommand command = Command(RowCommandKind::kClear, key, offset);
  for (int column : columns) command.writes.push_back(Write(column, false, Value()));
  return command;
}

RowCommand DeleteCommand(int64_t key, int64_t offset) {
  return Command(RowCommandKind::kDelete, key, offset);
}

std::vector<int64_t> Offsets(const std::vector<EventPosition>& covers) {
  std::vector<int64_t> offsets;
  for (const EventPosition& position : covers) offsets.push_back(position.offset);
  return offsets;
}

RowTable ReferenceTable(const TableSchema& schema, const std::vector<ChangeEvent>& events) {
  RowTable table;
  for (const ChangeEvent& event : events) table.ApplyEvent(schema, event);
  return table;
}

}  // namespace testing
}  // namespace cdcjoin
