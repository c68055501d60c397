#include "join/value.h"

#include <cstring>
#include <utility>

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

enum Tag : uint8_t { kNullTag = 0, kIntTag = 1, kDoubleTag = 2, kStringTag = 3 };

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
  for (const Value& value : key) AppendValue(value, &out);
  return out;
}

bool DecodeKey(absl::string_view bytes, Key* key) {
  key->clear();
  while (!bytes.empty()) {
    Value value;
    if (!ConsumeValue(&bytes, &value)) return false;
    key->push_back(std::move(value));
  }
  return true;
}

char* EncodeVarintTo(uint64_t v, char* out) {
  while (v >= 0x80) {
    *out++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
  return out;
}

void AppendVarint(uint64_t v, std::string* out) {
  char buf[kMaxVarintSize];
  out->append(buf, EncodeVarintTo(v, buf) - buf);
}

bool ConsumeVarint(absl::string_view* in, uint64_t* v) {
  *v = 0;
  for (size_t i = 0; i < in->size() && i < kMaxVarintSize; ++i) {
    const uint8_t b = static_cast<uint8_t>((*in)[i]);
    *v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      in->remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

size_t MaxEncodedValueSize(const Value& value) {
  switch (value.index()) {
    case 0:
      return 1;
    case 1:
      return 1 + kMaxVarintSize;
    case 2:
      return 1 + sizeof(double);
    default:
      return 1 + kMaxVarintSize + std::get<std::string>(value).size();
  }
}

char* EncodeValueTo(const Value& value, char* out) {
  switch (value.index()) {
    case 0:
      *out++ = static_cast<char>(kNullTag);
      return out;
    case 1:
      *out++ = static_cast<char>(kIntTag);
      return EncodeVarintTo(ZigZag(std::get<int64_t>(value)), out);
    case 2: {
      *out++ = static_cast<char>(kDoubleTag);
      const double d = std::get<double>(value);
      std::memcpy(out, &d, sizeof d);
      return out + sizeof d;
    }
    default: {
      const std::string& text = std::get<std::string>(value);
      *out++ = static_cast<char>(kStringTag);
      out = EncodeVarintTo(text.size(), out);
      std::memcpy(out, text.data(), text.size());
      return out + text.size();
    }
  }
}

void AppendValue(const Value& value, std::string* out) {
  const size_t start = out->size();
  out->resize(start + MaxEncodedValueSize(value));
  char* begin = &(*out)[0];
  out->resize(EncodeValueTo(value, begin + start) - begin);
}

bool ConsumeValue(absl::string_view* in, Value* value) {
  if (in->empty()) return false;
  const uint8_t tag = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  switch (tag) {
    case kNullTag:
      *value = std::monostate{};
      return true;
    case kIntTag: {
      uint64_t v;
      if (!ConsumeVarint(in, &v)) return false;
      *value = UnZigZag(v);
      return true;
    }
    case kDoubleTag: {
      double d;
      if (in->size() < sizeof d) return false;
      std::memcpy(&d, in->data(), sizeof d);
      in->remove_prefix(sizeof d);
      *value = d;
      return true;
    }
    case kStringTag: {
      uint64_t size;
      if (!ConsumeVarint(in, &size) || in->size() < size) return false;
      *value = std::string(in->substr(0, size));
      in->remove_prefix(size);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace cdcjoin
