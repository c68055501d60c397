#include "service/avro_decoder.h"

// Avro C decodes the binary bodies. Its schema objects drop the attributes Debezium's types
// live in (connect.name, logicalType, scale), so those are read from the schema's JSON with
// simdjson (error codes only: the BUILD file sets SIMDJSON_EXCEPTIONS=0).
#include <avro.h>
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  // io.debezium.data.VariableScaleDecimal: a record {scale: int, value: bytes}, scale per value;
  // the positions of its two fields.
  bool variable_scale = false;
  int scale_field = -1;
  int digits_field = -1;
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
    dom::array fields;
    if (info.variable_scale && object["fields"].get_array().get(fields) == simdjson::SUCCESS) {
      int position = 0;
      for (dom::element field : fields) {
        std::string_view name;
        if (field["name"].get_string().get(name) == simdjson::SUCCESS) {
          if (name == "scale") info.scale_field = position;
          if (name == "value") info.digits_field = position;
        }
        ++position;
      }
    }
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

// A record layout's fields by name, for the envelope rules' lookups (RowView::Find). Those ask for
// the same names in the same order for every record of a writer (the key fields, then the mapped
// columns), so the names asked for are remembered in that order and the expected one is compared
// first: a hit costs comparing a short name instead of hashing it into the map (the hash lookup
// was ~190 of the Avro decode's ~6,300 instructions per event, 2.5 times per event in
// windowed_join_bench). A name out of that order is looked up in the map and the order is
// recorded anew from there. Not thread-safe: one decoder's.
class FieldsByName {
 public:
  FieldsByName() = default;
  explicit FieldsByName(RecordLayout layout) : layout_(std::move(layout)) {}
  FieldsByName(FieldsByName&&) = default;
  FieldsByName& operator=(FieldsByName&&) = default;

  // nullptr when the record has no field `name`.
  const FieldInfo* Find(std::string_view name) const {
    if (next_ < order_.size() && order_[next_].name == name) return order_[next_++].info;
    if (!order_.empty() && order_[0].name == name) {  // The next record's first lookup.
      next_ = 1;
      return order_[0].info;
    }
    auto it = layout_.find(AV(name));
    const FieldInfo* info = it == layout_.end() ? nullptr : &it->second;
    if (next_ < kMostRemembered) {
      order_.resize(next_);
      order_.push_back(Asked{std::string(name), info});
      ++next_;
    }
    return info;
  }

  // The position of field `name`; -1 when the record has none.
  int IndexOf(const char* name) const {
    auto it = layout_.find(name);
    return it == layout_.end() ? -1 : it->second.index;
  }

 private:
  // Far more than a mapping has columns; bounds the memory of a caller asking for many names.
  static constexpr size_t kMostRemembered = 1024;

  struct Asked {
    std::string name;
    const FieldInfo* info;  // Into layout_, which never changes after construction.
  };

  RecordLayout layout_;
  mutable std::vector<Asked> order_;
  mutable size_t next_ = 0;
};

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
// Reading a body. Avro C's consumer API (avro_consume_binary) hands each datum of the body to a
// tree of consumers built once per writer schema; their callbacks put each value into a slot by
// position, strings and bytes as views of the body's arena (below). Fields nobody reads (most of
// Debezium's `source` block, arrays, maps, records nested deeper than a decimal) get no
// consumer: Avro C skips them (still checking they fit in the body). This replaced
// avro_value_read into a generic value, whose reset, wrapped allocation per string and calls
// through the value interface per field cost more than the whole JSON decode
// (docs/benchmarks.md).

// One datum of the last body read, union branches followed.
struct Slot {
  avro_type_t type = AVRO_NULL;  // Also AVRO_NULL for a field that is not read.
  WireValue wire;
  int fields = -1;  // A record whose fields were read: the slot of its first field.
  int field_count = 0;
};

