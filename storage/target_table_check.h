#ifndef CDCJOIN_STORAGE_TARGET_TABLE_CHECK_H_
#define CDCJOIN_STORAGE_TARGET_TABLE_CHECK_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "join/table_schema.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "storage/mysql_connection.h"

namespace cdcjoin {

// Reads the target table's definition (information_schema) and says what does not fit the
// configuration, before the first event does: a missing table, a primary key other than
// target.key_columns, a mapped or key column that does not exist (with the nearest name), a
// column whose type cannot hold the mapped value type. One line per problem, naming the config
// field and the column, e.g.
//   sources[0].columns[0].to: column 'maskingNme' is not in demo.Nickname (did you mean
//   'maskingName'?)
// `problems` is empty when the table fits; `columns` holds what the database says about every
// column of the table (TableSchema::SetColumnFacts takes it to the decoder). An error only when
// the database cannot be asked (classified as the writer's are: Unavailable when unreachable).
struct TargetTableReport {
  std::vector<std::string> problems;
  std::map<std::string, ColumnFacts> columns;
};
absl::StatusOr<TargetTableReport> CheckTargetTable(const MySqlOptions& options,
                                                   const v1::Config& config);

// The facts of a column from its information_schema.COLUMNS entry (DATA_TYPE in lower case,
// COLUMN_TYPE, IS_NULLABLE = "YES", CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH,
// NUMERIC_PRECISION, NUMERIC_SCALE; a missing length or precision is -1).
ColumnFacts ColumnFactsOf(const std::string& data_type, const std::string& column_type,
                          bool nullable, int64_t max_chars, int64_t max_bytes, int64_t precision,
                          int64_t scale);

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_TARGET_TABLE_CHECK_H_
