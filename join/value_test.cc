#include "join/value.h"

#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

TEST(ValueEncodingTest, ValuesRoundTrip) {
  const Value values[] = {Value(),
                          Value(int64_t{0}),
                          Value(int64_t{-1}),
                          Value(std::numeric_limits<int64_t>::min()),
                          Value(std::numeric_limits<int64_t>::max()),
                          Value(-0.25),
                          Value(std::string()),
                          Value(std::string("h\0llo", 5)),
                          Value(std::string(300, 'x'))};
  std::string encoded;
  for (const Value& value : values) {
    const size_t before = encoded.size();
    AppendValue(value, &encoded);
    EXPECT_LE(encoded.size() - before, MaxEncodedValueSize(value));
  }
  absl::string_view in = encoded;
  for (const Value& value : values) {
    Value decoded;
    ASSERT_TRUE(ConsumeValue(&in, &decoded));
    EXPECT_EQ(decoded, value);
  }
  EXPECT_TRUE(in.empty());
}

TEST(ValueEncodingTest, KeysRoundTripAndTruncationsAreRejected) {
  const Key key = {Value(int64_t{7}), Value("user"), Value(), Value(1.5)};
  const std::string encoded = EncodeKey(key);
  Key decoded;
  ASSERT_TRUE(DecodeKey(encoded, &decoded));
  EXPECT_EQ(decoded, key);
  // Every strict prefix ending inside a value is malformed.
  for (size_t n : {1u, 3u, 4u, static_cast<unsigned>(encoded.size() - 1)}) {
    EXPECT_FALSE(DecodeKey(absl::string_view(encoded).substr(0, n), &decoded)) << n;
  }
  EXPECT_FALSE(DecodeKey(std::string(1, '\x09'), &decoded)) << "unknown tag";
  // Distinct keys, distinct bytes (they are map keys).
  EXPECT_NE(EncodeKey({Value("ab"), Value("c")}), EncodeKey({Value("a"), Value("bc")}));
  EXPECT_NE(EncodeKey({Value(int64_t{1})}), EncodeKey({Value(1.0)}));
}

TEST(ValueEncodingTest, VarintsAndZigZag) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{63}, int64_t{-64}, int64_t{1} << 40,
                    std::numeric_limits<int64_t>::min()}) {
    std::string out;
    AppendVarint(ZigZag(v), &out);
    absl::string_view in = out;
    uint64_t read;
    ASSERT_TRUE(ConsumeVarint(&in, &read));
    EXPECT_EQ(UnZigZag(read), v);
    EXPECT_TRUE(in.empty());
  }
  absl::string_view unterminated = "\x80\x80";
  uint64_t read;
  EXPECT_FALSE(ConsumeVarint(&unterminated, &read));
}

// Lane routing hashes the encoded key: a change of the encoding or of the hash must be a
// decision, so the values are pinned.
TEST(ValueEncodingTest, StableKeyHashIsPinned) {
  EXPECT_EQ(StableKeyHash({Value(int64_t{42})}), 11125431498705304950u);
  EXPECT_EQ(StableKeyHash({Value("user-7"), Value()}), 10266928691965478327u);
}

}  // namespace
}  // namespace cdcjoin
