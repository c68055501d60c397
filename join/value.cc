#include "join/value.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cdcjoin {
namespace {

// FNV-1a: simple, stable, and good enough to spread keys over a handful of lanes.
constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

void HashBytes(const void* data, size_t size, uint64_t* hash) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    *hash ^= bytes[i];
    *hash *= kFnvPrime;
  }
}

enum Tag : char { kNullTag = 'n', kIntTag = 'i', kDoubleTag = 'd', kStringTag = 's' };

}  // namespace

std::string ValueDebugString(const Value& value) {
  switch (value.index()) {
    case 0:
      return "NULL";
    case 1:
      return absl::StrCat(std::get<int64_t>(value));
    case 2:
      return absl::StrCat(std::get<double>(value));
    default:
      return absl::StrCat("'", std::get<std::string>(value), "'");
  }
}

std::string KeyDebugString(const Key& key) {
  return absl::StrCat(
      "(",
      absl::StrJoin(key, ",",
                    [](std::string* out, const Value& v) { out->append(ValueDebugString(v)); }),
      ")");
}

uint64_t StableKeyHash(const Key& key) {
  uint64_t hash = kFnvOffset;
  const std::string encoded = EncodeKey(key);
  HashBytes(encoded.data(), encoded.size(), &hash);
  return hash;
}

std::string EncodeKey(const Key& key) {
  std::string out;
  for (const Value& value : key) {
    switch (value.index()) {
      case 0:
        out.push_back(kNullTag);
        break;
      case 1: {
        out.push_back(kIntTag);
        const int64_t v = std::get<int64_t>(value);
        char buf[sizeof v];
        std::memcpy(buf, &v, sizeof v);
        out.append(buf, sizeof v);
        break;
      }
      case 2: {
        out.push_back(kDoubleTag);
        const double v = std::get<double>(value);
        char buf[sizeof v];
        std::memcpy(buf, &v, sizeof v);
        out.append(buf, sizeof v);
        break;
      }
      default: {
        const std::string& s = std::get<std::string>(value);
        out.push_back(kStringTag);
        const uint32_t size = static_cast<uint32_t>(s.size());
        char buf[sizeof size];
        std::memcpy(buf, &size, sizeof size);
        out.append(buf, sizeof size);
        out.append(s);
      }
    }
  }
  return out;
}

bool DecodeKey(const std::string& bytes, Key* key) {
  key->clear();
  size_t pos = 0;
  while (pos < bytes.size()) {
    const char tag = bytes[pos++];
    switch (tag) {
      case kNullTag:
        key->emplace_back(std::monostate{});
        break;
      case kIntTag: {
        int64_t v;
        if (bytes.size() - pos < sizeof v) return false;
        std::memcpy(&v, bytes.data() + pos, sizeof v);
        pos += sizeof v;
        key->emplace_back(v);
        break;
      }
      case kDoubleTag: {
        double v;
        if (bytes.size() - pos < sizeof v) return false;
        std::memcpy(&v, bytes.data() + pos, sizeof v);
        pos += sizeof v;
        key->emplace_back(v);
        break;
      }
      case kStringTag: {
        uint32_t size;
        if (bytes.size() - pos < sizeof size) return false;
        std::memcpy(&size, bytes.data() + pos, sizeof size);
        pos += sizeof size;
        if (bytes.size() - pos < size) return false;
        key->emplace_back(bytes.substr(pos, size));
        pos += size;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

}  // namespace cdcjoin
