#include "service/debezium_fields.h"

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/debezium_conversions.h"

namespace cdcjoin {
namespace {

// Debian's Abseil is built with its own string_view, so std::string_view goes through this.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(where), ": ", AV(what)));
}

absl::Status FieldInvalid(std::string_view image, std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(AV(image), ".", AV(field), ": ", AV(what)));
}

// ---------------------------------------------------------------------------------------------
// Whether a decoded value fits its target column (ColumnFacts from the database). Every refusal
// is an InvalidArgument with reason "type-mismatch" naming the field, the value's wire type and
// the column, so the record is dead-lettered here rather than converted, rounded, truncated or
// refused by MySQL at write time.

// The value as the message shows it: the text of a number, an excerpt of a string.
std::string Shown(const WireValue& wire) {
  switch (wire.type) {
    case WireValue::Type::kInteger:
      return absl::StrCat(wire.integer);
    case WireValue::Type::kUnsigned:
      return absl::StrCat(wire.big);
    case WireValue::Type::kReal:
      return absl::StrCat(wire.real);
    case WireValue::Type::kBool:
      return wire.boolean ? "true" : "false";
    case WireValue::Type::kText:
      if (wire.text.size() <= 64) return Excerpt(wire.text);
      return absl::StrCat("of ", wire.text.size(), " bytes");
    case WireValue::Type::kBytes:
      return absl::StrCat("of ", wire.text.size(), " bytes");
    default:
      return "";
  }
}

