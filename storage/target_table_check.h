#ifndef CDCJOIN_STORAGE_TARGET_TABLE_CHECK_H_
#define CDCJOIN_STORAGE_TARGET_TABLE_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
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
// Empty when the table fits. An error only when the database cannot be asked (classified as the
// writer's are: Unavailable when unreachable).
absl::StatusOr<std::vector<std::string>> CheckTargetTable(const MySqlOptions& options,
                                                          const v1::Config& config);

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_TARGET_TABLE_CHECK_H_
