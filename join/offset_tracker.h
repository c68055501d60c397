#ifndef CDCJOIN_JOIN_OFFSET_TRACKER_H_
#define CDCJOIN_JOIN_OFFSET_TRACKER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "join/change_event.h"

namespace cdcjoin {

// Knows, per partition, which consumed offsets have taken effect, and so how far the consumer
// group may commit: never past an event whose effect is not yet durable.
//
//   tracker.Track(position);            // poll thread, in consumption order
//   ... later, on any thread ...
//   tracker.Done(position);             // the event was applied, skipped or dead-lettered
//   for (auto& [partition, next] : tracker.Committable()) commit(partition, next);
//
// Thread-safe.
class OffsetTracker {
 public:
  struct PartitionProgress {
    SourcePartition partition;
    int64_t next_offset = -1;   // The offset to commit: everything below it has taken effect.
    int64_t consumed = -1;      // Highest offset tracked, -1 when none.
    int64_t pending = 0;        // Tracked and not done.
  };

  // REQUIRES: offsets of one partition are tracked in increasing order.
  void Track(const EventPosition& position);
  // Marks an event done. Unknown positions (a partition reset since) are ignored.
  void Done(const EventPosition& position);
  void Done(const std::vector<EventPosition>& positions);

  // Starts (or restarts) a partition at `next_offset`, dropping whatever was pending: used on
  // assignment, where nothing before the start offset is ours to track.
  void Reset(const SourcePartition& partition, int64_t next_offset);
  // Forgets a partition (revoked).
  void Remove(const SourcePartition& partition);

  std::vector<PartitionProgress> Progress() const;
  int64_t TotalPending() const;

 private:
  struct Entry {
    int64_t offset;
    bool done;
  };
  struct PartitionState {
    std::deque<Entry> in_flight;  // Ascending offsets, front is the oldest not yet committed.
    int64_t next_offset = -1;
    int64_t consumed = -1;
    int64_t pending = 0;
  };

  static void Advance(PartitionState* state);

  mutable absl::Mutex mu_;
  std::map<SourcePartition, PartitionState> partitions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_OFFSET_TRACKER_H_
