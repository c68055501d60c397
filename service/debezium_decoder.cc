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
#include "service/debezium_conversions.h"

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

// Quotes at most 64 bytes of a user-supplied string for an error message.
std::string Excerpt(std::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() <= kMax) return absl::StrCat("'", AV(text), "'");
  return absl::StrCat("'", AV(text.substr(0, kMax)), "...' (", text.size(), " bytes)");
}

absl::Status Invalid(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(where), ": ", AV(what)));
}

absl::Status FieldInvalid(std::string_view image, std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(image), ".", AV(field), ": ", AV(what)));
}

absl::Status ParseError(std::string_view where, simdjson::error_code error) {
  if (error == simdjson::MEMALLOC) {
    return absl::ResourceExhaustedError(
        absl::StrCat(AV(where), ": out of memory while parsing JSON"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(AV(where), ": malformed JSON: ", simdjson::error_message(error)));
}

// How a field's JSON value becomes a Value.
enum class Kind {
  kJson,  // By the JSON type (AUTO without a usable field schema).
  kString,
  kInt64,
  kDouble,
  kBool,
  kMillis,
  kMicros,
  kNanos,
  kDays,
  kZoned,
  kDecimal,
  kTimeMicros,  // MicroTime; also Time (millis) and NanoTime, scaled to micros.
  kTimeMillis,
  kTimeNanos,
  kBytes,       // Base64 → raw bytes.
  kBits,        // io.debezium.data.Bits: base64 little-endian → integer.
  kUint64,
};

Kind KindOfConfigured(v1::ValueType type) {
  switch (type) {
    case v1::STRING:
      return Kind::kString;
    case v1::INT64:
      return Kind::kInt64;
    case v1::DOUBLE:
      return Kind::kDouble;
    case v1::BOOL:
      return Kind::kBool;
    case v1::TIMESTAMP_MILLIS:
      return Kind::kMillis;
    case v1::TIMESTAMP_MICROS:
      return Kind::kMicros;
    case v1::TIMESTAMP_NANOS:
      return Kind::kNanos;
    case v1::DATE_DAYS:
      return Kind::kDays;
    case v1::ZONED_TIMESTAMP:
      return Kind::kZoned;
    case v1::TIME_MICROS:
      return Kind::kTimeMicros;
    case v1::BYTES:
      return Kind::kBytes;
    case v1::UINT64:
      return Kind::kUint64;
    default:
      return Kind::kJson;
  }
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
Kind KindFromSchema(const StructSchema& schema, std::string_view field, int* scale) {
  if (!schema.present) return Kind::kJson;
  for (dom::element entry : schema.fields) {
    dom::object entry_object;
    std::string_view name;
    if (entry.get_object().get(entry_object) != simdjson::SUCCESS) continue;
    if (entry_object.at_key("field").get_string().get(name) != simdjson::SUCCESS) continue;
    if (name != field) continue;
    std::string_view logical;
    if (entry_object.at_key("name").get_string().get(logical) == simdjson::SUCCESS) {
      if (logical == "io.debezium.time.Timestamp" ||
          logical == "org.apache.kafka.connect.data.Timestamp") {
        return Kind::kMillis;
      }
      if (logical == "io.debezium.time.MicroTimestamp") return Kind::kMicros;
      if (logical == "io.debezium.time.NanoTimestamp") return Kind::kNanos;
      if (logical == "io.debezium.time.Date" || logical == "org.apache.kafka.connect.data.Date") {
        return Kind::kDays;
      }
      if (logical == "io.debezium.time.ZonedTimestamp") return Kind::kZoned;
      // TIME columns: a duration since midnight, not an integer column. Read as plain integers
      // they were written as wrong values (MySQL parses 86399999999 as a TIME of its own).
      if (logical == "io.debezium.time.MicroTime") return Kind::kTimeMicros;
      if (logical == "io.debezium.time.Time" ||
          logical == "org.apache.kafka.connect.data.Time") {
        return Kind::kTimeMillis;
      }
      if (logical == "io.debezium.time.NanoTime") return Kind::kTimeNanos;
      if (logical == "io.debezium.data.Bits") return Kind::kBits;
      if (logical == "org.apache.kafka.connect.data.Decimal") {
        *scale = 0;
        std::string_view scale_text;
        if (entry_object.at_key("parameters").at_key("scale").get_string().get(scale_text) ==
            simdjson::SUCCESS) {
          int value = 0;
          for (char ch : scale_text) {
            if (ch < '0' || ch > '9' || value > 1000) return Kind::kString;
            value = value * 10 + (ch - '0');
          }
          *scale = value;
        }
        return Kind::kDecimal;
      }
    }
    std::string_view type;
    if (entry_object.at_key("type").get_string().get(type) != simdjson::SUCCESS) {
      return Kind::kJson;
    }
    if (type == "int8" || type == "int16" || type == "int32" || type == "int64") {
      return Kind::kInt64;
    }
    if (type == "float32" || type == "float64" || type == "float" || type == "double") {
      return Kind::kDouble;
    }
    if (type == "boolean") return Kind::kBool;
    // Plain bytes (binary columns) arrive base64-encoded in JSON: decoded to the raw bytes.
    if (type == "bytes") return Kind::kBytes;
    if (type == "string") return Kind::kString;
    return Kind::kJson;
  }
  return Kind::kJson;  // Not in the schema: trust the JSON type.
}


// ---------------------------------------------------------------------------------------------
// Whether a decoded value fits its target column (ColumnFacts from the database). Every refusal
// is an InvalidArgument with reason "type-mismatch" naming the field, the value's JSON type and
// the column, so the record is dead-lettered here rather than converted, rounded, truncated or
// refused by MySQL at write time.

// The value as the message shows it: the JSON text of a number, an excerpt of a string.
std::string Shown(const dom::element& el) {
  switch (el.type()) {
    case dom::element_type::INT64:
      return absl::StrCat(el.get_int64().value_unsafe());
    case dom::element_type::UINT64:
      return absl::StrCat(el.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE:
      return absl::StrCat(el.get_double().value_unsafe());
    case dom::element_type::BOOL:
      return el.get_bool().value_unsafe() ? "true" : "false";
    case dom::element_type::STRING: {
      const std::string_view text = el.get_string().value_unsafe();
      if (text.size() <= 64) return Excerpt(text);
      return absl::StrCat("of ", text.size(), " bytes");
    }
    default:
      return "";
  }
}

absl::Status Mismatch(std::string_view image, std::string_view field, const dom::element& el,
                      const std::string& column, const ColumnFacts& facts,
                      std::string_view problem) {
  const std::string shown = Shown(el);
  return WithDecodeReason(
      absl::InvalidArgumentError(absl::StrCat(
          AV(image), ".", AV(field), ": JSON ", TypeName(el), shown.empty() ? "" : " ", shown,
          " does not fit column ", column, " ", facts.column_type, ": ", AV(problem))),
      "type-mismatch");
}

// UTF-8 characters in `text` (MySQL measures CHAR/VARCHAR lengths in characters).
int64_t Utf8Characters(std::string_view text) {
  int64_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

// Splits decimal text "[-]digits[.digits]" into its sign and integer digits (leading zeros
// dropped); false when it is not such text.
bool DecimalIntegerPart(std::string_view text, bool* negative, std::string_view* integer,
                        bool* has_fraction) {
  *negative = !text.empty() && text[0] == '-';
  if (*negative || (!text.empty() && text[0] == '+')) text.remove_prefix(1);
  const size_t point = text.find('.');
  *integer = text.substr(0, point);
  const std::string_view fraction =
      point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
  if (integer->empty() && fraction.empty()) return false;
  for (std::string_view part : {*integer, fraction}) {
    for (char c : part) {
      if (c < '0' || c > '9') return false;
    }
  }
  *has_fraction = fraction.find_first_not_of('0') != std::string_view::npos;
  while (!integer->empty() && integer->front() == '0') integer->remove_prefix(1);
  return true;
}

int DecimalDigits(uint64_t magnitude) {
  int digits = 0;
  for (; magnitude > 0; magnitude /= 10) ++digits;
  return digits;
}

absl::Status CheckFits(const dom::element& el, Kind kind, std::string_view image,
                       std::string_view field, const std::string& column,
                       const ColumnFacts& facts, Value* value) {
  auto mismatch = [&](std::string_view problem) {
    return Mismatch(image, field, el, column, facts, problem);
  };
  if (IsNull(*value)) {
    return facts.nullable ? absl::OkStatus() : mismatch("the column is NOT NULL");
  }
  // A JSON string that the decoder kept as text (not a Debezium encoding it rendered, such as a
  // decimal or an unsigned 64-bit integer).
  const bool raw_text =
      el.type() == dom::element_type::STRING && (kind == Kind::kJson || kind == Kind::kString);
  const int64_t* integer = std::get_if<int64_t>(value);
  const double* real = std::get_if<double>(value);
  const std::string* text = std::get_if<std::string>(value);
  switch (facts.kind) {
    case ColumnFacts::Kind::kInteger: {
      bool negative = false;
      uint64_t magnitude = 0;
      if (integer != nullptr) {
        negative = *integer < 0;
        magnitude = negative ? 0 - static_cast<uint64_t>(*integer) : static_cast<uint64_t>(*integer);
      } else if (real != nullptr) {
        if (!std::isfinite(*real) || std::trunc(*real) != *real) {
          return mismatch("not an integral number, and the column holds integers");
        }
        // Integral: written as that integer, so MySQL rounds nothing. 2^63 is exact in double.
        if (*real >= -9223372036854775808.0 && *real < 9223372036854775808.0) {
          *value = static_cast<int64_t>(*real);
          integer = std::get_if<int64_t>(value);
          negative = *integer < 0;
          magnitude =
              negative ? 0 - static_cast<uint64_t>(*integer) : static_cast<uint64_t>(*integer);
        } else {
          return mismatch("out of the column's range");
        }
      } else if (raw_text) {
        return mismatch("the column holds integers, not text");
      } else {
        std::string_view digits;
        bool has_fraction = false;
        if (!DecimalIntegerPart(*text, &negative, &digits, &has_fraction) || has_fraction) {
          return mismatch("not an integral number, and the column holds integers");
        }
        // Leading zeros are gone: "0" has no digits left.
        if (!digits.empty() &&
            (digits.size() > 20 ||
             !absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &magnitude))) {
          return mismatch("out of the column's range");
        }
      }
      if (magnitude == 0) negative = false;  // "-0" is 0.
      const bool fits =
          negative ? (facts.min_integer < 0 &&
                      magnitude <= 0 - static_cast<uint64_t>(facts.min_integer))
                   : magnitude <= facts.max_integer;
      if (!fits) {
        return mismatch(absl::StrCat("out of the column's range [", facts.min_integer, ", ",
                                     facts.max_integer, "]"));
      }
      return absl::OkStatus();
    }
    case ColumnFacts::Kind::kBit:
      if (integer == nullptr) return mismatch("the column holds bits (an integer)");
      if (*integer < 0 || (facts.precision < 63 && *integer >= (int64_t{1} << facts.precision))) {
        return mismatch(absl::StrCat("out of the column's range [0, 2^", facts.precision, ")"));
      }
      return absl::OkStatus();
    case ColumnFacts::Kind::kFloat:
    case ColumnFacts::Kind::kDouble:
    case ColumnFacts::Kind::kDecimal: {
      if (raw_text && facts.kind != ColumnFacts::Kind::kDecimal) {
        return mismatch("the column holds numbers, not text");
      }
      if (real != nullptr) {
        if (!std::isfinite(*real)) return mismatch("not a finite number");
        if (facts.kind == ColumnFacts::Kind::kFloat && std::fabs(*real) > FLT_MAX) {
          return mismatch("out of the column's range");
        }
      }
      bool negative = integer != nullptr ? *integer < 0 : real != nullptr && *real < 0;
      int integer_digits = 0;
      if (integer != nullptr) {
        integer_digits = DecimalDigits(negative ? 0 - static_cast<uint64_t>(*integer)
                                                : static_cast<uint64_t>(*integer));
      } else if (text != nullptr) {
        std::string_view digits;
        bool has_fraction = false;
        if (!DecimalIntegerPart(*text, &negative, &digits, &has_fraction)) {
          return mismatch("not a decimal number");
        }
        if (digits.empty() && !has_fraction) negative = false;  // "-0.00" is 0.
        integer_digits = static_cast<int>(std::min<size_t>(digits.size(), 1000));
      }
      if (negative && facts.is_unsigned) {
        return mismatch("negative, and the column is unsigned");
      }
      if (facts.kind == ColumnFacts::Kind::kDecimal) {
        const int room = facts.precision - facts.scale;
        const bool too_big = real != nullptr ? std::fabs(*real) >= std::pow(10.0, room)
                                             : integer_digits > room;
        if (too_big) {
          return mismatch(absl::StrCat("out of the column's range (", room,
                                       " digits before the point)"));
        }
      }
      return absl::OkStatus();
    }
    case ColumnFacts::Kind::kText: {
      if (real != nullptr) return mismatch("the column holds text, not a floating-point number");
      const std::string rendered = integer != nullptr ? absl::StrCat(*integer) : std::string();
      const std::string_view stored = integer != nullptr ? std::string_view(rendered)
                                                         : std::string_view(*text);
      const int64_t characters = Utf8Characters(stored);
      if (facts.max_chars >= 0 && characters > facts.max_chars) {
        return mismatch(absl::StrCat(characters, " characters, longer than the column's ",
                                     facts.max_chars));
      }
      if (facts.max_bytes >= 0 && static_cast<int64_t>(stored.size()) > facts.max_bytes) {
        return mismatch(absl::StrCat(stored.size(), " bytes, longer than the column's ",
                                     facts.max_bytes));
      }
      return absl::OkStatus();
    }
    case ColumnFacts::Kind::kBinary:
      if (text == nullptr) return mismatch("the column holds bytes, not a number");
      if (facts.max_bytes >= 0 && static_cast<int64_t>(text->size()) > facts.max_bytes) {
        return mismatch(absl::StrCat(text->size(), " bytes, longer than the column's ",
                                     facts.max_bytes));
      }
      return absl::OkStatus();
    case ColumnFacts::Kind::kTemporal:
      if (text == nullptr) {
        return mismatch(
            "the column holds dates or times, and a number would be converted by the "
            "database; set the column's type (e.g. TIMESTAMP_MILLIS) to say its encoding");
      }
      return absl::OkStatus();
    case ColumnFacts::Kind::kOther:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}
}  // namespace

struct DebeziumDecoder::Impl {
  const TableSchema* schema = nullptr;
  DecoderOptions options;
  // Two parsers because a RECORD_KEY source reads the key while the value's document is still
  // in use. Each keeps its buffers between records: after warm-up, parsing allocates nothing.
  dom::parser value_parser;
  dom::parser key_parser;

  absl::Status ConvertValue(const dom::element& el, Kind kind, int scale, std::string_view image,
                            std::string_view field, Value* out) const;
  absl::Status DecodeKeyFields(const dom::object& row, const StructSchema& schema,
                               std::string_view image, const SourceMapping& mapping,
                               Key* key) const;
  absl::Status DecodeRecordKey(std::optional<std::string_view> record_key,
                               const SourceMapping& mapping, Key* key);
  absl::Status CheckSourceTable(const dom::object& envelope, int source,
                                const SourceMapping& mapping) const;
  absl::Status EventTime(const dom::object& envelope, int64_t record_timestamp_ms,
                         int64_t* event_time_ms) const;
  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> record_key,
                                 std::optional<std::string_view> record_value,
                                 int64_t record_timestamp_ms, EventPosition position);
};

absl::Status DebeziumDecoder::Impl::ConvertValue(const dom::element& el, Kind kind, int scale,
                                                 std::string_view image, std::string_view field,
                                                 Value* out) const {
  const dom::element_type type = el.type();
  if (type == dom::element_type::NULL_VALUE) {
    *out = std::monostate{};
    return absl::OkStatus();
  }
  if (type == dom::element_type::ARRAY || type == dom::element_type::OBJECT) {
    return FieldInvalid(image, field, absl::StrCat("expected a scalar, got ", TypeName(el)));
  }
  if (type == dom::element_type::UINT64) {
    uint64_t big = 0;
    big = el.get_uint64().value_unsafe();
    return FieldInvalid(image, field, absl::StrCat("integer ", big, " is out of int64 range"));
  }
  auto check_string = [&](std::string_view* s) -> absl::Status {
    *s = el.get_string().value_unsafe();
    if (s->size() > options.max_value_bytes) {
      return FieldInvalid(image, field,
                          absl::StrCat("string value of ", s->size(),
                                       " bytes exceeds max_value_bytes (", options.max_value_bytes,
                                       ")"));
    }
    return absl::OkStatus();
  };
  auto expected = [&](std::string_view what) {
    return FieldInvalid(image, field, absl::StrCat("expected ", AV(what), ", got ", TypeName(el)));
  };
  int64_t i = 0;
  switch (kind) {
    case Kind::kJson:
      switch (type) {
        case dom::element_type::INT64:
          i = el.get_int64().value_unsafe();
          *out = i;
          return absl::OkStatus();
        case dom::element_type::DOUBLE: {
          double d = 0;
          d = el.get_double().value_unsafe();
          *out = d;
          return absl::OkStatus();
        }
        case dom::element_type::BOOL: {
          bool b = false;
          b = el.get_bool().value_unsafe();
          *out = int64_t{b ? 1 : 0};
          return absl::OkStatus();
        }
        case dom::element_type::STRING: {
          std::string_view s;
          absl::Status status = check_string(&s);
          if (!status.ok()) return status;
          *out = std::string(s);
          return absl::OkStatus();
        }
        default:
          return expected("a scalar");
      }
    case Kind::kString: {
      if (type != dom::element_type::STRING) return expected("string");
      std::string_view s;
      absl::Status status = check_string(&s);
      if (!status.ok()) return status;
      *out = std::string(s);
      return absl::OkStatus();
    }
    case Kind::kInt64:
      if (type != dom::element_type::INT64) return expected("integer");
      i = el.get_int64().value_unsafe();
      *out = i;
      return absl::OkStatus();
    case Kind::kDouble: {
      double d = 0;
      if (type == dom::element_type::INT64) {
        i = el.get_int64().value_unsafe();
        d = static_cast<double>(i);
      } else if (type == dom::element_type::DOUBLE) {
        d = el.get_double().value_unsafe();
      } else {
        return expected("number");
      }
      *out = d;
      return absl::OkStatus();
    }
    case Kind::kBool:
      if (type == dom::element_type::BOOL) {
        bool b = false;
        b = el.get_bool().value_unsafe();
        *out = int64_t{b ? 1 : 0};
        return absl::OkStatus();
      }
      if (type == dom::element_type::INT64) {
        i = el.get_int64().value_unsafe();
        if (i == 0 || i == 1) {
          *out = i;
          return absl::OkStatus();
        }
        return FieldInvalid(image, field, absl::StrCat("expected boolean, got integer ", i));
      }
      return expected("boolean");
    case Kind::kMillis:
    case Kind::kMicros:
    case Kind::kNanos: {
      const char* unit = kind == Kind::kMillis   ? "epoch milliseconds"
                         : kind == Kind::kMicros ? "epoch microseconds"
                                                 : "epoch nanoseconds";
      if (type != dom::element_type::INT64) return expected(absl::StrCat("integer ", unit));
      i = el.get_int64().value_unsafe();
      const int64_t per_second =
          kind == Kind::kMillis ? 1000 : kind == Kind::kMicros ? 1000000 : 1000000000;
      std::string text;
      if (!FormatEpochTimestamp(i, per_second, &text)) {
        return FieldInvalid(image, field,
                            absl::StrCat("timestamp ", i, " (", unit,
                                         ") is outside years 0001..9999"));
      }
      *out = std::move(text);
      return absl::OkStatus();
    }
    case Kind::kDays: {
      if (type != dom::element_type::INT64) return expected("integer days since epoch");
      i = el.get_int64().value_unsafe();
      std::string text;
      if (!FormatUtcDate(i, &text)) {
        return FieldInvalid(image, field,
                            absl::StrCat("date ", i, " (days since epoch) is outside years "
                                                     "0001..9999"));
      }
      *out = std::move(text);
      return absl::OkStatus();
    }
    case Kind::kZoned: {
      if (type != dom::element_type::STRING) return expected("ISO-8601 timestamp string");
      std::string_view s;
      s = el.get_string().value_unsafe();
      int64_t seconds = 0;
      int32_t micros = 0;
      std::string text;
      if (!ParseZonedTimestamp(s, &seconds, &micros) ||
          !FormatUtcDateTime(seconds, micros, &text)) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid ISO-8601 zoned timestamp ", Excerpt(s)));
      }
      *out = std::move(text);
      return absl::OkStatus();
    }
    case Kind::kDecimal: {
      if (type != dom::element_type::STRING) return expected("base64 decimal string");
      std::string_view s;
      s = el.get_string().value_unsafe();
      std::string text;
      if (!DecodeBase64Decimal(s, scale, &text)) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid base64 decimal (or over 64 bytes) ",
                                         Excerpt(s)));
      }
      *out = std::move(text);
      return absl::OkStatus();
    }
    case Kind::kTimeMicros:
    case Kind::kTimeMillis:
    case Kind::kTimeNanos: {
      if (type != dom::element_type::INT64) return expected("integer time of day");
      i = el.get_int64().value_unsafe();
      const int64_t micros = kind == Kind::kTimeMillis  ? i * 1000
                             : kind == Kind::kTimeNanos ? i / 1000
                                                        : i;
      std::string text;
      if ((kind == Kind::kTimeMillis && (i > INT64_MAX / 1000 || i < INT64_MIN / 1000)) ||
          !FormatTimeOfDayMicros(micros, &text)) {
        return FieldInvalid(image, field,
                            absl::StrCat("time ", i, " is outside MySQL's TIME range"));
      }
      *out = std::move(text);
      return absl::OkStatus();
    }
    case Kind::kBytes: {
      if (type != dom::element_type::STRING) return expected("base64 bytes string");
      std::string_view s;
      s = el.get_string().value_unsafe();
      std::string bytes;
      if (!DecodeBase64(s, &bytes)) {
        return FieldInvalid(image, field, absl::StrCat("invalid base64 bytes ", Excerpt(s)));
      }
      if (bytes.size() > options.max_value_bytes) {
        return FieldInvalid(image, field,
                            absl::StrCat("bytes value of ", bytes.size(),
                                         " bytes exceeds max_value_bytes (",
                                         options.max_value_bytes, ")"));
      }
      *out = std::move(bytes);
      return absl::OkStatus();
    }
    case Kind::kBits: {
      if (type != dom::element_type::STRING) return expected("base64 bits string");
      std::string_view s;
      s = el.get_string().value_unsafe();
      int64_t bits = 0;
      if (!DecodeBase64Bits(s, &bits)) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid base64 bits, or 2^63 or more: ", Excerpt(s)));
      }
      *out = bits;
      return absl::OkStatus();
    }
    case Kind::kUint64: {
      if (type != dom::element_type::INT64) return expected("integer");
      std::string text;
      FormatUnsigned64(el.get_int64().value_unsafe(), &text);
      *out = std::move(text);
      return absl::OkStatus();
    }
  }
  return expected("a scalar");
}

