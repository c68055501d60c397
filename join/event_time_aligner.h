#ifndef CDCJOIN_JOIN_EVENT_TIME_ALIGNER_H_
#define CDCJOIN_JOIN_EVENT_TIME_ALIGNER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "join/change_event.h"

namespace cdcjoin {

// Feeds the windowed joiner both sources of a partition in event-time order, as Kafka Streams
// does with its per-task record queues (max.task.idle.ms): the consumer fetches each topic at its
// own pace, so without this one source's partition can run far ahead of the other's and every
// record of the slower one looks late.
//
//   aligner.Add(std::move(event), now_ms);                     // in consumption order
//   aligner.Release(now_ms, caught_up, &ready);                // event-time order per partition
//
// Per partition number, the buffered event with the smallest event time goes first (ties: the
// lower source). While a source has nothing buffered, the others' events wait for it unless that
// source is caught up (nothing more to fetch), the oldest waiting event waited max_wait_ms, or the
// partition holds max_buffered events. Each source's own order is never changed, so per-key order
// within a source holds.
class EventTimeAligner {
 public:
  struct Options {
    // How long (processing time) an event waits for the other source. Default: 1000.
    int64_t max_wait_ms = 1000;
    // Events buffered per partition number before they go regardless. Default: 20000.
    size_t max_buffered = 20000;
    // How many sources feed it (ChangeEvent::source in [0, sources)). Default: 2.
    int sources = 2;
  };

  // Whether a source's partition has nothing left to fetch right now.
  using CaughtUp = std::function<bool(const SourcePartition&)>;

  explicit EventTimeAligner(Options options) : options_(options) {}

  void Add(ChangeEvent event, int64_t now_ms);
  void Release(int64_t now_ms, const CaughtUp& caught_up, std::vector<ChangeEvent>* out);
  // Everything buffered, in the same merge order, without waiting.
  void ReleaseAll(std::vector<ChangeEvent>* out);

  size_t buffered() const { return buffered_; }

 private:
  struct Buffered {
    ChangeEvent event;
    int64_t added_ms;
  };
  struct PartitionQueues {
    std::vector<std::deque<Buffered>> sources;  // By source.
    size_t buffered = 0;
  };

  // Moves events out of `queues` in merge order while `may_go(each empty side)` allows.
  void Merge(PartitionQueues* queues,
             const std::function<bool(int empty_side, const Buffered& head)>& may_go,
             std::vector<ChangeEvent>* out);

  const Options options_;
  std::map<int32_t, PartitionQueues> partitions_;
  size_t buffered_ = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_EVENT_TIME_ALIGNER_H_
