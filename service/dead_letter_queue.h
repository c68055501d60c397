#ifndef CDCJOIN_SERVICE_DEAD_LETTER_QUEUE_H_
#define CDCJOIN_SERVICE_DEAD_LETTER_QUEUE_H_

#include <librdkafka/rdkafkacpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "join/change_event.h"
#include "service/dead_letter_sink.h"
#include "service/kafka_client.h"
#include "service/stats.h"

namespace cdcjoin {

// Where records that cannot be decoded go, so the stream goes on and nothing is lost: the
// original key, value, timestamp and headers, plus headers naming the reason, the error and where
// the record came from (cdcjoin.reason, cdcjoin.error, cdcjoin.source.topic,
// cdcjoin.source.partition, cdcjoin.source.offset; docs/operations.md lists them). A dead letter counts as done only once the topic has it.
//
//   auto dlq = DeadLetterQueue::Create(settings, "cdcjoin.dlq", on_delivered, &stats);
//   (*dlq)->Send(record, status);
//   (*dlq)->Poll();   // delivery reports: on_delivered(position) for each durable dead letter
//
// Not thread-safe: one thread sends and polls.
class DeadLetterQueue final : public DeadLetterSink {
 public:
  // Runs inside Poll()/Flush() once a dead letter is durable.
  using Delivered = std::function<void(const EventPosition&)>;

  // `settings`: BaseKafkaSettings plus anything else for the producer.
  static absl::StatusOr<std::unique_ptr<DeadLetterQueue>> Create(
      std::map<std::string, std::string> settings, std::string topic, Delivered on_delivered,
      PipelineStats* stats);
  ~DeadLetterQueue() override;

  // While librdkafka's queue is full, Send serves delivery reports and retries for up to 30 s.
  bool Send(const ConsumedRecord& record, const absl::Status& error,
            DeadLetterReason reason) override;
  void Poll() override;
  absl::Status Flush(absl::Duration timeout) override;

  DeadLetterQueue(const DeadLetterQueue&) = delete;
  DeadLetterQueue& operator=(const DeadLetterQueue&) = delete;

 private:
  class DeliveryReports;
  DeadLetterQueue(std::string topic, PipelineStats* stats);

  const std::string topic_;
  PipelineStats* const stats_;
  KafkaEventLogger events_;
  std::unique_ptr<DeliveryReports> reports_;
  std::unique_ptr<RdKafka::Producer> producer_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DEAD_LETTER_QUEUE_H_