// Memory for what Avro C allocates while it reads one body: the strings, bytes and fixed
// datums. Avro C 1.11.1 (Debian 12) hands them to the consumer without freeing them afterwards,
// and when a corrupt length runs past the body's end it returns the error without freeing the
// buffer it allocated for that length (fixed upstream later, AVRO-4246). Its allocator is
// replaceable (avro_set_allocator): while a body is read on a thread, allocations come from
// that reader's arena, released when the next body starts. So a corrupt body leaks nothing, a
// length longer than the whole body is refused before anything is allocated, and the datums
// need neither a copy nor a free. Outside a read the allocator does what Avro C's default does.
class BodyArena {
 public:
  BodyArena() = default;
  BodyArena(const BodyArena&) = delete;
  BodyArena& operator=(const BodyArena&) = delete;
  ~BodyArena() { ReleaseOverflow(); }

  // Before reading a body of `body_size` bytes: what the previous body allocated is released.
  void Start(size_t body_size) {
    ReleaseOverflow();
    // A datum is never longer than its body; with each one's NUL and alignment they rarely
    // need more than twice the body (more goes to the heap until the next Start).
    const size_t capacity = 2 * body_size + 64;
    if (capacity_ < capacity) {
      block_ = std::make_unique<char[]>(capacity);
      capacity_ = capacity;
    }
    used_ = 0;
    largest_ = body_size + 1;
  }

  // Avro C's allocator contract (allocation.h): new_size 0 frees, a null ptr allocates.
  void* Reallocate(void* ptr, size_t old_size, size_t new_size) {
    if (new_size == 0) {
      if (!Owns(ptr)) std::free(ptr);
      return nullptr;
    }
    if (ptr != nullptr && !Owns(ptr)) return std::realloc(ptr, new_size);
    if (new_size > largest_) {
      avro_set_error("%zu bytes asked for in a body of %zu", new_size, largest_ - 1);
      return nullptr;
    }
    void* fresh = Allocate(new_size);
    if (fresh != nullptr && ptr != nullptr) std::memcpy(fresh, ptr, std::min(old_size, new_size));
    return fresh;
  }

 private:
  void* Allocate(size_t size) {
    const size_t at = (used_ + 7) & ~size_t{7};
    if (at <= capacity_ && size <= capacity_ - at) {
      used_ = at + size;
      return block_.get() + at;
    }
    void* heap = std::malloc(size);
    if (heap != nullptr) overflow_.push_back(heap);
    return heap;
  }

  bool Owns(const void* ptr) const {
    const char* p = static_cast<const char*>(ptr);
    if (block_ != nullptr && p >= block_.get() && p < block_.get() + capacity_) return true;
    return std::find(overflow_.begin(), overflow_.end(), ptr) != overflow_.end();
  }

  void ReleaseOverflow() {
    for (void* heap : overflow_) std::free(heap);
    overflow_.clear();
  }

  std::unique_ptr<char[]> block_;
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t largest_ = 0;
  std::vector<void*> overflow_;
};

// The arena of the body this thread is reading, if any.
thread_local BodyArena* reading_arena = nullptr;

void* AvroAllocate(void* /*user_data*/, void* ptr, size_t old_size, size_t new_size) {
  if (reading_arena != nullptr) return reading_arena->Reallocate(ptr, old_size, new_size);
  if (new_size == 0) {
    std::free(ptr);
    return nullptr;
  }
  return std::realloc(ptr, new_size);
}

// Installs AvroAllocate before this process reads its first body (ConfluentReader does). It
// behaves as Avro C's default outside a read, so memory allocated before by either is freed
// correctly by the other.
void InstallAvroAllocator() {
  static const bool installed = [] {
    avro_set_allocator(AvroAllocate, nullptr);
    return true;
  }();
  (void)installed;
}

// What the last body read left: the slots, their strings and bytes in the arena.
class BodyValues {
 public:
  int AddSlots(size_t count) {
    const int first = static_cast<int>(slots_.size());
    slots_.resize(slots_.size() + count);
    return first;
  }
  Slot& slot(int index) { return slots_[static_cast<size_t>(index)]; }
  const Slot& top() const { return slots_[0]; }