absl::Status Mismatch(const FieldDecodeContext& context, std::string_view image,
                      std::string_view field, const WireValue& wire, const std::string& column,
                      const ColumnFacts& facts, std::string_view problem) {
  const std::string shown = Shown(wire);
  return WithDecodeReason(
      absl::InvalidArgumentError(absl::StrCat(
          AV(image), ".", AV(field), ": ", context.format, " ", wire.type_name,
          shown.empty() ? "" : " ", shown, " does not fit column ", column, " ",
          facts.column_type, ": ", AV(problem))),
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

absl::Status CheckFits(const FieldDecodeContext& context, const WireValue& wire,
                       FieldKind kind, std::string_view image, std::string_view field,
                       const std::string& column, const ColumnFacts& facts, Value* value) {
  auto mismatch = [&](std::string_view problem) {
    return Mismatch(context, image, field, wire, column, facts, problem);
  };
  if (IsNull(*value)) {
    return facts.nullable ? absl::OkStatus() : mismatch("the column is NOT NULL");
  }
  // Text that the decoder kept as text (not a Debezium encoding it rendered, such as a decimal
  // or an unsigned 64-bit integer).
  const bool raw_text = wire.type == WireValue::Type::kText &&
                        (kind == FieldKind::kByValue || kind == FieldKind::kString);
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

// A decimal's unscaled bytes: raw (Avro) or base64 text (JSON).
bool RenderDecimal(const WireValue& wire, int scale, std::string* out) {
  if (wire.type == WireValue::Type::kBytes) {
    return !wire.text.empty() && wire.text.size() <= 64 &&
           FormatTwosComplementDecimal(wire.text, scale, out);
  }
  return DecodeBase64Decimal(wire.text, scale, out);
}

absl::Status ConvertValue(const FieldDecodeContext& context, const WireValue& wire,
                          const FieldType& type, std::string_view image, std::string_view field,
                          Value* out) {
  using T = WireValue::Type;
  const size_t max_value_bytes = context.options.max_value_bytes;
  if (wire.type == T::kNull) {
    *out = std::monostate{};
    return absl::OkStatus();
  }
  if (wire.type == T::kComposite) {
    return FieldInvalid(image, field, absl::StrCat("expected a scalar, got ", wire.type_name));
  }
  if (wire.type == T::kUnsigned) {
    return FieldInvalid(image, field, absl::StrCat("integer ", wire.big, " is out of int64 range"));
  }
  auto expected = [&](std::string_view what) {
    return FieldInvalid(image, field,
                        absl::StrCat("expected ", AV(what), ", got ", wire.type_name));
  };
  auto text = [&]() -> absl::Status {
    if (wire.text.size() > max_value_bytes) {
      return FieldInvalid(image, field,
                          absl::StrCat("string value of ", wire.text.size(),
                                       " bytes exceeds max_value_bytes (", max_value_bytes, ")"));
    }
    *out = std::string(wire.text);
    return absl::OkStatus();
  };
  const FieldKind kind = type.kind;
  const int64_t i = wire.integer;
  switch (kind) {
    case FieldKind::kByValue:
      switch (wire.type) {
        case T::kInteger:
          *out = i;
          return absl::OkStatus();
        case T::kReal:
          *out = wire.real;
          return absl::OkStatus();
        case T::kBool:
          *out = int64_t{wire.boolean ? 1 : 0};
          return absl::OkStatus();
        case T::kText:
          return text();
        default:
          return expected("a scalar");
      }
    case FieldKind::kString:
      if (wire.type != T::kText) return expected("string");
      return text();
    case FieldKind::kInt64:
      if (wire.type != T::kInteger) return expected("integer");
      *out = i;
      return absl::OkStatus();
    case FieldKind::kDouble:
      if (wire.type == T::kInteger) {
        *out = static_cast<double>(i);
      } else if (wire.type == T::kReal) {
        *out = wire.real;
      } else {
        return expected("number");
      }
      return absl::OkStatus();
    case FieldKind::kBool:
      if (wire.type == T::kBool) {
        *out = int64_t{wire.boolean ? 1 : 0};
        return absl::OkStatus();
      }
      if (wire.type == T::kInteger) {
        if (i == 0 || i == 1) {
          *out = i;
          return absl::OkStatus();
        }
        return FieldInvalid(image, field, absl::StrCat("expected boolean, got integer ", i));
      }
      return expected("boolean");
    case FieldKind::kMillis:
    case FieldKind::kMicros:
    case FieldKind::kNanos: {
      const char* unit = kind == FieldKind::kMillis   ? "epoch milliseconds"
                         : kind == FieldKind::kMicros ? "epoch microseconds"
                                                      : "epoch nanoseconds";
      if (wire.type != T::kInteger) return expected(absl::StrCat("integer ", unit));
      const int64_t per_second =
          kind == FieldKind::kMillis ? 1000 : kind == FieldKind::kMicros ? 1000000 : 1000000000;
      std::string rendered;
      if (!FormatEpochTimestamp(i, per_second, &rendered)) {
        return FieldInvalid(image, field,
                            absl::StrCat("timestamp ", i, " (", unit,
                                         ") is outside years 0001..9999"));
      }
      *out = std::move(rendered);
      return absl::OkStatus();
    }
    case FieldKind::kDays: {
      if (wire.type != T::kInteger) return expected("integer days since epoch");
      std::string rendered;
      if (!FormatUtcDate(i, &rendered)) {
        return FieldInvalid(image, field,
                            absl::StrCat("date ", i, " (days since epoch) is outside years "
                                                     "0001..9999"));
      }
      *out = std::move(rendered);
      return absl::OkStatus();
    }
    case FieldKind::kZoned: {
      if (wire.type != T::kText) return expected("ISO-8601 timestamp string");
      int64_t seconds = 0;
      int32_t micros = 0;
      std::string rendered;
      if (!ParseZonedTimestamp(wire.text, &seconds, &micros) ||
          !FormatUtcDateTime(seconds, micros, &rendered)) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid ISO-8601 zoned timestamp ", Excerpt(wire.text)));
      }
      *out = std::move(rendered);
      return absl::OkStatus();
    }
    case FieldKind::kDecimal: {
      if (wire.type != T::kText && wire.type != T::kBytes) {
        return expected("base64 decimal string");
      }
      std::string rendered;
      if (!RenderDecimal(wire, type.scale, &rendered)) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid decimal bytes (empty, bad base64 or over 64 "
                                         "bytes) ", Shown(wire)));
      }
      *out = std::move(rendered);
      return absl::OkStatus();
    }
    case FieldKind::kTimeMicros:
    case FieldKind::kTimeMillis:
    case FieldKind::kTimeNanos: {
      if (wire.type != T::kInteger) return expected("integer time of day");
      const int64_t micros = kind == FieldKind::kTimeMillis  ? i * 1000
                             : kind == FieldKind::kTimeNanos ? i / 1000
                                                             : i;
      std::string rendered;
      if ((kind == FieldKind::kTimeMillis && (i > INT64_MAX / 1000 || i < INT64_MIN / 1000)) ||
          !FormatTimeOfDayMicros(micros, &rendered)) {
        return FieldInvalid(image, field,
                            absl::StrCat("time ", i, " is outside MySQL's TIME range"));
      }
      *out = std::move(rendered);
      return absl::OkStatus();
    }
    case FieldKind::kBytes: {
      std::string bytes;
      if (wire.type == T::kBytes) {
        bytes.assign(wire.text.data(), wire.text.size());
      } else if (wire.type != T::kText) {
        return expected("base64 bytes string");
      } else if (!DecodeBase64(wire.text, &bytes)) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid base64 bytes ", Excerpt(wire.text)));
      }
      if (bytes.size() > max_value_bytes) {
        return FieldInvalid(image, field,
                            absl::StrCat("bytes value of ", bytes.size(),
                                         " bytes exceeds max_value_bytes (", max_value_bytes,
                                         ")"));
      }
      *out = std::move(bytes);
      return absl::OkStatus();
    }
    case FieldKind::kBits: {
      int64_t bits = 0;
      const bool ok = wire.type == T::kBytes  ? BitsOfBytes(wire.text, &bits)
                      : wire.type == T::kText ? DecodeBase64Bits(wire.text, &bits)
                                              : false;
      if (wire.type != T::kBytes && wire.type != T::kText) return expected("base64 bits string");
      if (!ok) {
        return FieldInvalid(image, field,
                            absl::StrCat("invalid bits, or 2^63 or more: ", Shown(wire)));
      }
      *out = bits;
      return absl::OkStatus();
    }
    case FieldKind::kUint64: {
      if (wire.type != T::kInteger) return expected("integer");
      std::string rendered;
      FormatUnsigned64(i, &rendered);
      *out = std::move(rendered);
      return absl::OkStatus();
    }
  }
  return expected("a scalar");
}

