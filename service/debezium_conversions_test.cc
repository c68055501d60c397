#include "service/debezium_conversions.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

TEST(DebeziumConversions, UtcDateTimeAndDate) {
  std::string out;
  ASSERT_TRUE(FormatUtcDateTime(0, 0, &out));
  EXPECT_EQ(out, "1970-01-01 00:00:00");
  ASSERT_TRUE(FormatUtcDateTime(-1, 999999, &out));
  EXPECT_EQ(out, "1969-12-31 23:59:59.999999");
  EXPECT_FALSE(FormatUtcDateTime(253402300800, 0, &out));
  EXPECT_FALSE(FormatUtcDateTime(-62135596801, 0, &out));
  EXPECT_FALSE(FormatUtcDateTime(0, 1000000, &out));
  ASSERT_TRUE(FormatUtcDate(-719162, &out));
  EXPECT_EQ(out, "0001-01-01");
  EXPECT_FALSE(FormatUtcDate(-719163, &out));
  EXPECT_FALSE(FormatUtcDate(2932897, &out));
  // Every day over four centuries round-trips through civil dates without a gap.
  std::string previous;
  for (int64_t day = -146097; day < 146097; ++day) {
    ASSERT_TRUE(FormatUtcDate(day, &out));
    ASSERT_LT(previous, out) << day;
    previous = out;
  }
}

TEST(DebeziumConversions, EpochTimestampsInEveryUnit) {
  std::string out;
  ASSERT_TRUE(FormatEpochTimestamp(1700000000123, 1000, &out));
  EXPECT_EQ(out, "2023-11-14 22:13:20.123000");
  ASSERT_TRUE(FormatEpochTimestamp(-1, 1000, &out));
  EXPECT_EQ(out, "1969-12-31 23:59:59.999000");
  ASSERT_TRUE(FormatEpochTimestamp(1700000000123456, 1000000, &out));
  EXPECT_EQ(out, "2023-11-14 22:13:20.123456");
  // Nanoseconds beyond the sixth digit are truncated (MySQL keeps six).
  ASSERT_TRUE(FormatEpochTimestamp(1700000000123456789, 1000000000, &out));
  EXPECT_EQ(out, "2023-11-14 22:13:20.123456");
  EXPECT_FALSE(FormatEpochTimestamp(253402300800000, 1000, &out));
}

TEST(DebeziumConversions, ZonedTimestampsNormaliseToUtc) {
  int64_t seconds = 0;
  int32_t micros = 0;
  ASSERT_TRUE(ParseZonedTimestamp("2024-03-01T12:34:56.789+09:00", &seconds, &micros));
  std::string out;
  ASSERT_TRUE(FormatUtcDateTime(seconds, micros, &out));
  EXPECT_EQ(out, "2024-03-01 03:34:56.789000");
  ASSERT_TRUE(ParseZonedTimestamp("2024-03-01T00:00:00Z", &seconds, &micros));
  ASSERT_TRUE(FormatUtcDateTime(seconds, micros, &out));
  EXPECT_EQ(out, "2024-03-01 00:00:00");
  EXPECT_FALSE(ParseZonedTimestamp("2024-03-01 00:00:00", &seconds, &micros));
  EXPECT_FALSE(ParseZonedTimestamp("2024-13-01T00:00:00Z", &seconds, &micros));
}

TEST(DebeziumConversions, Base64DecimalsAreExact) {
  std::string out;
  // 0x01E240 = 123456 with scale 4.
  ASSERT_TRUE(DecodeBase64Decimal("AeJA", 4, &out));
  EXPECT_EQ(out, "12.3456");
  // 0xFF = -1 (two's complement) with scale 2.
  ASSERT_TRUE(DecodeBase64Decimal("/w==", 2, &out));
  EXPECT_EQ(out, "-0.01");
  ASSERT_TRUE(DecodeBase64Decimal("AeJA", 0, &out));
  EXPECT_EQ(out, "123456");
  EXPECT_FALSE(DecodeBase64Decimal("not base64!", 2, &out));
  // Nine bytes, 2^64: exact, not rounded nor rejected.
  ASSERT_TRUE(DecodeBase64Decimal("AQAAAAAAAAAA", 0, &out));
  EXPECT_EQ(out, "18446744073709551616");
  // What Debezium wrote for DECIMAL(20,4) 1234567890123456.7891 (captured from a real event).
  ASSERT_TRUE(DecodeBase64Decimal("AKtUqYzrHwrT", 4, &out));
  EXPECT_EQ(out, "1234567890123456.7891");
  // And for -0.0001: one byte 0xFF.
  ASSERT_TRUE(DecodeBase64Decimal("/w==", 4, &out));
  EXPECT_EQ(out, "-0.0001");
  // -2^72 (0xFF00..00, ten bytes): the two's complement carries through every byte.
  ASSERT_TRUE(DecodeBase64Decimal("/wAAAAAAAAAAAA==", 0, &out));
  EXPECT_EQ(out, "-4722366482869645213696");
  ASSERT_TRUE(DecodeBase64Decimal("AA==", 3, &out));
  EXPECT_EQ(out, "0.000");
  EXPECT_FALSE(DecodeBase64Decimal("", 0, &out));
}

