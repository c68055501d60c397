#include "join/offset_tracker.h"

#include <algorithm>

namespace cdcjoin {

void OffsetTracker::Track(const EventPosition& position) {
  absl::MutexLock lock(&mu_);
  PartitionState& state = partitions_[position.partition];
  state.in_flight.push_back(Entry{position.offset, false});
  state.consumed = position.offset;
  ++state.pending;
}

void OffsetTracker::Advance(PartitionState* state) {
  while (!state->in_flight.empty() && state->in_flight.front().done) {
    state->next_offset = state->in_flight.front().offset + 1;
    state->in_flight.pop_front();
  }
}

void OffsetTracker::Done(const EventPosition& position) {
  absl::MutexLock lock(&mu_);
  auto it = partitions_.find(position.partition);
  if (it == partitions_.end()) return;
  PartitionState& state = it->second;
  auto entry = std::lower_bound(
      state.in_flight.begin(), state.in_flight.end(), position.offset,
      [](const Entry& e, int64_t offset) { return e.offset < offset; });
  if (entry == state.in_flight.end() || entry->offset != position.offset || entry->done) return;
  entry->done = true;
  --state.pending;
  Advance(&state);
}

void OffsetTracker::Done(const std::vector<EventPosition>& positions) {
  for (const EventPosition& position : positions) Done(position);
}

void OffsetTracker::Reset(const SourcePartition& partition, int64_t next_offset) {
  absl::MutexLock lock(&mu_);
  PartitionState& state = partitions_[partition];
  state = PartitionState();
  state.next_offset = next_offset;
}

void OffsetTracker::Remove(const SourcePartition& partition) {
  absl::MutexLock lock(&mu_);
  partitions_.erase(partition);
}

std::vector<OffsetTracker::PartitionProgress> OffsetTracker::Progress() const {
  absl::MutexLock lock(&mu_);
  std::vector<PartitionProgress> progress;
  progress.reserve(partitions_.size());
  for (const auto& [partition, state] : partitions_) {
    progress.push_back(PartitionProgress{partition, state.next_offset, state.consumed,
                                         state.pending});
  }
  return progress;
}

int64_t OffsetTracker::TotalPending() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [partition, state] : partitions_) total += state.pending;
  return total;
}

}  // namespace cdcjoin
