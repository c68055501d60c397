#ifndef CDCJOIN_SERVICE_RECORD_DECODER_H_
#define CDCJOIN_SERVICE_RECORD_DECODER_H_

// RecordDecoder: the bytes of one Kafka record of a source become a ChangeEvent, or a reason.
// One implementation per wire format (Debezium JSON today: service/debezium_decoder.h); the
// pipeline holds the interface, so a new format changes nothing around it.
//
// The contract every implementation keeps (the pipeline relies on it):
// - InvalidArgument: the record itself is malformed or does not fit the configuration. The
//   message names the place and the problem; the record is dead-lettered and the stream goes on.
//   Which dead-letter reason (the `cdcjoin.reason` header) applies rides on the status as a
//   payload under kDecodeReasonPayload (see WithDecodeReason): "type-mismatch" for a value the
//   target column cannot hold, "foreign-table" for an event of another table; without one the
//   reason is "malformed".
// - Any other error (ResourceExhausted when memory runs out, Unavailable when a registry cannot
//   be reached, ...) is not the record's fault: it must not be dead-lettered; consumption holds
//   and nothing is committed past it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "join/change_event.h"

namespace cdcjoin {

// The status payload type URL that names the dead-letter reason of an InvalidArgument.
inline constexpr char kDecodeReasonPayload[] = "cdcjoin.reason";

// `status` with its dead-letter reason (a cdcjoin.reason string) attached.
inline absl::Status WithDecodeReason(absl::Status status, const char* reason) {
  status.SetPayload(kDecodeReasonPayload, absl::Cord(reason));
  return status;
}

struct DecoderOptions {
  // A string value longer than this many bytes is rejected (the record is dead-lettered).
  // Default: 65535 (SinkConfig.max_value_bytes).
  size_t max_value_bytes = 65535;
  // A record value or key longer than this many bytes is rejected before it is parsed, so one
  // huge record cannot make the parser grow without bound. Default: 16 MiB, far above Kafka's
  // default message.max.bytes (1 MiB).
  size_t max_record_bytes = size_t{16} << 20;
  // Event time from the Kafka record timestamp instead of Debezium's source.ts_ms.
  // Default: false.
  bool event_time_from_record_timestamp = false;
};

// What a record turned into.
enum class DecodeOutcome {
  kEvent,        // `Decoded::event` holds the change.
  kTombstone,    // A null value (Kafka compaction tombstone): nothing to do.
  kSkippedOp,    // Debezium op t (truncate) or m (message): counted and skipped by the caller.
  kSkippedNull,  // A column mapped with skip_event_if_null was null.
};

struct Decoded {
  DecodeOutcome outcome = DecodeOutcome::kEvent;
  // Valid for kEvent. source and position are set for every outcome.
  ChangeEvent event;
  // For kSkippedOp: the op ("t" or "m").
  std::string skipped_op;
  // The Debezium op letter for kEvent and kSkippedOp ('c', 'u', 'r', 'd', 't', 'm'), so the
  // caller can count events by op; 0 otherwise.
  char op = 0;
  // For kEvent: the record key and the row image both carried every key field, with different
  // values. The source's key_source decided event.key; the caller counts it.
  bool key_disagreed = false;
};

class RecordDecoder {
 public:
  virtual ~RecordDecoder() = default;

  // Decodes one record of source `source` (an index into the schema's sources). A record_value
  // that is nullopt or has a null data pointer is a tombstone. record_timestamp_ms is the Kafka
  // record timestamp: the event time when so configured, or when the envelope has none.
  virtual absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                         std::optional<std::string_view> record_value,
                                         int64_t record_timestamp_ms, EventPosition position) = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_RECORD_DECODER_H_
