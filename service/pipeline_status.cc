#include "service/pipeline_status.h"

#include <algorithm>
#include <map>

namespace cdcjoin {

const char* PipelineStateName(PipelineState state) {
  switch (state) {
    case PipelineState::kStarting:
      return "starting";
    case PipelineState::kRunning:
      return "running";
    case PipelineState::kPaused:
      return "paused";
    case PipelineState::kDegraded:
      return "degraded";
    case PipelineState::kSwitching:
      return "switching";
    case PipelineState::kStopping:
      return "stopping";
    case PipelineState::kStopped:
      return "stopped";
  }
  return "unknown";
}


std::vector<PartitionStatus> MergePartitionStatus(
    const std::vector<SourcePartitionStatus>& source,
    const std::vector<OffsetTracker::PartitionProgress>& progress) {
  std::map<SourcePartition, int64_t> next_to_consume;
  for (const OffsetTracker::PartitionProgress& partition : progress) {
    next_to_consume[partition.partition] =
        partition.consumed >= 0 ? partition.consumed + 1 : partition.next_offset;
  }
  std::vector<PartitionStatus> statuses;
  for (const SourcePartitionStatus& from : source) {
    PartitionStatus status;
    status.topic = from.topic;
    status.source = from.partition.source;
    status.partition = from.partition.partition;
    status.committed = from.committed;
    auto it = next_to_consume.find(from.partition);
    status.consumed = it != next_to_consume.end() ? it->second : from.committed;
    status.high_watermark = from.high_watermark;
    if (from.high_watermark >= 0) {
      const int64_t durable = std::max({from.committed, from.low_watermark, int64_t{0}});
      status.lag = std::max<int64_t>(0, from.high_watermark - durable);
    }
    status.data_loss = from.data_loss;
    statuses.push_back(std::move(status));
  }
  return statuses;
}

}  // namespace cdcjoin