absl::Status DebeziumDecoder::Impl::DecodeKeyFields(const dom::object& row,
                                                    const StructSchema& schema,
                                                    std::string_view image,
                                                    const SourceMapping& mapping,
                                                    Key* key) const {
  key->clear();
  key->reserve(mapping.key_fields.size());
  for (const std::string& name : mapping.key_fields) {
    dom::element el;
    if (!Lookup(row, name, &el)) return FieldInvalid(image, name, "missing key field");
    switch (el.type()) {
      case dom::element_type::NULL_VALUE:
        return FieldInvalid(image, name, "null key");
      case dom::element_type::ARRAY:
      case dom::element_type::OBJECT:
        return FieldInvalid(image, name,
                            absl::StrCat("key field must be a scalar, got ", TypeName(el)));
      default:
        break;
    }
    int scale = 0;
    const Kind kind = KindFromSchema(schema, name, &scale);
    key->emplace_back();
    absl::Status status = ConvertValue(el, kind, scale, image, name, &key->back());
    if (!status.ok()) return status;
    const size_t k = key->size() - 1;
    if (k < this->schema->key_facts.size() && this->schema->key_facts[k].has_value()) {
      status = CheckFits(el, kind, image, name, this->schema->key_columns[k],
                         *this->schema->key_facts[k], &key->back());
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

absl::Status DebeziumDecoder::Impl::DecodeRecordKey(std::optional<std::string_view> record_key,
                                                    const SourceMapping& mapping, Key* key) {
  if (!record_key.has_value() || record_key->data() == nullptr) {
    return Invalid("key", "the record has no key, but key_source is RECORD_KEY");
  }
  if (record_key->size() > options.max_record_bytes) {
    return Invalid("key", absl::StrCat("record key of ", record_key->size(),
                                       " bytes exceeds the limit of ", options.max_record_bytes));
  }
  dom::element root;
  simdjson::error_code error =
      key_parser.parse(record_key->data(), record_key->size(), true).get(root);
  if (error != simdjson::SUCCESS) return ParseError("key", error);
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid("key", absl::StrCat("expected a JSON object, got ", TypeName(root)));
  }
  StructSchema schema;
  dom::element payload, schema_el;
  // Kafka Connect's wrapper has exactly these two fields; a key struct that merely has a column
  // named "payload" has others too (or lacks "schema").
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
  return DecodeKeyFields(object, schema, "key", mapping, key);
}

absl::Status DebeziumDecoder::Impl::CheckSourceTable(const dom::object& envelope, int source,
                                                     const SourceMapping& mapping) const {
  if (mapping.database.empty() && mapping.table.empty()) return absl::OkStatus();
  dom::element source_el;
  dom::object source_object;
  const bool has_source = Lookup(envelope, "source", &source_el) &&
                          source_el.get_object().get(source_object) == simdjson::SUCCESS;
  struct Expected {
    const char* envelope_field;
    const char* config_field;
    const std::string& want;
  };
  for (const Expected& expected : {Expected{"db", "database", mapping.database},
                                   Expected{"table", "table", mapping.table}}) {
    if (expected.want.empty()) continue;
    std::string_view got;
    dom::element el;
    const bool has = has_source && Lookup(source_object, expected.envelope_field, &el) &&
                     el.get_string().get(got) == simdjson::SUCCESS;
    if (has && got == expected.want) continue;
    return WithDecodeReason(
        absl::InvalidArgumentError(absl::StrCat(
            "source.", expected.envelope_field, ": ",
            has ? absl::StrCat("'", AV(got), "'") : std::string("missing"), " but sources[",
            source, "].", expected.config_field, " (", mapping.name, ") is '", expected.want,
            "': an event of another table is not applied as a row of this source")),
        "foreign-table");
  }
  return absl::OkStatus();
}

absl::Status DebeziumDecoder::Impl::EventTime(const dom::object& envelope,
                                              int64_t record_timestamp_ms,
                                              int64_t* event_time_ms) const {
  *event_time_ms = record_timestamp_ms;
  if (options.event_time_from_record_timestamp) return absl::OkStatus();
  dom::element source_el, ts;
  if (Lookup(envelope, "source", &source_el) && !source_el.is_null()) {
    dom::object source_object;
    if (source_el.get_object().get(source_object) != simdjson::SUCCESS) {
      return Invalid("source", absl::StrCat("expected object, got ", TypeName(source_el)));
    }
    if (Lookup(source_object, "ts_ms", &ts) && !ts.is_null()) {
      if (ts.get_int64().get(*event_time_ms) != simdjson::SUCCESS) {
        return Invalid("source.ts_ms", absl::StrCat("expected integer, got ", TypeName(ts)));
      }
      return absl::OkStatus();
    }
  }
  if (Lookup(envelope, "ts_ms", &ts) && !ts.is_null()) {
    if (ts.get_int64().get(*event_time_ms) != simdjson::SUCCESS) {
      return Invalid("ts_ms", absl::StrCat("expected integer, got ", TypeName(ts)));
    }
  }
  return absl::OkStatus();
}

namespace {

// The event's binlog position for the stale-write guard; none (the guard then orders by Kafka
// offset) when the source block lacks file, pos or row, as other connectors' events do.
std::optional<BinlogCoordinates> BinlogCoordinatesOf(const dom::object& envelope,
                                                     bool snapshot_read) {
  dom::element source_el, file_el, pos_el, row_el;
  dom::object source_object;
  std::string_view file;
  int64_t pos = 0, row = 0;
  BinlogCoordinates coordinates;
  if (Lookup(envelope, "source", &source_el) &&
      source_el.get_object().get(source_object) == simdjson::SUCCESS &&
      Lookup(source_object, "file", &file_el) &&
      file_el.get_string().get(file) == simdjson::SUCCESS &&
      Lookup(source_object, "pos", &pos_el) && pos_el.get_int64().get(pos) == simdjson::SUCCESS &&
      Lookup(source_object, "row", &row_el) && row_el.get_int64().get(row) == simdjson::SUCCESS &&
      ParseBinlogCoordinates(file, pos, row, snapshot_read, &coordinates)) {
    return coordinates;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<Decoded> DebeziumDecoder::Impl::Decode(int source,
                                                      std::optional<std::string_view> record_key,
                                                      std::optional<std::string_view> record_value,
                                                      int64_t record_timestamp_ms,
                                                      EventPosition position) {
  if (source < 0 || static_cast<size_t>(source) >= schema->sources.size()) {
    return absl::InvalidArgumentError(absl::StrCat("source index ", source, " out of range"));
  }
  const SourceMapping& mapping = schema->sources[static_cast<size_t>(source)];
  Decoded out;
  out.event.source = source;
  out.event.position = position;
  if (!record_value.has_value() || record_value->data() == nullptr) {
    out.outcome = DecodeOutcome::kTombstone;
    return out;
  }
  if (record_value->size() > options.max_record_bytes) {
    return Invalid("value", absl::StrCat("record of ", record_value->size(),
                                         " bytes exceeds the limit of ", options.max_record_bytes));
  }

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
  std::string_view op;
  if (op_el.get_string().get(op) != simdjson::SUCCESS) {
    return Invalid("op", absl::StrCat("expected string, got ", TypeName(op_el)));
  }
  ChangeOp change_op = ChangeOp::kUpsert;
  std::string_view image = "after";
  if (op.size() == 1) out.op = op[0];
  if (op == "c" || op == "u" || op == "r") {
    change_op = ChangeOp::kUpsert;
  } else if (op == "d") {
    change_op = ChangeOp::kDelete;
    image = "before";
  } else if (op == "t" || op == "m") {
    out.outcome = DecodeOutcome::kSkippedOp;
    out.skipped_op.assign(op.data(), op.size());
    return out;
  } else {
    return Invalid("op", absl::StrCat("unknown op ", Excerpt(op),
                                      " (expected one of c, u, r, d, t, m)"));
  }
  out.event.op = change_op;
  if (absl::Status status = CheckSourceTable(envelope, source, mapping); !status.ok()) {
    return status;
  }

  // The row image. A delete keyed by the record key may have no `before` (e.g. PostgreSQL with
  // REPLICA IDENTITY NOTHING); everything else needs its image.
  dom::element row_el;
  dom::object row;
  const bool has_row = Lookup(envelope, image, &row_el) && !row_el.is_null();
  if (has_row && row_el.get_object().get(row) != simdjson::SUCCESS) {
    return Invalid(image, absl::StrCat("expected object, got ", TypeName(row_el)));
  }
  const bool key_from_row = mapping.key_source != v1::RECORD_KEY;
  if (!has_row && (change_op == ChangeOp::kUpsert || key_from_row)) {
    return Invalid(image, absl::StrCat("missing or null for op '", AV(op), "'"));
  }
  StructSchema row_schema;
  if (has_schema) row_schema = FindImageSchema(value_schema, image);

  absl::Status status;
  if (key_from_row) {
    status = DecodeKeyFields(row, row_schema, image, mapping, &out.event.key);
  } else {
    status = DecodeRecordKey(record_key, mapping, &out.event.key);
  }
  if (!status.ok()) return status;
  // The other place's key, when it has every key field: key_source decides, a difference is
  // only reported (a producer keying records differently from the row is worth knowing about).
  {
    Key other;
    const bool other_ok =
        key_from_row
            ? record_key.has_value() && record_key->data() != nullptr &&
                  DecodeRecordKey(record_key, mapping, &other).ok()
            : has_row && DecodeKeyFields(row, row_schema, image, mapping, &other).ok();
    out.key_disagreed = other_ok && other != out.event.key;
  }

  if (change_op == ChangeOp::kUpsert) {
    out.event.values.resize(mapping.fields.size());
    for (size_t f = 0; f < mapping.fields.size(); ++f) {
      const FieldMapping& field = mapping.fields[f];
      dom::element el;
      if (!Lookup(row, field.from, &el)) return FieldInvalid(image, field.from, "missing field");
      if (el.is_null() && field.skip_event_if_null) {
        out.outcome = DecodeOutcome::kSkippedNull;
        out.event.values.clear();
        return out;
      }
      int scale = 0;
      const Kind kind = field.type == v1::VALUE_TYPE_AUTO
                            ? KindFromSchema(row_schema, field.from, &scale)
                            : KindOfConfigured(field.type);
      status = ConvertValue(el, kind, scale, image, field.from, &out.event.values[f]);
      if (!status.ok()) return status;
      const size_t column = static_cast<size_t>(field.column);
      if (column < schema->column_facts.size() && schema->column_facts[column].has_value()) {
        status = CheckFits(el, kind, image, field.from, schema->columns[column],
                           *schema->column_facts[column], &out.event.values[f]);
        if (!status.ok()) return status;
      }
    }
  }

  status = EventTime(envelope, record_timestamp_ms, &out.event.event_time_ms);
  if (!status.ok()) return status;
  out.event.binlog = BinlogCoordinatesOf(envelope, op == "r");
  out.outcome = DecodeOutcome::kEvent;
  return out;
}

absl::StatusOr<std::unique_ptr<RecordDecoder>> DebeziumDecoder::ForConfig(
    const TableSchema* schema, const v1::Config& config) {
  DecoderOptions options;
  options.max_value_bytes = config.sink().max_value_bytes();
  options.event_time_from_record_timestamp =
      config.window().event_time() == v1::RECORD_TIMESTAMP;
  absl::StatusOr<DebeziumDecoder> decoder = Create(schema, options);
  if (!decoder.ok()) return decoder.status();
  return std::unique_ptr<RecordDecoder>(std::make_unique<DebeziumDecoder>(*std::move(decoder)));
}

absl::StatusOr<DebeziumDecoder> DebeziumDecoder::Create(const TableSchema* schema,
                                                        DecoderOptions options) {
  if (schema == nullptr) return absl::InvalidArgumentError("decoder: schema is null");
  for (size_t s = 0; s < schema->sources.size(); ++s) {
    const SourceMapping& source = schema->sources[s];
    if (source.key_fields.size() != schema->key_columns.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sources[", s, "].key_fields: ", source.key_fields.size(),
                       " fields for ", schema->key_columns.size(), " target key columns"));
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->schema = schema;
  impl->options = options;
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
