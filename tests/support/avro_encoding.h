#ifndef CDCJOIN_TESTS_SUPPORT_AVRO_ENCODING_H_
#define CDCJOIN_TESTS_SUPPORT_AVRO_ENCODING_H_

// Encodes records as Apicurio's (as-confluent) or Confluent's converter writes them: magic byte
// 0, the 4-byte big-endian schema id, the Avro binary body, by Avro C. For tests and benchmarks
// that need Avro records of their own rows.
//
//   AvroRecordEncoder encoder(schema_json, /*schema_id=*/10);
//   avro_value_t* root = encoder.Reset();
//   ... SetField(root, "op", ...), avro_value_set_branch(...) ...
//   std::string record = encoder.Encoded();

#include <avro.h>

#include <cstdint>
#include <string>

namespace cdcjoin {

class AvroRecordEncoder {
 public:
  // Aborts with Avro C's message when `schema_json` is not a valid schema.
  AvroRecordEncoder(const std::string& schema_json, int32_t schema_id);
  ~AvroRecordEncoder();
  AvroRecordEncoder(const AvroRecordEncoder&) = delete;
  AvroRecordEncoder& operator=(const AvroRecordEncoder&) = delete;

  // The record's value, cleared, to be filled.
  avro_value_t* Reset();
  // The filled value in the Confluent wire format.
  std::string Encoded();

 private:
  int32_t schema_id_;
  avro_schema_t schema_ = nullptr;
  avro_value_iface_t* iface_ = nullptr;
  avro_value_t value_;
  std::string buffer_;
};

// The field `name` of a record; aborts when there is none.
avro_value_t AvroField(avro_value_t* record, const char* name);
// Selects a union's branch (0 or 1 of ["null", T]) and returns it.
avro_value_t AvroBranch(avro_value_t* union_value, int branch);

}  // namespace cdcjoin

#endif  // CDCJOIN_TESTS_SUPPORT_AVRO_ENCODING_H_
