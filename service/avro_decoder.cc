#include "service/avro_decoder.h"

// Avro C decodes the binary bodies. Its schema objects drop the attributes Debezium's types
// live in (connect.name, logicalType, scale), so those are read from the schema's JSON with
// simdjson (error codes only: the BUILD file sets SIMDJSON_EXCEPTIONS=0).
#include <avro.h>
#include <simdjson.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/debezium_decoder.h"

namespace cdcjoin {
namespace {

namespace dom = simdjson::dom;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(where), ": ", AV(what)));
}

// ---------------------------------------------------------------------------------------------
// What the writer schema's JSON says about a record's fields.

struct FieldInfo {
  int index = 0;
  FieldType type;
  // io.debezium.data.VariableScaleDecimal: a record {scale: int, value: bytes}, scale per value.
  bool variable_scale = false;
};

using RecordLayout = absl::flat_hash_map<std::string, FieldInfo>;

// A string attribute of a schema object; empty when absent.
std::string_view Attribute(dom::object object, std::string_view name) {
  std::string_view value;
  if (object[name].get_string().get(value) != simdjson::SUCCESS) return {};
  return value;
}

bool IsPrimitive(std::string_view name) {
  return name == "null" || name == "boolean" || name == "int" || name == "long" ||
         name == "float" || name == "double" || name == "bytes" || name == "string";
}

// Every named type (record, enum, fixed) of a schema, by full and by short name: a later field
// may refer to an earlier definition by either.
class NamedTypes {
 public:
  void Collect(dom::element type, std::string_view enclosing_namespace) {
    dom::array branches;
    if (type.get_array().get(branches) == simdjson::SUCCESS) {
      for (dom::element branch : branches) Collect(branch, enclosing_namespace);
      return;
    }
    dom::object object;
    if (type.get_object().get(object) != simdjson::SUCCESS) return;
    std::string_view name, kind;
    std::string_view space = Attribute(object, "namespace");
    if (space.empty()) space = enclosing_namespace;
    if (object["name"].get_string().get(name) == simdjson::SUCCESS) {
      const std::string full =
          name.find('.') != std::string_view::npos || space.empty()
              ? std::string(name)
              : absl::StrCat(AV(space), ".", AV(name));
      types_.emplace(full, type);
      types_.emplace(std::string(name.substr(name.rfind('.') + 1)), type);
      if (name.find('.') != std::string_view::npos) space = name.substr(0, name.rfind('.'));
    }
    dom::element inner;
    if (object["type"].get(inner) == simdjson::SUCCESS && !inner.is_string()) {
      Collect(inner, space);
    }
    if (object["type"].get_string().get(kind) == simdjson::SUCCESS && kind == "record") {
      dom::array fields;
      if (object["fields"].get_array().get(fields) != simdjson::SUCCESS) return;
      for (dom::element field : fields) {
        dom::element field_type;
        if (field["type"].get(field_type) == simdjson::SUCCESS) Collect(field_type, space);
      }
    }
    if (object["items"].get(inner) == simdjson::SUCCESS) Collect(inner, space);
    if (object["values"].get(inner) == simdjson::SUCCESS) Collect(inner, space);
  }

  // The type without its null branch (a union of null and one other type), names resolved.
  dom::element Resolve(dom::element type) const {
    dom::array branches;
    if (type.get_array().get(branches) == simdjson::SUCCESS) {
      dom::element only;
      int others = 0;
      for (dom::element branch : branches) {
        std::string_view name;
        if (branch.get_string().get(name) == simdjson::SUCCESS && name == "null") continue;
        only = branch;
        ++others;
      }
      if (others != 1) return type;
      type = only;
    }
    std::string_view name;
    if (type.get_string().get(name) == simdjson::SUCCESS && !IsPrimitive(name)) {
      if (auto it = types_.find(std::string(name)); it != types_.end()) return it->second;
    }
    return type;
  }

 private:
  absl::flat_hash_map<std::string, dom::element> types_;
};

