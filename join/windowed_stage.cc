#include "join/windowed_stage.h"

namespace cdcjoin {

absl::StatusOr<std::unique_ptr<WindowedStage>> WindowedStage::Open(
    const TableSchema& schema, const v1::WindowConfig& config, WindowStore* store) {
  absl::StatusOr<std::unique_ptr<WindowedJoiner>> joiner =
      WindowedJoiner::Open(schema, WindowedJoinerOptions::FromConfig(config), store);
  if (!joiner.ok()) return joiner.status();
  EventTimeAligner::Options aligner;
  // An event waits for the other source at most as long as an idle window waits to be written.
  aligner.max_wait_ms = config.idle_flush_ms();
  aligner.sources = static_cast<int>(schema.sources.size());
  return std::unique_ptr<WindowedStage>(new WindowedStage(*std::move(joiner), aligner));
}

WindowedStage::WindowedStage(std::unique_ptr<WindowedJoiner> joiner,
                             EventTimeAligner::Options aligner)
    : joiner_(std::move(joiner)), aligner_(aligner) {}

absl::StatusOr<std::vector<RowCommand>> WindowedStage::Recover(bool flush_open) {
  std::vector<RowCommand> commands = joiner_->PendingCommands();
  if (flush_open) {
    if (absl::Status s = joiner_->Drain(&commands); !s.ok()) return s;
  }
  return commands;
}

std::map<SourcePartition, int64_t> WindowedStage::StoredOffsets() const {
  return joiner_->StoredOffsets();
}

std::map<SourcePartition, int64_t> WindowedStage::LowestHeldOffsets() const {
  return joiner_->LowestHeldOffsets();
}

void WindowedStage::Add(ChangeEvent event, int64_t now_ms) { aligner_.Add(std::move(event), now_ms); }

absl::Status WindowedStage::Absorb(std::vector<ChangeEvent> events, int64_t now_ms,
                                   std::vector<EventPosition>* absorbed,
                                   std::vector<RowCommand>* out) {
  if (events.empty()) return absl::OkStatus();
  if (absl::Status s = joiner_->Process(events, now_ms, out); !s.ok()) return s;
  for (const ChangeEvent& event : events) absorbed->push_back(event.position);
  return absl::OkStatus();
}

absl::Status WindowedStage::Release(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up,
                                    std::vector<EventPosition>* absorbed,
                                    std::vector<RowCommand>* out) {
  std::vector<ChangeEvent> ready;
  aligner_.Release(now_ms, caught_up, &ready);
  return Absorb(std::move(ready), now_ms, absorbed, out);
}

absl::Status WindowedStage::Advance(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up,
                                    std::vector<EventPosition>* absorbed,
                                    std::vector<RowCommand>* out) {
  if (absl::Status s = Release(now_ms, caught_up, absorbed, out); !s.ok()) return s;
  return joiner_->Advance(now_ms, out);
}

absl::Status WindowedStage::Flush(int64_t now_ms, std::vector<EventPosition>* absorbed,
                                  std::vector<RowCommand>* out) {
  std::vector<ChangeEvent> waiting;
  aligner_.ReleaseAll(&waiting);
  if (absl::Status s = Absorb(std::move(waiting), now_ms, absorbed, out); !s.ok()) return s;
  return joiner_->Drain(out);
}

void WindowedStage::Applied(absl::Span<const RowCommand> commands) {
  absl::MutexLock lock(&applied_mu_);
  for (const RowCommand& command : commands) {
    applied_.insert(applied_.end(), command.covers.begin(), command.covers.end());
  }
}

absl::Status WindowedStage::DeliverAcknowledgements() {
  std::vector<EventPosition> applied;
  {
    absl::MutexLock lock(&applied_mu_);
    applied.swap(applied_);
  }
  if (applied.empty()) return absl::OkStatus();
  return joiner_->Acknowledge(applied);
}

}  // namespace cdcjoin
