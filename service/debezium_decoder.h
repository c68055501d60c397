#ifndef CDCJOIN_SERVICE_DEBEZIUM_DECODER_H_
#define CDCJOIN_SERVICE_DEBEZIUM_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "join/change_event.h"
#include "join/table_schema.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/debezium_fields.h"
#include "service/record_decoder.h"

namespace cdcjoin {

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
// - Values are checked against the target's columns when the schema carries their facts
//   (TableSchema::SetColumnFacts, from the start-up check): a value a column cannot hold
//   exactly is refused with reason "type-mismatch" (record_decoder.h), the message naming the
//   field, the value's JSON type and the column, e.g. "after.id: JSON string 'abc' does not fit
//   column userId bigint(20): the column holds integers, not text". Key fields are typed by the
//   envelope's schema (else the JSON type) and checked against the key columns the same way. An
//   integral floating-point number for an integer column is written as that integer; nothing
//   is left to the database's implicit conversion.
// - When the source names its database/table, an event whose source.db/source.table differ is
//   refused with reason "foreign-table". When the record key and the row image both carry the
//   key fields, the source's key_source decides the key and a difference sets
//   Decoded::key_disagreed.
//
// Every problem with the record is an InvalidArgument whose message names the place and the
// problem, e.g. "after.simpleName: expected string, got array" (the caller dead-letters it).
// The one other code is ResourceExhausted when the parser cannot allocate memory: that is not
// the record's fault and must not dead-letter it. Nothing is thrown and no input crashes it.
//
// Not thread-safe: it owns the parser buffers; use one per thread.
class DebeziumDecoder final : public RecordDecoder {
 public:
  // REQUIRES: `schema` outlives the decoder. Returns InvalidArgument when a source's key_fields
  // do not match the target's key columns in number.
  static absl::StatusOr<DebeziumDecoder> Create(const TableSchema* schema,
                                                DecoderOptions options);
  // With the options the configuration sets (sink.max_value_bytes, window.event_time).
  static absl::StatusOr<std::unique_ptr<RecordDecoder>> ForConfig(const TableSchema* schema,
                                                                   const v1::Config& config);
  // Record keys read by `key_readers[source]` (one per source; a null entry reads JSON), for a
  // source whose key_format differs from its value_format.
  static absl::StatusOr<DebeziumDecoder> Create(
      const TableSchema* schema, DecoderOptions options,
      std::vector<std::unique_ptr<RecordKeyReader>> key_readers);

  // A reader of JSON record keys (Debezium's key struct, bare or in Kafka Connect's
  // {schema, payload} wrapper), for decoders of other value formats.
  static std::unique_ptr<RecordKeyReader> NewJsonKeyReader();

  DebeziumDecoder(DebeziumDecoder&&) noexcept;
  DebeziumDecoder& operator=(DebeziumDecoder&&) noexcept;
  ~DebeziumDecoder();

  // Decodes one record of source `source` (an index into schema->sources). A record_value that
  // is nullopt or has a null data pointer is a tombstone. record_timestamp_ms is the Kafka
  // record timestamp: the event time when so configured, or when the envelope has no ts_ms.
  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                 std::optional<std::string_view> record_value,
                                 int64_t record_timestamp_ms, EventPosition position) override;

 private:
  struct Impl;
  explicit DebeziumDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEBEZIUM_DECODER_H_
