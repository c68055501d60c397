#ifndef CDCJOIN_JOIN_CHANGE_EVENT_H_
#define CDCJOIN_JOIN_CHANGE_EVENT_H_

#include <cstdint>
#include <vector>

#include "join/value.h"

namespace cdcjoin {

// One partition of one source's topic. `source` indexes TableSchema::sources, so the two topics
// never need string compares on the hot path.
struct SourcePartition {
  int source = 0;
  int32_t partition = 0;

  friend bool operator==(const SourcePartition& a, const SourcePartition& b) {
    return a.source == b.source && a.partition == b.partition;
  }
  friend bool operator<(const SourcePartition& a, const SourcePartition& b) {
    return a.source != b.source ? a.source < b.source : a.partition < b.partition;
  }
  template <typename H>
  friend H AbslHashValue(H h, const SourcePartition& p) {
    return H::combine(std::move(h), p.source, p.partition);
  }
};

// Where an event sits in Kafka: what an acknowledgement refers to.
struct EventPosition {
  SourcePartition partition;
  int64_t offset = -1;

  friend bool operator==(const EventPosition& a, const EventPosition& b) {
    return a.partition == b.partition && a.offset == b.offset;
  }
};

enum class ChangeOp {
  kUpsert,  // Debezium c, u, r: the row image is `after`.
  kDelete,  // Debezium d: the row image is `before`.
};

// A decoded Debezium change: the unit that flows from the consumers into a joiner.
struct ChangeEvent {
  int source = 0;  // Index into TableSchema::sources.
  ChangeOp op = ChangeOp::kUpsert;
  Key key;
  // kUpsert: one value per SourceMapping::fields entry, in that order (a Debezium row image is
  // complete, so every mapped column is present). kDelete: empty.
  std::vector<Value> values;
  // Debezium source.ts_ms (or the record timestamp when configured).
  int64_t event_time_ms = 0;
  EventPosition position;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_CHANGE_EVENT_H_