FieldInfo InfoOf(const NamedTypes& named, dom::element declared, int index) {
  FieldInfo info;
  info.index = index;
  const dom::element type = named.Resolve(declared);
  std::string_view text;
  if (type.get_string().get(text) == simdjson::SUCCESS) {
    info.type.kind = KindOfPrimitive(text);
    return info;
  }
  dom::object object;
  if (type.get_object().get(object) != simdjson::SUCCESS) return info;  // A union of several.
  const std::string_view primitive = Attribute(object, "type");
  const std::string_view connect_name = Attribute(object, "connect.name");
  const std::string_view logical = Attribute(object, "logicalType");
  std::optional<FieldKind> kind = KindOfSemanticName(connect_name);
  if (!kind.has_value()) kind = KindOfSemanticName(logical);
  if (!kind.has_value()) {
    info.type.kind = KindOfPrimitive(primitive);
    return info;
  }
  info.type.kind = *kind;
  if (*kind == FieldKind::kDecimal) {
    info.variable_scale = primitive == "record";
    int64_t scale = 0;
    std::string_view scale_text;
    if (object["scale"].get_int64().get(scale) == simdjson::SUCCESS && scale >= 0 &&
        scale <= 1000) {
      info.type.scale = static_cast<int>(scale);
    } else if (object["connect.parameters"]["scale"].get_string().get(scale_text) ==
               simdjson::SUCCESS) {
      const std::optional<int> parsed = ParseScale(scale_text);
      if (!parsed.has_value()) info.type.kind = FieldKind::kBytes;
      info.type.scale = parsed.value_or(0);
    }
  }
  return info;
}

RecordLayout LayoutOf(const NamedTypes& named, dom::object record) {
  RecordLayout layout;
  dom::array fields;
  if (record["fields"].get_array().get(fields) != simdjson::SUCCESS) return layout;
  int index = 0;
  for (dom::element field : fields) {
    std::string_view name;
    dom::element type;
    if (field["name"].get_string().get(name) == simdjson::SUCCESS &&
        field["type"].get(type) == simdjson::SUCCESS) {
      layout.emplace(std::string(name), InfoOf(named, type, index));
    }
    ++index;
  }
  return layout;
}

// ---------------------------------------------------------------------------------------------
// One writer schema, prepared for reading: Avro C's schema and value, and the field layouts.

class AvroWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AvroWriter>> Prepare(std::string_view place,
                                                             const RegisteredSchema& registered) {
    auto invalid = [&](std::string_view why) {
      return Invalid(place, absl::StrCat("writer schema id ", registered.id, " ", AV(why)));
    };
    if (registered.schema_type != "AVRO") {
      return invalid(absl::StrCat("is ", registered.schema_type, ", not AVRO"));
    }
    if (registered.has_references) {
      return invalid(
          "references other subjects; have the converter register whole schemas (Apicurio: "
          "apicurio.registry.dereference-schema=true; Confluent's converter always does)");
    }
    auto writer = std::unique_ptr<AvroWriter>(new AvroWriter());
    writer->id_ = registered.id;
    if (avro_schema_from_json_length(registered.text.data(), registered.text.size(),
                                     &writer->schema_) != 0) {
      writer->schema_ = nullptr;
      return invalid(absl::StrCat("is not a valid Avro schema: ", avro_strerror()));
    }
    writer->iface_ = avro_generic_class_from_schema(writer->schema_);
    if (writer->iface_ == nullptr || avro_generic_value_new(writer->iface_, &writer->value_) != 0) {
      return invalid(absl::StrCat("cannot be instantiated: ", avro_strerror()));
    }
    writer->has_value_ = true;
    writer->reader_ = avro_reader_memory(nullptr, 0);
    if (writer->reader_ == nullptr) return absl::ResourceExhaustedError("avro_reader_memory");

    writer->json_ = registered.text;
    dom::element root;
    if (writer->parser_.parse(writer->json_).get(root) != simdjson::SUCCESS) {
      return invalid("is not JSON");
    }
    NamedTypes named;
    named.Collect(root, "");
    dom::object record;
    std::string_view kind;
    if (root.get_object().get(record) != simdjson::SUCCESS ||
        record["type"].get_string().get(kind) != simdjson::SUCCESS || kind != "record") {
      return invalid("is not an Avro record");
    }
    writer->top_ = LayoutOf(named, record);
    for (const char* image : {"after", "before"}) {
      auto it = writer->top_.find(image);
      if (it == writer->top_.end()) continue;
      dom::element declared;
      dom::array fields;
      if (record["fields"].get_array().get(fields) != simdjson::SUCCESS) break;
      for (dom::element field : fields) {
        std::string_view name;
        if (field["name"].get_string().get(name) == simdjson::SUCCESS && name == image &&
            field["type"].get(declared) == simdjson::SUCCESS) {
          break;
        }
      }
      dom::object row;
      if (named.Resolve(declared).get_object().get(row) == simdjson::SUCCESS) {
        writer->row_ = LayoutOf(named, row);
        writer->is_envelope_ = true;
        break;
      }
    }
    writer->IndexEnvelope(named, record);
    return writer;
  }

  // Where the envelope's parts sit (-1: absent), so decoding addresses them by position.
  struct EnvelopeIndex {
    int op = -1, before = -1, after = -1, source = -1, ts_ms = -1;
    int source_db = -1, source_table = -1, source_ts_ms = -1;
    int source_file = -1, source_pos = -1, source_row = -1;
  };

  ~AvroWriter() {
    if (reader_ != nullptr) avro_reader_free(reader_);
    if (has_value_) avro_value_decref(&value_);
    if (iface_ != nullptr) avro_value_iface_decref(iface_);
    if (schema_ != nullptr) avro_schema_decref(schema_);
  }

  // Decodes `body` into the writer's value, valid until the next Read.
  absl::StatusOr<avro_value_t*> Read(std::string_view place, std::string_view body) {
    // No avro_value_reset: reading writes every field, and a reset would tear down the unions'
    // branches that the next record most likely takes again.
    avro_reader_memory_set_source(reader_, body.data(), static_cast<int64_t>(body.size()));
    if (avro_value_read(reader_, &value_) != 0) {
      return Invalid(place, absl::StrCat("Avro body (", body.size(),
                                         " bytes) does not decode with writer schema id ", id_,
                                         ": ", avro_strerror()));
    }
    return &value_;
  }

  int32_t id() const { return id_; }
  const EnvelopeIndex& envelope() const { return envelope_; }
  bool is_envelope() const { return is_envelope_; }
  const RecordLayout& top() const { return top_; }
  const RecordLayout& row() const { return row_; }

 private:
  AvroWriter() = default;

  int32_t id_ = 0;
  avro_schema_t schema_ = nullptr;
  avro_value_iface_t* iface_ = nullptr;
  avro_value_t value_;
  bool has_value_ = false;
  avro_reader_t reader_ = nullptr;
  std::string json_;
  dom::parser parser_;
  RecordLayout top_;
  RecordLayout row_;
  bool is_envelope_ = false;
  EnvelopeIndex envelope_;

  static int IndexIn(const RecordLayout& layout, const char* name) {
    auto it = layout.find(name);
    return it == layout.end() ? -1 : it->second.index;
  }

  void IndexEnvelope(const NamedTypes& named, dom::object record) {
    envelope_.op = IndexIn(top_, "op");
    envelope_.before = IndexIn(top_, "before");
    envelope_.after = IndexIn(top_, "after");
    envelope_.source = IndexIn(top_, "source");
    envelope_.ts_ms = IndexIn(top_, "ts_ms");
    dom::array fields;
    if (record["fields"].get_array().get(fields) != simdjson::SUCCESS) return;
    for (dom::element field : fields) {
      std::string_view name;
      dom::element declared;
      dom::object source;
      if (field["name"].get_string().get(name) != simdjson::SUCCESS || name != "source" ||
          field["type"].get(declared) != simdjson::SUCCESS ||
          named.Resolve(declared).get_object().get(source) != simdjson::SUCCESS) {
        continue;
      }
      const RecordLayout source_layout = LayoutOf(named, source);
      envelope_.source_db = IndexIn(source_layout, "db");
      envelope_.source_table = IndexIn(source_layout, "table");
      envelope_.source_ts_ms = IndexIn(source_layout, "ts_ms");
      envelope_.source_file = IndexIn(source_layout, "file");
      envelope_.source_pos = IndexIn(source_layout, "pos");
      envelope_.source_row = IndexIn(source_layout, "row");
    }
  }
};

// The Confluent wire format's header, and the writers of the ids seen, prepared once each.
class ConfluentReader {
 public:
  explicit ConfluentReader(std::shared_ptr<SchemaRegistry> registry)
      : registry_(std::move(registry)) {}

