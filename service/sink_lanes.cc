#include "service/sink_lanes.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <set>

#include "absl/random/random.h"
#include "join/keyed_executor.h"
#include "service/logging.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {

SinkLanesOptions SinkLanesOptions::FromConfig(const v1::SinkConfig& sink) {
  SinkLanesOptions options;
  options.lanes = sink.lanes();
  options.batch_rows = sink.batch_rows();
  options.linger = absl::Milliseconds(sink.linger_ms());
  options.queue_capacity = sink.queue_capacity();
  options.max_attempts = sink.retry().max_attempts();
  options.initial_backoff = absl::Milliseconds(sink.retry().initial_backoff_ms());
  options.max_backoff = absl::Milliseconds(sink.retry().max_backoff_ms());
  options.stall_after = absl::Milliseconds(sink.stall_after_ms());
  options.coalesce_keys = !sink.disable_coalesce_keys();
  return options;
}

class SinkLanes::Impl {
 public:
  Impl(const SinkLanesOptions& options, WriterFactory connect, AppliedCallback on_applied,
       RejectedCallback on_rejected, PipelineStats* stats)
      : options_(options),
        connect_(std::move(connect)),
        on_applied_(std::move(on_applied)),
        on_rejected_(std::move(on_rejected)),
        stats_(stats),
        lanes_(options.lanes) {}

  absl::Status Start() {
    KeyedExecutorOptions executor;
    executor.num_workers = options_.lanes;
    executor.max_batch_size = options_.batch_rows;
    executor.max_per_key = options_.coalesce_keys ? options_.batch_rows : 1;
    executor.max_in_flight = options_.lanes * options_.batch_rows;
    executor.max_batch_delay = options_.linger;
    executor.max_pending = static_cast<int64_t>(options_.lanes) * options_.queue_capacity;
    absl::StatusOr<std::unique_ptr<KeyedExecutor<RowCommand>>> created =
        KeyedExecutor<RowCommand>::Create(
            executor,
            [this](int lane, absl::Span<RowCommand> batch) { return ApplyBatch(lane, batch); },
            [this](uint64_t, const RowCommand&, const absl::Status&) { OnFinished(); });
    if (!created.ok()) return created.status();
    executor_ = *std::move(created);
    return absl::OkStatus();
  }

  bool TryEnqueue(RowCommand& command) {
    if (stopping_.load()) return false;
    const uint64_t key = StableKeyHash(command.key);
    {
      absl::MutexLock lock(&mu_);
      ++enqueued_;
    }
    if (executor_->TrySubmit(key, std::move(command)).ok()) return true;
    absl::MutexLock lock(&mu_);
    --enqueued_;
    return false;
  }

  void Fence(const std::set<SourcePartition>& partitions) {
    absl::MutexLock lock(&fence_mu_);
    fenced_.insert(partitions.begin(), partitions.end());
    any_fenced_.store(!fenced_.empty());
  }

  void Admit(const std::vector<SourcePartition>& partitions) {
    absl::MutexLock lock(&fence_mu_);
    for (const SourcePartition& partition : partitions) fenced_.erase(partition);
    any_fenced_.store(!fenced_.empty());
  }

