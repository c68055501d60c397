#ifndef CDCJOIN_SERVICE_SINK_FEED_H_
#define CDCJOIN_SERVICE_SINK_FEED_H_

#include <cstddef>
#include <deque>
#include <set>
#include <vector>

#include "absl/time/time.h"
#include "join/row_command.h"
#include "service/sink_lanes.h"
#include "service/stats.h"

namespace cdcjoin {

// The stages' way into the sink lanes, without ever blocking the polling thread: commands the
// lanes cannot take yet wait here, in order, and the feed reports no room until the lanes have
// drained to half their capacity (so consumption does not flip between paused and resumed on
// every command). Stages push; the pipeline pumps and asks for room.
//
// One thread: the polling one.
class SinkFeed {
 public:
  // REQUIRES: `lanes` and `stats` outlive the feed.
  SinkFeed(SinkLanes* lanes, PipelineStats* stats) : lanes_(lanes), stats_(stats) {}

  void Push(RowCommand command);
  void Push(std::vector<RowCommand>& commands);
  // Hands waiting commands to the lanes while they take them.
  void Pump();
  // Whether the pipeline may hand the stage more events now.
  bool HasRoom();
  // Hands everything to the lanes and waits until all of it is applied; false when `deadline`
  // passed first (what is left stays queued).
  bool Drain(absl::Time deadline);
  // Forgets the commands that carry only events of `partitions`, waiting here or in the lanes:
  // they are never applied nor acknowledged (SinkLanes::Fence), until Admit.
  void Drop(const std::set<SourcePartition>& partitions);
  void Admit(const std::vector<SourcePartition>& partitions) { lanes_->Admit(partitions); }
  bool AwaitWritesInFlight(absl::Duration timeout) { return lanes_->AwaitWritesInFlight(timeout); }

  size_t Waiting() const { return waiting_.size(); }

 private:
  SinkLanes* const lanes_;
  PipelineStats* const stats_;
  std::deque<RowCommand> waiting_;
  bool full_ = false;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_SINK_FEED_H_
