// Pipeline::Start: the pipeline on its Kafka-facing connectors.
#include "service/dead_letter_queue.h"
#include "service/kafka_client.h"
#include "service/kafka_group_control.h"
#include "service/kafka_source.h"
#include "service/pipeline.h"

namespace cdcjoin {

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Start(Options options) {
  const v1::KafkaConfig kafka = options.config.kafka();
  const std::string bootstrap = options.bootstrap_servers;
  std::vector<std::string> topics;
  for (const v1::SourceConfig& source : options.config.sources()) topics.push_back(source.topic());
  Connectors connectors;
  connectors.source = [=](PipelineStats* stats) -> absl::StatusOr<std::unique_ptr<RecordSource>> {
    return KafkaSource::Create({kafka, bootstrap, topics, stats});
  };
  connectors.dead_letters =
      [=](PipelineStats* stats, std::function<void(const EventPosition&)> on_delivered)
      -> absl::StatusOr<std::unique_ptr<DeadLetterSink>> {
    return DeadLetterQueue::Create(BaseKafkaSettings(kafka, bootstrap), kafka.dead_letter_topic(),
                                   std::move(on_delivered), stats);
  };
  connectors.control = [=](PipelineStats* stats) -> absl::StatusOr<std::unique_ptr<GroupControl>> {
    return KafkaGroupControl::Create(BaseKafkaSettings(kafka, bootstrap), kafka.control_topic(),
                                     stats);
  };
  return StartWith(std::move(options), std::move(connectors));
}

}  // namespace cdcjoin
