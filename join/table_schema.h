#ifndef CDCJOIN_JOIN_TABLE_SCHEMA_H_
#define CDCJOIN_JOIN_TABLE_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

// How one source field lands in the target table.
struct FieldMapping {
  std::string from;             // Field of the Debezium row image.
  int column = 0;               // Index into TableSchema::columns.
  bool update_on_conflict = true;
  bool skip_event_if_null = false;
  v1::ValueType type = v1::VALUE_TYPE_AUTO;
};

// One source table: where its events come from and which target columns it owns.
struct SourceMapping {
  std::string name;
  std::string topic;
  std::vector<std::string> key_fields;  // Positionally matched to TableSchema::key_columns.
  v1::KeySource key_source = v1::ROW;
  std::vector<FieldMapping> fields;
  v1::DeletePolicy on_delete = v1::IGNORE;
};

// The target table and how both sources map onto it, compiled once from the configuration so
// the hot path works with column indexes instead of names.
struct TableSchema {
  std::string table;
  std::vector<std::string> key_columns;
  // The non-key target columns, each once, in order of first mention in the sources.
  std::vector<std::string> columns;
  std::vector<SourceMapping> sources;

  // Builds the schema from a configuration that service/config validated. Returns
  // InvalidArgument naming the field for what validation cannot see (a column that is a key).
  static absl::StatusOr<TableSchema> FromConfig(const v1::Config& config);

  // The source whose topic this is, or -1.
  int SourceIndexOfTopic(const std::string& topic) const;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_TABLE_SCHEMA_H_