  // The field at `index` of the record in `record` (-1: the schema has none); nullptr when
  // absent or not read.
  const Slot* Field(const Slot& record, int index) const {
    if (record.type != AVRO_RECORD || record.fields < 0 || index < 0 ||
        index >= record.field_count) {
      return nullptr;
    }
    return &slots_[static_cast<size_t>(record.fields + index)];
  }

 private:
  std::vector<Slot> slots_;
};

// One consumer of the tree: where its datum goes. Avro C passes the node back as user_data.
struct ReadNode {
  avro_consumer_t consumer{};  // consumer.schema: this node's schema, links followed.
  BodyValues* values = nullptr;
  avro_reader_t reader = nullptr;           // To skip a union branch that is not read.
  const avro_consumer_t* nothing = nullptr;  // Reads no bytes: stands for a skipped branch.
  int slot = 0;
  int first_field = -1;  // A record: the slot of its first field.
  // A record's fields or a union's branches; nullptr: skipped, the slot gets skipped[i].
  std::vector<ReadNode*> children;
  std::vector<Slot> skipped;
};

ReadNode& NodeOf(void* user_data) { return *static_cast<ReadNode*>(user_data); }

Slot& Fill(void* user_data, avro_type_t type, WireValue::Type wire_type, const char* type_name) {
  ReadNode& node = NodeOf(user_data);
  Slot& slot = node.values->slot(node.slot);
  slot = Slot();
  slot.type = type;
  slot.wire.type = wire_type;
  slot.wire.type_name = type_name;
  return slot;
}

// A float as the JSON converter prints it (its shortest decimal form), so FLOAT columns read the
// same double from Avro as from JSON: 0.1f is 0.1, not 0.100000001490116.
double ShortestDouble(float value) {
  char buffer[32];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer) - 1, value);
  *result.ptr = '\0';
  return std::strtod(buffer, nullptr);
}

int OnNull(avro_consumer_t*, void* user_data) {
  ReadNode& node = NodeOf(user_data);
  node.values->slot(node.slot) = Slot();
  return 0;
}

int OnBoolean(avro_consumer_t*, int value, void* user_data) {
  Fill(user_data, AVRO_BOOLEAN, WireValue::Type::kBool, "boolean").wire.boolean = value != 0;
  return 0;
}

int OnInt(avro_consumer_t*, int32_t value, void* user_data) {
  Fill(user_data, AVRO_INT32, WireValue::Type::kInteger, "int").wire.integer = value;
  return 0;
}

int OnLong(avro_consumer_t*, int64_t value, void* user_data) {
  Fill(user_data, AVRO_INT64, WireValue::Type::kInteger, "long").wire.integer = value;
  return 0;
}

int OnFloat(avro_consumer_t*, float value, void* user_data) {
  Fill(user_data, AVRO_FLOAT, WireValue::Type::kReal, "float").wire.real = ShortestDouble(value);
  return 0;
}

int OnDouble(avro_consumer_t*, double value, void* user_data) {
  Fill(user_data, AVRO_DOUBLE, WireValue::Type::kReal, "double").wire.real = value;
  return 0;
}

// Strings, bytes and fixed arrive in the body's arena (BodyArena), where they stay until the
// next body: the slot points to them.
int OnString(avro_consumer_t*, const void* value, size_t size_with_nul, void* user_data) {
  // Avro C 1.11 counts the string's NUL in its size (consume-binary.c, encoding_binary.c).
  Fill(user_data, AVRO_STRING, WireValue::Type::kText, "string").wire.text = std::string_view(
      static_cast<const char*>(value), size_with_nul > 0 ? size_with_nul - 1 : 0);
  return 0;
}

int OnBytes(avro_consumer_t*, const void* value, size_t size, void* user_data) {
  Fill(user_data, AVRO_BYTES, WireValue::Type::kBytes, "bytes").wire.text =
      std::string_view(static_cast<const char*>(value), size);
  return 0;
}

int OnFixed(avro_consumer_t*, const void* value, size_t size, void* user_data) {
  Fill(user_data, AVRO_FIXED, WireValue::Type::kBytes, "fixed").wire.text =
      std::string_view(static_cast<const char*>(value), size);
  return 0;
}

