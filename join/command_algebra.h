#ifndef CDCJOIN_JOIN_COMMAND_ALGEBRA_H_
#define CDCJOIN_JOIN_COMMAND_ALGEBRA_H_

// The reduction of one key's RowCommands: the one place that knows which sequences of commands
// a shorter sequence can stand for. The windowed joiner reduces a window with it, the batch
// plan (and so every sink lane batch) reduces a key's run of commands with it.
//
//   std::vector<RowCommand> reduced;
//   for (RowCommand& command : commands_of_one_key) AppendReduced(&reduced, std::move(command));
//   // `reduced` has at most two commands and the effect of all of them, in order.
//
// The rules, for a command A followed by B on the same key (each exact on both row states,
// absent and present):
//   any;    kDelete -> the kDelete (a delete erases whatever came before).
//   kDelete;kClear  -> the kDelete (clearing an absent row does nothing).
//   kDelete;kUpsert -> both, in order (no single statement re-creates a row).
//   kUpsert;kUpsert -> one kUpsert: B's updatable writes replace A's (with update_on_conflict,
//                      since the row exists after A); B's insert-only writes are dropped (A
//                      already created the row); A's other writes stay.
//   kUpsert;kClear  -> the kUpsert, each cleared column written NULL with update_on_conflict.
//   kClear; kClear  -> one kClear of the union of columns.
//   kClear; kUpsert -> the kUpsert plus a NULL write (update_on_conflict) of every cleared column
//                      it does not write; unless it writes a cleared column insert-only, when
//                      "absent: the value, present: NULL" needs both commands.
// With the stale-write guard (commands carry versions, join/row_version.h):
//   B of one source not newer than A of the same source -> A, with B's covers (the guard would
//                      refuse B after A whatever the row held).
//   a kDelete or kRelease next to anything -> both, in order (a guarded delete happens only
//                      where its version wins, so it neither erases nor voids its neighbours).
//   kClear; kUpsert    -> both, in order (a clear of an absent row stores no version; the
//                      merged upsert would).
//   the other merges   -> as above; the result carries per source the version of the later
//                      command that wrote that source.
// These rules rely on what SourceCommands guarantees: every upsert of a source writes all its
// columns with fixed flags, every clear all its updatable columns.
// The last rule of the first list assumes what the reference model of DESIGN.md assumes: a non-key target column
// nobody wrote is NULL, so a row the merged upsert creates holds NULL where the clear applied
// to an absent row would have left the column's default.
//
// Covers are concatenated in order, so every consumed event stays acknowledged by the command
// that carries its effect. After a merge the result may merge with its predecessor (a later
// clear turns an insert-only write into an updating one), so a reduced list is [X], [kDelete,
// kUpsert] or [kClear, kUpsert]; with the guard, deletes and releases stand between such
// groups.

#include <cstddef>
#include <vector>

#include "join/change_event.h"
#include "join/row_command.h"
#include "join/value.h"

namespace cdcjoin {

// Appends `next` to `reduced`, the reduced commands of one key, merging where the rules allow.
// Returns true when `next` was stale (the guard rule above) and only its covers were kept.
// REQUIRES: `reduced` was built by AppendReduced; writes sorted by column, each column once;
// versions sorted by source, each source once.
bool AppendReduced(std::vector<RowCommand>* reduced, RowCommand next);

// The kUpsert;kUpsert rule for one write of the later upsert, applied to the earlier upsert's
// writes without building the later command (the windowed joiner's hot path).
void MergeLaterUpsertWrite(std::vector<ColumnWrite>* earlier, int column,
                           bool update_on_conflict, const Value& value);

// AppendReduced over a whole run of one key's commands (consumption order). A kClear of no
// column has no statement: where it cannot fold into a neighbour, it disappears and its covers
// go to *orphan_covers (to be acknowledged with the rest). *stale_folded (when not null) grows
// by the stale commands folded away.
std::vector<RowCommand> ReduceKeyCommands(std::vector<RowCommand> commands,
                                          std::vector<EventPosition>* orphan_covers,
                                          size_t* stale_folded = nullptr);

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_COMMAND_ALGEBRA_H_
