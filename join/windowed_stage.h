#ifndef CDCJOIN_JOIN_WINDOWED_STAGE_H_
#define CDCJOIN_JOIN_WINDOWED_STAGE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "join/change_event.h"
#include "join/event_time_aligner.h"
#include "join/row_command.h"
#include "join/table_schema.h"
#include "join/window_store.h"
#include "join/windowed_joiner.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

// WINDOWED mode as the pipeline drives it: events pass the event-time aligner into the windowed
// joiner, and the sink's acknowledgements, which arrive on lane threads, reach the joiner on the
// owner's thread.
//
//   stage->Add(std::move(event), now);                      // each decoded event
//   stage->Release(now, caught_up, &absorbed, &commands);   // per poll batch
//   ... commands to the sink; absorbed positions are now carried by the state ...
//   stage->Applied(commands);                               // lane threads, once applied
//   stage->DeliverAcknowledgements();                       // owner thread, regularly
//
// Every call but Applied() is for the owner's thread. An error from the joiner (its store failed)
// leaves the stage unusable: the owner stops consuming and commits nothing past it.
class WindowedStage {
 public:
  // REQUIRES: `store` outlives the stage.
  static absl::StatusOr<std::unique_ptr<WindowedStage>> Open(const TableSchema& schema,
                                                             const v1::WindowConfig& config,
                                                             WindowStore* store);

  // Commands of windows emitted before a crash and never applied, to send before anything else;
  // with `flush_open`, the windows still open as well (the process starts in another mode, and
  // nothing a windowed run held may be lost).
  absl::StatusOr<std::vector<RowCommand>> Recover(bool flush_open);

  // Per partition, the next offset the state has absorbed up to: where consumers resume.
  std::map<SourcePartition, int64_t> StoredOffsets() const;
  // Per partition, the lowest offset whose effect only the state holds (an open or unapplied
  // window): Kafka commits must stay below it. Events added but not yet released are the
  // caller's to hold back (their positions never came out in `absorbed`).
  std::map<SourcePartition, int64_t> LowestHeldOffsets() const;

  void Add(ChangeEvent event, int64_t now_ms);

  // Hands the joiner what the aligner lets go. `absorbed` gets their positions (the state now
  // carries them); `out` the commands of windows that closed.
  absl::Status Release(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up,
                       std::vector<EventPosition>* absorbed, std::vector<RowCommand>* out);
  // Release, then the idle flush of quiet partitions.
  absl::Status Advance(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up,
                       std::vector<EventPosition>* absorbed, std::vector<RowCommand>* out);
  // Everything, now (mode switch, revocation, shutdown).
  absl::Status Flush(int64_t now_ms, std::vector<EventPosition>* absorbed,
                     std::vector<RowCommand>* out);

  // The partitions went to another member unapplied (WindowedJoiner::Forget).
  absl::Status Forget(const std::set<SourcePartition>& partitions) {
    return joiner_->Forget(partitions);
  }

  // Thread-safe: the sink applied these commands.
  void Applied(absl::Span<const RowCommand> commands);
  // Hands what was applied to the joiner, which then forgets those windows.
  absl::Status DeliverAcknowledgements();

  WindowedJoiner::Stats stats() const { return joiner_->stats(); }

 private:
  WindowedStage(std::unique_ptr<WindowedJoiner> joiner, EventTimeAligner::Options aligner);
  absl::Status Absorb(std::vector<ChangeEvent> events, int64_t now_ms,
                      std::vector<EventPosition>* absorbed, std::vector<RowCommand>* out);

  std::unique_ptr<WindowedJoiner> joiner_;
  EventTimeAligner aligner_;

  absl::Mutex applied_mu_;
  std::vector<EventPosition> applied_ ABSL_GUARDED_BY(applied_mu_);
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_WINDOWED_STAGE_H_
