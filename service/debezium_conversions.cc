#include "service/debezium_conversions.h"

#include <cstring>

#include "join/row_version.h"

namespace cdcjoin {
namespace {

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (Howard Hinnant's days_from_civil / civil_from_days): exact for negative
// epochs, no time zone database, no allocation.

constexpr int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* year, unsigned* month, unsigned* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = static_cast<int64_t>(yoe) + era * 400 + (*month <= 2 ? 1 : 0);
}

constexpr int64_t kMinDays = DaysFromCivil(1, 1, 1);
constexpr int64_t kMaxDays = DaysFromCivil(9999, 12, 31);
static_assert(kMinDays == -719162, "0001-01-01");
static_assert(kMaxDays == 2932896, "9999-12-31");
constexpr int64_t kSecondsPerDay = 86400;
constexpr int64_t kMinSeconds = kMinDays * kSecondsPerDay;
constexpr int64_t kMaxSeconds = kMaxDays * kSecondsPerDay + kSecondsPerDay - 1;

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Floor division and modulo for a positive divisor: -1 ms is 1969-12-31 23:59:59.999.
void FloorDivMod(int64_t a, int64_t b, int64_t* q, int64_t* r) {
  *q = a / b;
  *r = a % b;
  if (*r < 0) {
    *q -= 1;
    *r += b;
  }
}

char* PutDigits(char* p, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return p + width;
}

char* PutDate(char* p, int64_t days) {
  int64_t year;
  unsigned month, day;
  CivilFromDays(days, &year, &month, &day);
  p = PutDigits(p, static_cast<unsigned>(year), 4);
  *p++ = '-';
  p = PutDigits(p, month, 2);
  *p++ = '-';
  return PutDigits(p, day, 2);
}

// ---------------------------------------------------------------------------------------------
// ISO-8601 with offset, as Debezium's io.debezium.time.ZonedTimestamp writes it
// (DateTimeFormatter.ISO_OFFSET_DATE_TIME): 2024-03-01T12:34:56.789+09:00, ...Z. Seconds and the
// fraction are optional (Java omits neither, but hand-made records do), ',' is accepted as the
// decimal mark, and the offset may be ±hh, ±hhmm, ±hh:mm or ±hh:mm:ss.

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool Done() const { return pos_ == s_.size(); }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool Eat(char c) {
    if (!Peek(c)) return false;
    ++pos_;
    return true;
  }
  bool EatAny(const char* chars, char* which) {
    if (pos_ < s_.size() && s_[pos_] != '\0' && std::strchr(chars, s_[pos_]) != nullptr) {
      *which = s_[pos_++];
      return true;
    }
    return false;
  }
  bool Digits(int n, unsigned* out) {
    unsigned v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return false;
      v = v * 10 + static_cast<unsigned>(s_[pos_++] - '0');
    }
    *out = v;
    return true;
  }
  bool IsDigit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
  char Next() { return s_[pos_++]; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool ParseZoned(std::string_view text, int64_t* epoch_seconds, int32_t* micros) {
  Cursor c(text);
  unsigned year, month, day, hour, minute, second = 0;
  char sep;
  if (!c.Digits(4, &year) || !c.Eat('-') || !c.Digits(2, &month) || !c.Eat('-') ||
      !c.Digits(2, &day) || !c.EatAny("Tt ", &sep) || !c.Digits(2, &hour) || !c.Eat(':') ||
      !c.Digits(2, &minute)) {
    return false;
  }
  int32_t fraction_micros = 0;
  if (c.Eat(':')) {
    if (!c.Digits(2, &second)) return false;
    char mark;
    if (c.EatAny(".,", &mark)) {
      int digits = 0;
      while (c.IsDigit()) {
        const int d = c.Next() - '0';
        // Microseconds are what DATETIME(6) keeps; finer digits are truncated.
        if (digits < 6) fraction_micros = fraction_micros * 10 + d;
        if (++digits > 9) return false;
      }
      if (digits == 0) return false;
      for (int i = digits; i < 6; ++i) fraction_micros *= 10;
    }
  }
  int64_t offset_seconds = 0;
  char sign;
  if (c.EatAny("Zz", &sign)) {
    // UTC.
  } else if (c.EatAny("+-", &sign)) {
    unsigned oh, om = 0, os = 0;
    if (!c.Digits(2, &oh)) return false;
    const bool colon = c.Eat(':');
    if (colon || c.IsDigit()) {
      if (!c.Digits(2, &om)) return false;
      if (colon ? c.Eat(':') : c.IsDigit()) {
        if (!c.Digits(2, &os)) return false;
      }
    }
    if (oh > 18 || om > 59 || os > 59) return false;
    offset_seconds = static_cast<int64_t>(oh) * 3600 + om * 60 + os;
    if (offset_seconds > 18 * 3600) return false;
    if (sign == '-') offset_seconds = -offset_seconds;
  } else {
    return false;  // A zoned timestamp without a zone is ambiguous.
  }
  if (!c.Done()) return false;
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) ||
      hour > 23 || minute > 59 || second > 59) {
    return false;
  }
  const int64_t local = DaysFromCivil(year, month, day) * kSecondsPerDay + hour * 3600 +
                        minute * 60 + second;
  *epoch_seconds = local - offset_seconds;
  *micros = fraction_micros;
  return *epoch_seconds >= kMinSeconds && *epoch_seconds <= kMaxSeconds;
}

