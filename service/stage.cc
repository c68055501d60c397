#include "service/stage.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "service/db_upsert_stage.h"
#include "service/logging.h"
#include "service/windowed_mode_stage.h"

namespace cdcjoin {
namespace {

// How long a revocation waits for statements already at the database (the default
// target.database.read_write_timeout_ms ends them).
constexpr absl::Duration kRevokedWriteWait = absl::Seconds(30);

}  // namespace

absl::StatusOr<std::unique_ptr<Stage>> MakeStage(v1::JoinMode mode, const StageContext& context) {
  if (mode == v1::WINDOWED) {
    if (context.window_state == nullptr) {
      return absl::FailedPreconditionError(
          "window.state_dir: required for WINDOWED (the joiner's state lives there)");
    }
    return std::unique_ptr<Stage>(std::make_unique<WindowedModeStage>(context));
  }
  return std::unique_ptr<Stage>(std::make_unique<DbUpsertStage>(context));
}

bool ApplyOrDropRevoked(const StageContext& context,
                        const std::vector<SourcePartition>& partitions, absl::Time deadline) {
  if (context.feed->Drain(deadline)) return true;
  const size_t waiting = context.feed->Waiting();
  context.feed->Drop(std::set<SourcePartition>(partitions.begin(), partitions.end()));
  LogWarning("revocation: the sink did not apply everything in time; ",
             waiting - context.feed->Waiting(),
             " waiting commands of the revoked partitions dropped unapplied, and the lanes drop "
             "theirs (the new owner consumes their events again)");
  // A statement at the database now may still carry them: the partitions go only once it has
  // returned, which the connection's read/write timeout bounds.
  if (!context.feed->AwaitWritesInFlight(kRevokedWriteWait)) {
    LogError("revocation: a statement was still at the database ",
             absl::FormatDuration(kRevokedWriteWait),
             " after the revoked partitions were fenced; it may land after their new owner's "
             "writes (the stale-write guard keeps that from rolling a row back)");
  }
  return false;
}

absl::Status ResendWindowState(const StageContext& context, bool flush_open) {
  if (context.window_state == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<RowCommand>> recovered = context.window_state->Recover(flush_open);
  if (!recovered.ok()) return recovered.status();
  if (!recovered->empty()) {
    LogInfo("window state: re-sending ", recovered->size(), " commands not yet applied");
  }
  context.feed->Push(*recovered);
  return absl::OkStatus();
}

void CountIfIgnoredByPolicy(const StageContext& context, const ChangeEvent& event) {
  if (event.op == ChangeOp::kDelete &&
      context.schema->sources[static_cast<size_t>(event.source)].on_delete == v1::IGNORE) {
    context.stats->ignored_by_policy.fetch_add(1, std::memory_order_relaxed);
  }
}

absl::Status DrainFeed(const StageContext& context, absl::Time deadline) {
  if (context.feed->Drain(deadline)) return absl::OkStatus();
  return absl::UnavailableError("the sink did not apply pending batches in time");
}

std::map<SourcePartition, int64_t> DurableTrackedOffsets(const StageContext& context) {
  std::map<SourcePartition, int64_t> held;
  if (context.window_state != nullptr) held = context.window_state->LowestHeldOffsets();
  std::map<SourcePartition, int64_t> durable;
  for (const OffsetTracker::PartitionProgress& progress : context.tracker->Progress()) {
    int64_t next = progress.next_offset;
    if (auto it = held.find(progress.partition); it != held.end()) next = std::min(next, it->second);
    durable[progress.partition] = next;
  }
  return durable;
}

}  // namespace cdcjoin