int OnEnum(avro_consumer_t* consumer, int symbol, void* user_data) {
  // avro_schema_enum_get does not check the index: a corrupt body must not reach it.
  if (symbol < 0 || symbol >= avro_schema_enum_number_of_symbols(consumer->schema)) {
    avro_set_error("Invalid enum symbol index %d", symbol);
    return EINVAL;
  }
  Fill(user_data, AVRO_ENUM, WireValue::Type::kText, "enum").wire.text =
      avro_schema_enum_get(consumer->schema, symbol);
  return 0;
}

int OnRecordStart(avro_consumer_t*, void* user_data) {
  ReadNode& node = NodeOf(user_data);
  Slot& slot = Fill(user_data, AVRO_RECORD, WireValue::Type::kComposite, "record");
  slot.fields = node.first_field;
  slot.field_count = static_cast<int>(node.children.size());
  return 0;
}

int OnRecordField(avro_consumer_t*, unsigned int index, avro_consumer_t** field_consumer,
                  void** field_user_data, void* user_data) {
  ReadNode& node = NodeOf(user_data);
  ReadNode* field = node.children[index];  // Avro C asks for each field of the schema.
  if (field == nullptr) {
    node.values->slot(node.first_field + static_cast<int>(index)) = node.skipped[index];
    *field_consumer = nullptr;  // Avro C skips the field.
    return 0;
  }
  *field_consumer = &field->consumer;
  *field_user_data = field;
  return 0;
}

int OnUnionBranch(avro_consumer_t* consumer, unsigned int discriminant,
                  avro_consumer_t** branch_consumer, void** branch_user_data, void* user_data) {
  ReadNode& node = NodeOf(user_data);
  if (discriminant >= node.children.size()) {
    avro_set_error("Invalid union discriminant value: (%u)", discriminant);
    return EINVAL;
  }
  ReadNode* branch = node.children[discriminant];
  if (branch == nullptr) {
    node.values->slot(node.slot) = node.skipped[discriminant];
    if (int rval = avro_skip_data(node.reader,
                                  avro_schema_union_branch(consumer->schema, discriminant));
        rval != 0) {
      return rval;
    }
    *branch_consumer = const_cast<avro_consumer_t*>(node.nothing);
    *branch_user_data = nullptr;
    return 0;
  }
  *branch_consumer = &branch->consumer;
  *branch_user_data = branch;
  return 0;
}

avro_schema_t Followed(avro_schema_t schema) {
  while (is_avro_link(schema)) schema = avro_schema_link_target(schema);
  return schema;
}

// What a writer's bodies are read for: the fields nobody asks for are skipped.
struct ReadScope {
  bool envelope = false;      // Debezium envelopes (record values); else whole records (keys).
  bool source_table = false;  // The envelope's source.db and source.table: a source checks them.
};

// The tree of consumers of one writer schema, and the values its last body left.
class BodyReader {
 public:
  // `schema` (a record) stays alive as long as the reader.
  BodyReader(avro_schema_t schema, ReadScope scope)
      : scope_(scope), reader_(avro_reader_memory(nullptr, 0)), null_schema_(avro_schema_null()) {
    nothing_.schema = null_schema_;
    values_.AddSlots(1);
    root_ = Node(schema, 0, 0, scope.envelope ? Role::kEnvelope : Role::kAll);
  }
  ~BodyReader() {
    if (reader_ != nullptr) avro_reader_free(reader_);
    avro_schema_decref(null_schema_);
  }
  BodyReader(const BodyReader&) = delete;
  BodyReader& operator=(const BodyReader&) = delete;

  // Reads `body`; the values stay valid until the next Read. Returns avro_consume_binary's code.
  int Read(std::string_view body) {
    if (reader_ == nullptr) {
      avro_set_error("Cannot allocate a memory reader");
      return ENOMEM;
    }
    arena_.Start(body.size());
    avro_reader_memory_set_source(reader_, body.data(), static_cast<int64_t>(body.size()));
    reading_arena = &arena_;
    const int rval = avro_consume_binary(reader_, &root_->consumer, root_);
    reading_arena = nullptr;
    return rval;
  }