  bool AwaitWritesInFlight(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    std::vector<std::pair<const Lane*, int64_t>> in_flight;
    for (const Lane& lane : lanes_) {
      if (lane.writes_ended < lane.writes_started) in_flight.push_back({&lane, lane.writes_started});
    }
    auto returned = [&in_flight]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return std::all_of(in_flight.begin(), in_flight.end(),
                         [](const auto& w) { return w.first->writes_ended >= w.second; });
    };
    return mu_.AwaitWithTimeout(absl::Condition(&returned), timeout);
  }

  void WaitForRoom(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const int64_t seen = finished_;
    auto progressed = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return finished_ != seen || stopping_.load();
    };
    mu_.AwaitWithTimeout(absl::Condition(&progressed), timeout);
  }

  bool Drain(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const int64_t target = enqueued_;
    auto drained = [this, target]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return finished_ >= target || stopping_.load();
    };
    mu_.AwaitWithTimeout(absl::Condition(&drained), timeout);
    return finished_ >= target && applied_ >= target;
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_.store(true);
    }
    if (executor_ != nullptr) {
      executor_->Shutdown(KeyedExecutorShutdown::kCancelPending).IgnoreError();
    }
  }

  std::vector<LaneStatus> Status() const {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    std::vector<LaneStatus> statuses;
    for (const Lane& lane : lanes_) {
      LaneStatus status = lane.status;
      const absl::Duration idle = now - lane.last_progress;
      if (lane.busy && idle >= options_.stall_after) {
        status.stalled_for = idle;
        status.last_error = absl::StrCat("sink stalled: nothing applied for ",
                                         absl::FormatDuration(absl::Trunc(idle, absl::Seconds(1))),
                                         status.last_error.empty() ? "" : "; last error: ",
                                         status.last_error);
      }
      statuses.push_back(std::move(status));
    }
    return statuses;
  }

  bool RejectHeld(const EventPosition& position, const absl::Status& why) {
    absl::MutexLock lock(&mu_);
    for (Lane& lane : lanes_) {
      if (!lane.status.holding) continue;
      if (std::find(lane.held.begin(), lane.held.end(), position) == lane.held.end()) continue;
      lane.operator_rejects.push_back({position, why});
      return true;
    }
    return false;
  }

  int64_t Queued() const {
    absl::MutexLock lock(&mu_);
    return enqueued_ - finished_;
  }

  int64_t Capacity() const { return static_cast<int64_t>(options_.lanes) * options_.queue_capacity; }

 private:
  // What a lane keeps between batches. Lane thread only, except `status` (under mu_).
  struct Lane {
    std::unique_ptr<RowWriter> writer;
    absl::BitGen rng;
    // Under mu_:
    LaneStatus status;
    bool busy = false;  // Has a batch.
    absl::Time last_progress = absl::InfinitePast();  // Took a batch or applied some of it.
    std::vector<EventPosition> held;  // The events of the batch, once the lane holds.
    std::vector<std::pair<EventPosition, absl::Status>> operator_rejects;  // RejectHeld.
    int64_t writes_started = 0;  // Attempts sent to the database, and those that returned.
    int64_t writes_ended = 0;
  };

  void CountWrite(int index, bool started) {
    absl::MutexLock lock(&mu_);
    ++(started ? lanes_[index].writes_started : lanes_[index].writes_ended);
  }

  // Sleeps for `delay` unless the lanes are stopped first; false when stopping.
  bool SleepUnlessStopping(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_.load(); };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), delay);
    return !stopping_.load();
  }

  void SetStatus(int index, int attempts, bool holding, const std::string& error, int64_t batch) {
    absl::MutexLock lock(&mu_);
    LaneStatus& status = lanes_[index].status;
    status.attempts = attempts;
    status.holding = holding;
    status.queued = batch;
    if (!error.empty()) status.last_error = error;
  }

  void MarkProgress(int index, bool busy) {
    absl::MutexLock lock(&mu_);
    lanes_[index].busy = busy;
    lanes_[index].last_progress = absl::Now();
  }

  // Publishes the batch's events, so that RejectHeld can find them, and the first one, which the
  // lane holds on.
  void MarkHeld(int index, const std::vector<RowCommand>& commands) {
    absl::MutexLock lock(&mu_);
    std::vector<EventPosition>& held = lanes_[index].held;
    lanes_[index].status.held_on.reset();
    if (!commands.empty() && !commands.front().covers.empty()) {
      lanes_[index].status.held_on = commands.front().covers.front();
    }
    held.clear();
    for (const RowCommand& command : commands) {
      held.insert(held.end(), command.covers.begin(), command.covers.end());
    }
  }

  // Takes out the commands the operator rejected (RejectHeld) and hands them over.
  void TakeOperatorRejects(int index, std::vector<RowCommand>* commands) {
    std::vector<std::pair<EventPosition, absl::Status>> rejects;
    {
      absl::MutexLock lock(&mu_);
      rejects.swap(lanes_[index].operator_rejects);
    }
    for (const auto& [position, why] : rejects) {
      auto carries = [&position = position](const RowCommand& command) {
        return std::find(command.covers.begin(), command.covers.end(), position) !=
               command.covers.end();
      };
      auto it = std::find_if(commands->begin(), commands->end(), carries);
      if (it == commands->end()) continue;
      RowCommand rejected = std::move(*it);
      commands->erase(it);
      LogWarning("sink lane ", index, ": the operator took a command out of the held batch: ",
                 why.message());
      on_rejected_(std::move(rejected), why);
    }
  }

  // Applies `pending` in order through `writer`. When the database refuses a row for its own
  // data, the row is found by applying ever shorter prefixes (the rows before it go in, in
  // order), handed to the rejection callback, and the rest goes on. Returns the first error
  // that is not a row error, with `pending` holding what is still to do (after a permanent
  // error, starting with the command that fails alone) and `applied` what went in.
  absl::Status ApplyIsolatingRowErrors(int index, RowWriter& writer,
                                       std::vector<RowCommand>* pending,
                                       std::vector<RowCommand>* applied) {
    size_t prefix = pending->size();
    while (!pending->empty()) {
      prefix = std::min(prefix, pending->size());
      const absl::Time start = absl::Now();
      absl::Status status;
      if (prefix == pending->size()) {
        status = writer.Apply(*pending);
      } else {
        status = writer.Apply(std::vector<RowCommand>(pending->begin(), pending->begin() + prefix));
      }
      stats_->sink_latency.Record(absl::Now() - start);
      if (status.ok()) {
        std::move(pending->begin(), pending->begin() + prefix, std::back_inserter(*applied));
        pending->erase(pending->begin(), pending->begin() + prefix);
        prefix = pending->size();
        MarkProgress(index, /*busy=*/true);
        continue;
      }
      if (IsRetriable(status)) return status;
      // Narrowed down also for errors of no known row, so the lane can say which event it
      // holds on (the operator may dead-letter it).
      if (prefix > 1) {
        prefix = (prefix + 1) / 2;
        continue;
      }
      if (!IsRowError(status)) return status;
      RowCommand rejected = std::move(pending->front());
      pending->erase(pending->begin());
      prefix = pending->size();
      LogWarning("sink lane ", index, ": the database refused a row, which is dead-lettered: ",
                 status.message());
      on_rejected_(std::move(rejected), status);
    }
    return absl::OkStatus();
  }

  // The executor's sink: applies the batch, retrying until it succeeds. An error comes back
  // only when stopping, which cancels the batch's keys (their events are never acknowledged).
  absl::Status ApplyBatch(int index, absl::Span<RowCommand> batch) {
    Lane& lane = lanes_[index];
    // The writer takes a vector; commands move in and out so nothing is copied.
    std::vector<RowCommand> commands(std::make_move_iterator(batch.begin()),
                                     std::make_move_iterator(batch.end()));
    std::vector<RowCommand> applied;
    const int64_t resolved = static_cast<int64_t>(commands.size());
    absl::Duration backoff = options_.initial_backoff;
    int attempts = 0;
    bool holding = false;
    MarkProgress(index, /*busy=*/true);
    SetStatus(index, 0, false, "", static_cast<int64_t>(commands.size()));
    while (true) {
      absl::Status status;
      if (lane.writer == nullptr) {
        absl::StatusOr<std::unique_ptr<RowWriter>> writer = connect_();
        if (writer.ok()) {
          lane.writer = *std::move(writer);
        } else {
          status = writer.status();
        }
      }
      // Re-checked before every attempt: a partition may have been revoked while this batch
      // waited or retried, and nothing of it may be written afterwards.
      DropFenced(&commands);
      if (holding) {
        TakeOperatorRejects(index, &commands);
        MarkHeld(index, commands);
      }
      if (commands.empty()) break;
      if (lane.writer != nullptr) {
        CountWrite(index, /*started=*/true);
        status = ApplyIsolatingRowErrors(index, *lane.writer, &commands, &applied);
        CountWrite(index, /*started=*/false);
        if (status.ok()) break;
        if (NeedsReconnect(status)) lane.writer.reset();
      }
      ++attempts;
      stats_->retries.fetch_add(1, std::memory_order_relaxed);
      if (IsDeadlock(status)) stats_->deadlocks.fetch_add(1, std::memory_order_relaxed);
      const std::string message =
          absl::StrCat("sink lane ", index, ": attempt ", attempts, " failed: ", status.ToString());
      stats_->RecordError(message);
      // Retrying cannot fix a missing column or a revoked grant: hold at once, so status says
      // so, and keep retrying slowly in case someone fixes the database.
      if ((attempts >= options_.max_attempts || !IsRetriable(status)) && !holding) {
        holding = true;
        LogError(message,
                 IsRetriable(status) ? "; retries exhausted" : "; retrying cannot fix this",
                 ", the lane holds its batch of ", commands.size(),
                 " commands and keeps retrying every ", absl::FormatDuration(options_.max_backoff),
                 "; nothing is committed past it (cdcjoinctl dead-letter takes a command out)");
        backoff = options_.max_backoff;
      } else if (IsRetriable(status)) {
        LogWarning(message);
      } else {
        LogError(message);
      }
      if (holding) MarkHeld(index, commands);
      SetStatus(index, attempts, holding, status.ToString(),
                static_cast<int64_t>(commands.size()));
      const absl::Duration ceiling = std::min(backoff, options_.max_backoff);
      const int64_t ceiling_us = absl::ToInt64Microseconds(ceiling);
      const absl::Duration delay =
          absl::Microseconds(absl::Uniform<int64_t>(lane.rng, ceiling_us / 2, ceiling_us + 1));
      if (!SleepUnlessStopping(delay)) {
        // What went in is acknowledged; the rest never is (Kafka redelivers it).
        Acknowledge(applied);
        std::move(commands.begin(), commands.end(), batch.begin());
        MarkProgress(index, /*busy=*/false);
        return absl::CancelledError("sink lanes stopping");
      }
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    if (holding) LogInfo("sink lane ", index, ": recovered after ", attempts, " attempts");
    {
      absl::MutexLock lock(&mu_);
      lane.held.clear();
      lane.operator_rejects.clear();
      lane.status.held_on.reset();
    }
    SetStatus(index, 0, false, "", 0);
    MarkProgress(index, /*busy=*/false);
    Acknowledge(applied);
    stats_->batches.fetch_add(1, std::memory_order_relaxed);
    if (lane.writer != nullptr) {
      stats_->stale_writes_stopped.fetch_add(lane.writer->TakeStaleWritesStopped(),
                                             std::memory_order_relaxed);
    }
    {
      absl::MutexLock lock(&mu_);
      applied_ += resolved;  // Applied, rejected, or dropped by a fence: either way done with.
    }
    std::move(applied.begin(), applied.end(), batch.begin());
    return absl::OkStatus();
  }

  void Acknowledge(const std::vector<RowCommand>& applied) {
    if (applied.empty()) return;
    on_applied_(applied);
    stats_->rows_written.fetch_add(static_cast<int64_t>(applied.size()),
                                   std::memory_order_relaxed);
  }

  void OnFinished() {
    absl::MutexLock lock(&mu_);
    ++finished_;
  }

  // Removes the commands that carry only events of fenced partitions.
  void DropFenced(std::vector<RowCommand>* commands) {
    if (!any_fenced_.load()) return;
    absl::MutexLock lock(&fence_mu_);
    auto only_fenced = [this](const RowCommand& command) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fence_mu_) {
      return std::all_of(command.covers.begin(), command.covers.end(),
                         [this](const EventPosition& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fence_mu_) {
                           return fenced_.count(p.partition) > 0;
                         });
    };
    const size_t before = commands->size();
    commands->erase(std::remove_if(commands->begin(), commands->end(), only_fenced),
                    commands->end());
    if (commands->size() != before) {
      LogInfo("sink: dropped ", before - commands->size(),
              " commands of revoked partitions unapplied (their new owner applies them)");
    }
  }

  const SinkLanesOptions options_;
  const WriterFactory connect_;
  const AppliedCallback on_applied_;
  const RejectedCallback on_rejected_;
  PipelineStats* const stats_;
  std::vector<Lane> lanes_;  // One per executor worker; sized once.

  mutable absl::Mutex mu_;
  int64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t finished_ ABSL_GUARDED_BY(mu_) = 0;  // Applied or cancelled.
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> stopping_{false};

  absl::Mutex fence_mu_;
  std::set<SourcePartition> fenced_ ABSL_GUARDED_BY(fence_mu_);
  std::atomic<bool> any_fenced_{false};
  std::unique_ptr<KeyedExecutor<RowCommand>> executor_;  // Last: its workers use the above.
};

