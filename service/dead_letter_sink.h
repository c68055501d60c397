#ifndef CDCJOIN_SERVICE_DEAD_LETTER_SINK_H_
#define CDCJOIN_SERVICE_DEAD_LETTER_SINK_H_

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/time/time.h"
#include "service/record_decoder.h"
#include "service/record_source.h"

namespace cdcjoin {

// Where records go that cannot be applied, so the stream goes on and nothing is lost. A dead
// letter counts as done (its offset may be committed past) only once it is delivered: the
// implementation reports that through the callback it was created with.
// DeadLetterQueue (service/dead_letter_queue.h) writes them to a Kafka topic.
// Why a record was dead-lettered: the `cdcjoin.reason` header and the status counters. The
// header strings are part of the operator's interface (docs/operations.md lists them):
//   "malformed"      the decoder refused the record: not Debezium JSON, a missing field, ...
//   "type-mismatch"  a key or column value the target column cannot hold exactly: wrong JSON
//                    type, non-integral number for an integer, out of range, too long, null for
//                    NOT NULL (cdcjoin.error names the field, the value's type and the column).
//   "foreign-table"  source.db / source.table is not the source's configured database / table.
//   "row-rejected"   the database refused the row for its own data (cdcjoin.sql.code and
//                    cdcjoin.error carry its error).
//   "operator"       an operator took the record out (cdcjoinctl dead-letter).
enum class DeadLetterReason {
  kMalformed,
  kTypeMismatch,
  kForeignTable,
  kRowRejected,
  kOperator,
};
// Every reason, for counters.
inline constexpr DeadLetterReason kDeadLetterReasons[] = {
    DeadLetterReason::kMalformed, DeadLetterReason::kTypeMismatch,
    DeadLetterReason::kForeignTable, DeadLetterReason::kRowRejected, DeadLetterReason::kOperator};
inline constexpr int kDeadLetterReasonCount =
    static_cast<int>(sizeof(kDeadLetterReasons) / sizeof(kDeadLetterReasons[0]));
const char* DeadLetterReasonName(DeadLetterReason reason);

// The reason a decoder's InvalidArgument carries (record_decoder.h); kMalformed when none.
DeadLetterReason DeadLetterReasonOfDecodeError(const absl::Status& error);

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
    case DeadLetterReason::kTypeMismatch:
      return "type-mismatch";
    case DeadLetterReason::kForeignTable:
      return "foreign-table";
    case DeadLetterReason::kRowRejected:
      return "row-rejected";
    case DeadLetterReason::kOperator:
      return "operator";
  }
  return "unknown";
}

inline DeadLetterReason DeadLetterReasonOfDecodeError(const absl::Status& error) {
  const auto reason = error.GetPayload(kDecodeReasonPayload);  // absl::optional<absl::Cord>
  if (reason.has_value()) {
    for (DeadLetterReason r : {DeadLetterReason::kTypeMismatch, DeadLetterReason::kForeignTable}) {
      if (*reason == DeadLetterReasonName(r)) return r;
    }
  }
  return DeadLetterReason::kMalformed;
}

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEAD_LETTER_SINK_H_
