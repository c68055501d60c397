#include "service/db_upsert_stage.h"

#include <set>

#include "join/db_upsert_joiner.h"

namespace cdcjoin {

absl::Status DbUpsertStage::OnEvents(std::vector<ChangeEvent> events,
                                     const EventTimeAligner::CaughtUp& caught_up) {
  for (const ChangeEvent& event : events) {
    CountIfIgnoredByPolicy(context_, event);
    std::optional<RowCommand> command = BuildDbUpsertCommand(*context_.schema, event);
    if (command.has_value()) {
      context_.feed->Push(*std::move(command));
    } else {
      context_.tracker->Done(event.position);  // Ignored by the delete policy.
    }
  }
  return absl::OkStatus();
}

void DbUpsertStage::OnRevoked(const std::vector<SourcePartition>& partitions,
                              absl::Time deadline) {
  ApplyOrDropRevoked(context_, partitions, deadline);
}

void DbUpsertStage::OnLost(const std::vector<SourcePartition>& partitions) {
  context_.feed->Drop(std::set<SourcePartition>(partitions.begin(), partitions.end()));
}

absl::Status DbUpsertStage::Drain(absl::Time deadline) { return DrainFeed(context_, deadline); }

std::map<SourcePartition, int64_t> DbUpsertStage::DurableOffsets() const {
  return DurableTrackedOffsets(context_);
}

}  // namespace cdcjoin
