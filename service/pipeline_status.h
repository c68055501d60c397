#ifndef CDCJOIN_SERVICE_PIPELINE_STATUS_H_
#define CDCJOIN_SERVICE_PIPELINE_STATUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "join/offset_tracker.h"
#include "service/record_source.h"

namespace cdcjoin {

enum class PipelineState {
  kStarting,
  kRunning,
  kPaused,
  kSwitching,
  kDegraded,
  kStopping,
  kStopped,
};

const char* PipelineStateName(PipelineState state);

// Progress of one assigned partition.
struct PartitionStatus {
  std::string topic;
  int source = 0;
  int32_t partition = 0;
  int64_t consumed = -1;        // Next offset to consume; -1 before the first record.
  int64_t committed = -1;       // Last committed offset (everything below it is durable).
  int64_t high_watermark = -1;  // From the last fetch; -1 when unknown.
  int64_t lag = 0;              // high_watermark - committed: what is not yet durable.
  bool data_loss = false;       // The committed offset fell out of retention: stopped.
};

// Per partition: the source's view (committed, watermarks, data loss) with how far the
// pipeline consumed (`progress`, from its offset tracker).
std::vector<PartitionStatus> MergePartitionStatus(
    const std::vector<SourcePartitionStatus>& source,
    const std::vector<OffsetTracker::PartitionProgress>& progress);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_PIPELINE_STATUS_H_
