#ifndef CDCJOIN_SERVICE_LOOP_CALL_H_
#define CDCJOIN_SERVICE_LOOP_CALL_H_

#include <functional>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace cdcjoin {

// Runs work on a loop's thread on behalf of another thread, one call at a time, so whatever the
// loop owns is only ever touched by the loop.
//
//   absl::StatusOr<Report> r = call.Run([this, x] { return Work(x); });   // any thread: waits
//   call.Serve();                                   // loop thread, between iterations
//   call.Close();                                   // waiting and later calls: Cancelled
//
// `work` must capture by value: after Close, Run returns while the loop may still be running it.
template <typename R>
class LoopCall {
 public:
  using Work = std::function<absl::StatusOr<R>()>;

  absl::StatusOr<R> Run(Work work) {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::CancelledError("stopping");
    if (work_ != nullptr) return absl::FailedPreconditionError("another call is running");
    work_ = std::move(work);
    auto answered = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return result_.has_value() || closed_;
    };
    mu_.Await(absl::Condition(&answered));
    absl::StatusOr<R> result =
        result_.has_value() ? *std::move(result_) : absl::CancelledError("stopping");
    result_.reset();
    work_ = nullptr;
    return result;
  }

  // REQUIRES: the loop thread.
  void Serve() {
    Work work;
    {
      absl::MutexLock lock(&mu_);
      if (work_ == nullptr || running_ || result_.has_value()) return;
      work = work_;
      running_ = true;
    }
    absl::StatusOr<R> result = work();
    absl::MutexLock lock(&mu_);
    running_ = false;
    result_ = std::move(result);
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

 private:
  absl::Mutex mu_;
  Work work_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::StatusOr<R>> result_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_LOOP_CALL_H_
