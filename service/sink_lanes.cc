#include "service/sink_lanes.h"

#include <deque>
#include <thread>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "service/logging.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {

class SinkLanes::Lane {
 public:
  Lane(int index, const SinkLanesOptions& options, WriterFactory connect,
       AppliedCallback on_applied, PipelineStats* stats, absl::Mutex* room_mu,
       absl::CondVar* room_cv)
      : index_(index),
        options_(options),
        connect_(std::move(connect)),
        on_applied_(std::move(on_applied)),
        stats_(stats),
        room_mu_(room_mu),
        room_cv_(room_cv) {
    thread_ = std::thread([this] { Run(); });
  }

  ~Lane() { Stop(); }

  bool TryEnqueue(RowCommand& command) {
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(queue_.size()) >= options_.queue_capacity || stopping_) return false;
    queue_.push_back(std::move(command));
    ++enqueued_;
    return true;
  }

  bool HasRoom() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(queue_.size()) < options_.queue_capacity;
  }

  bool Drain(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    const int64_t target = enqueued_;
    auto drained = [this, target]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return applied_ >= target || stopping_;
    };
    return mu_.AwaitWithDeadline(absl::Condition(&drained), deadline) && applied_ >= target;
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  LaneStatus Status() const {
    absl::MutexLock lock(&mu_);
    LaneStatus status;
    status.queued = enqueued_ - applied_;
    status.holding = holding_;
    status.attempts = attempts_;
    status.last_error = last_error_;
    return status;
  }

 private:
  // Takes up to batch_rows commands, waiting up to `linger` for the batch to fill once the first
  // command is there. Empty when stopping.
  std::vector<RowCommand> TakeBatch() {
    absl::MutexLock lock(&mu_);
    auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || stopping_;
    };
    mu_.Await(absl::Condition(&has_work));
    if (stopping_) return {};
    auto full = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(queue_.size()) >= options_.batch_rows || stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&full), options_.linger);
    if (stopping_) return {};
    const size_t n = std::min<size_t>(queue_.size(), options_.batch_rows);
    std::vector<RowCommand> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return batch;
  }

  // Sleeps for `delay` unless the lane is stopped first; false when stopping.
  bool SleepUnlessStopping(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), delay);
    return !stopping_;
  }

  // Applies the batch, retrying until it succeeds; false only when the lane is stopped first.
  bool ApplyWithRetry(const std::vector<RowCommand>& batch) {
    absl::Duration backoff = options_.initial_backoff;
    int attempts = 0;
    while (true) {
      absl::Status status;
      if (writer_ == nullptr) {
        absl::StatusOr<std::unique_ptr<RowWriter>> writer = connect_();
        if (writer.ok()) {
          writer_ = *std::move(writer);
        } else {
          status = writer.status();
        }
      }
      if (writer_ != nullptr) {
        const absl::Time start = absl::Now();
        status = writer_->Apply(batch);
        stats_->sink_latency.Record(absl::Now() - start);
        if (status.ok()) {
          absl::MutexLock lock(&mu_);
          if (holding_) LogInfo("sink lane ", index_, ": recovered after ", attempts_, " attempts");
          holding_ = false;
          attempts_ = 0;
          return true;
        }
        if (NeedsReconnect(status)) writer_.reset();
      }
      ++attempts;
      stats_->retries.fetch_add(1, std::memory_order_relaxed);
      if (IsDeadlock(status)) stats_->deadlocks.fetch_add(1, std::memory_order_relaxed);
      const std::string message =
          absl::StrCat("sink lane ", index_, ": attempt ", attempts, " failed: ", status.ToString());
      stats_->RecordError(message);
      bool now_holding = false;
      {
        absl::MutexLock lock(&mu_);
        attempts_ = attempts;
        last_error_ = status.ToString();
        if (attempts >= options_.max_attempts && !holding_) {
          holding_ = true;
          now_holding = true;
        }
      }
      if (now_holding) {
        LogError(message, "; retries exhausted, the lane holds its batch of ", batch.size(),
                 " commands and keeps retrying every ", absl::FormatDuration(options_.max_backoff),
                 "; nothing is committed past it");
      } else if (IsRetriable(status)) {
        LogWarning(message);
      } else {
        LogError(message);
      }
      const absl::Duration ceiling = std::min(backoff, options_.max_backoff);
      const absl::Duration delay =
          absl::Microseconds(absl::Uniform<int64_t>(rng_, absl::ToInt64Microseconds(ceiling) / 2,
                                                    absl::ToInt64Microseconds(ceiling) + 1));
      if (!SleepUnlessStopping(delay)) return false;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  void Run() {
    while (true) {
      std::vector<RowCommand> batch = TakeBatch();
      if (batch.empty()) return;
      {
        // A slot freed: the poll thread may be waiting to enqueue.
        absl::MutexLock lock(room_mu_);
        room_cv_->SignalAll();
      }
      if (!ApplyWithRetry(batch)) return;
      on_applied_(batch);
      stats_->batches.fetch_add(1, std::memory_order_relaxed);
      stats_->rows_written.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
      absl::MutexLock lock(&mu_);
      applied_ += static_cast<int64_t>(batch.size());
    }
  }

  const int index_;
  const SinkLanesOptions options_;
  const WriterFactory connect_;
  const AppliedCallback on_applied_;
  PipelineStats* const stats_;
  absl::Mutex* const room_mu_;
  absl::CondVar* const room_cv_;
  std::unique_ptr<RowWriter> writer_;  // Lane thread only.
  absl::BitGen rng_;                   // Lane thread only.

  mutable absl::Mutex mu_;
  std::deque<RowCommand> queue_ ABSL_GUARDED_BY(mu_);
  int64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

SinkLanes::SinkLanes(const SinkLanesOptions& options) {}

std::unique_ptr<SinkLanes> SinkLanes::Start(const SinkLanesOptions& options, WriterFactory connect,
                                            AppliedCallback on_applied, PipelineStats* stats) {
  std::unique_ptr<SinkLanes> lanes(new SinkLanes(options));
  for (int i = 0; i < options.lanes; ++i) {
    lanes->lanes_.push_back(
        std::make_unique<Lane>(i, options, connect, on_applied, stats, &lanes->room_mu_,
                               &lanes->room_cv_));
  }
  return lanes;
}

SinkLanes::~SinkLanes() { Stop(); }

bool SinkLanes::TryEnqueue(RowCommand& command) {
  const size_t lane = StableKeyHash(command.key) % lanes_.size();
  return lanes_[lane]->TryEnqueue(command);
}

void SinkLanes::WaitForRoom(absl::Duration timeout) {
  absl::MutexLock lock(&room_mu_);
  room_cv_.WaitWithTimeout(&room_mu_, timeout);
}

bool SinkLanes::Drain(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (auto& lane : lanes_) {
    if (!lane->Drain(deadline)) return false;
  }
  return true;
}

void SinkLanes::Stop() {
  for (auto& lane : lanes_) lane->Stop();
}

std::vector<LaneStatus> SinkLanes::Status() const {
  std::vector<LaneStatus> statuses;
  for (const auto& lane : lanes_) statuses.push_back(lane->Status());
  return statuses;
}

int64_t SinkLanes::MaxQueued() const {
  int64_t most = 0;
  for (const auto& lane : lanes_) most = std::max(most, lane->Status().queued);
  return most;
}

bool SinkLanes::Degraded() const {
  for (const auto& lane : lanes_) {
    if (lane->Status().holding) return true;
  }
  return false;
}

}  // namespace cdcjoin
