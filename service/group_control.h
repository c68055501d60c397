#ifndef CDCJOIN_SERVICE_GROUP_CONTROL_H_
#define CDCJOIN_SERVICE_GROUP_CONTROL_H_

// GroupControl: facts every member of the consumer group shares and that outlive each of them
// (the group's mode, each member's mode), as keyed records on a log every member reads from its
// start: the last record of a key is its value. KafkaGroupControl
// (service/kafka_group_control.h) keeps them on a compacted topic; tests use an in-memory log.
//
// One thread: the pipeline's polling one.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cdcjoin {

struct ControlRecord {
  std::string key;
  std::string value;
};

class GroupControl {
 public:
  virtual ~GroupControl() = default;

  // Appends a record; OK once the log has it durably.
  virtual absl::Status Publish(const ControlRecord& record, absl::Duration timeout) = 0;
  // Every record from the start of the log up to its end as it is now, in order; then Poll
  // goes on from there. Unavailable when the end was not reached within `timeout`.
  virtual absl::StatusOr<std::vector<ControlRecord>> ReadToEnd(absl::Duration timeout) = 0;
  // The records that arrived since the last call, in order; never blocks.
  virtual std::vector<ControlRecord> Poll() = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_GROUP_CONTROL_H_