  // The writer of `record` and its Avro body.
  absl::StatusOr<AvroWriter*> WriterOf(std::string_view place, std::string_view record,
                                       std::string_view* body) {
    if (record.size() < 5) {
      return Invalid(place, absl::StrCat(record.size(),
                                         " bytes, shorter than the Confluent wire format's "
                                         "5-byte header (magic byte 0, schema id)"));
    }
    if (record[0] != 0) {
      return Invalid(place,
                     absl::StrFormat("magic byte 0x%02x, not 0: not the Confluent Avro wire "
                                     "format (is the source's format right?)",
                                     static_cast<unsigned char>(record[0])));
    }
    const int32_t id = static_cast<int32_t>((static_cast<uint32_t>(static_cast<uint8_t>(record[1])) << 24) |
                                            (static_cast<uint32_t>(static_cast<uint8_t>(record[2])) << 16) |
                                            (static_cast<uint32_t>(static_cast<uint8_t>(record[3])) << 8) |
                                            static_cast<uint32_t>(static_cast<uint8_t>(record[4])));
    *body = record.substr(5);
    if (auto it = writers_.find(id); it != writers_.end()) return it->second.get();
    absl::StatusOr<std::shared_ptr<const RegisteredSchema>> registered = registry_->Get(id);
    if (!registered.ok()) {
      const absl::Status& status = registered.status();
      if (status.code() == absl::StatusCode::kNotFound ||
          status.code() == absl::StatusCode::kInvalidArgument) {
        return Invalid(place, absl::StrCat("schema id ", id, ": ", status.message()));
      }
      return status;  // Unavailable: not the record's fault.
    }
    absl::StatusOr<std::unique_ptr<AvroWriter>> writer = AvroWriter::Prepare(place, **registered);
    if (!writer.ok()) return writer.status();
    return writers_.emplace(id, *std::move(writer)).first->second.get();
  }

 private:
  std::shared_ptr<SchemaRegistry> registry_;
  absl::flat_hash_map<int32_t, std::unique_ptr<AvroWriter>> writers_;
};

// ---------------------------------------------------------------------------------------------
// Reading Avro values into the shared views.

// Follows union branches to the value itself.
bool Unwrap(avro_value_t* value) {
  while (avro_value_get_type(value) == AVRO_UNION) {
    avro_value_t branch;
    if (avro_value_get_current_branch(value, &branch) != 0) return false;
    *value = branch;
  }
  return true;
}

// A float as the JSON converter prints it (its shortest decimal form), so FLOAT columns read the
// same double from Avro as from JSON: 0.1f is 0.1, not 0.100000001490116.
double ShortestDouble(float value) {
  char buffer[32];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer) - 1, value);
  *result.ptr = '\0';
  return std::strtod(buffer, nullptr);
}

