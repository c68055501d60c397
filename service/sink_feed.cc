#include "service/sink_feed.h"

#include <algorithm>

namespace cdcjoin {

void SinkFeed::Push(RowCommand command) {
  stats_->commands.fetch_add(1, std::memory_order_relaxed);
  if (waiting_.empty() && lanes_->TryEnqueue(command)) return;
  waiting_.push_back(std::move(command));
}

void SinkFeed::Push(std::vector<RowCommand>& commands) {
  for (RowCommand& command : commands) Push(std::move(command));
  commands.clear();
}

void SinkFeed::Pump() {
  while (!waiting_.empty() && lanes_->TryEnqueue(waiting_.front())) waiting_.pop_front();
}

bool SinkFeed::HasRoom() {
  Pump();
  if (!waiting_.empty()) {
    full_ = true;
    return false;
  }
  if (full_ && lanes_->Queued() > lanes_->Capacity() / 2) return false;
  full_ = false;
  return true;
}

bool SinkFeed::Drain(absl::Time deadline) {
  while (true) {
    Pump();
    if (waiting_.empty()) break;
    if (absl::Now() >= deadline) return false;
    lanes_->WaitForRoom(std::min(absl::Milliseconds(50), deadline - absl::Now()));
  }
  return lanes_->Drain(std::max(absl::ZeroDuration(), deadline - absl::Now()));
}

void SinkFeed::Drop(const std::set<SourcePartition>& partitions) {
  auto only_dropped = [&](const RowCommand& command) {
    return std::all_of(command.covers.begin(), command.covers.end(),
                       [&](const EventPosition& p) { return partitions.count(p.partition) > 0; });
  };
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), only_dropped), waiting_.end());
  lanes_->Fence(partitions);
}

}  // namespace cdcjoin