absl::StatusOr<std::unique_ptr<SinkLanes>> SinkLanes::Start(const SinkLanesOptions& options,
                                                            WriterFactory connect,
                                                            AppliedCallback on_applied,
                                                            RejectedCallback on_rejected,
                                                            PipelineStats* stats) {
  auto impl = std::make_unique<Impl>(options, std::move(connect), std::move(on_applied),
                                     std::move(on_rejected), stats);
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<SinkLanes>(new SinkLanes(std::move(impl)));
}

SinkLanes::SinkLanes(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SinkLanes::~SinkLanes() { Stop(); }
bool SinkLanes::TryEnqueue(RowCommand& command) { return impl_->TryEnqueue(command); }
void SinkLanes::WaitForRoom(absl::Duration timeout) { impl_->WaitForRoom(timeout); }
bool SinkLanes::Drain(absl::Duration timeout) { return impl_->Drain(timeout); }
void SinkLanes::Stop() { impl_->Stop(); }
void SinkLanes::Fence(const std::set<SourcePartition>& partitions) { impl_->Fence(partitions); }
void SinkLanes::Admit(const std::vector<SourcePartition>& partitions) { impl_->Admit(partitions); }
bool SinkLanes::AwaitWritesInFlight(absl::Duration timeout) {
  return impl_->AwaitWritesInFlight(timeout);
}
bool SinkLanes::RejectHeld(const EventPosition& position, const absl::Status& why) {
  return impl_->RejectHeld(position, why);
}
std::vector<LaneStatus> SinkLanes::Status() const { return impl_->Status(); }
int64_t SinkLanes::Queued() const { return impl_->Queued(); }
int64_t SinkLanes::Capacity() const { return impl_->Capacity(); }

bool SinkLanes::Degraded() const {
  for (const LaneStatus& lane : impl_->Status()) {
    if (lane.holding || lane.stalled_for > absl::ZeroDuration()) return true;
  }
  return false;
}

}  // namespace cdcjoin
