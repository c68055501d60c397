#include "service/kafka_group_control.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/kafka_client.h"
#include "service/logging.h"

namespace cdcjoin {

class KafkaGroupControl::Impl {
 public:
  Impl(std::string topic, PipelineStats* stats) : topic_(std::move(topic)), events_(stats) {}

  ~Impl() {
    if (reader_ != nullptr) reader_->close();
  }

  absl::Status Create(std::map<std::string, std::string> settings) {
    std::map<std::string, std::string> writer_settings = settings;
    writer_settings["enable.idempotence"] = "true";
    writer_settings["acks"] = "all";
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> writer_conf = MakeKafkaConf(writer_settings);
    if (!writer_conf.ok()) return writer_conf.status();
    std::string error;
    (*writer_conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&events_), error);
    writer_.reset(RdKafka::Producer::create(writer_conf->get(), error));
    if (writer_ == nullptr) return absl::InternalError(absl::StrCat("control producer: ", error));

    // A reader joins no group (it is assigned the partition), but librdkafka's consumer wants
    // a group id all the same.
    settings["group.id"] = absl::StrCat(topic_, ".reader");
    settings["enable.auto.commit"] = "false";
    settings["enable.partition.eof"] = "true";
    // A switch waits to read itself back: no half-second fetch waits.
    settings["fetch.wait.max.ms"] = "20";
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> reader_conf = MakeKafkaConf(settings);
    if (!reader_conf.ok()) return reader_conf.status();
    (*reader_conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&events_), error);
    reader_.reset(RdKafka::KafkaConsumer::create(reader_conf->get(), error));
    if (reader_ == nullptr) return absl::InternalError(absl::StrCat("control reader: ", error));
    return absl::OkStatus();
  }

  // Creates the topic compacted unless it exists. Brokers that refuse (no permission) leave it
  // to auto-creation, which would not compact it: said loudly.
  void EnsureTopic(absl::Duration timeout) {
    if (TopicExists()) return;
    rd_kafka_t* rk = writer_->c_ptr();
    char error[512];
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(topic_.c_str(), 1, -1, error, sizeof error);
    if (topic == nullptr) {
      LogWarning("control topic ", topic_, ": ", error);
      return;
    }
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &topic, 1, nullptr, queue);
    rd_kafka_event_t* event =
        rd_kafka_queue_poll(queue, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    std::string problem;
    if (event == nullptr) {
      problem = "no answer from the brokers";
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      problem = rd_kafka_event_error_string(event);
    } else {
      size_t count = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
      for (size_t i = 0; i < count; ++i) {
        const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          LogInfo("created the group's control topic ", topic_, " (compacted)");
        } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          problem = rd_kafka_err2str(err);
        }
      }
    }
    if (!problem.empty()) {
      LogWarning("control topic ", topic_, " could not be created compacted (", problem,
                 "): create it with cleanup.policy=compact, or the group's mode expires with "
                 "the topic's retention");
    }
    if (event != nullptr) rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
  }

  // Asked of the reader, a consumer, whose metadata requests never auto-create the topic.
  bool TopicExists() {
    std::string error;
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(reader_.get(), topic_, nullptr, error));
    if (topic == nullptr) return false;
    RdKafka::Metadata* raw = nullptr;
    if (reader_->metadata(false, topic.get(), &raw, 5000) != RdKafka::ERR_NO_ERROR) return false;
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    for (const RdKafka::TopicMetadata* found : *metadata->topics()) {
      if (found->topic() == topic_ && found->err() == RdKafka::ERR_NO_ERROR &&
          !found->partitions()->empty()) {
        return true;
      }
    }
    return false;
  }

  absl::Status Publish(const ControlRecord& record, absl::Duration timeout) {
    const RdKafka::ErrorCode err = writer_->produce(
        topic_, 0, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(record.value.data()),
        record.value.size(), record.key.data(), record.key.size(), 0, nullptr);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(
          absl::StrCat("control topic ", topic_, ": produce: ", RdKafka::err2str(err)));
    }
    if (writer_->flush(static_cast<int>(absl::ToInt64Milliseconds(timeout))) !=
        RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("control topic ", topic_, ": not acknowledged in ",
                                                 absl::FormatDuration(timeout)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ControlRecord>> ReadToEnd(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    EnsureTopic(timeout);
    std::vector<RdKafka::TopicPartition*> partitions = {
        RdKafka::TopicPartition::create(topic_, 0, RdKafka::Topic::OFFSET_BEGINNING)};
    const RdKafka::ErrorCode assigned = reader_->assign(partitions);
    RdKafka::TopicPartition::destroy(partitions);
    if (assigned != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(
          absl::StrCat("control topic ", topic_, ": assign: ", RdKafka::err2str(assigned)));
    }
    int64_t low = 0;
    int64_t high = 0;
    RdKafka::ErrorCode err = RdKafka::ERR__TIMED_OUT;
    while (err != RdKafka::ERR_NO_ERROR && absl::Now() < deadline) {
      err = reader_->query_watermark_offsets(topic_, 0, &low, &high, 1000);
    }
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("control topic ", topic_,
                                                 ": no end offset: ", RdKafka::err2str(err)));
    }
    std::vector<ControlRecord> records;
    while (next_ < high) {
      if (absl::Now() >= deadline) {
        return absl::UnavailableError(absl::StrCat("control topic ", topic_, ": read to ", next_,
                                                   " of ", high, " in ",
                                                   absl::FormatDuration(timeout)));
      }
      Take(reader_->consume(100), &records);
    }
    return records;
  }

  std::vector<ControlRecord> Poll() {
    std::vector<ControlRecord> records;
    while (Take(reader_->consume(0), &records)) {
    }
    return records;
  }

 private:
  // Appends what `message` carries; false when it carried no record.
  bool Take(RdKafka::Message* raw, std::vector<ControlRecord>* out) {
    std::unique_ptr<RdKafka::Message> message(raw);
    if (message == nullptr) return false;
    if (message->err() == RdKafka::ERR__PARTITION_EOF) {
      next_ = message->offset();
      return false;
    }
    if (message->err() != RdKafka::ERR_NO_ERROR) {
      if (message->err() != RdKafka::ERR__TIMED_OUT) {
        LogWarning("control topic ", topic_, ": ", message->errstr());
      }
      return false;
    }
    next_ = message->offset() + 1;
    ControlRecord record;
    if (message->key() != nullptr) record.key = *message->key();
    record.value.assign(static_cast<const char*>(message->payload()), message->len());
    out->push_back(std::move(record));
    return true;
  }

  const std::string topic_;
  KafkaEventLogger events_;
  std::unique_ptr<RdKafka::Producer> writer_;
  std::unique_ptr<RdKafka::KafkaConsumer> reader_;
  int64_t next_ = 0;  // The next offset to read.
};

KafkaGroupControl::KafkaGroupControl(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaGroupControl::~KafkaGroupControl() = default;

absl::StatusOr<std::unique_ptr<KafkaGroupControl>> KafkaGroupControl::Create(
    const std::map<std::string, std::string>& settings, std::string topic,
    PipelineStats* stats) {
  auto impl = std::make_unique<Impl>(std::move(topic), stats);
  if (absl::Status s = impl->Create(settings); !s.ok()) return s;
  return std::unique_ptr<KafkaGroupControl>(new KafkaGroupControl(std::move(impl)));
}

absl::Status KafkaGroupControl::Publish(const ControlRecord& record, absl::Duration timeout) {
  return impl_->Publish(record, timeout);
}
absl::StatusOr<std::vector<ControlRecord>> KafkaGroupControl::ReadToEnd(absl::Duration timeout) {
  return impl_->ReadToEnd(timeout);
}
std::vector<ControlRecord> KafkaGroupControl::Poll() { return impl_->Poll(); }

}  // namespace cdcjoin
