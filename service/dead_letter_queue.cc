#include "service/dead_letter_queue.h"

#include "absl/strings/str_cat.h"
#include "service/logging.h"

namespace cdcjoin {
namespace {

constexpr char kErrorHeader[] = "cdcjoin.error";
constexpr char kSourceTopicHeader[] = "cdcjoin.source.topic";
constexpr char kSourcePartitionHeader[] = "cdcjoin.source.partition";
constexpr char kSourceOffsetHeader[] = "cdcjoin.source.offset";

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
      return;
    }
    on_delivered_(*position);
  }

 private:
  const Delivered on_delivered_;
  PipelineStats* const stats_;
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

bool DeadLetterQueue::Send(RdKafka::Message& record, const EventPosition& position,
                           const absl::Status& error, const std::function<bool()>& give_up) {
  RdKafka::Headers* headers = record.headers() != nullptr
                                  ? RdKafka::Headers::create(record.headers()->get_all())
                                  : RdKafka::Headers::create();
  headers->add(kErrorHeader, std::string(error.message()));
  headers->add(kSourceTopicHeader, record.topic_name());
  headers->add(kSourcePartitionHeader, absl::StrCat(record.partition()));
  headers->add(kSourceOffsetHeader, absl::StrCat(record.offset()));
  auto* opaque = new EventPosition(position);
  while (true) {
    const RdKafka::ErrorCode err = producer_->produce(
        topic_, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        const_cast<void*>(record.payload()), record.len(), record.key_pointer(),
        record.key_len(), record.timestamp().timestamp, headers, opaque);
    if (err == RdKafka::ERR_NO_ERROR) break;
    if (err == RdKafka::ERR__QUEUE_FULL && !give_up()) {
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
  LogWarning("dead-lettered ", record.topic_name(), "[", record.partition(), "]@",
             record.offset(), ": ", error.message());
  return true;
}

void DeadLetterQueue::Poll() { producer_->poll(0); }

void DeadLetterQueue::Flush(absl::Duration timeout) {
  producer_->flush(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  producer_->poll(0);
}

}  // namespace cdcjoin
