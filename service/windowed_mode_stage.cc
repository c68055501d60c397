#include "service/windowed_mode_stage.h"

#include <set>

#include "absl/time/clock.h"
#include "service/logging.h"
#include "storage/rocksdb_window_store.h"

namespace cdcjoin {
namespace {

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

absl::StatusOr<WindowState> OpenWindowState(const v1::WindowConfig& config,
                                            const TableSchema& schema) {
  WindowState state;
  if (config.state_dir().empty()) return state;
  absl::StatusOr<std::unique_ptr<RocksDbWindowStore>> store =
      RocksDbWindowStore::Open(config.state_dir(), RocksDbWindowStoreOptions::FromConfig(config));
  if (!store.ok()) return store.status();
  state.store = *std::move(store);
  absl::StatusOr<std::unique_ptr<WindowedStage>> stage =
      WindowedStage::Open(schema, config, state.store.get());
  if (!stage.ok()) return stage.status();
  state.stage = *std::move(stage);
  return state;
}

void WindowedModeStage::OnAssigned(std::vector<AssignedPartition>& partitions) {
  const std::map<SourcePartition, int64_t> stored = context_.window_state->StoredOffsets();
  for (AssignedPartition& partition : partitions) {
    auto it = stored.find(partition.partition);
    if (it != stored.end() && it->second > partition.start) partition.start = it->second;
  }
}

absl::Status WindowedModeStage::OnEvents(std::vector<ChangeEvent> events,
                                         const EventTimeAligner::CaughtUp& caught_up) {
  const int64_t now = NowMillis();
  for (ChangeEvent& event : events) {
    CountIfIgnoredByPolicy(context_, event);
    context_.window_state->Add(std::move(event), now);
  }
  std::vector<EventPosition> absorbed;
  std::vector<RowCommand> emitted;
  return TakeOutput(context_.window_state->Release(now, caught_up, &absorbed, &emitted), absorbed,
                    emitted);
}

absl::Status WindowedModeStage::Advance(int64_t now_ms,
                                        const EventTimeAligner::CaughtUp& caught_up) {
  std::vector<EventPosition> absorbed;
  std::vector<RowCommand> emitted;
  return TakeOutput(context_.window_state->Advance(now_ms, caught_up, &absorbed, &emitted),
                    absorbed, emitted);
}

void WindowedModeStage::OnRevoked(const std::vector<SourcePartition>& partitions,
                                  absl::Time deadline) {
  // A key's window holds the events of both sources, and Debezium keys the two topics
  // differently, so its sides sit on unrelated partition numbers: a window with an event of a
  // revoked partition can be filed under a kept one. Every window closes, so nothing of the
  // revoked partitions stays behind to be written after they are gone (OUTER writes the same
  // rows either way; INNER and LEFT run alone in their group, where a revocation takes all).
  CloseAllWindows();
  if (!ApplyOrDropRevoked(context_, partitions, deadline)) Forget(partitions);
}

void WindowedModeStage::OnLost(const std::vector<SourcePartition>& partitions) {
  // Fenced first: the windows that also carry kept partitions' events are applied, what carries
  // only the lost partitions' is dropped, and the new owner applies it.
  context_.feed->Drop(std::set<SourcePartition>(partitions.begin(), partitions.end()));
  CloseAllWindows();
  Forget(partitions);
}

void WindowedModeStage::CloseAllWindows() {
  std::vector<EventPosition> absorbed;
  std::vector<RowCommand> emitted;
  // A failed flush leaves the windows in the state; the group's offsets never passed them.
  TakeOutput(context_.window_state->Flush(NowMillis(), &absorbed, &emitted), absorbed, emitted)
      .IgnoreError();
}

void WindowedModeStage::Forget(const std::vector<SourcePartition>& partitions) {
  // Left in the state, the dropped windows would hold the partitions' commits forever and, on
  // their return, move consumption past events nobody applied.
  if (absl::Status s = context_.window_state->Forget(
          std::set<SourcePartition>(partitions.begin(), partitions.end()));
      !s.ok()) {
    LogError("window state: forgetting the partitions another member took failed: ", s.message());
  }
}

absl::Status WindowedModeStage::Drain(absl::Time deadline) {
  std::vector<EventPosition> absorbed;
  std::vector<RowCommand> emitted;
  if (absl::Status s = TakeOutput(context_.window_state->Flush(NowMillis(), &absorbed, &emitted),
                                  absorbed, emitted);
      !s.ok()) {
    return s;
  }
  return DrainFeed(context_, deadline);
}

std::map<SourcePartition, int64_t> WindowedModeStage::DurableOffsets() const {
  return DurableTrackedOffsets(context_);
}

absl::Status WindowedModeStage::TakeOutput(const absl::Status& status,
                                           const std::vector<EventPosition>& absorbed,
                                           std::vector<RowCommand>& emitted) {
  if (!status.ok()) return status;
  context_.tracker->Done(absorbed);
  context_.feed->Push(emitted);
  return absl::OkStatus();
}

}  // namespace cdcjoin
