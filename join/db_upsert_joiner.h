#ifndef CDCJOIN_JOIN_DB_UPSERT_JOINER_H_
#define CDCJOIN_JOIN_DB_UPSERT_JOINER_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "join/change_event.h"
#include "join/row_command.h"
#include "join/table_schema.h"

namespace cdcjoin {

// The database-side join: every event becomes a command that touches only its own source's
// columns, and the database merges both sources' rows with INSERT … ON DUPLICATE KEY UPDATE.
//
// Upserts write the source's mapped columns (insert-only ones flagged); deletes follow the
// source's policy: IGNORE yields nothing, CLEAR_COLUMNS a kClear of the source's updatable
// columns, DELETE_ROW a kDelete, DELETE_ROW_WHEN_ALL_DELETED a kRelease of them. With the
// stale-write guard the command carries the source's version of the event (join/row_version.h).
// The command covers the event's position.
std::optional<RowCommand> BuildDbUpsertCommand(const TableSchema& schema,
                                               const ChangeEvent& event);

// What one source's events write, compiled once from its mapping: the one definition of an
// event's command, which BuildDbUpsertCommand applies per event and the windowed joiner keeps
// per source (it writes the fields into its state without building commands).
class SourceCommands {
 public:
  struct Field {
    int column = 0;
    bool update_on_conflict = true;
    size_t value_index = 0;  // Into ChangeEvent::values.
  };

  // `source_index`: the source's index in TableSchema::sources; `guarded`: the schema's
  // stale_write_guard (commands then carry the event's version).
  SourceCommands(const SourceMapping& source, int source_index, bool guarded);

  // An upsert's writes: one per column, sorted by column (where two fields map to one column,
  // the later mapping wins).
  const std::vector<Field>& fields() const { return fields_; }
  // A CLEAR_COLUMNS delete's writes: the updatable columns only, since an insert-only column
  // was never the source's to maintain.
  const std::vector<ColumnWrite>& clear_writes() const { return clear_writes_; }
  v1::DeletePolicy on_delete() const { return on_delete_; }
  // Values an upsert event carries (SourceMapping::fields).
  size_t value_count() const { return value_count_; }

  // The event's command without key and covers; nullopt when it writes nothing (a delete under
  // IGNORE). A missing value is written NULL.
  std::optional<RowCommand> Command(const ChangeEvent& event) const;

  // The versions a command built from `event` carries: empty without the guard.
  std::vector<SourceVersion> Versions(const ChangeEvent& event) const;

 private:
  int source_index_ = 0;
  bool guarded_ = false;
  std::vector<Field> fields_;
  std::vector<ColumnWrite> clear_writes_;
  v1::DeletePolicy on_delete_ = v1::IGNORE;
  size_t value_count_ = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_DB_UPSERT_JOINER_H_
