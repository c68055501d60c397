#include "join/table_schema.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace cdcjoin {

absl::StatusOr<TableSchema> TableSchema::FromConfig(const v1::Config& config) {
  TableSchema schema;
  schema.table = config.target().table();
  schema.key_columns.assign(config.target().key_columns().begin(),
                            config.target().key_columns().end());
  for (int s = 0; s < config.sources_size(); ++s) {
    const v1::SourceConfig& source = config.sources(s);
    SourceMapping mapping;
    mapping.name = source.name();
    mapping.topic = source.topic();
    mapping.key_fields.assign(source.key_fields().begin(), source.key_fields().end());
    mapping.key_source =
        source.key_source() == v1::KEY_SOURCE_UNSPECIFIED ? v1::ROW : source.key_source();
    mapping.database = source.database();
    mapping.table = source.table();
    mapping.on_delete =
        source.on_delete() == v1::DELETE_POLICY_UNSPECIFIED ? v1::IGNORE : source.on_delete();
    if (config.target().stale_write_guard()) mapping.version_column = source.version_column();
    for (int c = 0; c < source.columns_size(); ++c) {
      const v1::ColumnMapping& column = source.columns(c);
      if (std::find(schema.key_columns.begin(), schema.key_columns.end(), column.to()) !=
          schema.key_columns.end()) {
        return absl::InvalidArgumentError(absl::StrCat("sources[", s, "].columns[", c,
                                                       "].to: '", column.to(),
                                                       "' is a key column of the target"));
      }
      auto it = std::find(schema.columns.begin(), schema.columns.end(), column.to());
      const int index = static_cast<int>(it - schema.columns.begin());
      if (it == schema.columns.end()) schema.columns.push_back(column.to());
      FieldMapping field;
      field.from = column.from();
      field.column = index;
      field.update_on_conflict = !column.insert_only();
      field.skip_event_if_null = column.skip_event_if_null();
      field.type = column.type();
      mapping.fields.push_back(std::move(field));
    }
    schema.sources.push_back(std::move(mapping));
  }
  schema.key_facts.resize(schema.key_columns.size());
  schema.column_facts.resize(schema.columns.size());
  schema.stale_write_guard = config.target().stale_write_guard();
  schema.column_guard.assign(schema.columns.size(), -1);
  if (schema.stale_write_guard) {
    for (size_t s = 0; s < schema.sources.size(); ++s) {
      if (schema.sources[s].version_column.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("sources[", s, "].version_column: required with the stale-write guard"));
      }
      for (const FieldMapping& field : schema.sources[s].fields) {
        if (field.update_on_conflict) schema.column_guard[field.column] = static_cast<int>(s);
      }
    }
  }
  return schema;
}

void TableSchema::SetColumnFacts(const std::map<std::string, ColumnFacts>& by_name) {
  auto fill = [&](const std::vector<std::string>& names,
                  std::vector<std::optional<ColumnFacts>>* facts) {
    facts->assign(names.size(), std::nullopt);
    for (size_t i = 0; i < names.size(); ++i) {
      auto it = by_name.find(names[i]);
      if (it != by_name.end()) (*facts)[i] = it->second;
    }
  };
  fill(key_columns, &key_facts);
  fill(columns, &column_facts);
}

int TableSchema::SourceIndexOfTopic(const std::string& topic) const {
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].topic == topic) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace cdcjoin
