#ifndef CDCJOIN_SERVICE_KAFKA_SOURCE_H_
#define CDCJOIN_SERVICE_KAFKA_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/record_source.h"
#include "service/stats.h"

namespace cdcjoin {

// The only code that calls the source consumer: one subscription to every source topic in one
// consumer group; assignment, revocation and loss (cooperative or eager) handed to the listener
// on the polling thread; pause and resume per reason; offsets stored only as far as they are
// given and committed by librdkafka while the group is steady and as partitions go; a consumer
// that fails for good (a fenced static member) replaced by a new one, its partitions lost; an
// out-of-range offset reported as data loss and its partition stopped, never reset
// (auto.offset.reset=error).
//
// Records that a paused consumer still returns (fetched before the pause) are kept, in order, and
// handed out once there is room; those of a partition that is revoked or lost are dropped with
// it, so nothing of a partition reaches the pipeline after its revocation.
//
// Every call except Status, Assigned and DataLoss is for one thread, the polling one.
class KafkaSource final : public RecordSource {
 public:
  struct Options {
    v1::KafkaConfig kafka;
    std::string bootstrap_servers;
    // Topic of each source, by source index.
    std::vector<std::string> topics;
    PipelineStats* stats = nullptr;
  };

  static absl::StatusOr<std::unique_ptr<KafkaSource>> Create(Options options);
  ~KafkaSource() override;

  absl::Status Start(PartitionListener* listener) override;
  std::vector<ConsumedRecord> Poll(absl::Duration timeout, size_t max) override;
  void Commit(const std::map<SourcePartition, int64_t>& offsets) override;
  void SetPaused(PauseReason reason, bool paused) override;
  bool FullyFetched(const SourcePartition& partition, int64_t next_offset) const override;
  void Close() override;

  std::vector<SourcePartitionStatus> Status() const override;
  bool Assigned() const override;
  std::optional<bool> OwnsEveryPartition() const override;
  bool DataLoss() const override;
  std::string Unreachable() const override;

 private:
  class Impl;
  explicit KafkaSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_KAFKA_SOURCE_H_