  const BodyValues& values() const { return values_; }

 private:
  // Records deeper than this (the envelope 0, a row image 1, a decimal record in a row 2) are
  // never looked into: they are skipped.
  static constexpr int kDeepestRecordRead = 2;

  // What a record's fields are read for.
  enum class Role {
    kAll,       // Every field (row images, record keys).
    kEnvelope,  // Debezium's envelope: op, before, after, source, ts_ms.
    kSource,    // Debezium's source block: ts_ms, file, pos, row; db and table if checked.
  };

  bool Wanted(Role role, std::string_view field) const {
    switch (role) {
      case Role::kAll:
        return true;
      case Role::kEnvelope:
        return field == "op" || field == "before" || field == "after" || field == "source" ||
               field == "ts_ms";
      case Role::kSource:
        return field == "ts_ms" || field == "file" || field == "pos" || field == "row" ||
               (scope_.source_table && (field == "db" || field == "table"));
    }
    return false;
  }

  // Whether a datum of `schema` at `depth` is read (else skipped, its slot `SkippedSlot`).
  static bool Reads(avro_schema_t schema, int depth) {
    switch (avro_typeof(Followed(schema))) {
      case AVRO_ARRAY:
      case AVRO_MAP:
        return false;
      case AVRO_RECORD:
        return depth <= kDeepestRecordRead;
      default:
        return true;
    }
  }

  static Slot SkippedSlot(avro_schema_t schema) {
    Slot slot;
    slot.type = avro_typeof(Followed(schema));
    slot.wire.type = WireValue::Type::kComposite;
    slot.wire.type_name = slot.type == AVRO_ARRAY ? "array"
                          : slot.type == AVRO_MAP ? "map"
                                                  : "record";
    return slot;
  }

  ReadNode* Node(avro_schema_t schema, int slot, int depth, Role role) {
    schema = Followed(schema);
    nodes_.push_back(std::make_unique<ReadNode>());
    ReadNode* node = nodes_.back().get();
    node->consumer.schema = schema;
    node->values = &values_;
    node->reader = reader_;
    node->nothing = &nothing_;
    node->slot = slot;
    avro_consumer_t& consumer = node->consumer;
    switch (avro_typeof(schema)) {
      case AVRO_NULL:
        consumer.null_value = OnNull;
        break;
      case AVRO_BOOLEAN:
        consumer.boolean_value = OnBoolean;
        break;
      case AVRO_INT32:
        consumer.int_value = OnInt;
        break;
      case AVRO_INT64:
        consumer.long_value = OnLong;
        break;
      case AVRO_FLOAT:
        consumer.float_value = OnFloat;
        break;
      case AVRO_DOUBLE:
        consumer.double_value = OnDouble;
        break;
      case AVRO_STRING:
        consumer.string_value = OnString;
        break;
      case AVRO_BYTES:
        consumer.bytes_value = OnBytes;
        break;
      case AVRO_FIXED:
        consumer.fixed_value = OnFixed;
        break;
      case AVRO_ENUM:
        consumer.enum_value = OnEnum;
        break;
      case AVRO_UNION:
        consumer.union_branch = OnUnionBranch;
        for (size_t i = 0; i < avro_schema_union_size(schema); ++i) {
          const avro_schema_t branch = avro_schema_union_branch(schema, static_cast<int>(i));
          const bool reads = Reads(branch, depth);
          node->children.push_back(reads ? Node(branch, slot, depth, role) : nullptr);
          node->skipped.push_back(reads ? Slot() : SkippedSlot(branch));
        }
        break;
      case AVRO_RECORD: {
        consumer.record_start = OnRecordStart;
        consumer.record_field = OnRecordField;
        const size_t count = avro_schema_record_size(schema);
        node->first_field = values_.AddSlots(count);
        for (size_t i = 0; i < count; ++i) {
          const int index = static_cast<int>(i);
          const char* name = avro_schema_record_field_name(schema, index);
          const avro_schema_t field = avro_schema_record_field_get_by_index(schema, index);
          const bool wanted = name != nullptr && Wanted(role, name);
          const bool reads = wanted && Reads(field, depth + 1);
          const Role field_role = wanted && role == Role::kEnvelope &&
                                          std::string_view(name) == "source"
                                      ? Role::kSource
                                      : Role::kAll;
          node->children.push_back(
              reads ? Node(field, node->first_field + index, depth + 1, field_role) : nullptr);
          node->skipped.push_back(wanted && !reads ? SkippedSlot(field) : Slot());
        }
        break;
      }
      default:  // Arrays and maps are skipped by their parent, links were followed.
        break;
    }
    return node;
  }

