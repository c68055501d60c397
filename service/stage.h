#ifndef CDCJOIN_SERVICE_STAGE_H_
#define CDCJOIN_SERVICE_STAGE_H_

// A Stage turns decoded change events into row commands for the sink: DB_UPSERT
// (service/db_upsert_stage.h) or WINDOWED (service/windowed_mode_stage.h). It sees events and the
// partition lifecycle, never the consumer; the pipeline runs exactly one at a time and replaces it
// at a drained barrier when the mode switches.
//
//   std::unique_ptr<Stage> stage = *MakeStage(mode, context);
//   stage->OnEvents(events, caught_up);          // each poll batch, in consumption order
//   stage->Advance(now_ms, caught_up);           // regularly: idle windows
//   source->Commit(stage->DurableOffsets());
//   stage->Drain(deadline);                      // before a switch or a stop
//
// Every call is for the polling thread. An error means the stage cannot go on (its state store
// failed): the pipeline holds and commits nothing past it.

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "join/change_event.h"
#include "join/event_time_aligner.h"
#include "join/offset_tracker.h"
#include "join/table_schema.h"
#include "join/windowed_stage.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/record_source.h"
#include "service/sink_feed.h"
#include "service/stats.h"

namespace cdcjoin {

// What every stage works with; all of it outlives the stages and is shared across switches.
struct StageContext {
  const TableSchema* schema = nullptr;
  // Events are tracked by the pipeline; stages mark them done once their effect is durable
  // (applied by the sink, or carried by the window state).
  OffsetTracker* tracker = nullptr;
  SinkFeed* feed = nullptr;
  // The windowed joiner's state; null when no window.state_dir is configured.
  WindowedStage* window_state = nullptr;
  PipelineStats* stats = nullptr;
};

class Stage {
 public:
  virtual ~Stage() = default;

  virtual v1::JoinMode mode() const = 0;

  // Before the first event: hands the sink what the window state emitted and never got applied
  // (in another mode than WINDOWED, its open windows too, so nothing a windowed run held is lost).
  virtual absl::Status Start() = 0;

  // May move a partition's start forward (to where its state already carries it).
  virtual void OnAssigned(std::vector<AssignedPartition>& partitions) = 0;
  virtual absl::Status OnEvents(std::vector<ChangeEvent> events,
                                const EventTimeAligner::CaughtUp& caught_up) = 0;
  // Periodic work that does not wait for events (idle windows).
  virtual absl::Status Advance(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up) = 0;
  // Applies what is held of `partitions` by `deadline`; what did not make it is dropped
  // unapplied. Nothing of them is written by this stage afterwards.
  virtual void OnRevoked(const std::vector<SourcePartition>& partitions, absl::Time deadline) = 0;
  // Drops what is held of `partitions`, unapplied.
  virtual void OnLost(const std::vector<SourcePartition>& partitions) = 0;
  // Applies everything held (open windows too) by `deadline`; Unavailable when it did not
  // finish.
  virtual absl::Status Drain(absl::Time deadline) = 0;
  // Per partition, the offset below which every event's effect is durable: what may be committed.
  virtual std::map<SourcePartition, int64_t> DurableOffsets() const = 0;
};

// The windowed joiner's state in RocksDB, opened whenever window.state_dir is set, in either
// mode: a switch to WINDOWED then needs nothing new, and what a windowed run left behind is
// never ignored.
struct WindowState {
  std::unique_ptr<WindowStore> store;
  std::unique_ptr<WindowedStage> stage;  // Over `store`.
};
// An empty WindowState when no state_dir is configured.
absl::StatusOr<WindowState> OpenWindowState(const v1::WindowConfig& config,
                                            const TableSchema& schema);

// The stage of `mode`. FailedPrecondition for WINDOWED without window state.
absl::StatusOr<std::unique_ptr<Stage>> MakeStage(v1::JoinMode mode, const StageContext& context);

// For the implementations: what both stages do with the sink.
//
// A revocation's share of the sink: apply what the feed holds by `deadline`, or drop what is
// still waiting of `partitions` (then false).
bool ApplyOrDropRevoked(const StageContext& context,
                        const std::vector<SourcePartition>& partitions, absl::Time deadline);
// What the window state (if any) emitted and never got applied, and with `flush_open` its open
// windows, to the sink.
absl::Status ResendWindowState(const StageContext& context, bool flush_open);
// Counts an event that its source's delete policy (IGNORE) turns into nothing.
void CountIfIgnoredByPolicy(const StageContext& context, const ChangeEvent& event);
// Everything held, applied by `deadline`.
absl::Status DrainFeed(const StageContext& context, absl::Time deadline);
// Per tracked partition, the offset below which every event took effect, kept below whatever
// the window state still holds (its events are not applied yet, in any mode).
std::map<SourcePartition, int64_t> DurableTrackedOffsets(const StageContext& context);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_STAGE_H_
