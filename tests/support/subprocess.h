#ifndef CDCJOIN_TESTS_SUPPORT_SUBPROCESS_H_
#define CDCJOIN_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cdcjoin::testing {

// A child process with stdout and stderr appended to a log file. The destructor kills it
// (SIGKILL) if it still runs, so a failing test leaves nothing behind.
class Subprocess {
 public:
  static absl::StatusOr<Subprocess> Spawn(const std::vector<std::string>& argv,
                                          const std::string& log_path);
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  // The exit code (128 + signal when killed), or nullopt if it still runs after `timeout`.
  std::optional<int> Wait(absl::Duration timeout);
  bool Running();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// The path of a binary built by Bazel, from the test's runfiles ("service/cdcjoind").
std::string RunfilePath(const std::string& workspace_relative);

// The whole contents of a file ("" when missing).
std::string ReadFile(const std::string& path);

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_SUBPROCESS_H_
