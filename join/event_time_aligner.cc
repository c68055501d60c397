#include "join/event_time_aligner.h"

#include <algorithm>

namespace cdcjoin {

void EventTimeAligner::Add(ChangeEvent event, int64_t now_ms) {
  PartitionQueues& queues = partitions_[event.position.partition.partition];
  if (queues.sources.empty()) queues.sources.resize(static_cast<size_t>(options_.sources));
  const size_t side = std::min(static_cast<size_t>(std::max(event.source, 0)),
                               queues.sources.size() - 1);
  queues.sources[side].push_back(Buffered{std::move(event), now_ms});
  ++queues.buffered;
  ++buffered_;
}

void EventTimeAligner::Merge(
    PartitionQueues* queues,
    const std::function<bool(int empty_side, const Buffered& head)>& may_go,
    std::vector<ChangeEvent>* out) {
  std::vector<std::deque<Buffered>>& sources = queues->sources;
  while (queues->buffered > 0) {
    // The earliest head goes first (ties: the lower source)...
    size_t side = sources.size();
    for (size_t s = 0; s < sources.size(); ++s) {
      if (!sources[s].empty() &&
          (side == sources.size() ||
           sources[s].front().event.event_time_ms < sources[side].front().event.event_time_ms)) {
        side = s;
      }
    }
    // ...unless a source with nothing buffered may still send an earlier event.
    for (size_t s = 0; s < sources.size(); ++s) {
      if (sources[s].empty() && !may_go(static_cast<int>(s), sources[side].front())) return;
    }
    out->push_back(std::move(sources[side].front().event));
    sources[side].pop_front();
    --queues->buffered;
    --buffered_;
  }
}

void EventTimeAligner::Release(int64_t now_ms, const CaughtUp& caught_up,
                               std::vector<ChangeEvent>* out) {
  for (auto& [partition, queues] : partitions_) {
    const int32_t number = partition;
    PartitionQueues* const q = &queues;
    Merge(q,
          [&](int empty_side, const Buffered& head) {
            return q->buffered >= options_.max_buffered ||
                   now_ms - head.added_ms >= options_.max_wait_ms ||
                   caught_up(SourcePartition{empty_side, number});
          },
          out);
  }
}

void EventTimeAligner::ReleaseAll(std::vector<ChangeEvent>* out) {
  for (auto& [partition, queues] : partitions_) {
    Merge(&queues, [](int, const Buffered&) { return true; }, out);
  }
}

}  // namespace cdcjoin
