#ifndef CDCJOIN_SERVICE_AVRO_DECODER_H_
#define CDCJOIN_SERVICE_AVRO_DECODER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "join/table_schema.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/debezium_fields.h"
#include "service/record_decoder.h"
#include "service/schema_registry.h"

namespace cdcjoin {

// AvroDecoder reads Debezium events written in Avro by Confluent's or Apicurio's (as-confluent)
// Kafka Connect converter: the Confluent wire format (magic byte 0, 4-byte big-endian schema id,
// Avro binary body). The writer schema comes from `registry` by id (fetched once per id); the
// body is decoded by Avro C. The envelope (before/after as unions with null, op, source, ts_ms)
// and the fields then go through the same rules as JSON (debezium_fields.h): Avro's logical
// types (timestamp-millis/micros, date, time-millis/micros, decimal) and Debezium's semantic
// types (`connect.name`: io.debezium.time.*, Decimal, VariableScaleDecimal, Bits, Json) give the
// ValueType mapping, so a row decodes to the same ChangeEvent as its JSON.
//
// Each writer schema id is prepared once per decoder; a new id mid-stream (a column added or
// dropped) simply is another writer. A mapped column the writer's row does not have is
// "after.<field>: missing field".
//
// Errors (record_decoder.h): InvalidArgument, dead-lettered, for a wrong magic byte, a record
// shorter than its header, an id the registry does not know (404), a schema that is no Avro
// record envelope, a truncated or corrupt body. Unavailable when the registry cannot be asked
// (down, 5xx, timeout): the record is not at fault and its partition holds.
//
// Not thread-safe (one per thread); the registry is shared.
class AvroDecoder final : public RecordDecoder {
 public:
  // key_readers[source] reads that source's record keys (null entries: Avro through `registry`).
  static absl::StatusOr<std::unique_ptr<AvroDecoder>> Create(
      const TableSchema* schema, DecoderOptions options, std::shared_ptr<SchemaRegistry> registry,
      std::vector<std::unique_ptr<RecordKeyReader>> key_readers);

  // A reader of Avro record keys in the Confluent wire format.
  static std::unique_ptr<RecordKeyReader> NewKeyReader(std::shared_ptr<SchemaRegistry> registry);

  ~AvroDecoder() override;

  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                 std::optional<std::string_view> record_value,
                                 int64_t record_timestamp_ms, EventPosition position) override;

 private:
  struct Impl;
  explicit AvroDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The decoder of a whole configuration: each source's values and keys in their configured
// formats (value_format, key_format), one schema registry client shared by all Avro reading.
absl::StatusOr<std::unique_ptr<RecordDecoder>> NewRecordDecoder(const TableSchema* schema,
                                                                const v1::Config& config);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_AVRO_DECODER_H_
