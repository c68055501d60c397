#ifndef CDCJOIN_JOIN_VALUE_H_
#define CDCJOIN_JOIN_VALUE_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

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

// A byte string that identifies the key, for maps and on-disk state; DecodeKey inverts it.
std::string EncodeKey(const Key& key);
bool DecodeKey(const std::string& bytes, Key* key);

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_VALUE_H_
