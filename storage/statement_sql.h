#ifndef CDCJOIN_STORAGE_STATEMENT_SQL_H_
#define CDCJOIN_STORAGE_STATEMENT_SQL_H_

// The SQL the MySQL writer runs for one planned statement (join/batch_plan.h): the one place
// that knows the dialect, so it can be read and tested without a server.
//
//   for (SqlStatement& s : PlannedStatementSql(schema, planned)) Run(s.text, s.parameters);
//
// Without the stale-write guard: one multi-row `INSERT ... ON DUPLICATE KEY UPDATE c =
// VALUES(c)` for upserts (insert-only columns only in the VALUES list), `UPDATE ... SET c =
// NULL WHERE key` for clears, `DELETE ... WHERE key` for deletes.
//
// With the guard (the rows carry versions, join/row_version.h), every change of a source's
// columns is conditional on the row's stored version of that source, in the same statement:
//   upsert: one multi-row INSERT whose ON DUPLICATE KEY UPDATE sets, for each guarded column,
//           c = IF(VALUES(v) > v OR v IS NULL, VALUES(c), c), and then, last, the version
//           columns the same way. MariaDB and MySQL evaluate these assignments left to right
//           and later ones see the results of earlier ones, so each column still compares
//           against the version stored before the statement, and the version moves only after.
//   clear, delete, release: first, per row, a "mark": UPDATE that sets the source's columns
//           NULL and its version to the command's (a delete's version ends in 1, "deleted"), both
//           only where newer. Then a delete removes the row where the mark took (its version
//           column now holds exactly the delete's version), a release where the mark took and
//           no source still owns the row (each version column NULL or ending in 1). A refused
//           release changes nothing at all, so the command algebra may fold a stale one away.
//
// Counting the writes the guard stopped: the refused branch of every version assignment runs
// `@cdcjoin_stale := @cdcjoin_stale + 1`. An assignment of ON DUPLICATE KEY UPDATE runs once per
// row that conflicted, an UPDATE's once per row it matched, IF() evaluates only the branch it
// takes, and that branch is exactly "the row exists and its stored version is not older". So
// the variable counts (row, source) writes refused, no more (absent rows and applied writes do
// not count) and no less. A user variable is not transactional: the writer sets it to 0 at the
// start of each transaction and reads it before COMMIT, adding it only once the COMMIT succeeds.

#include <string>
#include <vector>

#include "join/batch_plan.h"
#include "join/table_schema.h"
#include "join/value.h"

namespace cdcjoin {

// The session variable guarded statements count refused writes in.
inline constexpr char kStaleCounter[] = "@cdcjoin_stale";

// The SQL type of a version column (join/row_version.h).
inline constexpr char kVersionColumnType[] = "DECIMAL(30,0) UNSIGNED NULL";

struct SqlStatement {
  std::string text;  // Identical for statements of the same shape and row count (cacheable).
  std::vector<Value> parameters;  // In placeholder order; a version binds as its digits.
};

// The statements, in order, that apply `planned` to schema.table.
std::vector<SqlStatement> PlannedStatementSql(const TableSchema& schema,
                                              const PlannedStatement& planned);

// `ALTER TABLE` statements adding the version columns the guard needs (one per source, after
// the table's last column); empty without the guard.
std::vector<std::string> VersionColumnDdl(const TableSchema& schema);

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_STATEMENT_SQL_H_
