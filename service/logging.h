#ifndef CDCJOIN_SERVICE_LOGGING_H_
#define CDCJOIN_SERVICE_LOGGING_H_

#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"

namespace cdcjoin {

enum class LogLevel { kInfo, kWarning, kError };

// One line to stderr: time, level, message. Lines from different threads never interleave.
void LogLine(LogLevel level, absl::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrCat(args...));
}
template <typename... Args>
void LogWarning(const Args&... args) {
  LogLine(LogLevel::kWarning, absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  LogLine(LogLevel::kError, absl::StrCat(args...));
}

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_LOGGING_H_
