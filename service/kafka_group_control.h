#ifndef CDCJOIN_SERVICE_KAFKA_GROUP_CONTROL_H_
#define CDCJOIN_SERVICE_KAFKA_GROUP_CONTROL_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "service/group_control.h"
#include "service/stats.h"

namespace cdcjoin {

// GroupControl on a Kafka topic of one partition with cleanup.policy=compact (created if
// missing; a topic that exists with another policy is used as it is, with a warning, since its
// records would expire). Records are produced idempotently with acks=all; the reader is a plain
// consumer of partition 0 that joins no group and commits nothing: every member reads it all.
class KafkaGroupControl final : public GroupControl {
 public:
  // `settings`: BaseKafkaSettings (bootstrap servers, security).
  static absl::StatusOr<std::unique_ptr<KafkaGroupControl>> Create(
      const std::map<std::string, std::string>& settings, std::string topic,
      PipelineStats* stats);
  ~KafkaGroupControl() override;

  absl::Status Publish(const ControlRecord& record, absl::Duration timeout) override;
  absl::StatusOr<std::vector<ControlRecord>> ReadToEnd(absl::Duration timeout) override;
  std::vector<ControlRecord> Poll() override;

 private:
  class Impl;
  explicit KafkaGroupControl(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_KAFKA_GROUP_CONTROL_H_
