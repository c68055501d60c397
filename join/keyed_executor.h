#ifndef CDCJOIN_JOIN_KEYED_EXECUTOR_H_
#define CDCJOIN_JOIN_KEYED_EXECUTOR_H_

// KeyedExecutor<T>: runs commands tagged with a key through a sink, in submission order per key
// and in parallel across keys.
//
//   auto executor = KeyedExecutor<RowCommand>::Create(
//       options,
//       /*sink=*/[&](int worker, absl::Span<RowCommand> batch) {
//         return writers[worker]->Apply(batch);  // one multi-row statement, distinct keys
//       });
//   for (RowCommand& command : commands) {
//     absl::Status s = (*executor)->Submit(StableKeyHash(command.key), std::move(command));
//     ...
//   }
//   absl::Status first_error = (*executor)->Flush();  // everything above is done (or failed)
//
// Guarantees:
//  - Per key strictly FIFO: a key's next command is handed to the sink only after the sink call
//    holding its previous command returned OK. At most one sink call per key is in flight, so no
//    two workers ever write the same key at the same time.
//  - Different keys run in parallel, at most `max_in_flight` commands in the sink at once, on a
//    fixed pool of `num_workers` threads (no thread per key). Pipelined: a worker that finishes a
//    batch takes the next ready commands at once; nothing waits for a "round" to end.
//  - Bulk: a sink call receives up to `max_batch_size` commands, so a sink can apply them as one
//    multi-row statement. A batch succeeds or fails as a whole. It holds up to `max_per_key`
//    commands of one key (default 1: distinct keys), adjacent and in submission order, so a sink
//    can reduce a hot key's run to one write.
//  - Errors: when a sink call fails, every key in that batch is stopped: its queued commands are
//    not run and are reported as kCancelled through the completion callback, and later Submit()s
//    for it are refused with kFailedPrecondition until ResumeKey()/ResumeAllKeys(). Other keys go
//    on. The executor never retries: retry policy belongs to the caller (typically inside the
//    sink, e.g. a deadlock retry loop around one statement).
//  - Nothing accepted is lost or run twice: every accepted command is reported exactly once
//    (completion callback) as OK, the sink's error, or kCancelled.
//  - Bounded memory: at most `max_pending` commands are accepted and unfinished; Submit() blocks
//    and TrySubmit() returns kResourceExhausted past that.
//
// Keys are 64-bit hashes (StableKeyHash of a join key). Two join keys with the same hash are
// merely ordered with respect to each other, never reordered, so collisions cost parallelism,
// not correctness.
//
// Threading: every public method is thread-safe. The sink and the completion callback run on
// worker threads (and the completion callback also on the thread calling Shutdown(kCancelPending))
// and must not call Flush(), Shutdown() or a blocking Submit() of the same executor (they would
// wait for themselves); TrySubmit() and ResumeKey() are fine there.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace cdcjoin {

struct KeyedExecutorOptions {
  // Worker threads calling the sink. A worker runs one batch at a time, so this bounds the number
  // of concurrent sink calls; for a database sink it is the number of connections (one per worker,
  // indexed by the `worker` argument of the sink). Must be >= 1.
  // Default: 4.
  int num_workers = 4;

  // Most commands handed to the sink and not yet returned, summed over all workers. Concurrency of
  // one-command-per-call sinks is min(num_workers, max_in_flight). Must be >= 1.
  // Default: 100 (the seed's flush trigger).
  int max_in_flight = 100;

  // Most commands per sink call; 1 means one command per I/O. Must be >= 1.
  // Default: 1.
  int max_batch_size = 1;

  // Most commands of one key per sink call. Above 1, a worker takes a ready key's queued commands
  // together (up to this many, adjacent in the batch, in submission order), so the sink can
  // coalesce them; they count one by one against max_batch_size and max_in_flight. 1 keeps every
  // batch to distinct keys. Must be >= 1.
  // Default: 1.
  int max_per_key = 1;

