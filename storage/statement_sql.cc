#include "storage/statement_sql.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cdcjoin {
namespace {

// Identifiers were validated as plain identifiers by the configuration; doubling backticks
// keeps this safe even if one slipped through.
std::string Quote(const std::string& identifier) {
  std::string quoted = "`";
  for (char c : identifier) {
    quoted += c;
    if (c == '`') quoted += '`';
  }
  quoted += '`';
  return quoted;
}

// A bound version as the exact number it is: compared with a string, a DECIMAL column would
// be compared as a double, which rounds 30 digits.
constexpr char kVersionParameter[] = "CAST(? AS DECIMAL(30,0))";

std::string Marks(size_t n) {
  std::vector<std::string> marks(n, "?");
  return absl::StrCat("(", absl::StrJoin(marks, ", "), ")");
}

// `(k1 = ? AND k2 = ?) OR ...` for composite keys, `k IN (?, ...)` for one key column: both
// let the server find the rows by primary key and lock them in index order.
std::string KeyPredicate(const std::vector<std::string>& key_columns, size_t rows) {
  if (key_columns.size() == 1) {
    std::vector<std::string> marks(rows, "?");
    return absl::StrCat(Quote(key_columns[0]), " IN (", absl::StrJoin(marks, ", "), ")");
  }
  std::vector<std::string> parts;
  for (const std::string& column : key_columns) parts.push_back(Quote(column) + " = ?");
  const std::string one = absl::StrCat("(", absl::StrJoin(parts, " AND "), ")");
  std::vector<std::string> all(rows, one);
  return absl::StrJoin(all, " OR ");
}

std::string KeyEquals(const std::vector<std::string>& key_columns) {
  std::vector<std::string> parts;
  for (const std::string& column : key_columns) parts.push_back(Quote(column) + " = ?");
  return absl::StrJoin(parts, " AND ");
}

const std::string& VersionOf(const RowCommand& row, int source) {
  static const std::string* const kNone = new std::string();
  for (const SourceVersion& v : row.versions) {
    if (v.source == source) return v.version;
  }
  return *kNone;
}

bool HasVersion(const StatementShape& shape, int source) {
  return std::find(shape.version_sources.begin(), shape.version_sources.end(), source) !=
         shape.version_sources.end();
}

// The refused branch of a version assignment: keeps the stored version and counts the refusal
// (see the header for why this counts exactly).
std::string KeepCounting(const std::string& version) {
  return absl::StrCat("IF((", kStaleCounter, " := ", kStaleCounter, " + 1) > 0, ", version, ", ",
                      version, ")");
}

SqlStatement Upsert(const TableSchema& schema, const PlannedStatement& planned) {
  const StatementShape& shape = planned.shape;
  std::vector<std::string> names;
  for (const std::string& key : schema.key_columns) names.push_back(Quote(key));
  std::vector<std::string> updates;
  for (const auto& [column, update_on_conflict] : shape.columns) {
    const std::string name = Quote(schema.columns[column]);
    names.push_back(name);
    if (!update_on_conflict) continue;
    const int guard = schema.column_guard.empty() ? -1 : schema.column_guard[column];
    if (guard >= 0 && HasVersion(shape, guard)) {
      const std::string v = Quote(schema.sources[guard].version_column);
      updates.push_back(absl::StrCat(name, " = IF(VALUES(", v, ") > ", v, " OR ", v,
                                     " IS NULL, VALUES(", name, "), ", name, ")"));
    } else {
      updates.push_back(absl::StrCat(name, " = VALUES(", name, ")"));
    }
  }
  // Versions last: the assignments above must compare against the stored versions.
  for (int source : shape.version_sources) {
    const std::string v = Quote(schema.sources[source].version_column);
    names.push_back(v);
    updates.push_back(absl::StrCat(v, " = IF(VALUES(", v, ") > ", v, " OR ", v,
                                   " IS NULL, VALUES(", v, "), ", KeepCounting(v), ")"));
  }
  // Nothing to update on conflict (only insert-only columns): a no-op assignment keeps the
  // statement an upsert without INSERT IGNORE, which would also hide real errors.
  if (updates.empty()) {
    const std::string key = Quote(schema.key_columns[0]);
    updates.push_back(absl::StrCat(key, " = ", key));
  }
  std::vector<std::string> tuples(planned.rows.size(), Marks(names.size()));
  SqlStatement out;
  out.text = absl::StrCat("INSERT INTO ", Quote(schema.table), " (", absl::StrJoin(names, ", "),
                          ") VALUES ", absl::StrJoin(tuples, ", "), " ON DUPLICATE KEY UPDATE ",
                          absl::StrJoin(updates, ", "));
  for (const RowCommand* row : planned.rows) {
    out.parameters.insert(out.parameters.end(), row->key.begin(), row->key.end());
    for (const ColumnWrite& write : row->writes) out.parameters.push_back(write.value);
    for (int source : shape.version_sources) out.parameters.push_back(VersionOf(*row, source));
  }
  return out;
}

SqlStatement KeyedStatement(std::string text, const PlannedStatement& planned) {
  SqlStatement out;
  out.text = std::move(text);
  for (const RowCommand* row : planned.rows) {
    out.parameters.insert(out.parameters.end(), row->key.begin(), row->key.end());
  }
  return out;
}

// The guarded clear of one row: its columns NULL and its versions set, where newer.
SqlStatement Mark(const TableSchema& schema, const StatementShape& shape, const RowCommand& row) {
  SqlStatement out;
  std::vector<std::string> sets;
  for (const auto& column : shape.columns) {
    const std::string name = Quote(schema.columns[column.first]);
    const int guard = schema.column_guard[column.first];
    if (guard < 0 || !HasVersion(shape, guard)) {
      sets.push_back(name + " = NULL");
      continue;
    }
    const std::string v = Quote(schema.sources[guard].version_column);
    sets.push_back(absl::StrCat(name, " = IF(", kVersionParameter, " > ", v, " OR ", v,
                                " IS NULL, NULL, ", name, ")"));
    out.parameters.push_back(VersionOf(row, guard));
  }
  for (int source : shape.version_sources) {
    const std::string v = Quote(schema.sources[source].version_column);
    sets.push_back(absl::StrCat(v, " = IF(", kVersionParameter, " > ", v, " OR ", v, " IS NULL, ",
                                kVersionParameter, ", ", KeepCounting(v), ")"));
    out.parameters.push_back(VersionOf(row, source));
    out.parameters.push_back(VersionOf(row, source));
  }
  out.text = absl::StrCat("UPDATE ", Quote(schema.table), " SET ", absl::StrJoin(sets, ", "),
                          " WHERE ", KeyEquals(schema.key_columns));
  out.parameters.insert(out.parameters.end(), row.key.begin(), row.key.end());
  return out;
}

// Removes the rows whose mark took: the deleting source's version column holds exactly the
// command's version (a refused mark left a newer one). A release also needs that no source
// owns the row any more: every version column NULL (never written) or ending in 1 (deleted by
// its source).
SqlStatement DeleteMarked(const TableSchema& schema, const PlannedStatement& planned) {
  const int source = planned.shape.version_sources.front();
  const std::string v = Quote(schema.sources[source].version_column);
  const std::string one =
      absl::StrCat("(", KeyEquals(schema.key_columns), " AND ", v, " = ", kVersionParameter, ")");
  std::vector<std::string> all(planned.rows.size(), one);
  std::string where = absl::StrJoin(all, " OR ");
  if (planned.shape.kind == RowCommandKind::kRelease) {
    std::vector<std::string> unowned;
    for (const SourceMapping& mapping : schema.sources) {
      const std::string w = Quote(mapping.version_column);
      unowned.push_back(absl::StrCat("(", w, " IS NULL OR MOD(", w, ", 10) = 1)"));
    }
    where = absl::StrCat("(", where, ") AND ", absl::StrJoin(unowned, " AND "));
  }
  SqlStatement out;
  out.text = absl::StrCat("DELETE FROM ", Quote(schema.table), " WHERE ", where);
  for (const RowCommand* row : planned.rows) {
    out.parameters.insert(out.parameters.end(), row->key.begin(), row->key.end());
    out.parameters.push_back(VersionOf(*row, source));
  }
  return out;
}

}  // namespace

