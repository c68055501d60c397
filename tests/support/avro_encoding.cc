#include "tests/support/avro_encoding.h"

#include <cstdio>
#include <cstdlib>

namespace cdcjoin {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "avro encoding: %s: %s\n", what, avro_strerror());
  std::abort();
}

}  // namespace

AvroRecordEncoder::AvroRecordEncoder(const std::string& schema_json, int32_t schema_id)
    : schema_id_(schema_id), buffer_(size_t{1} << 16, '\0') {
  if (avro_schema_from_json_length(schema_json.data(), schema_json.size(), &schema_) != 0) {
    Fail("schema");
  }
  iface_ = avro_generic_class_from_schema(schema_);
  if (iface_ == nullptr || avro_generic_value_new(iface_, &value_) != 0) Fail("value");
}

AvroRecordEncoder::~AvroRecordEncoder() {
  avro_value_decref(&value_);
  avro_value_iface_decref(iface_);
  avro_schema_decref(schema_);
}

avro_value_t* AvroRecordEncoder::Reset() {
  avro_value_reset(&value_);
  return &value_;
}

std::string AvroRecordEncoder::Encoded() {
  avro_writer_t writer = avro_writer_memory(buffer_.data(), static_cast<int64_t>(buffer_.size()));
  if (avro_value_write(writer, &value_) != 0) Fail("write (a record over 64 KiB?)");
  const int64_t size = avro_writer_tell(writer);
  avro_writer_free(writer);
  std::string out(5, '\0');
  for (int i = 0; i < 4; ++i) out[1 + static_cast<size_t>(i)] = static_cast<char>(schema_id_ >> (24 - 8 * i));
  out.append(buffer_.data(), static_cast<size_t>(size));
  return out;
}

avro_value_t AvroField(avro_value_t* record, const char* name) {
  avro_value_t field;
  if (avro_value_get_by_name(record, name, &field, nullptr) != 0) Fail(name);
  return field;
}

avro_value_t AvroBranch(avro_value_t* union_value, int branch) {
  avro_value_t selected;
  if (avro_value_set_branch(union_value, branch, &selected) != 0) Fail("branch");
  return selected;
}

}  // namespace cdcjoin
