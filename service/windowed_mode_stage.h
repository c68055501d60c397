#ifndef CDCJOIN_SERVICE_WINDOWED_MODE_STAGE_H_
#define CDCJOIN_SERVICE_WINDOWED_MODE_STAGE_H_

#include "service/stage.h"

namespace cdcjoin {

// WINDOWED: events meet in the windowed joiner (join/windowed_stage.h), whose RocksDB state
// carries them, with their offsets, until their window closes and its merged command is applied.
// Kafka commits stay below every event the state still holds, so an instance that takes over
// without this state reads them again.
class WindowedModeStage final : public Stage {
 public:
  // REQUIRES: context.window_state is not null.
  explicit WindowedModeStage(StageContext context) : context_(context) {}

  v1::JoinMode mode() const override { return v1::WINDOWED; }
  absl::Status Start() override { return ResendWindowState(context_, /*flush_open=*/false); }
  // The state's offsets were written atomically with the state: they, not the group's (which
  // lag behind what the state holds), say where to go on, unless the group's are newer because
  // a DB_UPSERT run came after the state was last written.
  void OnAssigned(std::vector<AssignedPartition>& partitions) override;
  absl::Status OnEvents(std::vector<ChangeEvent> events,
                        const EventTimeAligner::CaughtUp& caught_up) override;
  absl::Status Advance(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up) override;
  void OnRevoked(const std::vector<SourcePartition>& partitions, absl::Time deadline) override;
  // The partitions' windows stay in the state: the new owner replays their events from the
  // group's offsets, which never passed them.
  void OnLost(const std::vector<SourcePartition>& partitions) override;
  absl::Status Drain(absl::Time deadline) override;
  std::map<SourcePartition, int64_t> DurableOffsets() const override;

 private:
  // Flushes every open window (and what the aligner holds) to the sink.
  void CloseAllWindows();
  // WindowedStage::Forget, logged when it fails (the state is broken then, and holds the stage).
  void Forget(const std::vector<SourcePartition>& partitions);
  // What the joiner absorbed is carried by its state, so those events are done; what it emitted
  // goes to the sink.
  absl::Status TakeOutput(const absl::Status& status, const std::vector<EventPosition>& absorbed,
                          std::vector<RowCommand>& emitted);

  const StageContext context_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_WINDOWED_MODE_STAGE_H_