  // How long a worker may hold back a batch smaller than max_batch_size waiting for more ready
  // commands (Kafka's linger.ms). Zero dispatches whatever is ready at once. Flush() and
  // Shutdown() end any wait immediately. Must be >= 0.
  // Default: zero.
  absl::Duration max_batch_delay = absl::ZeroDuration();

  // Most commands accepted and not finished (queued plus in flight). Beyond it Submit() blocks and
  // TrySubmit() returns kResourceExhausted. Command storage grows up to this bound and is reused,
  // not returned, until the executor is destroyed. Must be >= 1.
  // Default: 65536.
  int64_t max_pending = 65536;
};

// OK if every field is in range; kInvalidArgument naming the first that is not.
absl::Status ValidateKeyedExecutorOptions(const KeyedExecutorOptions& options);

struct KeyedExecutorStats {
  int64_t submitted = 0;           // accepted by Submit()/TrySubmit()
  int64_t rejected = 0;            // refused by Submit()/TrySubmit() (full, key stopped, shut down)
  int64_t succeeded = 0;           // ran; the sink returned OK
  int64_t failed = 0;              // ran; the sink returned an error
  int64_t cancelled = 0;           // accepted, never run (key stopped, or Shutdown(kCancelPending))
  int64_t batches = 0;             // sink calls
  int64_t pending = 0;             // accepted, not finished (queued + in flight)
  int64_t in_flight = 0;           // in the sink right now
  int64_t max_in_flight_seen = 0;  // high-water mark of in_flight
  int64_t stopped_keys = 0;        // keys refusing commands until ResumeKey()
};

enum class KeyedExecutorShutdown {
  // Run everything accepted (each key until its first failure), then stop the workers.
  kDrain,
  // Report every queued command as kCancelled without running it; let the batches already in the
  // sink finish; then stop the workers.
  kCancelPending,
};

template <typename T>
class KeyedExecutor {
 public:
  // Executes `batch` (1..max_batch_size commands; those of one key, at most max_per_key, are
  // adjacent and in submission order; keys in no particular order) as one I/O. `worker` in
  // [0, num_workers) identifies the calling thread; a worker runs one batch at a time, so
  // per-worker resources indexed by it need no locking. The commands may be modified; the
  // completion callback sees them afterwards.
  using Sink = std::function<absl::Status(int worker, absl::Span<T> batch)>;
  // Called exactly once per accepted command, after it finished: OK, the sink's error for its
  // batch, or kCancelled when it was not run. Called before Flush() can observe the command as
  // done, so offsets stored here are stored when Flush() returns.
  using Completion = std::function<void(uint64_t key, const T& command, const absl::Status&)>;

  // Starts the workers. kInvalidArgument for bad options or an empty sink.
  static absl::StatusOr<std::unique_ptr<KeyedExecutor>> Create(const KeyedExecutorOptions& options,
                                                               Sink sink,
                                                               Completion on_complete = nullptr);

  KeyedExecutor(const KeyedExecutor&) = delete;
  KeyedExecutor& operator=(const KeyedExecutor&) = delete;

  // Shutdown(kDrain) if Shutdown() was not called: the destructor runs everything accepted before
  // returning. Call Shutdown() yourself to see the error or to cancel instead.
  ~KeyedExecutor();

  // Queues `command` behind the earlier commands of `key`, blocking while max_pending commands
  // are unfinished. OK: accepted; it will be reported to the completion callback. Otherwise
  // `command` is left untouched (not moved from): kFailedPrecondition if the key is stopped or the
  // executor is shut down.
  absl::Status Submit(uint64_t key, T&& command);

  // As Submit() but never blocks: kResourceExhausted (command untouched) when full.
  absl::Status TrySubmit(uint64_t key, T&& command);

  // Returns when every command accepted before the call has finished (run, failed or cancelled)
  // and its completion callback returned. Returns the first sink error recorded since the previous
  // Flush()/Shutdown() returned, or OK; each error is returned once. Stopped keys stay stopped.
  absl::Status Flush();

