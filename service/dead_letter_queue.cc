#include "service/dead_letter_queue.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "service/logging.h"

namespace cdcjoin {
namespace {

constexpr char kReasonHeader[] = "cdcjoin.reason";
constexpr char kErrorHeader[] = "cdcjoin.error";
constexpr char kSourceTopicHeader[] = "cdcjoin.source.topic";
constexpr char kSourcePartitionHeader[] = "cdcjoin.source.partition";
constexpr char kSourceOffsetHeader[] = "cdcjoin.source.offset";
// How long Send waits for room in librdkafka's queue before it reports failure.
constexpr absl::Duration kQueueFullPatience = absl::Seconds(30);

}  // namespace

class DeadLetterQueue::DeliveryReports : public RdKafka::DeliveryReportCb {
 public:
  DeliveryReports(Delivered on_delivered, PipelineStats* stats)
      : on_delivered_(std::move(on_delivered)), stats_(stats) {}

  void dr_cb(RdKafka::Message& message) override {
    std::unique_ptr<EventPosition> position(static_cast<EventPosition*>(message.msg_opaque()));
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      // Not acknowledged: the offset stays uncommitted and the record is redelivered.
      const std::string error = absl::StrCat("dead-letter delivery to ", message.topic_name(),
                                             " failed: ", message.errstr());
      LogError(error);
      stats_->RecordError(error);
      failures_.fetch_add(1);
      return;
    }
    on_delivered_(*position);
  }

  // Deliveries refused since the last call.
  int64_t TakeFailures() { return failures_.exchange(0); }

 private:
  const Delivered on_delivered_;
  PipelineStats* const stats_;
  std::atomic<int64_t> failures_{0};
};

DeadLetterQueue::DeadLetterQueue(std::string topic, PipelineStats* stats)
    : topic_(std::move(topic)), stats_(stats), events_(stats) {}

DeadLetterQueue::~DeadLetterQueue() = default;

absl::StatusOr<std::unique_ptr<DeadLetterQueue>> DeadLetterQueue::Create(
    std::map<std::string, std::string> settings, std::string topic, Delivered on_delivered,
    PipelineStats* stats) {
  settings["enable.idempotence"] = "true";
  // A dead letter is retried until it is delivered: losing it would lose the record.
  settings["message.timeout.ms"] = "0";
  settings.emplace("linger.ms", "5");
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeKafkaConf(settings);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<DeadLetterQueue> queue(new DeadLetterQueue(std::move(topic), stats));
  queue->reports_ = std::make_unique<DeliveryReports>(std::move(on_delivered), stats);
  std::string error;
  (*conf)->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(queue->reports_.get()), error);
  (*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&queue->events_), error);
  queue->producer_.reset(RdKafka::Producer::create(conf->get(), error));
  if (queue->producer_ == nullptr) {
    return absl::InternalError(absl::StrCat("dead-letter producer: ", error));
  }
  return queue;
}

bool DeadLetterQueue::Send(const ConsumedRecord& record, const absl::Status& error,
                           DeadLetterReason reason) {
  RdKafka::Headers* headers = RdKafka::Headers::create();
  for (const auto& [key, value] : record.headers) headers->add(key, value);
  headers->add(kReasonHeader, DeadLetterReasonName(reason));
  headers->add(kErrorHeader, std::string(error.message()));
  headers->add(kSourceTopicHeader, std::string(record.topic));
  headers->add(kSourcePartitionHeader, absl::StrCat(record.position.partition.partition));
  headers->add(kSourceOffsetHeader, absl::StrCat(record.position.offset));
  auto* opaque = new EventPosition(record.position);
  const absl::Time give_up = absl::Now() + kQueueFullPatience;
  while (true) {
    const RdKafka::ErrorCode err = producer_->produce(
        topic_, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        record.value.has_value() ? const_cast<char*>(record.value->data()) : nullptr,
        record.value.has_value() ? record.value->size() : 0,
        record.key.has_value() ? record.key->data() : nullptr,
        record.key.has_value() ? record.key->size() : 0, record.timestamp_ms, headers, opaque);
    if (err == RdKafka::ERR_NO_ERROR) break;
    if (err == RdKafka::ERR__QUEUE_FULL && absl::Now() < give_up) {
      producer_->poll(50);
      continue;
    }
    LogError("dead-letter produce failed: ", RdKafka::err2str(err));
    stats_->RecordError(absl::StrCat("dead-letter produce: ", RdKafka::err2str(err)));
    delete headers;
    delete opaque;
    return false;
  }
  stats_->dead_lettered.fetch_add(1, std::memory_order_relaxed);
  stats_->dead_lettered_by_reason[static_cast<int>(reason)].fetch_add(1,
                                                                     std::memory_order_relaxed);
  LogWarning("dead-lettered ", std::string(record.topic), "[", record.position.partition.partition, "]@",
             record.position.offset, ": ", error.message());
  return true;
}

void DeadLetterQueue::Poll() { producer_->poll(0); }

absl::Status DeadLetterQueue::Flush(absl::Duration timeout) {
  const RdKafka::ErrorCode err =
      producer_->flush(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  producer_->poll(0);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("dead-letter topic ", topic_, ": ",
                                               producer_->outq_len(),
                                               " dead letters not delivered within ",
                                               absl::FormatDuration(timeout), ": ",
                                               RdKafka::err2str(err)));
  }
  if (const int64_t failed = reports_->TakeFailures(); failed > 0) {
    return absl::UnavailableError(absl::StrCat("dead-letter topic ", topic_, ": ", failed,
                                               " dead letters refused by the broker"));
  }
  return absl::OkStatus();
}

}  // namespace cdcjoin
