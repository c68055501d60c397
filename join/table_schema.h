#ifndef CDCJOIN_JOIN_TABLE_SCHEMA_H_
#define CDCJOIN_JOIN_TABLE_SCHEMA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

// What the target database says about one column (information_schema.COLUMNS, read by
// storage/target_table_check at start). The decoder refuses a value the column cannot hold
// exactly, so a bad record is dead-lettered at decode time instead of being converted, rounded,
// truncated or refused by MySQL at write time (where it would hold a whole batch).
struct ColumnFacts {
  enum class Kind {
    kOther,     // Not checked beyond NULL (enum, set, json, year, spatial, ...).
    kInteger,   // tinyint .. bigint: an integer within [min_integer, max_integer].
    kFloat,     // float (single precision).
    kDouble,    // double, real.
    kDecimal,   // decimal(precision, scale).
    kBit,       // bit(precision).
    kText,      // char, varchar, *text: at most max_chars characters and max_bytes bytes.
    kBinary,    // binary, varbinary, *blob: at most max_bytes bytes.
    kTemporal,  // date, datetime, timestamp, time: text only (the decoder renders them).
  };
  Kind kind = Kind::kOther;
  // information_schema.COLUMNS.COLUMN_TYPE, e.g. "varchar(100)", "bigint(20) unsigned": for
  // messages.
  std::string column_type;
  bool nullable = true;
  bool is_unsigned = false;
  // kInteger: the inclusive range (an unsigned bigint's top is 2^64-1).
  int64_t min_integer = 0;
  uint64_t max_integer = 0;
  // kDecimal: digits in all and after the point; kBit: bits.
  int precision = 0;
  int scale = 0;
  // kText: characters; kText and kBinary: bytes. -1 when unknown.
  int64_t max_chars = -1;
  int64_t max_bytes = -1;
};

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
  // When not empty, an event whose Debezium source.db / source.table differ is refused.
  std::string database;
  std::string table;
  // With the stale-write guard: the target column holding this source's row version
  // (join/row_version.h). Empty without the guard.
  std::string version_column;
};

// The target table and how both sources map onto it, compiled once from the configuration so
// the hot path works with column indexes instead of names.
struct TableSchema {
  std::string table;
  std::vector<std::string> key_columns;
  // The non-key target columns, each once, in order of first mention in the sources.
  std::vector<std::string> columns;
  std::vector<SourceMapping> sources;
  // What the database says about the key columns and the columns (same order as key_columns
  // and columns); nullopt when not known (the start-up check could not read the table).
  std::vector<std::optional<ColumnFacts>> key_facts;
  std::vector<std::optional<ColumnFacts>> column_facts;
  // target.stale_write_guard: every source has a version_column, and an update of column c
  // happens only where the version of source column_guard[c] (the one source that updates c on
  // conflict; -1 when every mapping of c is insert-only) is newer than the row's.
  bool stale_write_guard = false;
  std::vector<int> column_guard;

  // Builds the schema from a configuration that service/config validated. Returns
  // InvalidArgument naming the field for what validation cannot see (a column that is a key).
  static absl::StatusOr<TableSchema> FromConfig(const v1::Config& config);

  // Fills key_facts and column_facts from the target's columns by name; a column not in
  // `by_name` stays unknown.
  void SetColumnFacts(const std::map<std::string, ColumnFacts>& by_name);

  // The source whose topic this is, or -1.
  int SourceIndexOfTopic(const std::string& topic) const;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_TABLE_SCHEMA_H_