// The key fields of `row`, each typed by its schema and checked against its key column.
absl::Status DecodeKeyFields(const FieldDecodeContext& context, const RowView& row,
                             std::string_view place, const SourceMapping& mapping, Key* key) {
  const TableSchema& schema = *context.schema;
  key->clear();
  key->reserve(mapping.key_fields.size());
  for (const std::string& name : mapping.key_fields) {
    WireValue wire;
    FieldType type;
    if (!row.Find(name, &wire, &type)) return FieldInvalid(place, name, "missing key field");
    if (wire.type == WireValue::Type::kNull) return FieldInvalid(place, name, "null key");
    if (wire.type == WireValue::Type::kComposite) {
      return FieldInvalid(place, name,
                          absl::StrCat("key field must be a scalar, got ", wire.type_name));
    }
    key->emplace_back();
    absl::Status status = ConvertValue(context, wire, type, place, name, &key->back());
    if (!status.ok()) return status;
    const size_t k = key->size() - 1;
    if (k < schema.key_facts.size() && schema.key_facts[k].has_value()) {
      status = CheckFits(context, wire, type.kind, place, name, schema.key_columns[k],
                         *schema.key_facts[k], &key->back());
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeRecordKey(const FieldDecodeContext& context, RecordKeyReader& keys,
                             std::optional<std::string_view> record_key,
                             const SourceMapping& mapping, Key* key) {
  if (!record_key.has_value() || record_key->data() == nullptr) {
    return Invalid("key", "the record has no key, but key_source is RECORD_KEY");
  }
  if (record_key->size() > context.options.max_record_bytes) {
    return Invalid("key", absl::StrCat("record key of ", record_key->size(),
                                       " bytes exceeds the limit of ",
                                       context.options.max_record_bytes));
  }
  absl::StatusOr<const RowView*> row = keys.Read(*record_key);
  if (!row.ok()) return row.status();
  return DecodeKeyFields(context, **row, "key", mapping, key);
}

absl::Status CheckSourceTable(EnvelopeView& envelope, int source, const SourceMapping& mapping) {
  if (mapping.database.empty() && mapping.table.empty()) return absl::OkStatus();
  std::optional<std::string_view> db, table;
  if (absl::Status s = envelope.SourceTable(&db, &table); !s.ok()) return s;
  struct Expected {
    const char* envelope_field;
    const char* config_field;
    const std::string& want;
    const std::optional<std::string_view>& got;
  };
  for (const Expected& expected : {Expected{"db", "database", mapping.database, db},
                                   Expected{"table", "table", mapping.table, table}}) {
    if (expected.want.empty()) continue;
    if (expected.got.has_value() && *expected.got == expected.want) continue;
    return WithDecodeReason(
        absl::InvalidArgumentError(absl::StrCat(
            "source.", expected.envelope_field, ": ",
            expected.got.has_value() ? absl::StrCat("'", AV(*expected.got), "'")
                                     : std::string("missing"),
            " but sources[", source, "].", expected.config_field, " (", mapping.name, ") is '",
            expected.want, "': an event of another table is not applied as a row of this source")),
        "foreign-table");
  }
  return absl::OkStatus();
}

}  // namespace

std::string Excerpt(std::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() <= kMax) return absl::StrCat("'", AV(text), "'");
  return absl::StrCat("'", AV(text.substr(0, kMax)), "...' (", text.size(), " bytes)");
}

FieldKind KindOfConfigured(v1::ValueType type) {
  switch (type) {
    case v1::STRING:
      return FieldKind::kString;
    case v1::INT64:
      return FieldKind::kInt64;
    case v1::DOUBLE:
      return FieldKind::kDouble;
    case v1::BOOL:
      return FieldKind::kBool;
    case v1::TIMESTAMP_MILLIS:
      return FieldKind::kMillis;
    case v1::TIMESTAMP_MICROS:
      return FieldKind::kMicros;
    case v1::TIMESTAMP_NANOS:
      return FieldKind::kNanos;
    case v1::DATE_DAYS:
      return FieldKind::kDays;
    case v1::ZONED_TIMESTAMP:
      return FieldKind::kZoned;
    case v1::TIME_MICROS:
      return FieldKind::kTimeMicros;
    case v1::BYTES:
      return FieldKind::kBytes;
    case v1::UINT64:
      return FieldKind::kUint64;
    default:
      return FieldKind::kByValue;
  }
}

std::optional<FieldKind> KindOfSemanticName(std::string_view name) {
  if (name == "io.debezium.time.Timestamp" || name == "org.apache.kafka.connect.data.Timestamp" ||
      name == "timestamp-millis" || name == "local-timestamp-millis") {
    return FieldKind::kMillis;
  }
  if (name == "io.debezium.time.MicroTimestamp" || name == "timestamp-micros" ||
      name == "local-timestamp-micros") {
    return FieldKind::kMicros;
  }
  if (name == "io.debezium.time.NanoTimestamp") return FieldKind::kNanos;
  if (name == "io.debezium.time.Date" || name == "org.apache.kafka.connect.data.Date" ||
      name == "date") {
    return FieldKind::kDays;
  }
  if (name == "io.debezium.time.ZonedTimestamp") return FieldKind::kZoned;
  // TIME columns: a duration since midnight, not an integer column. Read as plain integers they
  // were written as wrong values (MySQL parses 86399999999 as a TIME of its own).
  if (name == "io.debezium.time.MicroTime" || name == "time-micros") {
    return FieldKind::kTimeMicros;
  }
  if (name == "io.debezium.time.Time" || name == "org.apache.kafka.connect.data.Time" ||
      name == "time-millis") {
    return FieldKind::kTimeMillis;
  }
  if (name == "io.debezium.time.NanoTime") return FieldKind::kTimeNanos;
  if (name == "io.debezium.data.Bits") return FieldKind::kBits;
  if (name == "org.apache.kafka.connect.data.Decimal" || name == "decimal" ||
      name == "io.debezium.data.VariableScaleDecimal") {
    return FieldKind::kDecimal;
  }
  return std::nullopt;
}

FieldKind KindOfPrimitive(std::string_view type) {
  if (type == "int8" || type == "int16" || type == "int32" || type == "int64" || type == "int" ||
      type == "long") {
    return FieldKind::kInt64;
  }
  if (type == "float32" || type == "float64" || type == "float" || type == "double") {
    return FieldKind::kDouble;
  }
  if (type == "boolean") return FieldKind::kBool;
  // Plain bytes (binary columns): base64 text in JSON, raw in Avro; the raw bytes either way.
  if (type == "bytes" || type == "fixed") return FieldKind::kBytes;
  if (type == "string" || type == "enum") return FieldKind::kString;
  return FieldKind::kByValue;
}

std::optional<int> ParseScale(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9' || value > 1000) return std::nullopt;
    value = value * 10 + (ch - '0');
  }
  return value;
}