  const ReadScope scope_;
  avro_reader_t reader_;
  avro_schema_t null_schema_;
  avro_consumer_t nothing_{};
  BodyArena arena_;
  BodyValues values_;
  std::vector<std::unique_ptr<ReadNode>> nodes_;
  ReadNode* root_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// One writer schema, prepared for reading: Avro C's schema and body reader, and the field
// layouts.

class AvroWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AvroWriter>> Prepare(std::string_view place,
                                                             const RegisteredSchema& registered,
                                                             ReadScope scope) {
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
    writer->top_ = FieldsByName(LayoutOf(named, record));
    for (const char* image : {"after", "before"}) {
      if (writer->top_.IndexOf(image) < 0) continue;
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
        writer->row_ = FieldsByName(LayoutOf(named, row));
        writer->is_envelope_ = true;
        break;
      }
    }
    writer->IndexEnvelope(named, record);
    scope.envelope = scope.envelope && writer->is_envelope_;
    writer->body_ = std::make_unique<BodyReader>(writer->schema_, scope);
    return writer;
  }

  // Where the envelope's parts sit (-1: absent), so decoding addresses them by position.
  struct EnvelopeIndex {
    int op = -1, before = -1, after = -1, source = -1, ts_ms = -1;
    int source_db = -1, source_table = -1, source_ts_ms = -1;
    int source_file = -1, source_pos = -1, source_row = -1;
  };

  ~AvroWriter() {
    body_.reset();  // Before the schema its consumers point to.
    if (schema_ != nullptr) avro_schema_decref(schema_);
  }

  // Decodes `body`; the values are valid until the next Read.
  absl::StatusOr<const BodyValues*> Read(std::string_view place, std::string_view body) {
    if (body_->Read(body) != 0) {
      return Invalid(place, absl::StrCat("Avro body (", body.size(),
                                         " bytes) does not decode with writer schema id ", id_,
                                         ": ", avro_strerror()));
    }
    return &body_->values();
  }

  int32_t id() const { return id_; }
  const EnvelopeIndex& envelope() const { return envelope_; }
  bool is_envelope() const { return is_envelope_; }
  const FieldsByName& top() const { return top_; }
  const FieldsByName& row() const { return row_; }

 private:
  AvroWriter() = default;

  int32_t id_ = 0;
  avro_schema_t schema_ = nullptr;
  std::unique_ptr<BodyReader> body_;
  std::string json_;
  dom::parser parser_;
  FieldsByName top_;
  FieldsByName row_;
  bool is_envelope_ = false;
  EnvelopeIndex envelope_;

  void IndexEnvelope(const NamedTypes& named, dom::object record) {
    envelope_.op = top_.IndexOf("op");
    envelope_.before = top_.IndexOf("before");
    envelope_.after = top_.IndexOf("after");
    envelope_.source = top_.IndexOf("source");
    envelope_.ts_ms = top_.IndexOf("ts_ms");
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
      const FieldsByName source_fields(LayoutOf(named, source));
      envelope_.source_db = source_fields.IndexOf("db");
      envelope_.source_table = source_fields.IndexOf("table");
      envelope_.source_ts_ms = source_fields.IndexOf("ts_ms");
      envelope_.source_file = source_fields.IndexOf("file");
      envelope_.source_pos = source_fields.IndexOf("pos");
      envelope_.source_row = source_fields.IndexOf("row");
    }
  }
};