std::vector<SqlStatement> PlannedStatementSql(const TableSchema& schema,
                                              const PlannedStatement& planned) {
  const StatementShape& shape = planned.shape;
  const std::string table = Quote(schema.table);
  const size_t rows = planned.rows.size();
  std::vector<SqlStatement> out;
  if (shape.kind == RowCommandKind::kUpsert) {
    out.push_back(Upsert(schema, planned));
    return out;
  }
  if (shape.version_sources.empty()) {
    // Unguarded (a kRelease always carries its version).
    if (shape.kind == RowCommandKind::kDelete) {
      out.push_back(KeyedStatement(
          absl::StrCat("DELETE FROM ", table, " WHERE ", KeyPredicate(schema.key_columns, rows)),
          planned));
    } else {
      std::vector<std::string> sets;
      for (const auto& column : shape.columns) {
        sets.push_back(Quote(schema.columns[column.first]) + " = NULL");
      }
      out.push_back(KeyedStatement(absl::StrCat("UPDATE ", table, " SET ",
                                                absl::StrJoin(sets, ", "), " WHERE ",
                                                KeyPredicate(schema.key_columns, rows)),
                                   planned));
    }
    return out;
  }
  // One mark per row: each row compares its own version, and a multi-table UPDATE (the only
  // way to give one UPDATE per-row values) does not promise left-to-right assignments.
  for (const RowCommand* row : planned.rows) out.push_back(Mark(schema, shape, *row));
  if (shape.kind != RowCommandKind::kClear) out.push_back(DeleteMarked(schema, planned));
  return out;
}

std::vector<std::string> VersionColumnDdl(const TableSchema& schema) {
  std::vector<std::string> out;
  if (!schema.stale_write_guard) return out;
  for (const SourceMapping& source : schema.sources) {
    out.push_back(absl::StrCat("ALTER TABLE ", Quote(schema.table), " ADD COLUMN ",
                               Quote(source.version_column), " ", kVersionColumnType, ";"));
  }
  return out;
}

}  // namespace cdcjoin
