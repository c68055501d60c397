#ifndef CDCJOIN_JOIN_VALUE_H_
#define CDCJOIN_JOIN_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace cdcjoin {

// A column value as it is bound into SQL: NULL, integer, floating point or text. Timestamps and
// dates arrive here already rendered as "YYYY-MM-DD HH:MM:SS[.ffffff]" / "YYYY-MM-DD" text in UTC.
using Value = std::variant<std::monostate, int64_t, double, std::string>;

inline bool IsNull(const Value& value) { return std::holds_alternative<std::monostate>(value); }

// For logs and test failure messages: NULL, 42, 1.5, 'text'.
std::string ValueDebugString(const Value& value);

// A join key: one value per target key column, in target.key_columns order.
using Key = std::vector<Value>;

std::string KeyDebugString(const Key& key);

// A hash that is the same in every process and run (std::hash is not), so lane routing and
// partition-local state agree across restarts.
uint64_t StableKeyHash(const Key& key);

// A byte string that identifies the key, for maps and on-disk state: its values in the Value
// encoding below, one after the other. DecodeKey inverts it (false: malformed bytes).
std::string EncodeKey(const Key& key);
bool DecodeKey(absl::string_view bytes, Key* key);

// The one binary encoding of values (keys and the windowed joiner's state): a tag byte, then
// NULL: nothing; integer: zigzag varint; double: its 8 bytes; text: varint length and bytes.
//
//   std::string out;
//   AppendValue(Value(int64_t{42}), &out);
//   absl::string_view in = out;
//   Value v;
//   bool ok = ConsumeValue(&in, &v);  // v == 42, in is empty
void AppendValue(const Value& value, std::string* out);
// The most bytes EncodeValueTo writes for `value`.
size_t MaxEncodedValueSize(const Value& value);
// Writes `value` at `out`, which has room for MaxEncodedValueSize(value); returns the end. For
// writers that fill a reused buffer through a cursor.
char* EncodeValueTo(const Value& value, char* out);
// Reads one value from the front of *in and removes it; false (in undefined) when malformed.
bool ConsumeValue(absl::string_view* in, Value* value);

// The varints (LEB128) the Value encoding is built of, for the records that carry values.
constexpr size_t kMaxVarintSize = 10;
char* EncodeVarintTo(uint64_t v, char* out);  // Writes at most kMaxVarintSize bytes.
void AppendVarint(uint64_t v, std::string* out);
bool ConsumeVarint(absl::string_view* in, uint64_t* v);
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_VALUE_H_