// The Confluent wire format's header, and the writers of the ids seen, prepared once each.
class ConfluentReader {
 public:
  ConfluentReader(std::shared_ptr<SchemaRegistry> registry, ReadScope scope)
      : registry_(std::move(registry)), scope_(scope) {
    // When the decoders are made, before their first Avro C call: BodyReader relies on it.
    InstallAvroAllocator();
  }

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
    // A topic's records mostly share one writer schema.
    if (last_ != nullptr && last_->id() == id) return last_;
    if (auto it = writers_.find(id); it != writers_.end()) return last_ = it->second.get();
    absl::StatusOr<std::shared_ptr<const RegisteredSchema>> registered = registry_->Get(id);
    if (!registered.ok()) {
      const absl::Status& status = registered.status();
      if (status.code() == absl::StatusCode::kNotFound ||
          status.code() == absl::StatusCode::kInvalidArgument) {
        return Invalid(place, absl::StrCat("schema id ", id, ": ", status.message()));
      }
      return status;  // Unavailable: not the record's fault.
    }
    absl::StatusOr<std::unique_ptr<AvroWriter>> writer =
        AvroWriter::Prepare(place, **registered, scope_);
    if (!writer.ok()) return writer.status();
    return last_ = writers_.emplace(id, *std::move(writer)).first->second.get();
  }

 private:
  std::shared_ptr<SchemaRegistry> registry_;
  ReadScope scope_;
  absl::flat_hash_map<int32_t, std::unique_ptr<AvroWriter>> writers_;
  AvroWriter* last_ = nullptr;  // The writer of the last record.
};

// ---------------------------------------------------------------------------------------------
// Reading the slots into the shared views.

class AvroRow final : public RowView {
 public:
  void Reset(const BodyValues* values, const Slot* record, const FieldsByName* fields) {
    values_ = values;
    record_ = record;
    fields_ = fields;
  }
  bool Find(std::string_view name, WireValue* value, FieldType* schema_type) const override {
    const FieldInfo* found = fields_->Find(name);
    if (found == nullptr) return false;
    const FieldInfo& info = *found;
    const Slot* field = values_->Field(*record_, info.index);
    if (field == nullptr) return false;
    *schema_type = info.type;
    *value = field->wire;
    if (info.variable_scale && field->type == AVRO_RECORD) {
      const Slot* scale = values_->Field(*field, info.scale_field);
      const Slot* digits = values_->Field(*field, info.digits_field);
      if (scale != nullptr && digits != nullptr && scale->type == AVRO_INT32 &&
          scale->wire.integer >= 0 && scale->wire.integer <= 1000 &&
          digits->wire.type == WireValue::Type::kBytes) {
        schema_type->scale = static_cast<int>(scale->wire.integer);
        *value = digits->wire;
      }
    }
    return true;
  }

 private:
  const BodyValues* values_ = nullptr;
  const Slot* record_ = nullptr;
  const FieldsByName* fields_ = nullptr;
};

// The field at `index` of `record` (-1: the schema has none); nullptr when absent or null.
const Slot* PresentField(const BodyValues& values, const Slot& record, int index) {
  const Slot* field = values.Field(record, index);
  return field != nullptr && field->type != AVRO_NULL ? field : nullptr;
}

std::optional<std::string_view> StringOf(const BodyValues& values, const Slot& record,
                                         int index) {
  const Slot* field = PresentField(values, record, index);
  if (field == nullptr || field->type != AVRO_STRING) return std::nullopt;
  return field->wire.text;
}

// Debezium's source.row is an int, the other positions and times are longs.
std::optional<int64_t> LongOf(const BodyValues& values, const Slot& record, int index) {
  const Slot* field = PresentField(values, record, index);
  if (field == nullptr || (field->type != AVRO_INT32 && field->type != AVRO_INT64)) {
    return std::nullopt;
  }
  return field->wire.integer;
}

class AvroEnvelope final : public EnvelopeView {
 public:
  AvroEnvelope(const BodyValues& values, const AvroWriter& writer)
      : values_(values), writer_(writer), index_(writer.envelope()) {}

  absl::StatusOr<std::string_view> Op() override {
    std::optional<std::string_view> op = StringOf(values_, values_.top(), index_.op);
    if (!op.has_value()) return Invalid("op", "missing field, or not a string");
    return *op;
  }

