#include "join/row_version.h"

#include <cstdio>

namespace cdcjoin {

std::string RowVersionOf(const ChangeEvent& event) {
  const int deleted = event.op == ChangeOp::kDelete ? 1 : 0;
  char digits[kRowVersionDigits + 1];
  const std::optional<BinlogCoordinates>& binlog = event.binlog;
  if (binlog.has_value() && binlog->file_number <= kMaxBinlogFileNumber &&
      binlog->position <= kMaxBinlogPosition && binlog->row <= kMaxBinlogRow) {
    std::snprintf(digits, sizeof(digits), "2%09llu%012llu%d%06llu%d",
                  static_cast<unsigned long long>(binlog->file_number),
                  static_cast<unsigned long long>(binlog->position), binlog->snapshot ? 0 : 1,
                  static_cast<unsigned long long>(binlog->row), deleted);
  } else {
    const int64_t offset = event.position.offset < 0 ? 0 : event.position.offset;
    std::snprintf(digits, sizeof(digits), "1%019lld000000000%d",
                  static_cast<long long>(offset), deleted);
  }
  return std::string(digits, kRowVersionDigits);
}

bool IsNewerRowVersion(const std::string& candidate, const std::string& stored) {
  // Same width, so the string order is the numeric order.
  return stored.empty() || candidate > stored;
}

}  // namespace cdcjoin
