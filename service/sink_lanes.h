#ifndef CDCJOIN_SERVICE_SINK_LANES_H_
#define CDCJOIN_SERVICE_SINK_LANES_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "join/row_command.h"
#include "join/row_writer.h"
#include "service/stats.h"

namespace cdcjoin {

struct SinkLanesOptions {
  // Writer lanes, each with its own connection. Default: 4.
  int lanes = 4;
  // Commands per Apply call (one transaction). Default: 500.
  int batch_rows = 500;
  // How long a lane waits for a batch to fill before writing what it has. Default: 5 ms.
  absl::Duration linger = absl::Milliseconds(5);
  // Commands queued per lane; a full lane makes TryEnqueue fail. Default: 20000.
  int queue_capacity = 20000;
  // Attempts of one batch before the lane reports it holds. Default: 8.
  int max_attempts = 8;
  // Exponential backoff with full jitter between attempts. Defaults: 20 ms, 2 s.
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(2);
};

// The state of one lane, for status and health.
struct LaneStatus {
  int64_t queued = 0;
  bool holding = false;  // Retries exhausted: the lane keeps retrying slowly and takes no more.
  int attempts = 0;      // Failed attempts of the current batch.
  std::string last_error;
};

// Applies row commands through N lanes. A key always goes to lane StableKeyHash(key) % N, so no
// two lanes ever write the same key: per key, commands apply in the order they were enqueued,
// and the service cannot deadlock with itself. A lane batches what it has queued, applies it in
// one RowWriter call, retries failures with backoff, and only then reports the batch as applied.
// Nothing is ever dropped: a batch that keeps failing holds its lane (which fills up and so
// pauses consumption upstream) until it succeeds or the lanes are stopped.
class SinkLanes {
 public:
  using WriterFactory = std::function<absl::StatusOr<std::unique_ptr<RowWriter>>()>;
  // Called on the lane's thread after a batch took effect.
  using AppliedCallback = std::function<void(const std::vector<RowCommand>&)>;

  // Starts the lane threads; each connects through `connect` (retrying, like a batch).
  static std::unique_ptr<SinkLanes> Start(const SinkLanesOptions& options, WriterFactory connect,
                                          AppliedCallback on_applied, PipelineStats* stats);
  ~SinkLanes();  // Stops: see Stop().

  // Moves the command into its lane's queue; false (command untouched) when that lane is full.
  bool TryEnqueue(RowCommand& command);
  // Blocks until a lane has room or `timeout` passes.
  void WaitForRoom(absl::Duration timeout);
  // Returns true once everything enqueued so far is applied; false on timeout.
  bool Drain(absl::Duration timeout);
  // Stops the lanes after their current attempt. Queued commands are discarded unapplied (they
  // were never acknowledged, so Kafka redelivers them).
  void Stop();

  std::vector<LaneStatus> Status() const;
  // Commands queued or in flight in the fullest lane.
  int64_t MaxQueued() const;
  // True when any lane holds a failing batch.
  bool Degraded() const;

  SinkLanes(const SinkLanes&) = delete;
  SinkLanes& operator=(const SinkLanes&) = delete;

 private:
  class Lane;
  explicit SinkLanes(const SinkLanesOptions& options);
  // Lanes signal after taking a batch; the poll thread waits here for room. Waits use a
  // timeout, so a signal that races a wait costs at most that. Declared before lanes_, which
  // point at them.
  absl::Mutex room_mu_;
  absl::CondVar room_cv_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_SINK_LANES_H_