  absl::Status SourceTable(std::optional<std::string_view>* db,
                           std::optional<std::string_view>* table) override {
    const Slot* source = Source();
    if (source == nullptr) return absl::OkStatus();
    *db = StringOf(values_, *source, index_.source_db);
    *table = StringOf(values_, *source, index_.source_table);
    return absl::OkStatus();
  }

  absl::StatusOr<const RowView*> Image(std::string_view image) override {
    const Slot* row = PresentField(values_, values_.top(),
                                   image == "after" ? index_.after : index_.before);
    if (row == nullptr) return nullptr;
    if (row->type != AVRO_RECORD) {
      return Invalid(image, absl::StrCat("expected a record in writer schema id ", writer_.id()));
    }
    row_.Reset(&values_, row, &writer_.row());
    return &row_;
  }

  bool BinlogPosition(std::string_view* file, int64_t* pos, int64_t* row) override {
    const Slot* source = Source();
    if (source == nullptr) return false;
    std::optional<std::string_view> f = StringOf(values_, *source, index_.source_file);
    std::optional<int64_t> p = LongOf(values_, *source, index_.source_pos);
    std::optional<int64_t> r = LongOf(values_, *source, index_.source_row);
    if (!f.has_value() || !p.has_value() || !r.has_value()) return false;
    *file = *f;
    *pos = *p;
    *row = *r;
    return true;
  }

  absl::StatusOr<std::optional<int64_t>> EventTimeMs() override {
    if (const Slot* source = Source(); source != nullptr) {
      if (std::optional<int64_t> ms = LongOf(values_, *source, index_.source_ts_ms);
          ms.has_value()) {
        return ms;
      }
    }
    return LongOf(values_, values_.top(), index_.ts_ms);
  }

 private:
  // The source block; nullptr when absent or no record.
  const Slot* Source() const {
    const Slot* source = PresentField(values_, values_.top(), index_.source);
    return source != nullptr && source->type == AVRO_RECORD ? source : nullptr;
  }

  const BodyValues& values_;
  const AvroWriter& writer_;
  const AvroWriter::EnvelopeIndex& index_;
  AvroRow row_;
};

class AvroKeyReader final : public RecordKeyReader {
 public:
  explicit AvroKeyReader(std::shared_ptr<SchemaRegistry> registry)
      : confluent_(std::move(registry), ReadScope()) {}

  absl::StatusOr<const RowView*> Read(std::string_view record_key) override {
    std::string_view body;
    absl::StatusOr<AvroWriter*> writer = confluent_.WriterOf("key", record_key, &body);
    if (!writer.ok()) return writer.status();
    absl::StatusOr<const BodyValues*> values = (*writer)->Read("key", body);
    if (!values.ok()) return values.status();
    row_.Reset(*values, &(*values)->top(), &(*writer)->top());
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

  Impl(std::shared_ptr<SchemaRegistry> registry, ReadScope scope)
      : confluent(std::move(registry), scope) {}
};

absl::StatusOr<std::unique_ptr<AvroDecoder>> AvroDecoder::Create(
    const TableSchema* schema, DecoderOptions options, std::shared_ptr<SchemaRegistry> registry,
    std::vector<std::unique_ptr<RecordKeyReader>> key_readers) {
  if (schema == nullptr) return absl::InvalidArgumentError("decoder: schema is null");
  if (registry == nullptr) return absl::InvalidArgumentError("decoder: no schema registry");
  if (absl::Status s = CheckKeyFieldCounts(*schema); !s.ok()) return s;
  ReadScope scope;
  scope.envelope = true;
  for (const SourceMapping& mapping : schema->sources) {
    scope.source_table |= !mapping.database.empty() || !mapping.table.empty();
  }
  auto impl = std::make_unique<Impl>(registry, scope);
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
  absl::StatusOr<const BodyValues*> values = (*writer)->Read("value", body);
  if (!values.ok()) return values.status();
  AvroEnvelope envelope(**values, **writer);
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