  // Refuses further submissions, finishes per `mode`, joins the workers. Returns as Flush().
  // Idempotent: later calls wait for the first to finish and return OK.
  absl::Status Shutdown(KeyedExecutorShutdown mode = KeyedExecutorShutdown::kDrain);

  // Lets a stopped key accept commands again (e.g. after the caller re-submitted or gave up on
  // its failed command). Returns false if the key was not stopped.
  bool ResumeKey(uint64_t key);
  void ResumeAllKeys();
  bool IsKeyStopped(uint64_t key) const;

  KeyedExecutorStats GetStats() const;

 private:
  // A queued command. Nodes of one key form a circular singly-linked list reached from its tail.
  struct Node {
    Node* next;
    uint64_t key;
    uint64_t epoch;
    T command;
  };
  union Slot {
    Slot* next_free;
    alignas(Node) unsigned char bytes[sizeof(Node)];
  };
  struct KeyState {
    Node* tail = nullptr;    // queued commands (not including those in flight)
    bool in_flight = false;  // commands of this key are in the sink
  };
  struct Worker {
    int index = 0;
    absl::CondVar cv;
    bool woken = false;  // set by whoever signals cv, so wakeups are neither lost nor spurious
    absl::Time linger_deadline = absl::InfinitePast();
    std::thread thread;
  };
  struct CancelledCommand {
    uint64_t key;
    uint64_t epoch;
    T command;
  };

  static constexpr int kSlotsPerChunk = 1024;

  KeyedExecutor(const KeyedExecutorOptions& options, Sink sink, Completion on_complete);

  absl::Status SubmitImpl(uint64_t key, T& command, bool block);
  void WorkerLoop(Worker* w);

