#ifndef CDCJOIN_JOIN_WINDOWED_JOINER_TESTING_H_
#define CDCJOIN_JOIN_WINDOWED_JOINER_TESTING_H_

// Test support for the windowed joiner, shared by join/ and storage/ tests (testonly).

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "join/change_event.h"
#include "join/reference_table.h"
#include "join/row_command.h"
#include "join/table_schema.h"
#include "join/window_store.h"
#include "join/windowed_joiner.h"

namespace cdcjoin {
namespace testing {

// Two sources. Left ("l") owns columns l (updatable) and, with `insert_only`, li (insert
// only); right ("r") owns r (updatable) and, with `insert_only`, ri. Key: one int64 column.
TableSchema TwoSourceSchema(v1::DeletePolicy left_delete, v1::DeletePolicy right_delete,
                            bool insert_only = false);

struct RandomEventsOptions {
  int count = 2000;
  int keys = 30;
  int partitions = 3;
  // Event time advances by 0..max_step_ms per event; each event lags the clock by a random
  // 0..max_lag_ms (out-of-order arrival). max_lag_ms < window_ms + grace_ms: nothing is late.
  int64_t max_step_ms = 3;
  int64_t max_lag_ms = 10;
  double delete_fraction = 0.2;
  bool insert_only = false;  // The schema has li/ri: fill them.
};

// Events in consumption order; offsets count up per (source, partition); key k lives on
// partition k % partitions of both sources (co-partitioned).
std::vector<ChangeEvent> RandomEvents(uint32_t seed, const RandomEventsOptions& options);

// "l=A" style rendering for semantics tables: "U 1 {l='A',r='a'}", "C 1 {l}", "D 1".
std::string CommandString(const TableSchema& schema, const RowCommand& command);

// Runs `events` through a joiner that crashes (is destroyed without Drain, while the sink has
// applied only a prefix of what it emitted and acknowledged a prefix of that) every
// `crash_every` poll batches, or that fails a store commit when `fail_commit` says so.
// `reopen_store` is called at start and after every crash; it returns the store to open the
// joiner on (closing and reopening a durable one). At the end: Drain, apply, acknowledge.
struct CrashScenarioResult {
  RowTable table;
  int crashes = 0;
  int64_t commands_applied = 0;
  int64_t windows_emitted = 0;  // Distinct windows (by their covers), re-sends not counted.
  // Positions covered by more than one distinct window (must be empty), and events covered by
  // no window (must be empty in OUTER mode without IGNORE policies and late events).
  std::vector<EventPosition> doubly_covered;
  std::vector<EventPosition> uncovered;
  std::map<SourcePartition, int64_t> final_committable;
};
absl::Status RunCrashScenario(const TableSchema& schema, const WindowedJoinerOptions& options,
                              const std::vector<ChangeEvent>& events, uint32_t seed,
                              int crash_every, const std::function<WindowStore*()>& reopen_store,
                              const std::function<void(WindowStore*, bool)>& fail_commits,
                              CrashScenarioResult* result);

}  // namespace testing
}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_WINDOWED_JOINER_TESTING_H_