WireValue WireOf(avro_value_t value, bool variable_scale, FieldType* type) {
  WireValue wire;
  if (!Unwrap(&value)) {
    wire.type = WireValue::Type::kComposite;
    wire.type_name = "union";
    return wire;
  }
  switch (avro_value_get_type(&value)) {
    case AVRO_NULL:
      break;
    case AVRO_BOOLEAN: {
      int b = 0;
      avro_value_get_boolean(&value, &b);
      wire.type = WireValue::Type::kBool;
      wire.type_name = "boolean";
      wire.boolean = b != 0;
      break;
    }
    case AVRO_INT32: {
      int32_t i = 0;
      avro_value_get_int(&value, &i);
      wire.type = WireValue::Type::kInteger;
      wire.type_name = "int";
      wire.integer = i;
      break;
    }
    case AVRO_INT64: {
      int64_t i = 0;
      avro_value_get_long(&value, &i);
      wire.type = WireValue::Type::kInteger;
      wire.type_name = "long";
      wire.integer = i;
      break;
    }
    case AVRO_FLOAT: {
      float f = 0;
      avro_value_get_float(&value, &f);
      wire.type = WireValue::Type::kReal;
      wire.type_name = "float";
      wire.real = ShortestDouble(f);
      break;
    }
    case AVRO_DOUBLE:
      avro_value_get_double(&value, &wire.real);
      wire.type = WireValue::Type::kReal;
      wire.type_name = "double";
      break;
    case AVRO_STRING: {
      const char* text = nullptr;
      size_t size = 0;  // With the terminating NUL.
      avro_value_get_string(&value, &text, &size);
      wire.type = WireValue::Type::kText;
      wire.type_name = "string";
      wire.text = std::string_view(text, size > 0 ? size - 1 : 0);
      break;
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
      const void* bytes = nullptr;
      size_t size = 0;
      const bool fixed = avro_value_get_type(&value) == AVRO_FIXED;
      if (fixed) {
        avro_value_get_fixed(&value, &bytes, &size);
      } else {
        avro_value_get_bytes(&value, &bytes, &size);
      }
      wire.type = WireValue::Type::kBytes;
      wire.type_name = fixed ? "fixed" : "bytes";
      wire.text = std::string_view(static_cast<const char*>(bytes), size);
      break;
    }
    case AVRO_ENUM: {
      int symbol = 0;
      avro_value_get_enum(&value, &symbol);
      const char* name = avro_schema_enum_get(avro_value_get_schema(&value), symbol);
      wire.type = WireValue::Type::kText;
      wire.type_name = "enum";
      wire.text = name != nullptr ? std::string_view(name) : std::string_view();
      break;
    }
    case AVRO_RECORD: {
      avro_value_t scale, digits;
      int32_t scale_value = -1;
      if (variable_scale && avro_value_get_by_name(&value, "scale", &scale, nullptr) == 0 &&
          avro_value_get_by_name(&value, "value", &digits, nullptr) == 0 && Unwrap(&scale) &&
          avro_value_get_int(&scale, &scale_value) == 0 && scale_value >= 0 &&
          scale_value <= 1000) {
        WireValue unscaled = WireOf(digits, false, type);
        if (unscaled.type == WireValue::Type::kBytes) {
          type->scale = scale_value;
          return unscaled;
        }
      }
      wire.type = WireValue::Type::kComposite;
      wire.type_name = "record";
      break;
    }
    case AVRO_ARRAY:
      wire.type = WireValue::Type::kComposite;
      wire.type_name = "array";
      break;
    default:
      wire.type = WireValue::Type::kComposite;
      wire.type_name = "map";
      break;
  }
  return wire;
}

class AvroRow final : public RowView {
 public:
  void Reset(avro_value_t record, const RecordLayout* layout) {
    record_ = record;
    layout_ = layout;
  }
  bool Find(std::string_view name, WireValue* value, FieldType* schema_type) const override {
    auto it = layout_->find(AV(name));
    if (it == layout_->end()) return false;
    avro_value_t field;
    if (avro_value_get_by_index(&record_, static_cast<size_t>(it->second.index), &field,
                                nullptr) != 0) {
      return false;
    }
    *schema_type = it->second.type;
    *value = WireOf(field, it->second.variable_scale, schema_type);
    return true;
  }

 private:
  mutable avro_value_t record_;
  const RecordLayout* layout_ = nullptr;
};

// The field at `index` of a record (-1: the schema has none), unions followed; false when absent
// or null.
bool FieldOf(avro_value_t* record, int index, avro_value_t* out) {
  if (index < 0 || avro_value_get_by_index(record, static_cast<size_t>(index), out, nullptr) != 0 ||
      !Unwrap(out)) {
    return false;
  }
  return avro_value_get_type(out) != AVRO_NULL;
}

std::optional<std::string_view> StringOf(avro_value_t* record, int index) {
  avro_value_t field;
  const char* text = nullptr;
  size_t size = 0;
  if (!FieldOf(record, index, &field) || avro_value_get_type(&field) != AVRO_STRING ||
      avro_value_get_string(&field, &text, &size) != 0) {
    return std::nullopt;
  }
  return std::string_view(text, size > 0 ? size - 1 : 0);
}

std::optional<int64_t> LongOf(avro_value_t* record, int index) {
  avro_value_t field;
  if (!FieldOf(record, index, &field)) return std::nullopt;
  if (avro_value_get_type(&field) == AVRO_INT32) {  // Debezium's source.row is an int.
    int32_t value = 0;
    if (avro_value_get_int(&field, &value) != 0) return std::nullopt;
    return value;
  }
  int64_t value = 0;
  if (avro_value_get_type(&field) != AVRO_INT64 || avro_value_get_long(&field, &value) != 0) {
    return std::nullopt;
  }
  return value;
}

class AvroEnvelope final : public EnvelopeView {
 public:
  AvroEnvelope(avro_value_t* root, const AvroWriter& writer)
      : root_(root), writer_(writer), index_(writer.envelope()) {}

