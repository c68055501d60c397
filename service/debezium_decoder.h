#ifndef CDCJOIN_SERVICE_DEBEZIUM_DECODER_H_
#define CDCJOIN_SERVICE_DEBEZIUM_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "join/change_event.h"
#include "join/table_schema.h"

namespace cdcjoin {

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
};

// DebeziumDecoder turns one Kafka record of either source into a ChangeEvent, following the
// source's SourceMapping in the TableSchema. One decode path serves both sources.
//
//   absl::StatusOr<DebeziumDecoder> decoder = DebeziumDecoder::Create(&schema, {});
//   absl::StatusOr<Decoded> d = decoder->Decode(source, key, value, ts, position);
//   if (!d.ok()) { /* dead-letter with d.status().message() */ }
//
// Accepted input (see DESIGN.md "Semantics"):
// - Debezium JSON envelopes with or without Kafka Connect's {"schema": ..., "payload": ...}
//   wrapper, for the value and for the record key. A value whose payload is null, a JSON null
//   value and a missing (null) value are tombstones.
// - op c/u/r: upsert from `after`; d: delete, key from `before` (with key_source RECORD_KEY a
//   null `before` is allowed); t/m: kSkippedOp.
// - Mapped fields are decoded by their configured ValueType. AUTO follows the Debezium field
//   schema when the envelope carries one (io.debezium.time.* and Kafka Connect logical types),
//   else the JSON type. Timestamps become "YYYY-MM-DD HH:MM:SS[.ffffff]" UTC text, dates
//   "YYYY-MM-DD"; years outside 0001..9999 are rejected.
// - A mapped field absent from the row image is an error, not NULL: Debezium always writes
//   every column, so an absent field means the configuration names a column the table does not
//   have, and silently writing NULL would hide that.
// - Input must be UTF-8 (JSON requires it; simdjson validates it): other bytes are rejected as
//   malformed rather than passed into utf8mb4 columns.
// - Debezium "bytes" fields without a logical type arrive as base64 text and are kept as that
//   text; org.apache.kafka.connect.data.Decimal is decoded to decimal text.
//
// Every problem with the record is an InvalidArgument whose message names the place and the
// problem, e.g. "after.simpleName: expected string, got array" (the caller dead-letters it).
// The one other code is ResourceExhausted when the parser cannot allocate memory: that is not
// the record's fault and must not dead-letter it. Nothing is thrown and no input crashes it.
//
// Not thread-safe: it owns the parser buffers; use one per thread.
class DebeziumDecoder {
 public:
  // REQUIRES: `schema` outlives the decoder. Returns InvalidArgument when a source's key_fields
  // do not match the target's key columns in number.
  static absl::StatusOr<DebeziumDecoder> Create(const TableSchema* schema,
                                                DecoderOptions options);

  DebeziumDecoder(DebeziumDecoder&&) noexcept;
  DebeziumDecoder& operator=(DebeziumDecoder&&) noexcept;
  ~DebeziumDecoder();

  // Decodes one record of source `source` (an index into schema->sources). A record_value that
  // is nullopt or has a null data pointer is a tombstone. record_timestamp_ms is the Kafka
  // record timestamp: the event time when so configured, or when the envelope has no ts_ms.
  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                 std::optional<std::string_view> record_value,
                                 int64_t record_timestamp_ms, EventPosition position);

 private:
  struct Impl;
  explicit DebeziumDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Renders an instant as "YYYY-MM-DD HH:MM:SS", plus ".ffffff" when micros (0..999999) is not
// zero, in UTC. Returns false when the instant is outside years 0001..9999 (MySQL's DATETIME
// range). Exposed so tests and other components render times exactly as the decoder does.
bool FormatUtcDateTime(int64_t epoch_seconds, int32_t micros, std::string* out);
// Renders days since 1970-01-01 as "YYYY-MM-DD"; false outside years 0001..9999.
bool FormatUtcDate(int64_t epoch_days, std::string* out);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEBEZIUM_DECODER_H_
