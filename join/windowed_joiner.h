#ifndef CDCJOIN_JOIN_WINDOWED_JOINER_H_
#define CDCJOIN_JOIN_WINDOWED_JOINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "join/change_event.h"
#include "join/row_command.h"
#include "join/table_schema.h"
#include "join/window_store.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

// WindowedJoiner
//
// The application-side join (mode WINDOWED): change events of both sources meet in per-key
// windows whose state is written, together with the source offsets it covers, to a WindowStore
// (RocksDB in production), and each closed window becomes a short ordered list of RowCommands
// for the sink lanes.
//
// ## What a window is
//
// Time is event time (ChangeEvent::event_time_ms). All times are compared per *partition
// number*: partition p of both sources is one co-partitioned stream, and its stream time is the
// largest event time seen on partition p of either source (never decreasing).
//
// * A key has a chain of windows; only the newest one takes new events. An event of key k
//   joins k's newest window when, with the event added, the window's event times span at most
//   `window_ms` (max - min <= window_ms). So every two events in one window are at most
//   window_ms apart: Kafka Streams' JoinWindows.ofTimeDifference(window_ms) condition, applied
//   to the whole window rather than to pairs. Otherwise (or when k has no window) the event
//   opens a new window. A key's windows are consecutive runs of its events in consumption
//   order, which is what keeps its output in consumption order.
// * Lateness: an event with event_time + window_ms + grace_ms < stream_time(partition) (stream
//   time before the event) is late; equality is still accepted. INNER and LEFT drop late events
//   and count them (late_drops), as Kafka Streams does. OUTER, the table-merging join, never
//   drops a change: a late event joins its key's newest window like any other (or opens one
//   that closes at once) and is counted (late_applied). Dropping it would leave the target
//   without that change for good, and the two topics are consumed at their own pace, so after
//   a restart or under lag a whole partition can look late.
//   Its offset still counts as consumed.
// * Close: the oldest window of a key closes when stream_time > min + window_ms + grace_ms,
//   where min is its smallest event time (equality: still open). It is checked after every
//   event, so the outcome does not depend on how events are batched. A newer window of the
//   same key is emitted only after the older one, even if its own close time came first.
//   Windows of different keys closing together are emitted in the order they opened.
// * Idle flush (processing time): Advance(now) closes every window of partition p when no
//   event of p was processed during the last idle_flush_ms (now - last >= idle_flush_ms), so a
//   key updated once is written within idle_flush_ms of processing time after the partition
//   goes quiet. Drain closes every window (mode switch, shutdown, partition revocation).
//
// ## What a closed window emits
//
// Each event stands for the command the database-side joiner would write for it
// (BuildDbUpsertCommand): an upsert of its source's mapped columns (column-masked); a delete
// per the source's DeletePolicy (IGNORE: nothing; CLEAR_COLUMNS: kClear of the source's
// updatable columns; DELETE_ROW: kDelete). A window emits
// those commands reduced by the command algebra (join/command_algebra.h) to an equivalent list
// of at most two (e.g. [kDelete, kUpsert] for a delete followed by an insert): several upserts
// collapse into one of the latest values (the first value for insert-only columns), an upsert
// followed by a clear becomes one upsert that writes NULLs, anything followed by kDelete
// becomes kDelete. Columns a window never saw are not written, so an unmatched side never
// overwrites the other side's columns with NULL. The reduction is exact (assuming non-key
// target columns default to NULL), so in OUTER mode the table after all windows are applied
// equals applying every event's own command in consumption order (DESIGN.md "Convergence").
//
// Join types decide which closed windows are emitted:
//   OUTER: every window;  LEFT: windows holding an event of sources[0];
//   INNER: windows holding events of both sources (joined_pairs counts these in every mode).
// Nothing is emitted before a window closes, so an unmatched side's row appears only after its
// window and grace closed (no spurious null rows, KAFKA-10847), and an inner match is emitted
// once per window with the latest values of both sides, not once per pair of events.
//
// Divergence from Kafka Streams, by design: a late (out-of-order) event only joins its key's
// newest window. If a newer window has opened, the event goes there (or opens a window of its
// own) even when its time would have matched the older window. Joining the older window could
// reorder the key's commands and break convergence.
//
// ## Crash safety and offsets
//
// Every Process/Advance/Drain/Acknowledge call commits one WindowStoreBatch holding what it
// changed, before it returns any command: one log record of the events it absorbed (each with
// its window), one record of markers for the windows it emitted (kept as "emitting" until
// acknowledged) or that died, the partitions' stream times and the next offsets of every
// SourcePartition it consumed. Windows live in memory only; each log record is deleted in the
// commit that ends the last live window needing it, so the store holds about the events of
// the live (open or emitting) windows and Open's replay is bounded by them. After a
// crash, Open reloads the state: PendingCommands() are the emitted windows the sink has not
// acknowledged (send them again, first), StoredOffsets() are where the consumers must seek.
// Events whose offset is below the stored next offset are skipped as duplicates, so an event is
// absorbed at most once. Re-sending a pending window after a crash is safe: its command list
// is idempotent when applied again in order.
//
// The last command of a window carries the window's `covers` (every consumed position in it);
// earlier commands of the same window carry none. Lanes apply one key's commands in order, so
// the last one being applied means the whole window is. Acknowledge() takes applied positions.
//
// ## Calling order (the pipeline)
//
//   ASSIGN_OR_RETURN(auto joiner, WindowedJoiner::Open(schema, options, store));
//   send(joiner->PendingCommands());                // 1. re-send what a crash left unapplied
//   seek(joiner->StoredOffsets());                  // 2. consumers resume after absorbed events
//   loop:
//     joiner->Process(poll_batch, now_ms, &out);    // 3. per poll batch; send `out` to the lanes
//     joiner->Advance(now_ms, &out);                // 4. every few hundred ms; idle flush
//     on lane ack: joiner->Acknowledge(command.covers);   // any thread
//     commit_to_kafka(joiner->CommittableOffsets());
//   joiner->Drain(&out);                            // mode switch or shutdown; then wait for acks
//
// Thread safety: all methods are thread-safe (one mutex); Acknowledge is meant to be called from
// lane threads while the poll thread calls Process/Advance.
//
// If a store commit fails the joiner returns the error and refuses further calls with
// FailedPrecondition (its memory is ahead of the store): reopen it from the store.
struct WindowedJoinerOptions {
  // Default: OUTER.
  v1::JoinType join_type = v1::OUTER;
  // Maximum event-time span of one window. Default: 5000.
  int64_t window_ms = 5000;
  // How long (in stream time) after a window's span ends it still waits for late events.
  // Default: 1000.
  int64_t grace_ms = 1000;
  // Processing time a partition must be quiet before Advance flushes its windows. Default: 2000.
  int64_t idle_flush_ms = 2000;

