#ifndef CDCJOIN_JOIN_DB_UPSERT_JOINER_H_
#define CDCJOIN_JOIN_DB_UPSERT_JOINER_H_

#include <optional>

#include "join/change_event.h"
#include "join/row_command.h"
#include "join/table_schema.h"

namespace cdcjoin {

// The database-side join: every event becomes a command that touches only its own source's
// columns, and the database merges both sources' rows with INSERT … ON DUPLICATE KEY UPDATE.
//
// Upserts write the source's mapped columns (insert-only ones flagged); deletes follow the
// source's policy: IGNORE yields nothing, CLEAR_COLUMNS a kClear of the source's columns,
// DELETE_ROW a kDelete. The command covers the event's position.
std::optional<RowCommand> BuildDbUpsertCommand(const TableSchema& schema,
                                               const ChangeEvent& event);

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_DB_UPSERT_JOINER_H_