// ---------------------------------------------------------------------------------------------
// Kafka Connect Decimal: base64 of the big-endian two's-complement unscaled value, with the
// scale in the field schema's parameters. Rendered as decimal text, which MySQL converts to
// DECIMAL exactly. Unscaled values beyond int64 are rejected rather than rounded.

int Base64Value(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

// Decodes standard base64 (padding optional) into bytes; false for anything else.
bool DecodeBase64Bytes(std::string_view text, std::string* out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  out->clear();
  uint32_t bits = 0;
  int nbits = 0;
  for (char ch : text) {
    const int v = Base64Value(ch);
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out->push_back(static_cast<char>((bits >> nbits) & 0xFF));
    }
  }
  return nbits < 6;  // A dangling character encodes no whole byte.
}

// The big-endian two's-complement integer in `bytes` as decimal text with `scale` fractional
// digits: exact at any length (a DECIMAL(65) needs 28 bytes), by schoolbook division by 10.
void FormatDecimal(std::string bytes, int scale, std::string* out) {
  const bool negative = !bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0x80) != 0;
  if (negative) {  // Magnitude = two's complement: invert, add one.
    for (char& b : bytes) b = static_cast<char>(~static_cast<unsigned char>(b));
    for (size_t i = bytes.size(); i-- > 0;) {
      bytes[i] = static_cast<char>(static_cast<unsigned char>(bytes[i]) + 1);
      if (bytes[i] != 0) break;
    }
  }
  std::string digits;  // Least significant first.
  bool nonzero = true;
  while (nonzero) {
    unsigned remainder = 0;
    nonzero = false;
    for (char& b : bytes) {
      const unsigned value = (remainder << 8) | static_cast<unsigned char>(b);
      b = static_cast<char>(value / 10);
      remainder = value % 10;
      if (b != 0) nonzero = true;
    }
    digits.push_back(static_cast<char>('0' + remainder));
  }
  const int n = static_cast<int>(digits.size());
  out->clear();
  if (negative) out->push_back('-');
  if (scale <= 0) {
    for (int i = n - 1; i >= 0; --i) out->push_back(digits[static_cast<size_t>(i)]);
    return;
  }
  if (n <= scale) {
    out->append("0.");
    out->append(static_cast<size_t>(scale - n), '0');
    for (int i = n - 1; i >= 0; --i) out->push_back(digits[static_cast<size_t>(i)]);
    return;
  }
  for (int i = n - 1; i >= 0; --i) {
    out->push_back(digits[static_cast<size_t>(i)]);
    if (i == scale) out->push_back('.');
  }
}

}  // namespace

bool ParseZonedTimestamp(std::string_view text, int64_t* epoch_seconds, int32_t* micros) {
  return ParseZoned(text, epoch_seconds, micros);
}

bool DecodeBase64Decimal(std::string_view base64, int scale, std::string* out) {
  std::string bytes;
  return DecodeBase64Bytes(base64, &bytes) && FormatTwosComplementDecimal(bytes, scale, out);
}

bool DecodeBase64(std::string_view base64, std::string* out) {
  return DecodeBase64Bytes(base64, out);
}

bool FormatTwosComplementDecimal(std::string_view bytes, int scale, std::string* out) {
  if (bytes.empty() || bytes.size() > 64) return false;
  FormatDecimal(std::string(bytes), scale, out);
  return true;
}

bool DecodeBase64Bits(std::string_view base64, int64_t* out) {
  std::string bytes;
  return DecodeBase64Bytes(base64, &bytes) && BitsOfBytes(bytes, out);
}

