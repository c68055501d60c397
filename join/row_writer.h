#ifndef CDCJOIN_JOIN_ROW_WRITER_H_
#define CDCJOIN_JOIN_ROW_WRITER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "join/row_command.h"

namespace cdcjoin {

// Where row commands take effect (storage/mysql_writer implements it for MySQL/MariaDB).
class RowWriter {
 public:
  virtual ~RowWriter() = default;

  // Applies the commands, given in consumption order, all or nothing. A failed call applied
  // nothing, so the caller may retry it as is; storage/retry_classifier says whether to.
  virtual absl::Status Apply(const std::vector<RowCommand>& commands) = 0;

  // Stale-write guard: the writes the guard refused in the Apply calls since the last call
  // (a writer without the guard refuses none). REQUIRES: the Apply caller's thread.
  virtual int64_t TakeStaleWritesStopped() { return 0; }
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_ROW_WRITER_H_
