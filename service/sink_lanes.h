#ifndef CDCJOIN_SERVICE_SINK_LANES_H_
#define CDCJOIN_SERVICE_SINK_LANES_H_

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "join/row_command.h"
#include "join/row_writer.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/stats.h"

namespace cdcjoin {

struct SinkLanesOptions {
  // Writer lanes, each with its own connection. Default: 4.
  int lanes = 4;
  // Commands per Apply call (one transaction). Default: 500.
  int batch_rows = 500;
  // A batch takes a key's queued commands together (in order, up to batch_rows), so the writer
  // reduces a hot key's run to one statement row (join/command_algebra.h) instead of spending a
  // transaction per command. false: at most one command per key per batch. Default: true.
  bool coalesce_keys = true;
  // How long a lane waits for a batch to fill before writing what it has. Default: 5 ms.
  absl::Duration linger = absl::Milliseconds(5);
  // Commands queued per lane (so lanes × this in all) before TryEnqueue fails. Default: 20000.
  int queue_capacity = 20000;
  // Attempts of one batch before the lane reports it holds. Default: 8.
  int max_attempts = 8;
  // Exponential backoff with jitter between attempts. Defaults: 20 ms, 2 s.
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(2);
  // A lane with work that applied nothing for this long counts as stalled (Degraded()).
  // Default: 10 s.
  absl::Duration stall_after = absl::Seconds(10);

  static SinkLanesOptions FromConfig(const v1::SinkConfig& sink);
};

// The state of one lane, for status and health.
struct LaneStatus {
  int64_t queued = 0;    // Commands in the batch the lane is applying now.
  // Retries exhausted, or an error retrying cannot fix (a missing column): the lane keeps
  // retrying slowly until someone fixes the database.
  bool holding = false;
  // Has work and applied nothing for SinkLanesOptions::stall_after (a frozen database answers
  // nothing, so there may be no error at all): how long. Zero when not stalled.
  absl::Duration stalled_for;
  int attempts = 0;      // Failed attempts of the current batch.
  std::string last_error;
  // While holding: the first event of the command that fails (alone, when the error is
  // permanent), for SinkLanes::RejectHeld.
  std::optional<EventPosition> held_on;
};

// Applies row commands through N lanes built on the keyed ordered executor (join/keyed_executor):
// per key, a command starts only after the previous ones of that key are applied, so commands of
// one key apply in the order they were enqueued and no two lanes ever write the same key at the
// same time (the service cannot deadlock with itself); different keys are spread over the lanes
// as they free up. A lane applies a batch in one RowWriter call (one transaction of multi-row
// statements): with coalesce_keys, the commands a key has queued go into the batch together, in
// order, and the writer reduces them by the command algebra to one row (two for a delete
// followed by an upsert); otherwise a batch holds distinct keys. It retries failures with
// backoff, and only then reports the batch as applied, so no command's covers are acknowledged
// before it took effect. A command the database refuses for its own data (a row error,
// storage/retry_classifier.h) is found by applying ever shorter prefixes of the batch: the
// commands before it are applied, it is handed to the rejection callback (which dead-letters its
// events), and the rest goes on. Nothing else is ever dropped: a batch that keeps failing holds
// its lane until it succeeds, the operator takes the command out (RejectHeld), or the lanes are
// stopped; the queue filling up pauses consumption upstream.
class SinkLanes {
 public:
  using WriterFactory = std::function<absl::StatusOr<std::unique_ptr<RowWriter>>()>;
  // Called on the lane's thread after a batch took effect.
  using AppliedCallback = std::function<void(absl::Span<const RowCommand>)>;
  // Called on the lane's thread for a command that is not applied and never will be: `why` is
  // the database's row error or the operator's reason. Its events are the callee's to account
  // for (dead-letter them); the lanes neither apply nor acknowledge them.
  using RejectedCallback = std::function<void(RowCommand command, const absl::Status& why)>;

  // Starts the lanes; each connects through `connect` when it first has work (retrying, like a
  // batch).
  static absl::StatusOr<std::unique_ptr<SinkLanes>> Start(const SinkLanesOptions& options,
                                                          WriterFactory connect,
                                                          AppliedCallback on_applied,
                                                          RejectedCallback on_rejected,
                                                          PipelineStats* stats);
  ~SinkLanes();  // Stops: see Stop().

  // Queues the command; false (command untouched) when the lanes are full.
  bool TryEnqueue(RowCommand& command);
  // Blocks until a batch completes (room may have freed) or `timeout` passes.
  void WaitForRoom(absl::Duration timeout);
  // Returns true once everything enqueued so far is applied; false on timeout.
  bool Drain(absl::Duration timeout);
  // From now on, commands that carry only events of `partitions` are dropped unapplied and
  // unacknowledged wherever they wait or retry (the partitions were revoked: their new owner
  // applies those events again). A statement already running is not recalled
  // (AwaitWritesInFlight waits for it). Admit lifts it when the partitions come back.
  void Fence(const std::set<SourcePartition>& partitions);
  void Admit(const std::vector<SourcePartition>& partitions);
  // Waits until every write that was at the database when called has returned, so a fence
  // holds for what the lanes were writing too; false when `timeout` passed first.
  bool AwaitWritesInFlight(absl::Duration timeout);
  // The operator's way out of a batch nobody's classifier lets go: when a holding lane's batch
  // has a command that carries the event at `position`, that command is taken out before the
  // lane's next attempt and handed to the rejection callback with `why`. False when no holding
  // lane carries that event.
  bool RejectHeld(const EventPosition& position, const absl::Status& why);
  // Stops the lanes after their current attempt. Queued commands are discarded unapplied (they
  // were never acknowledged, so Kafka redelivers them).
  void Stop();

  std::vector<LaneStatus> Status() const;
  // True when any lane holds a failing batch or is stalled.
  bool Degraded() const;
  // Commands accepted and not yet applied, and how many may be.
  int64_t Queued() const;
  int64_t Capacity() const;

  SinkLanes(const SinkLanes&) = delete;
  SinkLanes& operator=(const SinkLanes&) = delete;

 private:
  class Impl;
  explicit SinkLanes(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_SINK_LANES_H_