  bool CanDispatchLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !ready_.empty() && in_flight_ < options_.max_in_flight;
  }
  size_t EffectiveBatchLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<size_t>(
        std::min<int64_t>(options_.max_batch_size, options_.max_in_flight - in_flight_));
  }
  bool ShouldLingerLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return options_.max_batch_delay > absl::ZeroDuration() && flush_waiters_ == 0 && !closed_ &&
           ready_.size() < EffectiveBatchLocked();
  }
  void ParkLocked(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeLocked(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeWakeWorkerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeBatchLocked(std::vector<uint64_t>* keys, std::vector<uint64_t>* epochs,
                       std::vector<T>* commands) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteBatchLocked(const std::vector<uint64_t>& keys, const std::vector<uint64_t>& epochs,
                           const absl::Status& status, std::vector<CancelledCommand>* cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DetachQueueLocked(KeyState* ks, std::vector<CancelledCommand>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reports `cancelled` outside the lock, then marks them finished. REQUIRES: mu_ held on entry;
  // released and re-acquired inside.
  void ReportCancelledLocked(std::vector<CancelledCommand>* cancelled, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishOneLocked(uint64_t epoch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceEpochsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until every command accepted so far finished.
  void WaitForAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Node* NewNodeLocked(uint64_t key, uint64_t epoch, T&& command) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeNodeLocked(Node* node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const KeyedExecutorOptions options_;
  const Sink sink_;
  const Completion on_complete_;
  // Submit() wakes blocked submitters only once pending_ fell to this, so a full executor does
  // not ping-pong one wakeup per finished command.
  const int64_t space_low_watermark_;
  std::vector<std::unique_ptr<Worker>> workers_;  // fixed after construction

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, KeyState> keys_ ABSL_GUARDED_BY(mu_);  // queued or in flight
  std::deque<uint64_t> ready_ ABSL_GUARDED_BY(mu_);  // keys with queued commands, none in flight
  absl::flat_hash_map<uint64_t, absl::Status> stopped_ ABSL_GUARDED_BY(mu_);
  std::vector<Worker*> idle_ ABSL_GUARDED_BY(mu_);  // parked workers, most recent last
  Worker* lingering_ ABSL_GUARDED_BY(mu_) = nullptr;  // the one worker filling a batch
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  // Flush() epochs: epoch_counts_[i] = unfinished commands accepted in epoch epoch_base_ + i; the
  // last entry is the current epoch. Flush() opens a new epoch and waits for the older ones.
  std::deque<int64_t> epoch_counts_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_base_ ABSL_GUARDED_BY(mu_) = 0;
  int flush_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  int space_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  absl::CondVar flush_cv_;
  absl::CondVar space_cv_;
  absl::CondVar shutdown_cv_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;     // no more submissions
  bool stop_ ABSL_GUARDED_BY(mu_) = false;       // workers exit
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;  // workers joined
  // Node storage: chunks of slots, recycled through a free list.
  std::vector<std::unique_ptr<Slot[]>> chunks_ ABSL_GUARDED_BY(mu_);
  Slot* free_ ABSL_GUARDED_BY(mu_) = nullptr;
  KeyedExecutorStats stats_ ABSL_GUARDED_BY(mu_);  // counters only; gauges filled in GetStats()
};

// ---------------------------------------------------------------------------------------------
// Implementation.

namespace keyed_executor_internal {
absl::Status StoppedKeyError(uint64_t key, const absl::Status& cause);
absl::Status FullError(int64_t max_pending);
absl::Status ShutDownError();
absl::Status KeyCancelledError(const absl::Status& cause);
absl::Status ShutdownCancelledError();
}  // namespace keyed_executor_internal

template <typename T>
absl::StatusOr<std::unique_ptr<KeyedExecutor<T>>> KeyedExecutor<T>::Create(
    const KeyedExecutorOptions& options, Sink sink, Completion on_complete) {
  if (absl::Status s = ValidateKeyedExecutorOptions(options); !s.ok()) return s;
  if (!sink) return absl::InvalidArgumentError("KeyedExecutor needs a sink");
  std::unique_ptr<KeyedExecutor> executor(
      new KeyedExecutor(options, std::move(sink), std::move(on_complete)));
  for (auto& w : executor->workers_) {
    Worker* raw = w.get();
    KeyedExecutor* self = executor.get();
    w->thread = std::thread([self, raw] { self->WorkerLoop(raw); });
  }
  return executor;
}

template <typename T>
KeyedExecutor<T>::KeyedExecutor(const KeyedExecutorOptions& options, Sink sink,
                                Completion on_complete)
    : options_(options),
      sink_(std::move(sink)),
      on_complete_(std::move(on_complete)),
      space_low_watermark_(options.max_pending - 1 - options.max_pending / 8) {
  for (int i = 0; i < options_.num_workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    workers_.push_back(std::move(w));
  }
  absl::MutexLock lock(&mu_);
  epoch_counts_.push_back(0);
  idle_.reserve(workers_.size());
}

template <typename T>
KeyedExecutor<T>::~KeyedExecutor() {
  Shutdown(KeyedExecutorShutdown::kDrain).IgnoreError();
}

template <typename T>
absl::Status KeyedExecutor<T>::Submit(uint64_t key, T&& command) {
  return SubmitImpl(key, command, /*block=*/true);
}

template <typename T>
absl::Status KeyedExecutor<T>::TrySubmit(uint64_t key, T&& command) {
  return SubmitImpl(key, command, /*block=*/false);
}

template <typename T>
absl::Status KeyedExecutor<T>::SubmitImpl(uint64_t key, T& command, bool block) {
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (closed_) {
      ++stats_.rejected;
      return keyed_executor_internal::ShutDownError();
    }
    if (!stopped_.empty()) {
      auto it = stopped_.find(key);
      if (it != stopped_.end()) {
        ++stats_.rejected;
        return keyed_executor_internal::StoppedKeyError(key, it->second);
      }
    }
    if (pending_ < options_.max_pending) break;
    if (!block) {
      ++stats_.rejected;
      return keyed_executor_internal::FullError(options_.max_pending);
    }
    ++space_waiters_;
    space_cv_.Wait(&mu_);
    --space_waiters_;
  }
  ++epoch_counts_.back();
  Node* node = NewNodeLocked(key, epoch_base_ + epoch_counts_.size() - 1, std::move(command));
  ++pending_;
  ++stats_.submitted;
  KeyState& ks = keys_[key];
  if (ks.tail == nullptr) {
    node->next = node;
    ks.tail = node;
    if (!ks.in_flight) {
      ready_.push_back(key);
      MaybeWakeWorkerLocked();
    }
  } else {
    node->next = ks.tail->next;
    ks.tail->next = node;
    ks.tail = node;
  }
  return absl::OkStatus();
}

template <typename T>
void KeyedExecutor<T>::WorkerLoop(Worker* w) {
  std::vector<uint64_t> keys;
  std::vector<uint64_t> epochs;
  std::vector<T> commands;
  std::vector<CancelledCommand> cancelled;
  keys.reserve(options_.max_batch_size);
  epochs.reserve(options_.max_batch_size);
  commands.reserve(options_.max_batch_size);

  mu_.Lock();
  for (;;) {
    if (stop_) break;
    if (!CanDispatchLocked()) {
      ParkLocked(w);
      continue;
    }
    if (ShouldLingerLocked()) {
      if (lingering_ == nullptr) {
        lingering_ = w;
        w->linger_deadline = absl::Now() + options_.max_batch_delay;
      }
      if (lingering_ != w) {
        ParkLocked(w);  // the lingering worker takes this batch; it wakes us for the next
        continue;
      }
      if (absl::Now() < w->linger_deadline) {
        w->woken = false;
        w->cv.WaitWithDeadline(&mu_, w->linger_deadline);
        continue;
      }
    }
    if (lingering_ == w) lingering_ = nullptr;

    TakeBatchLocked(&keys, &epochs, &commands);
    MaybeWakeWorkerLocked();  // more ready work than this batch took: hand it to an idle worker
    mu_.Unlock();

    const absl::Status status = sink_(w->index, absl::MakeSpan(commands));
    if (on_complete_) {
      for (size_t i = 0; i < commands.size(); ++i) on_complete_(keys[i], commands[i], status);
    }
    commands.clear();  // destroy the commands outside the lock

    mu_.Lock();
    CompleteBatchLocked(keys, epochs, status, &cancelled);
    if (!cancelled.empty()) {
      MaybeWakeWorkerLocked();  // others may run while this worker reports the cancellations
      ReportCancelledLocked(&cancelled, keyed_executor_internal::KeyCancelledError(status));
    }
    keys.clear();
    epochs.clear();
  }
  mu_.Unlock();
}

template <typename T>
void KeyedExecutor<T>::ParkLocked(Worker* w) {
  if (lingering_ == w) lingering_ = nullptr;
  w->woken = false;
  idle_.push_back(w);
  while (!w->woken) w->cv.Wait(&mu_);
}

template <typename T>
void KeyedExecutor<T>::WakeLocked(Worker* w) {
  if (w->woken) return;
  w->woken = true;
  w->cv.Signal();
}

template <typename T>
void KeyedExecutor<T>::MaybeWakeWorkerLocked() {
  if (stop_ || !CanDispatchLocked()) return;
  if (lingering_ != nullptr) {
    // One worker at a time fills a batch; wake it once the batch is full (or must go now).
    if (!ShouldLingerLocked()) WakeLocked(lingering_);
    return;
  }
  if (idle_.empty()) return;
  Worker* w = idle_.back();
  idle_.pop_back();
  WakeLocked(w);
}

template <typename T>
void KeyedExecutor<T>::TakeBatchLocked(std::vector<uint64_t>* keys, std::vector<uint64_t>* epochs,
                                       std::vector<T>* commands) {
  const size_t room = EffectiveBatchLocked();
  while (commands->size() < room && !ready_.empty()) {
    const uint64_t key = ready_.front();
    ready_.pop_front();
    KeyState& ks = keys_.find(key)->second;
    ks.in_flight = true;
    int taken = 0;
    do {
      Node* head = ks.tail->next;
      if (head == ks.tail) {
        ks.tail = nullptr;
      } else {
        ks.tail->next = head->next;
      }
      keys->push_back(key);
      epochs->push_back(head->epoch);
      commands->push_back(std::move(head->command));
      FreeNodeLocked(head);
      ++taken;
    } while (ks.tail != nullptr && taken < options_.max_per_key && commands->size() < room);
  }
  in_flight_ += static_cast<int64_t>(commands->size());
  stats_.max_in_flight_seen = std::max(stats_.max_in_flight_seen, in_flight_);
  ++stats_.batches;
}

template <typename T>
void KeyedExecutor<T>::CompleteBatchLocked(const std::vector<uint64_t>& keys,
                                           const std::vector<uint64_t>& epochs,
                                           const absl::Status& status,
                                           std::vector<CancelledCommand>* cancelled) {
  in_flight_ -= static_cast<int64_t>(keys.size());
  if (!status.ok() && first_error_.ok()) first_error_ = status;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (status.ok()) {
      ++stats_.succeeded;
    } else {
      ++stats_.failed;
    }
    // A key's commands are adjacent in the batch: its state changes once, after its last one.
    if (i + 1 == keys.size() || keys[i + 1] != keys[i]) {
      auto it = keys_.find(keys[i]);
      KeyState& ks = it->second;
      ks.in_flight = false;
      if (status.ok()) {
        if (ks.tail != nullptr) {
          ready_.push_back(keys[i]);
        } else {
          keys_.erase(it);
        }
      } else {
        DetachQueueLocked(&ks, cancelled);
        keys_.erase(it);
        stopped_.insert_or_assign(keys[i], status);
      }
    }
    FinishOneLocked(epochs[i]);
  }
}

template <typename T>
void KeyedExecutor<T>::DetachQueueLocked(KeyState* ks, std::vector<CancelledCommand>* out) {
  if (ks->tail == nullptr) return;
  Node* node = ks->tail->next;  // head
  ks->tail->next = nullptr;     // break the circle
  ks->tail = nullptr;
  while (node != nullptr) {
    Node* next = node->next;
    out->push_back(CancelledCommand{node->key, node->epoch, std::move(node->command)});
    FreeNodeLocked(node);
    node = next;
  }
}

template <typename T>
void KeyedExecutor<T>::ReportCancelledLocked(std::vector<CancelledCommand>* cancelled,
                                             const absl::Status& why) {
  mu_.Unlock();
  if (on_complete_) {
    for (const CancelledCommand& c : *cancelled) on_complete_(c.key, c.command, why);
  }
  std::vector<uint64_t> epochs;
  epochs.reserve(cancelled->size());
  for (const CancelledCommand& c : *cancelled) epochs.push_back(c.epoch);
  cancelled->clear();
  mu_.Lock();
  for (uint64_t epoch : epochs) {
    ++stats_.cancelled;
    FinishOneLocked(epoch);
  }
}

template <typename T>
void KeyedExecutor<T>::FinishOneLocked(uint64_t epoch) {
  --pending_;
  if (--epoch_counts_[epoch - epoch_base_] == 0 && epoch != epoch_base_ + epoch_counts_.size() - 1) {
    AdvanceEpochsLocked();
  }
  if (space_waiters_ > 0 && pending_ <= space_low_watermark_) space_cv_.SignalAll();
}

template <typename T>
void KeyedExecutor<T>::AdvanceEpochsLocked() {
  bool advanced = false;
  while (epoch_counts_.size() > 1 && epoch_counts_.front() == 0) {
    epoch_counts_.pop_front();
    ++epoch_base_;
    advanced = true;
  }
  if (advanced && flush_waiters_ > 0) flush_cv_.SignalAll();
}

template <typename T>
void KeyedExecutor<T>::WaitForAllLocked() {
  const uint64_t mine = epoch_base_ + epoch_counts_.size() - 1;
  epoch_counts_.push_back(0);
  ++flush_waiters_;
  if (lingering_ != nullptr) WakeLocked(lingering_);  // a held-back batch must go now
  AdvanceEpochsLocked();
  while (epoch_base_ <= mine) flush_cv_.Wait(&mu_);
  --flush_waiters_;
}

template <typename T>
absl::Status KeyedExecutor<T>::Flush() {
  absl::MutexLock lock(&mu_);
  WaitForAllLocked();
  absl::Status error = std::move(first_error_);
  first_error_ = absl::OkStatus();
  return error;
}

template <typename T>
absl::Status KeyedExecutor<T>::Shutdown(KeyedExecutorShutdown mode) {
  mu_.Lock();
  if (closed_) {
    while (!shut_down_) shutdown_cv_.Wait(&mu_);
    mu_.Unlock();
    return absl::OkStatus();
  }
  closed_ = true;
  if (space_waiters_ > 0) space_cv_.SignalAll();  // blocked Submit()s now fail
  if (lingering_ != nullptr) WakeLocked(lingering_);
  if (mode == KeyedExecutorShutdown::kCancelPending) {
    std::vector<CancelledCommand> cancelled;
    for (auto it = keys_.begin(); it != keys_.end();) {
      DetachQueueLocked(&it->second, &cancelled);
      if (!it->second.in_flight) {
        keys_.erase(it++);
      } else {
        ++it;
      }
    }
    ready_.clear();
    ReportCancelledLocked(&cancelled, keyed_executor_internal::ShutdownCancelledError());
  }
  WaitForAllLocked();
  stop_ = true;
  for (auto& w : workers_) WakeLocked(w.get());
  idle_.clear();
  mu_.Unlock();

  for (auto& w : workers_) w->thread.join();

  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  shutdown_cv_.SignalAll();
  absl::Status error = std::move(first_error_);
  first_error_ = absl::OkStatus();
  return error;
}

template <typename T>
bool KeyedExecutor<T>::ResumeKey(uint64_t key) {
  absl::MutexLock lock(&mu_);
  return stopped_.erase(key) > 0;
}

template <typename T>
void KeyedExecutor<T>::ResumeAllKeys() {
  absl::MutexLock lock(&mu_);
  stopped_.clear();
}

template <typename T>
bool KeyedExecutor<T>::IsKeyStopped(uint64_t key) const {
  absl::MutexLock lock(&mu_);
  return stopped_.contains(key);
}

template <typename T>
KeyedExecutorStats KeyedExecutor<T>::GetStats() const {
  absl::MutexLock lock(&mu_);
  KeyedExecutorStats stats = stats_;
  stats.pending = pending_;
  stats.in_flight = in_flight_;
  stats.stopped_keys = static_cast<int64_t>(stopped_.size());
  return stats;
}

template <typename T>
typename KeyedExecutor<T>::Node* KeyedExecutor<T>::NewNodeLocked(uint64_t key, uint64_t epoch,
                                                                 T&& command) {
  if (free_ == nullptr) {
    // Chunks are never returned before destruction; max_pending bounds how many there are.
    auto chunk = std::make_unique<Slot[]>(kSlotsPerChunk);
    for (int i = 0; i < kSlotsPerChunk; ++i) {
      chunk[i].next_free = i + 1 < kSlotsPerChunk ? &chunk[i + 1] : nullptr;
    }
    free_ = &chunk[0];
    chunks_.push_back(std::move(chunk));
  }
  Slot* slot = free_;
  free_ = slot->next_free;
  return new (slot->bytes) Node{nullptr, key, epoch, std::move(command)};
}

template <typename T>
void KeyedExecutor<T>::FreeNodeLocked(Node* node) {
  node->~Node();
  Slot* slot = reinterpret_cast<Slot*>(node);
  slot->next_free = free_;
  free_ = slot;
}

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_KEYED_EXECUTOR_H_