TEST(DebeziumConversions, BytesBitsTimesAndUnsigned) {
  std::string out;
  // Real events: VARBINARY x'00ff10' and BLOB x'deadbeef'.
  ASSERT_TRUE(DecodeBase64("AP8Q", &out));
  EXPECT_EQ(out, std::string("\x00\xff\x10", 3));
  ASSERT_TRUE(DecodeBase64("3q2+7w==", &out));
  EXPECT_EQ(out, "\xde\xad\xbe\xef");
  ASSERT_TRUE(DecodeBase64("", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(DecodeBase64("a", &out));
  EXPECT_FALSE(DecodeBase64("**", &out));

  // BIT(10) b'1010101010' = 682 arrived as "qgI=" (0xAA 0x02, little-endian).
  int64_t bits = -1;
  ASSERT_TRUE(DecodeBase64Bits("qgI=", &bits));
  EXPECT_EQ(bits, 682);
  ASSERT_TRUE(DecodeBase64Bits("AAA=", &bits));
  EXPECT_EQ(bits, 0);
  EXPECT_FALSE(DecodeBase64Bits("//////////8=", &bits));  // 2^64-1 does not fit.

  // TIME(6) '23:59:59.999999', '-838:59:59', '00:00:00', '-00:00:01.5'.
  ASSERT_TRUE(FormatTimeOfDayMicros(86399999999, &out));
  EXPECT_EQ(out, "23:59:59.999999");
  ASSERT_TRUE(FormatTimeOfDayMicros(-3020399000000, &out));
  EXPECT_EQ(out, "-838:59:59");
  ASSERT_TRUE(FormatTimeOfDayMicros(0, &out));
  EXPECT_EQ(out, "00:00:00");
  ASSERT_TRUE(FormatTimeOfDayMicros(-1500000, &out));
  EXPECT_EQ(out, "-00:00:01.500000");
  EXPECT_FALSE(FormatTimeOfDayMicros(3020400000000, &out));

  // BIGINT UNSIGNED 2^64-1 and 2^63 as Debezium's long mode wraps them.
  ASSERT_TRUE(FormatUnsigned64(-1, &out));
  EXPECT_EQ(out, "18446744073709551615");
  ASSERT_TRUE(FormatUnsigned64(INT64_MIN, &out));
  EXPECT_EQ(out, "9223372036854775808");
}

}  // namespace
TEST(DebeziumConversions, BinlogCoordinatesFromFilePosRow) {
  BinlogCoordinates c;
  ASSERT_TRUE(ParseBinlogCoordinates("mysql-bin.000042", 1234, 3, false, &c));
  EXPECT_EQ(c, (BinlogCoordinates{42, 1234, 3, false}));
  ASSERT_TRUE(ParseBinlogCoordinates("mariadb-bin.7", 4, 0, true, &c));
  EXPECT_EQ(c, (BinlogCoordinates{7, 4, 0, true}));
  // Not a usable position: the guard falls back to the Kafka offset.
  EXPECT_FALSE(ParseBinlogCoordinates("", 4, 0, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("binlog", 4, 0, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("mysql-bin.", 4, 0, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("mysql-bin.00a1", 4, 0, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("mysql-bin.000001", -1, 0, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("mysql-bin.000001", 4, -2, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("mysql-bin.1000000000", 4, 0, false, &c));
  EXPECT_FALSE(ParseBinlogCoordinates("mysql-bin.000001", 4, 1000000, false, &c));
}

}  // namespace cdcjoin