  absl::StatusOr<std::string_view> Op() override {
    std::optional<std::string_view> op = StringOf(root_, index_.op);
    if (!op.has_value()) return Invalid("op", "missing field, or not a string");
    return *op;
  }

  absl::Status SourceTable(std::optional<std::string_view>* db,
                           std::optional<std::string_view>* table) override {
    avro_value_t source;
    if (!FieldOf(root_, index_.source, &source) || avro_value_get_type(&source) != AVRO_RECORD) {
      return absl::OkStatus();
    }
    *db = StringOf(&source, index_.source_db);
    *table = StringOf(&source, index_.source_table);
    return absl::OkStatus();
  }

  absl::StatusOr<const RowView*> Image(std::string_view image) override {
    avro_value_t row;
    if (!FieldOf(root_, image == "after" ? index_.after : index_.before, &row)) return nullptr;
    if (avro_value_get_type(&row) != AVRO_RECORD) {
      return Invalid(image, absl::StrCat("expected a record in writer schema id ", writer_.id()));
    }
    row_.Reset(row, &writer_.row());
    return &row_;
  }

  bool BinlogPosition(std::string_view* file, int64_t* pos, int64_t* row) override {
    avro_value_t source;
    if (!FieldOf(root_, index_.source, &source) || avro_value_get_type(&source) != AVRO_RECORD) {
      return false;
    }
    std::optional<std::string_view> f = StringOf(&source, index_.source_file);
    std::optional<int64_t> p = LongOf(&source, index_.source_pos);
    std::optional<int64_t> r = LongOf(&source, index_.source_row);
    if (!f.has_value() || !p.has_value() || !r.has_value()) return false;
    *file = *f;
    *pos = *p;
    *row = *r;
    return true;
  }

  absl::StatusOr<std::optional<int64_t>> EventTimeMs() override {
    avro_value_t source;
    if (FieldOf(root_, index_.source, &source) && avro_value_get_type(&source) == AVRO_RECORD) {
      if (std::optional<int64_t> ms = LongOf(&source, index_.source_ts_ms); ms.has_value()) {
        return ms;
      }
    }
    return LongOf(root_, index_.ts_ms);
  }

 private:
  avro_value_t* root_;
  const AvroWriter& writer_;
  const AvroWriter::EnvelopeIndex& index_;
  AvroRow row_;
};

class AvroKeyReader final : public RecordKeyReader {
 public:
  explicit AvroKeyReader(std::shared_ptr<SchemaRegistry> registry)
      : confluent_(std::move(registry)) {}

  absl::StatusOr<const RowView*> Read(std::string_view record_key) override {
    std::string_view body;
    absl::StatusOr<AvroWriter*> writer = confluent_.WriterOf("key", record_key, &body);
    if (!writer.ok()) return writer.status();
    absl::StatusOr<avro_value_t*> value = (*writer)->Read("key", body);
    if (!value.ok()) return value.status();
    row_.Reset(**value, &(*writer)->top());
    return &row_;
  }

 private:
  ConfluentReader confluent_;
  AvroRow row_;
};

// Sends each source to the decoder of its value format.
class PerSourceDecoder final : public RecordDecoder {
 public:
  explicit PerSourceDecoder(std::vector<std::unique_ptr<RecordDecoder>> by_source)
      : by_source_(std::move(by_source)) {}

  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                 std::optional<std::string_view> record_value,
                                 int64_t record_timestamp_ms, EventPosition position) override {
    if (source < 0 || static_cast<size_t>(source) >= by_source_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("source index ", source, " out of range"));
    }
    return by_source_[static_cast<size_t>(source)]->Decode(source, record_key, record_value,
                                                           record_timestamp_ms, position);
  }

 private:
  std::vector<std::unique_ptr<RecordDecoder>> by_source_;
};

}  // namespace

struct AvroDecoder::Impl {
  FieldDecodeContext context;
  ConfluentReader confluent;
  std::vector<std::unique_ptr<RecordKeyReader>> keys;  // Per source.

  explicit Impl(std::shared_ptr<SchemaRegistry> registry) : confluent(std::move(registry)) {}
};

