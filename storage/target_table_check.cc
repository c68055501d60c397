#include "storage/target_table_check.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cdcjoin {
namespace {

struct Column {
  std::string data_type;  // Lower case, as information_schema.COLUMNS.DATA_TYPE.
  ColumnFacts facts;
};

// Edit distance, to suggest the column a typo meant.
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Suggestion(const std::string& name, const std::map<std::string, Column>& columns) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& [candidate, column] : columns) {
    const size_t distance = Distance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)");
}

bool OneOf(const std::string& type, std::initializer_list<const char*> types) {
  for (const char* t : types) {
    if (type == t) return true;
  }
  return false;
}

bool IsInteger(const std::string& t) {
  return OneOf(t, {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"});
}
bool IsText(const std::string& t) {
  return OneOf(t, {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
                   "json", "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"});
}
bool IsDateTime(const std::string& t) { return OneOf(t, {"datetime", "timestamp"}); }

// Whether a column of `type` stores values of the mapped type exactly (no implicit conversion
// that could change them). Types this check does not know are left to the database.
bool Compatible(v1::ValueType value_type, const std::string& t) {
  switch (value_type) {
    case v1::INT64:
      return IsInteger(t) || OneOf(t, {"decimal", "bit"});
    case v1::DOUBLE:
      return OneOf(t, {"float", "double", "decimal"});
    case v1::BOOL:
      return IsInteger(t) || t == "bit";
    case v1::TIMESTAMP_MILLIS:
    case v1::TIMESTAMP_MICROS:
    case v1::TIMESTAMP_NANOS:
    case v1::ZONED_TIMESTAMP:
      return IsDateTime(t) || IsText(t);
    case v1::DATE_DAYS:
      return t == "date" || IsDateTime(t) || IsText(t);
    case v1::STRING:
      return IsText(t) || IsDateTime(t) || OneOf(t, {"date", "time", "decimal"});
    case v1::TIME_MICROS:
      return t == "time" || IsText(t);
    case v1::BYTES:  // Raw bytes: a text column would reject or reinterpret them.
      return OneOf(t, {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"});
    case v1::UINT64:  // Up to 2^64-1: only BIGINT (UNSIGNED) or a wide DECIMAL holds it.
      return OneOf(t, {"bigint", "decimal"}) || IsText(t);
    default:
      return true;
  }
}

}  // namespace

ColumnFacts ColumnFactsOf(const std::string& data_type, const std::string& column_type,
                          bool nullable, int64_t max_chars, int64_t max_bytes, int64_t precision,
                          int64_t scale) {
  ColumnFacts facts;
  facts.column_type = column_type;
  facts.nullable = nullable;
  facts.is_unsigned = absl::StrContains(absl::AsciiStrToLower(column_type), "unsigned");
  const std::string& t = data_type;
  if (IsInteger(t)) {
    facts.kind = ColumnFacts::Kind::kInteger;
    const int bits = t == "tinyint" ? 8 : t == "smallint" ? 16 : t == "mediumint" ? 24
                     : t == "bigint"  ? 64 : 32;
    if (facts.is_unsigned) {
      facts.min_integer = 0;
      facts.max_integer = bits == 64 ? UINT64_MAX : (uint64_t{1} << bits) - 1;
    } else {
      facts.min_integer = bits == 64 ? INT64_MIN : -(int64_t{1} << (bits - 1));
      facts.max_integer = bits == 64 ? uint64_t{INT64_MAX} : (uint64_t{1} << (bits - 1)) - 1;
    }
  } else if (t == "float") {
    facts.kind = ColumnFacts::Kind::kFloat;
  } else if (OneOf(t, {"double", "real", "double precision"})) {
    facts.kind = ColumnFacts::Kind::kDouble;
  } else if (OneOf(t, {"decimal", "numeric"}) && precision > 0 && scale >= 0) {
    facts.kind = ColumnFacts::Kind::kDecimal;
    facts.precision = static_cast<int>(precision);
    facts.scale = static_cast<int>(scale);
  } else if (t == "bit" && precision > 0) {
    facts.kind = ColumnFacts::Kind::kBit;
    facts.precision = static_cast<int>(precision);
  } else if (OneOf(t, {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})) {
    facts.kind = ColumnFacts::Kind::kText;
    facts.max_chars = max_chars;
    facts.max_bytes = max_bytes;
  } else if (OneOf(t, {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})) {
    facts.kind = ColumnFacts::Kind::kBinary;
    facts.max_bytes = max_bytes >= 0 ? max_bytes : max_chars;
  } else if (IsDateTime(t) || OneOf(t, {"date", "time"})) {
    facts.kind = ColumnFacts::Kind::kTemporal;
  }
  return facts;
}

absl::StatusOr<TargetTableReport> CheckTargetTable(const MySqlOptions& options,
                                                          const v1::Config& config) {
  absl::StatusOr<std::unique_ptr<sql::Connection>> connection = OpenMySqlConnection(options);
  if (!connection.ok()) return connection.status();
  const std::string& schema = config.target().database().database();
  const std::string& table = config.target().table();
  const std::string where = absl::StrCat(schema, ".", table);
  std::map<std::string, Column> columns;
  std::vector<std::string> primary_key;
  absl::Status read = CatchMySqlErrors(absl::StrCat("reading the definition of ", where), [&] {
    std::unique_ptr<sql::PreparedStatement> statement((*connection)->prepareStatement(
        "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE, "
        "IFNULL(CHARACTER_MAXIMUM_LENGTH, -1), IFNULL(CHARACTER_OCTET_LENGTH, -1), "
        "IFNULL(NUMERIC_PRECISION, -1), IFNULL(NUMERIC_SCALE, -1) "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"));
    statement->setString(1, schema);
    statement->setString(2, table);
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery());
    while (rows->next()) {
      const std::string data_type = rows->getString(2);
      columns[rows->getString(1)] = Column{
          data_type, ColumnFactsOf(data_type, rows->getString(3), rows->getString(4) == "YES",
                                   rows->getInt64(5), rows->getInt64(6), rows->getInt64(7),
                                   rows->getInt64(8))};
    }
    statement.reset((*connection)->prepareStatement(
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? "
        "AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"));
    statement->setString(1, schema);
    statement->setString(2, table);
    rows.reset(statement->executeQuery());
    while (rows->next()) primary_key.push_back(rows->getString(1));
  });
  if (!read.ok()) return read;

  TargetTableReport report;
  std::vector<std::string>& problems = report.problems;
  if (columns.empty()) {
    problems.push_back(absl::StrCat("target.table: table ", where,
                                    " does not exist (or the user cannot see it)"));
    return report;
  }
  for (const auto& [name, column] : columns) report.columns[name] = column.facts;
  const std::vector<std::string> keys(config.target().key_columns().begin(),
                                      config.target().key_columns().end());
  for (size_t k = 0; k < keys.size(); ++k) {
    if (columns.count(keys[k]) == 0) {
      problems.push_back(absl::StrCat("target.key_columns[", k, "]: column '", keys[k],
                                      "' is not in ", where, Suggestion(keys[k], columns)));
    }
  }
  if (primary_key != keys) {
    problems.push_back(absl::StrCat(
        "target.key_columns: [", absl::StrJoin(keys, ", "), "] but the primary key of ", where,
        " is [", absl::StrJoin(primary_key, ", "),
        "]: INSERT ... ON DUPLICATE KEY UPDATE merges rows only on the primary key"));
  }
  for (int i = 0; i < config.sources_size(); ++i) {
    for (int c = 0; c < config.sources(i).columns_size(); ++c) {
      const v1::ColumnMapping& mapping = config.sources(i).columns(c);
      const std::string field = absl::StrCat("sources[", i, "].columns[", c, "]");
      auto it = columns.find(mapping.to());
      if (it == columns.end()) {
        problems.push_back(absl::StrCat(field, ".to: column '", mapping.to(), "' is not in ",
                                        where, Suggestion(mapping.to(), columns)));
      } else if (!Compatible(mapping.type(), it->second.data_type)) {
        problems.push_back(absl::StrCat(field, ".type: ", v1::ValueType_Name(mapping.type()),
                                        " does not fit column '", mapping.to(), "' of type ",
                                        it->second.data_type, " in ", where));
      }
    }
  }
  if (config.target().stale_write_guard()) {
    for (int i = 0; i < config.sources_size(); ++i) {
      const std::string& name = config.sources(i).version_column();
      const std::string field = absl::StrCat("sources[", i, "].version_column");
      auto it = columns.find(name);
      if (it == columns.end()) {
        problems.push_back(absl::StrCat(
            field, ": column '", name, "' is not in ", where,
            ": target.stale_write_guard keeps each source's version there; `cdcjoind "
            "--print_ddl --config=FILE` prints the ALTER TABLE statements that add it"));
        continue;
      }
      const ColumnFacts& facts = it->second.facts;
      if (facts.kind != ColumnFacts::Kind::kDecimal || facts.precision < 30 || facts.scale != 0) {
        problems.push_back(absl::StrCat(field, ": column '", name, "' is ", facts.column_type,
                                        " in ", where,
                                        ": a version needs DECIMAL(30,0) (see --print_ddl)"));
      }
    }
  }
  return report;
}

}  // namespace cdcjoin
