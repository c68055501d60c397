#include "join/event_time_aligner.h"

namespace cdcjoin {

void EventTimeAligner::Add(ChangeEvent event, int64_t now_ms) {
  const int side = event.source == 0 ? 0 : 1;
  PartitionQueues& queues = partitions_[event.position.partition.partition];
  queues.sources[side].push_back(Buffered{std::move(event), now_ms});
  ++buffered_;
}

void EventTimeAligner::Merge(
    PartitionQueues* queues,
    const std::function<bool(int empty_side, const Buffered& head)>& may_go,
    std::vector<ChangeEvent>* out) {
  while (queues->size() > 0) {
    std::deque<Buffered>& first = queues->sources[0];
    std::deque<Buffered>& second = queues->sources[1];
    int side;
    if (!first.empty() && !second.empty()) {
      side = second.front().event.event_time_ms < first.front().event.event_time_ms ? 1 : 0;
    } else {
      side = first.empty() ? 1 : 0;
      if (!may_go(/*empty_side=*/1 - side, queues->sources[side].front())) return;
    }
    out->push_back(std::move(queues->sources[side].front().event));
    queues->sources[side].pop_front();
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
            return q->size() >= options_.max_buffered ||
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
