#ifndef CDCJOIN_SERVICE_DEBEZIUM_CONVERSIONS_H_
#define CDCJOIN_SERVICE_DEBEZIUM_CONVERSIONS_H_

// The calendar and number conversions of Debezium's semantic types, apart from any envelope
// format, so the JSON and Avro decoders render values identically:
//
//   std::string text;
//   FormatEpochTimestamp(1700000000123, 1000, &text);   // "2023-11-14 22:13:20.123000"
//   ParseZonedTimestamp("2024-03-01T12:34:56+09:00", &seconds, &micros);
//
// Times are rendered as MySQL DATETIME/DATE text in UTC; every function returns false instead of
// rendering a value MySQL would not store exactly (years outside 0001..9999, malformed input).

#include <cstdint>
#include <string>
#include <string_view>

#include "join/change_event.h"

namespace cdcjoin {

// Renders an instant as "YYYY-MM-DD HH:MM:SS", plus ".ffffff" when micros (0..999999) is not
// zero, in UTC. False when the instant is outside years 0001..9999 (MySQL's DATETIME range).
bool FormatUtcDateTime(int64_t epoch_seconds, int32_t micros, std::string* out);

// An epoch count in units of 1/units_per_second s (1000: io.debezium.time.Timestamp, 1000000:
// MicroTimestamp, 1000000000: NanoTimestamp), rendered as FormatUtcDateTime does. Negative
// counts are before 1970 (floor division: -1 ms is 1969-12-31 23:59:59.999).
bool FormatEpochTimestamp(int64_t count, int64_t units_per_second, std::string* out);

// Renders days since 1970-01-01 as "YYYY-MM-DD"; false outside years 0001..9999.
bool FormatUtcDate(int64_t epoch_days, std::string* out);

// ISO-8601 with offset, as io.debezium.time.ZonedTimestamp writes it
// (DateTimeFormatter.ISO_OFFSET_DATE_TIME): 2024-03-01T12:34:56.789+09:00, ...Z. Seconds and the
// fraction are optional, ',' is accepted as the decimal mark, and the offset may be ±hh, ±hhmm,
// ±hh:mm or ±hh:mm:ss. False when malformed or outside years 0001..9999.
bool ParseZonedTimestamp(std::string_view text, int64_t* epoch_seconds, int32_t* micros);

// Kafka Connect Decimal: base64 of the big-endian two's-complement unscaled value, with `scale`
// from the field schema, rendered as decimal text (MySQL converts it to DECIMAL exactly), at any
// precision (DECIMAL(20,4) needs 9 bytes; BIGINT UNSIGNED in Debezium's `precise` mode too). False
// for invalid or empty base64, or more than 64 bytes.
bool DecodeBase64Decimal(std::string_view base64, int scale, std::string* out);

// The same unscaled value as raw bytes (Avro's decimal logical type carries them unencoded).
// False for empty input or more than 64 bytes.
bool FormatTwosComplementDecimal(std::string_view bytes, int scale, std::string* out);

// Plain Kafka Connect bytes (BINARY, VARBINARY, BLOB with binary.handling.mode=bytes arrive as
// base64 in JSON): the raw bytes, to be bound as a binary value. False for invalid base64.
bool DecodeBase64(std::string_view base64, std::string* out);

// io.debezium.data.Bits (BIT(n), n > 1): base64 of the little-endian bytes of a BitSet, as the
// integer MySQL stores in a BIT column. False for invalid base64 or a value of 2^63 or more.
bool DecodeBase64Bits(std::string_view base64, int64_t* out);

// The same BitSet bytes raw (Avro carries them unencoded).
bool BitsOfBytes(std::string_view bytes, int64_t* out);

// io.debezium.time.MicroTime (TIME): microseconds, negative or past 24 h as MySQL's TIME allows,
// rendered "[-]HH:MM:SS[.ffffff]" (three hour digits past 99). False outside ±838:59:59.
bool FormatTimeOfDayMicros(int64_t micros, std::string* out);

// BIGINT UNSIGNED with Debezium's default bigint.unsigned.handling.mode=long arrives as the
// int64 with the same bits (2^64-1 as -1): the unsigned value as decimal text.
bool FormatUnsigned64(int64_t wrapped, std::string* out);

// The binlog coordinates of a MariaDB/MySQL Debezium event, from its source block's `file`
// (e.g. "mysql-bin.000042"), `pos` and `row`, and whether the op is a snapshot read ("r"),
// for the stale-write guard (join/row_version.h). False when they are not a usable position:
// no numeric suffix after the file name's last '.', a negative pos or row, or a value beyond
// what the version layout holds. Every envelope decoder (JSON, Avro) calls this one.
bool ParseBinlogCoordinates(std::string_view file, int64_t pos, int64_t row, bool snapshot_read,
                            BinlogCoordinates* out);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEBEZIUM_CONVERSIONS_H_
