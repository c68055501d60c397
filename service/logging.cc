#include "service/logging.h"

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cdcjoin {

void LogLine(LogLevel level, absl::string_view message) {
  const char* tag = level == LogLevel::kInfo ? "INFO" : level == LogLevel::kWarning ? "WARN" : "ERROR";
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   tag, " ", message, "\n");
  // One fwrite per line: stdio locks the stream, so concurrent lines stay whole.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace cdcjoin