DecoderOptions DecoderOptionsOf(const v1::Config& config) {
  DecoderOptions options;
  options.max_value_bytes = config.sink().max_value_bytes();
  options.event_time_from_record_timestamp =
      config.window().event_time() == v1::RECORD_TIMESTAMP;
  return options;
}

absl::Status CheckKeyFieldCounts(const TableSchema& schema) {
  for (size_t s = 0; s < schema.sources.size(); ++s) {
    const SourceMapping& source = schema.sources[s];
    if (source.key_fields.size() != schema.key_columns.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sources[", s, "].key_fields: ", source.key_fields.size(),
                       " fields for ", schema.key_columns.size(), " target key columns"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> StartRecord(const FieldDecodeContext& context, int source,
                                 std::optional<std::string_view> record_value,
                                 EventPosition position, Decoded* out) {
  if (source < 0 || static_cast<size_t>(source) >= context.schema->sources.size()) {
    return absl::InvalidArgumentError(absl::StrCat("source index ", source, " out of range"));
  }
  out->event.source = source;
  out->event.position = position;
  if (!record_value.has_value() || record_value->data() == nullptr) {
    out->outcome = DecodeOutcome::kTombstone;
    return true;
  }
  if (record_value->size() > context.options.max_record_bytes) {
    return Invalid("value", absl::StrCat("record of ", record_value->size(),
                                         " bytes exceeds the limit of ",
                                         context.options.max_record_bytes));
  }
  return false;
}

absl::StatusOr<Decoded> DecodeEnvelope(const FieldDecodeContext& context, int source,
                                       EnvelopeView& envelope, RecordKeyReader& keys,
                                       std::optional<std::string_view> record_key,
                                       int64_t record_timestamp_ms, Decoded out) {
  const TableSchema& schema = *context.schema;
  const SourceMapping& mapping = schema.sources[static_cast<size_t>(source)];
  absl::StatusOr<std::string_view> op = envelope.Op();
  if (!op.ok()) return op.status();
  ChangeOp change_op = ChangeOp::kUpsert;
  std::string_view image = "after";
  if (op->size() == 1) out.op = (*op)[0];
  if (*op == "c" || *op == "u" || *op == "r") {
    change_op = ChangeOp::kUpsert;
  } else if (*op == "d") {
    change_op = ChangeOp::kDelete;
    image = "before";
  } else if (*op == "t" || *op == "m") {
    out.outcome = DecodeOutcome::kSkippedOp;
    out.skipped_op.assign(op->data(), op->size());
    return out;
  } else {
    return Invalid("op", absl::StrCat("unknown op ", Excerpt(*op),
                                      " (expected one of c, u, r, d, t, m)"));
  }
  out.event.op = change_op;
  if (absl::Status status = CheckSourceTable(envelope, source, mapping); !status.ok()) {
    return status;
  }

  // The row image. A delete keyed by the record key may have no `before` (e.g. PostgreSQL with
  // REPLICA IDENTITY NOTHING); everything else needs its image.
  absl::StatusOr<const RowView*> row = envelope.Image(image);
  if (!row.ok()) return row.status();
  const bool key_from_row = mapping.key_source != v1::RECORD_KEY;
  if (*row == nullptr && (change_op == ChangeOp::kUpsert || key_from_row)) {
    return Invalid(image, absl::StrCat("missing or null for op '", AV(*op), "'"));
  }

  absl::Status status;
  if (key_from_row) {
    status = DecodeKeyFields(context, **row, image, mapping, &out.event.key);
  } else {
    status = DecodeRecordKey(context, keys, record_key, mapping, &out.event.key);
  }
  if (!status.ok()) return status;
  // The other place's key, when it has every key field: key_source decides, a difference is
  // only reported (a producer keying records differently from the row is worth knowing about).
  {
    Key other;
    const bool other_ok =
        key_from_row
            ? record_key.has_value() && record_key->data() != nullptr &&
                  DecodeRecordKey(context, keys, record_key, mapping, &other).ok()
            : *row != nullptr && DecodeKeyFields(context, **row, image, mapping, &other).ok();
    out.key_disagreed = other_ok && other != out.event.key;
  }

  if (change_op == ChangeOp::kUpsert) {
    out.event.values.resize(mapping.fields.size());
    for (size_t f = 0; f < mapping.fields.size(); ++f) {
      const FieldMapping& field = mapping.fields[f];
      WireValue wire;
      FieldType type;
      if (!(*row)->Find(field.from, &wire, &type)) {
        return FieldInvalid(image, field.from, "missing field");
      }
      if (wire.type == WireValue::Type::kNull && field.skip_event_if_null) {
        out.outcome = DecodeOutcome::kSkippedNull;
        out.event.values.clear();
        return out;
      }
      if (field.type != v1::VALUE_TYPE_AUTO) type = FieldType{KindOfConfigured(field.type), 0};
      status = ConvertValue(context, wire, type, image, field.from, &out.event.values[f]);
      if (!status.ok()) return status;
      const size_t column = static_cast<size_t>(field.column);
      if (column < schema.column_facts.size() && schema.column_facts[column].has_value()) {
        status = CheckFits(context, wire, type.kind, image, field.from, schema.columns[column],
                           *schema.column_facts[column], &out.event.values[f]);
        if (!status.ok()) return status;
      }
    }
  }

  out.event.event_time_ms = record_timestamp_ms;
  if (!context.options.event_time_from_record_timestamp) {
    absl::StatusOr<std::optional<int64_t>> event_time = envelope.EventTimeMs();
    if (!event_time.ok()) return event_time.status();
    if (event_time->has_value()) out.event.event_time_ms = **event_time;
  }
  std::string_view binlog_file;
  int64_t binlog_pos = 0;
  int64_t binlog_row = 0;
  BinlogCoordinates coordinates;
  if (envelope.BinlogPosition(&binlog_file, &binlog_pos, &binlog_row) &&
      ParseBinlogCoordinates(binlog_file, binlog_pos, binlog_row,
                             /*snapshot_read=*/out.op == 'r', &coordinates)) {
    out.event.binlog = coordinates;
  }
  out.outcome = DecodeOutcome::kEvent;
  return out;
}

}  // namespace cdcjoin
