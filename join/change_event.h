#ifndef CDCJOIN_JOIN_CHANGE_EVENT_H_
#define CDCJOIN_JOIN_CHANGE_EVENT_H_

#include <cstdint>
#include <optional>
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

// Where a MariaDB/MySQL change sits in its server's binlog (Debezium's source.file, pos, row),
// the order the stale-write guard compares (join/row_version.h).
struct BinlogCoordinates {
  uint64_t file_number = 0;  // The numeric suffix of source.file: mysql-bin.000042 -> 42.
  uint64_t position = 0;     // source.pos: the rows event's offset in that file.
  uint64_t row = 0;          // source.row: the row within the rows event.
  bool snapshot = false;     // op r: read by the snapshot at this position, before what follows.

  friend bool operator==(const BinlogCoordinates& a, const BinlogCoordinates& b) {
    return a.file_number == b.file_number && a.position == b.position && a.row == b.row &&
           a.snapshot == b.snapshot;
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
  // The source position when the event carries a usable one; otherwise the stale-write guard
  // orders the source's events by `position.offset`.
  std::optional<BinlogCoordinates> binlog;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_CHANGE_EVENT_H_