bool BitsOfBytes(std::string_view bytes, int64_t* out) {
  // Little-endian (java.util.BitSet#toByteArray); trailing zero bytes carry no bits.
  while (!bytes.empty() && bytes.back() == 0) bytes.remove_suffix(1);
  if (bytes.size() > 8 || (bytes.size() == 8 && (static_cast<unsigned char>(bytes[7]) & 0x80))) {
    return false;
  }
  uint64_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  *out = static_cast<int64_t>(value);
  return true;
}

bool FormatTimeOfDayMicros(int64_t micros, std::string* out) {
  // MySQL's TIME range: -838:59:59.000000 .. 838:59:59.000000.
  constexpr int64_t kMaxMicros = (838 * 3600 + 59 * 60 + 59) * int64_t{1000000};
  if (micros < -kMaxMicros || micros > kMaxMicros) return false;
  const bool negative = micros < 0;
  const uint64_t magnitude = negative ? static_cast<uint64_t>(-micros) : static_cast<uint64_t>(micros);
  const uint64_t seconds = magnitude / 1000000;
  const unsigned fraction = static_cast<unsigned>(magnitude % 1000000);
  char buffer[32];
  char* p = buffer;
  if (negative) *p++ = '-';
  p = PutDigits(p, static_cast<unsigned>(seconds / 3600), seconds / 3600 >= 100 ? 3 : 2);
  *p++ = ':';
  p = PutDigits(p, static_cast<unsigned>(seconds / 60 % 60), 2);
  *p++ = ':';
  p = PutDigits(p, static_cast<unsigned>(seconds % 60), 2);
  if (fraction != 0) {
    *p++ = '.';
    p = PutDigits(p, fraction, 6);
  }
  out->assign(buffer, static_cast<size_t>(p - buffer));
  return true;
}

bool FormatUnsigned64(int64_t wrapped, std::string* out) {
  *out = std::to_string(static_cast<uint64_t>(wrapped));
  return true;
}

bool FormatUtcDateTime(int64_t epoch_seconds, int32_t micros, std::string* out) {
  if (epoch_seconds < kMinSeconds || epoch_seconds > kMaxSeconds || micros < 0 ||
      micros > 999999) {
    return false;
  }
  int64_t days, seconds_of_day;
  FloorDivMod(epoch_seconds, kSecondsPerDay, &days, &seconds_of_day);
  char buffer[32];
  char* p = PutDate(buffer, days);
  *p++ = ' ';
  const unsigned sod = static_cast<unsigned>(seconds_of_day);
  p = PutDigits(p, sod / 3600, 2);
  *p++ = ':';
  p = PutDigits(p, sod / 60 % 60, 2);
  *p++ = ':';
  p = PutDigits(p, sod % 60, 2);
  if (micros != 0) {
    *p++ = '.';
    p = PutDigits(p, static_cast<unsigned>(micros), 6);
  }
  out->assign(buffer, static_cast<size_t>(p - buffer));
  return true;
}

bool FormatUtcDate(int64_t epoch_days, std::string* out) {
  if (epoch_days < kMinDays || epoch_days > kMaxDays) return false;
  char buffer[16];
  char* p = PutDate(buffer, epoch_days);
  out->assign(buffer, static_cast<size_t>(p - buffer));
  return true;
}


bool FormatEpochTimestamp(int64_t count, int64_t units_per_second, std::string* out) {
  int64_t seconds, sub;
  FloorDivMod(count, units_per_second, &seconds, &sub);
  // Sub-second units beyond micros are truncated: MySQL keeps at most 6 fractional digits.
  const int32_t micros = static_cast<int32_t>(
      units_per_second >= 1000000 ? sub / (units_per_second / 1000000)
                                  : sub * (1000000 / units_per_second));
  return FormatUtcDateTime(seconds, micros, out);
}

bool ParseBinlogCoordinates(std::string_view file, int64_t pos, int64_t row, bool snapshot_read,
                            BinlogCoordinates* out) {
  const size_t dot = file.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == file.size() || pos < 0 || row < 0) return false;
  uint64_t number = 0;
  for (char c : file.substr(dot + 1)) {
    if (c < '0' || c > '9' || number > kMaxBinlogFileNumber) return false;
    number = number * 10 + static_cast<uint64_t>(c - '0');
  }
  if (number > kMaxBinlogFileNumber || static_cast<uint64_t>(pos) > kMaxBinlogPosition ||
      static_cast<uint64_t>(row) > kMaxBinlogRow) {
    return false;
  }
  *out = BinlogCoordinates{number, static_cast<uint64_t>(pos), static_cast<uint64_t>(row),
                           snapshot_read};
  return true;
}

}  // namespace cdcjoin
