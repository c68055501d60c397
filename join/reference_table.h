#ifndef CDCJOIN_JOIN_REFERENCE_TABLE_H_
#define CDCJOIN_JOIN_REFERENCE_TABLE_H_

// Test models of the target table (testonly), shared by join/ and storage/ tests. Both are
// written from DESIGN.md and row_command.h alone and call no production code that builds or
// reduces commands, so a bug there makes a comparison against them fail.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "join/change_event.h"
#include "join/row_command.h"
#include "join/table_schema.h"
#include "join/value.h"

namespace cdcjoin {
namespace testing {

// A target table whose non-key columns default to NULL. NULL columns are not stored, so a row
// equals another with the same non-NULL columns.
class RowTable {
 public:
  RowTable() = default;
  // A table of `schema`: with its stale_write_guard, commands that carry versions are applied
  // as the guard defines them (row_command.h, storage/statement_sql.h).
  explicit RowTable(const TableSchema& schema);

  // A command as the MySQL sink applies it (row_command.h): kUpsert inserts the writes or, on
  // an existing row, updates the update_on_conflict writes; kClear sets columns NULL where the
  // row exists; kDelete removes the row. With the guard and versions: a write of a column
  // happens on an existing row only where the version of the column's guarding source is
  // newer than the row's; a kDelete only where its source's version is; a kRelease clears like
  // a kClear and, where its version won, removes the row once every source's stored version is
  // a delete's.
  void Apply(const RowCommand& command);
  void ApplyAll(const std::vector<RowCommand>& commands) {
    for (const RowCommand& c : commands) Apply(c);
  }

  // A change event as DESIGN.md "Semantics" defines it: an upsert whose skip_event_if_null
  // field is NULL changes nothing; otherwise it creates the row with every field of its source,
  // or updates the fields not set on insert only. A delete follows its source's policy: IGNORE
  // nothing, CLEAR_COLUMNS sets the source's updatable columns NULL, DELETE_ROW removes the row.
  void ApplyEvent(const TableSchema& schema, const ChangeEvent& event);

  bool operator==(const RowTable& other) const { return rows_ == other.rows_; }
  bool operator!=(const RowTable& other) const { return !(*this == other); }
  std::string DebugString(const TableSchema& schema) const;
  size_t size() const { return rows_.size(); }

 private:
  using Row = std::map<int, Value>;  // Column -> non-NULL value.
  using Versions = std::map<int, std::string>;  // Source -> stored version.
  static void Set(Row* row, int column, const Value& value);

  std::vector<int> guard_;    // TableSchema::column_guard; empty without the guard.
  std::vector<int> sources_;  // Every source index.
  std::map<std::string, Row> rows_;  // EncodeKey -> row.
  std::map<std::string, Versions> versions_;  // EncodeKey -> versions of rows_'s rows.
};

// Commands of a one-int64-column key for tests; every command covers one offset of partition
// (source 0, partition 0).
ColumnWrite Write(int column, bool update_on_conflict, Value value);
RowCommand UpsertCommand(int64_t key, std::vector<ColumnWrite> writes, int64_t offset);
RowCommand ClearCommand(int64_t key, const std::vector<int>& columns, int64_t offset);
RowCommand DeleteCommand(int64_t key, int64_t offset);
// The offsets of `covers`, in order.
std::vector<int64_t> Offsets(const std::vector<EventPosition>& covers);

// The reference model (DESIGN.md "Convergence"): the table after every event, in consumption
// order, per RowTable::ApplyEvent.
RowTable ReferenceTable(const TableSchema& schema, const std::vector<ChangeEvent>& events);

}  // namespace testing
}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_REFERENCE_TABLE_H_
