#include "service/debezium_decoder.h"

// The BUILD file compiles this file with SIMDJSON_EXCEPTIONS=0, so every simdjson call below
// goes through error codes: a throwing accessor would not even compile.
#include <simdjson.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/debezium_fields.h"

namespace cdcjoin {
namespace {

namespace dom = simdjson::dom;

// ---------------------------------------------------------------------------------------------
// JSON helpers.

const char* TypeName(const dom::element& el) {
  switch (el.type()) {
    case dom::element_type::ARRAY:
      return "array";
    case dom::element_type::OBJECT:
      return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return "integer";
    case dom::element_type::DOUBLE:
      return "floating-point number";
    case dom::element_type::STRING:
      return "string";
    case dom::element_type::BOOL:
      return "boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

// True when `object` has `key`; the element goes to *out.
bool Lookup(const dom::object& object, std::string_view key, dom::element* out) {
  return object.at_key(key).get(*out) == simdjson::SUCCESS;
}

// Debian's Abseil is built with its own string_view, so std::string_view goes through this.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(where), ": ", AV(what)));
}

absl::Status ParseError(std::string_view where, simdjson::error_code error) {
  if (error == simdjson::MEMALLOC) {
    return absl::ResourceExhaustedError(
        absl::StrCat(AV(where), ": out of memory while parsing JSON"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(AV(where), ": malformed JSON: ", simdjson::error_message(error)));
}

// The "fields" array of a Kafka Connect struct schema: the row image's or the record key's.
struct StructSchema {
  bool present = false;
  dom::array fields;
};

// Finds the schema of the struct field `image` ("after"/"before") in a Debezium value schema.
// A schema of an unexpected shape is treated as absent: the payload is still decoded by JSON
// types, and a payload that does not fit its declared column types still fails on its own.
StructSchema FindImageSchema(const dom::object& value_schema, std::string_view image) {
  StructSchema result;
  dom::array fields;
  if (value_schema.at_key("fields").get_array().get(fields) != simdjson::SUCCESS) return result;
  for (dom::element field : fields) {
    dom::object field_object;
    std::string_view name;
    if (field.get_object().get(field_object) != simdjson::SUCCESS) continue;
    if (field_object.at_key("field").get_string().get(name) != simdjson::SUCCESS) continue;
    if (name != image) continue;
    result.present =
        field_object.at_key("fields").get_array().get(result.fields) == simdjson::SUCCESS;
    return result;
  }
  return result;
}

StructSchema StructSchemaOf(const dom::object& struct_schema) {
  StructSchema result;
  result.present =
      struct_schema.at_key("fields").get_array().get(result.fields) == simdjson::SUCCESS;
  return result;
}

// How AUTO decodes `field`: its Kafka Connect logical type (name) first, then its type.
FieldType TypeFromSchema(const StructSchema& schema, std::string_view field) {
  if (!schema.present) return {};
  for (dom::element entry : schema.fields) {
    dom::object entry_object;
    std::string_view name;
    if (entry.get_object().get(entry_object) != simdjson::SUCCESS) continue;
    if (entry_object.at_key("field").get_string().get(name) != simdjson::SUCCESS) continue;
    if (name != field) continue;
    std::string_view logical;
    if (entry_object.at_key("name").get_string().get(logical) == simdjson::SUCCESS) {
      if (std::optional<FieldKind> kind = KindOfSemanticName(logical); kind.has_value()) {
        FieldType type{*kind, 0};
        if (*kind == FieldKind::kDecimal) {
          std::string_view scale_text;
          if (entry_object.at_key("parameters").at_key("scale").get_string().get(scale_text) ==
              simdjson::SUCCESS) {
            const std::optional<int> scale = ParseScale(scale_text);
            if (!scale.has_value()) return FieldType{FieldKind::kString, 0};
            type.scale = *scale;
          }
        }
        return type;
      }
    }
    std::string_view type;
    if (entry_object.at_key("type").get_string().get(type) != simdjson::SUCCESS) return {};
    return FieldType{KindOfPrimitive(type), 0};
  }
  return {};  // Not in the schema: trust the JSON type.
}

// A JSON element as a wire value (JSON carries bytes as base64 text).
WireValue WireOf(const dom::element& el) {
  WireValue wire;
  wire.type_name = TypeName(el);
  switch (el.type()) {
    case dom::element_type::INT64:
      wire.type = WireValue::Type::kInteger;
      wire.integer = el.get_int64().value_unsafe();
      break;
    case dom::element_type::UINT64:
      wire.type = WireValue::Type::kUnsigned;
      wire.big = el.get_uint64().value_unsafe();
      break;
    case dom::element_type::DOUBLE:
      wire.type = WireValue::Type::kReal;
      wire.real = el.get_double().value_unsafe();
      break;
    case dom::element_type::BOOL:
      wire.type = WireValue::Type::kBool;
      wire.boolean = el.get_bool().value_unsafe();
      break;
    case dom::element_type::STRING:
      wire.type = WireValue::Type::kText;
      wire.text = el.get_string().value_unsafe();
      break;
    case dom::element_type::NULL_VALUE:
      wire.type = WireValue::Type::kNull;
      break;
    default:
      wire.type = WireValue::Type::kComposite;
      break;
  }
  return wire;
}

// A struct of the record (row image or key) with the schema of its fields, when it has one.
class JsonRow final : public RowView {
 public:
  void Reset(dom::object object, StructSchema schema) {
    object_ = object;
    schema_ = schema;
  }
  bool Find(std::string_view name, WireValue* value, FieldType* schema_type) const override {
    dom::element el;
    if (!Lookup(object_, name, &el)) return false;
    *schema_type = TypeFromSchema(schema_, name);
    // io.debezium.data.VariableScaleDecimal: {"scale": 2, "value": "<base64>"}, scale per value.
    dom::object decimal;
    std::string_view digits;
    int64_t scale = 0;
    if (schema_type->kind == FieldKind::kDecimal &&
        el.get_object().get(decimal) == simdjson::SUCCESS &&
        decimal.at_key("scale").get_int64().get(scale) == simdjson::SUCCESS &&
        decimal.at_key("value").get_string().get(digits) == simdjson::SUCCESS && scale >= 0 &&
        scale <= 1000) {
      value->type = WireValue::Type::kText;
      value->type_name = "string";
      value->text = digits;
      schema_type->scale = static_cast<int>(scale);
      return true;
    }
    *value = WireOf(el);
    return true;
  }

 private:
  dom::object object_;
  StructSchema schema_;
};

// The record key: a Debezium key struct, bare or in Kafka Connect's {schema, payload} wrapper.
class JsonKeyReader final : public RecordKeyReader {
 public:
  absl::StatusOr<const RowView*> Read(std::string_view record_key) override {
    dom::element root;
    simdjson::error_code error =
        parser_.parse(record_key.data(), record_key.size(), true).get(root);
    if (error != simdjson::SUCCESS) return ParseError("key", error);
    dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) {
      return Invalid("key", absl::StrCat("expected a JSON object, got ", TypeName(root)));
    }
    StructSchema schema;
    dom::element payload, schema_el;
    // Kafka Connect's wrapper has exactly these two fields; a key struct that merely has a
    // column named "payload" has others too (or lacks "schema").
    if (object.size() == 2 && Lookup(object, "payload", &payload) &&
        Lookup(object, "schema", &schema_el)) {
      if (payload.get_object().get(object) != simdjson::SUCCESS) {
        return Invalid("key.payload", absl::StrCat("expected object, got ", TypeName(payload)));
      }
      dom::object schema_object;
      if (schema_el.get_object().get(schema_object) == simdjson::SUCCESS) {
        schema = StructSchemaOf(schema_object);
      }
    }
    row_.Reset(object, schema);
    return &row_;
  }

 private:
  // Its own parser: a RECORD_KEY source reads the key while the value's document is in use.
  // It keeps its buffers between records: after warm-up, parsing allocates nothing.
  dom::parser parser_;
  JsonRow row_;
};

// A Debezium envelope (unwrapped from {schema, payload} when wrapped).
class JsonEnvelope final : public EnvelopeView {
 public:
  JsonEnvelope(dom::object envelope, dom::element op, const dom::object* value_schema)
      : envelope_(envelope), op_(op), value_schema_(value_schema) {}

  absl::StatusOr<std::string_view> Op() override {
    std::string_view op;
    if (op_.get_string().get(op) != simdjson::SUCCESS) {
      return Invalid("op", absl::StrCat("expected string, got ", TypeName(op_)));
    }
    return op;
  }

  absl::Status SourceTable(std::optional<std::string_view>* db,
                           std::optional<std::string_view>* table) override {
    dom::element source_el, el;
    dom::object source_object;
    if (!Lookup(envelope_, "source", &source_el) ||
        source_el.get_object().get(source_object) != simdjson::SUCCESS) {
      return absl::OkStatus();
    }
    std::string_view text;
    if (Lookup(source_object, "db", &el) && el.get_string().get(text) == simdjson::SUCCESS) {
      *db = text;
    }
    if (Lookup(source_object, "table", &el) && el.get_string().get(text) == simdjson::SUCCESS) {
      *table = text;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<const RowView*> Image(std::string_view image) override {
    dom::element row_el;
    dom::object row;
    if (!Lookup(envelope_, image, &row_el) || row_el.is_null()) return nullptr;
    if (row_el.get_object().get(row) != simdjson::SUCCESS) {
      return Invalid(image, absl::StrCat("expected object, got ", TypeName(row_el)));
    }
    row_.Reset(row, value_schema_ != nullptr ? FindImageSchema(*value_schema_, image)
                                             : StructSchema());
    return &row_;
  }

  bool BinlogPosition(std::string_view* file, int64_t* pos, int64_t* row) override {
    dom::element source_el, file_el, pos_el, row_el;
    dom::object source_object;
    return Lookup(envelope_, "source", &source_el) &&
           source_el.get_object().get(source_object) == simdjson::SUCCESS &&
           Lookup(source_object, "file", &file_el) &&
           file_el.get_string().get(*file) == simdjson::SUCCESS &&
           Lookup(source_object, "pos", &pos_el) &&
           pos_el.get_int64().get(*pos) == simdjson::SUCCESS &&
           Lookup(source_object, "row", &row_el) &&
           row_el.get_int64().get(*row) == simdjson::SUCCESS;
  }

  absl::StatusOr<std::optional<int64_t>> EventTimeMs() override {
    int64_t ms = 0;
    dom::element source_el, ts;
    if (Lookup(envelope_, "source", &source_el) && !source_el.is_null()) {
      dom::object source_object;
      if (source_el.get_object().get(source_object) != simdjson::SUCCESS) {
        return Invalid("source", absl::StrCat("expected object, got ", TypeName(source_el)));
      }
      if (Lookup(source_object, "ts_ms", &ts) && !ts.is_null()) {
        if (ts.get_int64().get(ms) != simdjson::SUCCESS) {
          return Invalid("source.ts_ms", absl::StrCat("expected integer, got ", TypeName(ts)));
        }
        return ms;
      }
    }
    if (Lookup(envelope_, "ts_ms", &ts) && !ts.is_null()) {
      if (ts.get_int64().get(ms) != simdjson::SUCCESS) {
        return Invalid("ts_ms", absl::StrCat("expected integer, got ", TypeName(ts)));
      }
      return ms;
    }
    return std::nullopt;
  }

 private:
  dom::object envelope_;
  dom::element op_;
  const dom::object* value_schema_;
  JsonRow row_;
};

}  // namespace

struct DebeziumDecoder::Impl {
  FieldDecodeContext context;
  dom::parser value_parser;  // Keeps its buffers between records.
  std::vector<std::unique_ptr<RecordKeyReader>> keys;  // Per source.

  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                 std::optional<std::string_view> record_value,
                                 int64_t record_timestamp_ms, EventPosition position);
};

absl::StatusOr<Decoded> DebeziumDecoder::Impl::Decode(int source,
                                                      std::optional<std::string_view> record_key,
                                                      std::optional<std::string_view> record_value,
                                                      int64_t record_timestamp_ms,
                                                      EventPosition position) {
  Decoded out;
  absl::StatusOr<bool> tombstone = StartRecord(context, source, record_value, position, &out);
  if (!tombstone.ok()) return tombstone.status();
  if (*tombstone) return out;

  dom::element root;
  simdjson::error_code error =
      value_parser.parse(record_value->data(), record_value->size(), true).get(root);
  if (error != simdjson::SUCCESS) return ParseError("value", error);
  if (root.is_null()) {  // Kafka Connect's JsonConverter reads a JSON null as a null value.
    out.outcome = DecodeOutcome::kTombstone;
    return out;
  }
  dom::object envelope;
  if (root.get_object().get(envelope) != simdjson::SUCCESS) {
    return Invalid("value", absl::StrCat("expected a JSON object, got ", TypeName(root)));
  }

  // A bare Debezium envelope has "op"; the {schema, payload} wrapper has not.
  dom::object value_schema;
  bool has_schema = false;
  dom::element op_el;
  bool has_op = Lookup(envelope, "op", &op_el);
  if (!has_op) {
    dom::element payload, schema_el;
    const bool has_payload = Lookup(envelope, "payload", &payload);
    const bool has_schema_field = Lookup(envelope, "schema", &schema_el);
    if (has_payload || has_schema_field) {
      if (!has_payload) {
        return Invalid("payload", "missing field (a schema wrapper must carry a payload)");
      }
      if (payload.is_null()) {
        out.outcome = DecodeOutcome::kTombstone;
        return out;
      }
      if (has_schema_field && !schema_el.is_null()) {
        if (schema_el.get_object().get(value_schema) != simdjson::SUCCESS) {
          return Invalid("schema", absl::StrCat("expected object, got ", TypeName(schema_el)));
        }
        has_schema = true;
      }
      if (payload.get_object().get(envelope) != simdjson::SUCCESS) {
        return Invalid("payload", absl::StrCat("expected object, got ", TypeName(payload)));
      }
      has_op = Lookup(envelope, "op", &op_el);
    }
  }
  if (!has_op) return Invalid("op", "missing field");
  JsonEnvelope view(envelope, op_el, has_schema ? &value_schema : nullptr);
  return DecodeEnvelope(context, source, view, *keys[static_cast<size_t>(source)], record_key,
                        record_timestamp_ms, std::move(out));
}

absl::StatusOr<std::unique_ptr<RecordDecoder>> DebeziumDecoder::ForConfig(
    const TableSchema* schema, const v1::Config& config) {
  absl::StatusOr<DebeziumDecoder> decoder = Create(schema, DecoderOptionsOf(config));
  if (!decoder.ok()) return decoder.status();
  return std::unique_ptr<RecordDecoder>(std::make_unique<DebeziumDecoder>(*std::move(decoder)));
}

std::unique_ptr<RecordKeyReader> DebeziumDecoder::NewJsonKeyReader() {
  return std::make_unique<JsonKeyReader>();
}

absl::StatusOr<DebeziumDecoder> DebeziumDecoder::Create(const TableSchema* schema,
                                                        DecoderOptions options) {
  return Create(schema, options, {});
}

absl::StatusOr<DebeziumDecoder> DebeziumDecoder::Create(
    const TableSchema* schema, DecoderOptions options,
    std::vector<std::unique_ptr<RecordKeyReader>> key_readers) {
  if (schema == nullptr) return absl::InvalidArgumentError("decoder: schema is null");
  if (absl::Status s = CheckKeyFieldCounts(*schema); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->keys = std::move(key_readers);
  impl->keys.resize(schema->sources.size());
  for (std::unique_ptr<RecordKeyReader>& reader : impl->keys) {
    if (reader == nullptr) reader = NewJsonKeyReader();
  }
  impl->context.schema = schema;
  impl->context.options = options;
  impl->context.format = "JSON";
  return DebeziumDecoder(std::move(impl));
}

DebeziumDecoder::DebeziumDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DebeziumDecoder::DebeziumDecoder(DebeziumDecoder&&) noexcept = default;
DebeziumDecoder& DebeziumDecoder::operator=(DebeziumDecoder&&) noexcept = default;
DebeziumDecoder::~DebeziumDecoder() = default;

absl::StatusOr<Decoded> DebeziumDecoder::Decode(int source,
                                                std::optional<std::string_view> record_key,
                                                std::optional<std::string_view> record_value,
                                                int64_t record_timestamp_ms,
                                                EventPosition position) {
  return impl_->Decode(source, record_key, record_value, record_timestamp_ms, position);
}

}  // namespace cdcjoin