absl::StatusOr<std::unique_ptr<AvroDecoder>> AvroDecoder::Create(
    const TableSchema* schema, DecoderOptions options, std::shared_ptr<SchemaRegistry> registry,
    std::vector<std::unique_ptr<RecordKeyReader>> key_readers) {
  if (schema == nullptr) return absl::InvalidArgumentError("decoder: schema is null");
  if (registry == nullptr) return absl::InvalidArgumentError("decoder: no schema registry");
  if (absl::Status s = CheckKeyFieldCounts(*schema); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(registry);
  impl->context.schema = schema;
  impl->context.options = options;
  impl->context.format = "Avro";
  impl->keys = std::move(key_readers);
  impl->keys.resize(schema->sources.size());
  for (std::unique_ptr<RecordKeyReader>& reader : impl->keys) {
    if (reader == nullptr) reader = NewKeyReader(registry);
  }
  return std::unique_ptr<AvroDecoder>(new AvroDecoder(std::move(impl)));
}

std::unique_ptr<RecordKeyReader> AvroDecoder::NewKeyReader(
    std::shared_ptr<SchemaRegistry> registry) {
  return std::make_unique<AvroKeyReader>(std::move(registry));
}

AvroDecoder::AvroDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AvroDecoder::~AvroDecoder() = default;

absl::StatusOr<Decoded> AvroDecoder::Decode(int source,
                                            std::optional<std::string_view> record_key,
                                            std::optional<std::string_view> record_value,
                                            int64_t record_timestamp_ms, EventPosition position) {
  const FieldDecodeContext& context = impl_->context;
  Decoded out;
  absl::StatusOr<bool> tombstone = StartRecord(context, source, record_value, position, &out);
  if (!tombstone.ok()) return tombstone.status();
  if (*tombstone) return out;
  std::string_view body;
  absl::StatusOr<AvroWriter*> writer = impl_->confluent.WriterOf("value", *record_value, &body);
  if (!writer.ok()) return writer.status();
  if (!(*writer)->is_envelope()) {
    return Invalid("value", absl::StrCat("writer schema id ", (*writer)->id(),
                                         " is no Debezium envelope (no before/after record)"));
  }
  absl::StatusOr<avro_value_t*> root = (*writer)->Read("value", body);
  if (!root.ok()) return root.status();
  AvroEnvelope envelope(*root, **writer);
  return DecodeEnvelope(context, source, envelope, *impl_->keys[static_cast<size_t>(source)],
                        record_key, record_timestamp_ms, std::move(out));
}

absl::StatusOr<std::unique_ptr<RecordDecoder>> NewRecordDecoder(const TableSchema* schema,
                                                                const v1::Config& config) {
  bool any_avro = false;
  for (const v1::SourceConfig& source : config.sources()) {
    any_avro |= source.value_format() == v1::AVRO || source.key_format() == v1::AVRO;
  }
  if (!any_avro) return DebeziumDecoder::ForConfig(schema, config);
  absl::StatusOr<std::shared_ptr<SchemaRegistry>> registry =
      SchemaRegistry::ForConfig(config.schema_registry());
  if (!registry.ok()) return registry.status();
  const DecoderOptions options = DecoderOptionsOf(config);
  auto key_readers = [&] {
    std::vector<std::unique_ptr<RecordKeyReader>> readers;
    for (const v1::SourceConfig& source : config.sources()) {
      readers.push_back(source.key_format() == v1::AVRO ? AvroDecoder::NewKeyReader(*registry)
                                                        : DebeziumDecoder::NewJsonKeyReader());
    }
    return readers;
  };
  std::vector<std::unique_ptr<RecordDecoder>> by_source;
  for (const v1::SourceConfig& source : config.sources()) {
    if (source.value_format() == v1::AVRO) {
      absl::StatusOr<std::unique_ptr<AvroDecoder>> decoder =
          AvroDecoder::Create(schema, options, *registry, key_readers());
      if (!decoder.ok()) return decoder.status();
      by_source.push_back(*std::move(decoder));
    } else {
      absl::StatusOr<DebeziumDecoder> decoder =
          DebeziumDecoder::Create(schema, options, key_readers());
      if (!decoder.ok()) return decoder.status();
      by_source.push_back(std::make_unique<DebeziumDecoder>(*std::move(decoder)));
    }
  }
  return std::unique_ptr<RecordDecoder>(std::make_unique<PerSourceDecoder>(std::move(by_source)));
}

}  // namespace cdcjoin