  // The fields of a WindowConfig (unset ones take the defaults above).
  static WindowedJoinerOptions FromConfig(const v1::WindowConfig& config);
};

class WindowedJoiner {
 public:
  struct Stats {
    int64_t events_processed = 0;   // Absorbed into a window (not late, not duplicate).
    int64_t late_drops = 0;         // INNER/LEFT: beyond window + grace of stream time.
    int64_t late_applied = 0;       // OUTER: as late, applied without waiting (never dropped).
    int64_t duplicates_skipped = 0; // Offset below the stored next offset.
    int64_t windows_opened = 0;
    int64_t windows_emitted = 0;    // Closed and sent as commands.
    int64_t windows_discarded = 0;  // Closed with nothing to send (INNER/LEFT unmatched, IGNORE).
    int64_t joined_pairs = 0;       // Closed windows holding both sources (one per window).
    int64_t commands_emitted = 0;
    int64_t windows_acknowledged = 0;
    int64_t state_keys = 0;         // Keys with an open window now.
    int64_t open_windows = 0;       // Now.
    int64_t emitting_windows = 0;   // Emitted, not yet acknowledged, now.
  };

  // Loads the state `store` holds (open windows, emitted-not-acknowledged windows, stream
  // times, offsets). `store` must outlive the joiner; `schema` is copied. InvalidArgument for
  // options out of range (window_ms < 0, grace_ms < 0, idle_flush_ms <= 0) or a schema without
  // exactly two sources; DataLoss when stored state cannot be decoded; FailedPrecondition for
  // state in the per-key layout of an older version (drain it with that version first).
  static absl::StatusOr<std::unique_ptr<WindowedJoiner>> Open(const TableSchema& schema,
                                                              const WindowedJoinerOptions& options,
                                                              WindowStore* store);

  virtual ~WindowedJoiner() = default;

  // Windows emitted before the last shutdown or crash and never acknowledged, in emission
  // order. Send them before anything Process returns. (Windows closed since Open went out once,
  // from the call that closed them, and are not repeated here.)
  virtual std::vector<RowCommand> PendingCommands() const = 0;

  // Per SourcePartition, the next offset to consume: the consumers seek here on start.
  virtual std::map<SourcePartition, int64_t> StoredOffsets() const = 0;

  // Per SourcePartition, the lowest offset still held in state (in an open window or in an
  // emitted window not yet acknowledged). Partitions holding nothing are absent.
  virtual std::map<SourcePartition, int64_t> LowestHeldOffsets() const = 0;

  // Per SourcePartition, the offset safe to commit to Kafka: the lowest held offset, or the
  // next offset when nothing is held. Kafka's committed offset only matters when the store is
  // lost (failover to a fresh instance); with the store, StoredOffsets() rules.
  virtual std::map<SourcePartition, int64_t> CommittableOffsets() const = 0;

  // Absorbs one poll batch (any mix of sources and partitions, each partition in offset
  // order), closes the windows whose stream time passed, commits, then appends the commands
  // of the closed windows to `out`. `now_ms` is processing time (for idle flush).
  // InvalidArgument (nothing absorbed) for an event with an unknown source or the wrong
  // number of values.
  virtual absl::Status Process(absl::Span<const ChangeEvent> events, int64_t now_ms,
                               std::vector<RowCommand>* out) = 0;

  // Idle flush: closes the windows of partitions quiet for idle_flush_ms, commits, appends.
  virtual absl::Status Advance(int64_t now_ms, std::vector<RowCommand>* out) = 0;

  // Closes every open window, commits, appends.
  virtual absl::Status Drain(std::vector<RowCommand>* out) = 0;

  // The sink applied the commands carrying these positions (RowCommand::covers of applied
  // commands, concatenated). A window is acknowledged by any of its positions; its emitting
  // record is deleted and its offsets are released. Unknown positions are ignored (e.g. acked
  // twice). REQUIRES: one key's windows are acknowledged in the order they were emitted.
  virtual absl::Status Acknowledge(absl::Span<const EventPosition> applied) = 0;

  // Another member of the group owns `partitions` now and consumes them again from the group's
  // committed offset: the emitted windows that carry only their events are forgotten unapplied,
  // and so are their offsets (should they come back, consumption starts at the committed
  // offset, not past events this joiner absorbed and never applied). Windows that also carry
  // other partitions' events stay until acknowledged. Open windows are untouched: close them
  // first.
  virtual absl::Status Forget(const std::set<SourcePartition>& partitions) = 0;

  virtual Stats stats() const = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_WINDOWED_JOINER_H_
