#include "join/keyed_executor.h"

#include "absl/strings/str_cat.h"

namespace cdcjoin {

absl::Status ValidateKeyedExecutorOptions(const KeyedExecutorOptions& options) {
  if (options.num_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("KeyedExecutorOptions.num_workers must be >= 1, got ", options.num_workers));
  }
  if (options.max_in_flight < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KeyedExecutorOptions.max_in_flight must be >= 1, got ", options.max_in_flight));
  }
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KeyedExecutorOptions.max_batch_size must be >= 1, got ", options.max_batch_size));
  }
  if (options.max_per_key < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KeyedExecutorOptions.max_per_key must be >= 1, got ", options.max_per_key));
  }
  if (options.max_batch_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("KeyedExecutorOptions.max_batch_delay must be >= 0, got ",
                     absl::FormatDuration(options.max_batch_delay)));
  }
  if (options.max_pending < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KeyedExecutorOptions.max_pending must be >= 1, got ", options.max_pending));
  }
  return absl::OkStatus();
}

namespace keyed_executor_internal {

absl::Status StoppedKeyError(uint64_t key, const absl::Status& cause) {
  return absl::FailedPreconditionError(
      absl::StrCat("key ", key, " is stopped by an earlier failure (", cause.ToString(),
                   "); ResumeKey() to accept its commands again"));
}

absl::Status FullError(int64_t max_pending) {
  return absl::ResourceExhaustedError(
      absl::StrCat("keyed executor full: ", max_pending, " commands pending"));
}

absl::Status ShutDownError() {
  return absl::FailedPreconditionError("keyed executor is shut down");
}

absl::Status KeyCancelledError(const absl::Status& cause) {
  return absl::CancelledError(
      absl::StrCat("not run: an earlier command of its key failed: ", cause.ToString()));
}

absl::Status ShutdownCancelledError() {
  return absl::CancelledError("not run: keyed executor shut down with kCancelPending");
}

}  // namespace keyed_executor_internal
}  // namespace cdcjoin
