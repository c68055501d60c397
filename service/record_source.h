#ifndef CDCJOIN_SERVICE_RECORD_SOURCE_H_
#define CDCJOIN_SERVICE_RECORD_SOURCE_H_

// RecordSource: where the pipeline's records come from, and the one owner of their partitions'
// lifecycle. KafkaSource (service/kafka_source.h) is the implementation; tests drive the pipeline
// with a scripted one.
//
//   source->Start(&listener);                       // subscribe; assignments reach the listener
//   while (running) {
//     for (ConsumedRecord& r : source->Poll(timeout, room)) ...;   // callbacks run in here
//     source->Commit(durable_offsets);
//   }
//   source->Close();                                 // revokes everything through the listener

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "join/change_event.h"

namespace cdcjoin {

// One consumed record: its bytes, which `bytes` keeps alive, and where it came from.
struct ConsumedRecord {
  EventPosition position;                 // Source index (not topic), partition, offset.
  std::string_view topic;                 // Valid as long as the source.
  std::optional<std::string_view> key;    // nullopt: no key.
  std::optional<std::string_view> value;  // nullopt: a tombstone.
  int64_t timestamp_ms = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<const void> bytes;
};

// A partition given to this instance.
struct AssignedPartition {
  SourcePartition partition;
  int64_t committed = -1;  // The group's committed offset; -1 when it has none.
  // Where consumption starts; -1: per kafka.start_from. The listener may move it forward (state
  // that already carries events past the committed offset).
  int64_t start = -1;
};

// Partition lifecycle, called inside RecordSource::Poll and Close on the polling thread.
class PartitionListener {
 public:
  virtual ~PartitionListener() = default;
  virtual void OnAssigned(std::vector<AssignedPartition>& partitions) = 0;
  // The partitions go to another member once this returns: apply what is held of them (or drop
  // it unapplied) and return the offsets to commit for them; nothing of them may be written
  // afterwards.
  virtual std::map<SourcePartition, int64_t> OnRevoked(
      const std::vector<SourcePartition>& partitions) = 0;
  // Another member already owns them (this one was fenced off): drop, commit nothing.
  virtual void OnLost(const std::vector<SourcePartition>& partitions) = 0;
};

// Why consumption stands still; each is set and cleared on its own, and partitions resume only
// once no reason is left.
// kSplitGroup: a join that needs every partition in this process shares the group with another
// instance (Pipeline).
// kDecodeRetry: records wait for something their decoding needs (the schema registry).
enum class PauseReason { kOperator, kBackpressure, kHold, kSplitGroup, kDecodeRetry };

struct SourcePartitionStatus {
  SourcePartition partition;
  std::string topic;
  int64_t committed = -1;       // Last committed offset, -1 before the first commit.
  int64_t low_watermark = -1;   // -1 when unknown.
  int64_t high_watermark = -1;  // -1 when unknown.
  bool data_loss = false;       // The committed offset fell out of retention: stopped.
};

class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // Subscribes; `listener` must outlive the source.
  virtual absl::Status Start(PartitionListener* listener) = 0;
  // Up to `max` records in consumption order (per partition, ascending offsets), waiting up to
  // `timeout` when none is at hand. With `max` 0 it only serves the group (rebalances) and keeps
  // what arrives for later. What it keeps of a partition that is revoked or lost is dropped.
  virtual std::vector<ConsumedRecord> Poll(absl::Duration timeout, size_t max) = 0;
  // Marks durable the offsets that move an assigned partition forward: committed soon (on the
  // commit interval, as partitions are revoked, and on Close); a failed commit is logged and
  // covered by the next one.
  virtual void Commit(const std::map<SourcePartition, int64_t>& offsets) = 0;
  virtual void SetPaused(PauseReason reason, bool paused) = 0;
  // Whether the broker has nothing past `next_offset` for the partition (as last seen).
  virtual bool FullyFetched(const SourcePartition& partition, int64_t next_offset) const = 0;
  // Leaves the group: everything assigned is revoked through the listener first.
  virtual void Close() = 0;

  // Thread-safe. The last status stays readable after Close.
  virtual std::vector<SourcePartitionStatus> Status() const = 0;
  virtual bool Assigned() const = 0;
  // Whether this instance is assigned every partition of every source topic, i.e. no other
  // member of the group holds any; nullopt until the partition counts are known.
  virtual std::optional<bool> OwnsEveryPartition() const = 0;
  virtual bool DataLoss() const = 0;
  // Why the cluster counts as unreachable (no broker has answered for a while); empty while it
  // answers.
  virtual std::string Unreachable() const = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_RECORD_SOURCE_H_
