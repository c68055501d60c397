#ifndef CDCJOIN_SERVICE_DEBEZIUM_FIELDS_H_
#define CDCJOIN_SERVICE_DEBEZIUM_FIELDS_H_

// The part of decoding a Debezium event that does not depend on its wire format: the envelope's
// rules (op, row image, source table, key, event time), Debezium's and Kafka Connect's semantic
// types, the ValueType mapping and the checks against the target's columns. A format (JSON:
// service/debezium_decoder.cc, Avro: service/avro_decoder.cc) only reads its bytes into the views
// below, so the same row decodes to the same ChangeEvent whatever the format:
//
//   JsonEnvelope envelope(...);            // implements EnvelopeView over the parsed record
//   JsonKeyReader keys(...);               // implements RecordKeyReader
//   return DecodeEnvelope(context, source, envelope, keys, record_key, record_ts, std::move(out));

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "join/change_event.h"
#include "join/table_schema.h"
#include "join/value.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/record_decoder.h"

namespace cdcjoin {

// One field's value as the wire format carries it, before Debezium's type mapping. The views
// point into the record's parsed data and live as long as it.
struct WireValue {
  enum class Type {
    kNull,
    kInteger,
    kUnsigned,   // An integer beyond int64 (JSON only): refused.
    kReal,
    kBool,
    kText,       // UTF-8 text (JSON string, Avro string or enum).
    kBytes,      // Raw bytes (Avro bytes or fixed). JSON carries bytes as base64 text instead.
    kComposite,  // Array, object, record, map: never a column value.
  };
  Type type = Type::kNull;
  // How the format names the type, for messages: "string", "floating-point number", "long"...
  const char* type_name = "null";
  int64_t integer = 0;
  uint64_t big = 0;
  double real = 0;
  bool boolean = false;
  std::string_view text;  // kText and kBytes.
};

// How a field's value becomes a Value: a configured ValueType or, for AUTO, the field's schema.
enum class FieldKind {
  kByValue,  // No schema says (JSON without one): the value's own type decides.
  kString,
  kInt64,
  kDouble,
  kBool,
  kMillis,
  kMicros,
  kNanos,
  kDays,
  kZoned,
  kDecimal,  // Kafka Connect Decimal, Avro decimal, Debezium VariableScaleDecimal: with a scale.
  kTimeMicros,
  kTimeMillis,
  kTimeNanos,
  kBytes,
  kBits,  // io.debezium.data.Bits: little-endian bytes of a BitSet, as an integer.
  kUint64,
};

struct FieldType {
  FieldKind kind = FieldKind::kByValue;
  int scale = 0;  // kDecimal.
};

FieldKind KindOfConfigured(v1::ValueType type);

// The kind a semantic type name gives (Kafka Connect's schema "name", Avro's "connect.name", or
// an Avro logicalType); nullopt when the name says nothing about the encoding.
std::optional<FieldKind> KindOfSemanticName(std::string_view name);
// The kind a primitive type gives (Kafka Connect's int8..int64, float32, float64, boolean,
// string, bytes, or Avro's int, long, float, double, boolean, string, enum, bytes, fixed).
FieldKind KindOfPrimitive(std::string_view type);

// Parses a decimal scale ("4"); nullopt when it is not a small non-negative integer.
std::optional<int> ParseScale(std::string_view text);

// One struct of a record (the row image, or the record key) as a format reads it.
class RowView {
 public:
  virtual ~RowView() = default;
  // False when the struct has no field `name`. `schema_type` is what the field's schema says
  // (FieldKind::kByValue when the record carries no schema).
  virtual bool Find(std::string_view name, WireValue* value, FieldType* schema_type) const = 0;
};

// A record's envelope, read by its format. Each accessor returns the format's InvalidArgument
// when the part is there but malformed.
class EnvelopeView {
 public:
  virtual ~EnvelopeView() = default;
  virtual absl::StatusOr<std::string_view> Op() = 0;
  // source.db and source.table; nullopt when absent.
  virtual absl::Status SourceTable(std::optional<std::string_view>* db,
                                   std::optional<std::string_view>* table) = 0;
  // The row image `image` ("after" or "before"); nullptr when absent or null.
  virtual absl::StatusOr<const RowView*> Image(std::string_view image) = 0;
  // Debezium's event time: source.ts_ms, else the envelope's ts_ms; nullopt when neither.
  virtual absl::StatusOr<std::optional<int64_t>> EventTimeMs() = 0;
  // A MySQL/MariaDB connector's source.file, source.pos and source.row (the stale-write
  // guard's version); false when any is absent, as in other connectors' events.
  virtual bool BinlogPosition(std::string_view* file, int64_t* pos, int64_t* row) = 0;
};

// Reads a source's record key (in the source's key_format) as a struct.
class RecordKeyReader {
 public:
  virtual ~RecordKeyReader() = default;
  // REQUIRES: record_key holds bytes. The view lives until the next call.
  virtual absl::StatusOr<const RowView*> Read(std::string_view record_key) = 0;
};

struct FieldDecodeContext {
  const TableSchema* schema = nullptr;
  DecoderOptions options;
  // The format's name in type-mismatch messages: "JSON", "Avro".
  const char* format = "JSON";
};

// What every format checks first: the source index and the record's size. *out gets the source
// and position; true when the record is a tombstone (a null value: nothing more to read).
absl::StatusOr<bool> StartRecord(const FieldDecodeContext& context, int source,
                                 std::optional<std::string_view> record_value,
                                 EventPosition position, Decoded* out);

// The event of an envelope whose tombstone cases the format has handled already: op, source
// table, key (from the row or through `keys`), key disagreement, values, event time.
absl::StatusOr<Decoded> DecodeEnvelope(const FieldDecodeContext& context, int source,
                                       EnvelopeView& envelope, RecordKeyReader& keys,
                                       std::optional<std::string_view> record_key,
                                       int64_t record_timestamp_ms, Decoded out);

// The options the configuration sets (sink.max_value_bytes, window.event_time).
DecoderOptions DecoderOptionsOf(const v1::Config& config);

// Checks the key_fields of every source against the target's key columns (decoder creation).
absl::Status CheckKeyFieldCounts(const TableSchema& schema);

// Quotes at most 64 bytes of a user-supplied string for an error message.
std::string Excerpt(std::string_view text);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEBEZIUM_FIELDS_H_
