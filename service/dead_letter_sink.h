#ifndef CDCJOIN_SERVICE_DEAD_LETTER_SINK_H_
#define CDCJOIN_SERVICE_DEAD_LETTER_SINK_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/record_source.h"

namespace cdcjoin {

// Where records go that cannot be applied, so the stream goes on and nothing is lost. A dead
// letter counts as done (its offset may be committed past) only once it is delivered: the
// implementation reports that through the callback it was created with.
// DeadLetterQueue (service/dead_letter_queue.h) writes them to a Kafka topic.
// Why a record was dead-lettered: the `cdcjoin.reason` header and the status counters.
enum class DeadLetterReason {
  kMalformed,    // "malformed": the decoder refused the record (cdcjoin.error says why).
  kRowRejected,  // "row-rejected": the database refused the row for its own data
                 // (cdcjoin.sql.code and cdcjoin.error carry its error).
  kOperator,     // "operator": an operator took the record out (cdcjoinctl dead-letter).
};
// Every reason, for counters.
inline constexpr DeadLetterReason kDeadLetterReasons[] = {
    DeadLetterReason::kMalformed, DeadLetterReason::kRowRejected, DeadLetterReason::kOperator};
inline constexpr int kDeadLetterReasonCount =
    static_cast<int>(sizeof(kDeadLetterReasons) / sizeof(kDeadLetterReasons[0]));
const char* DeadLetterReasonName(DeadLetterReason reason);

class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  // Queues a copy of `record` with `error` and `reason`. False when it could not be queued: the record then
  // stays unacknowledged, and the caller must not go past it.
  virtual bool Send(const ConsumedRecord& record, const absl::Status& error,
                    DeadLetterReason reason) = 0;
  // Serves delivery reports.
  virtual void Poll() = 0;
  // Waits up to `timeout` until everything queued is delivered; Unavailable when something was
  // not (still queued, or refused by the broker).
  virtual absl::Status Flush(absl::Duration timeout) = 0;
};

inline const char* DeadLetterReasonName(DeadLetterReason reason) {
  switch (reason) {
    case DeadLetterReason::kMalformed:
      return "malformed";
    case DeadLetterReason::kRowRejected:
      return "row-rejected";
    case DeadLetterReason::kOperator:
      return "operator";
  }
  return "unknown";
}

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEAD_LETTER_SINK_H_
