#include "tests/support/test_kafka.h"

#include <librdkafka/rdkafkacpp.h>

#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace cdcjoin::testing {
namespace {

std::unique_ptr<RdKafka::Conf> BaseConf(const std::string& bootstrap) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  conf->set("bootstrap.servers", bootstrap, error);
  conf->set("log_level", "3", error);
  return conf;
}

}  // namespace

absl::Status ProduceSeedRecords(const std::string& bootstrap,
                                const std::vector<std::string>& topics,
                                const std::vector<SeedRecord>& records, size_t begin,
                                size_t end) {
  std::unique_ptr<RdKafka::Conf> conf = BaseConf(bootstrap);
  std::string error;
  conf->set("linger.ms", "5", error);
  conf->set("enable.idempotence", "true", error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  if (producer == nullptr) return absl::InternalError(absl::StrCat("producer: ", error));
  for (size_t i = begin; i < end && i < records.size(); ++i) {
    const SeedRecord& record = records[i];
    while (true) {
      RdKafka::ErrorCode err = producer->produce(
          topics[record.source], record.partition, RdKafka::Producer::RK_MSG_COPY,
          record.value.has_value() ? const_cast<char*>(record.value->data()) : nullptr,
          record.value.has_value() ? record.value->size() : 0, record.key.data(),
          record.key.size(), record.ts_ms, nullptr);
      if (err == RdKafka::ERR_NO_ERROR) break;
      if (err != RdKafka::ERR__QUEUE_FULL) {
        return absl::InternalError(absl::StrCat("produce: ", RdKafka::err2str(err)));
      }
      producer->poll(10);
    }
    producer->poll(0);
  }
  if (producer->flush(60000) != RdKafka::ERR_NO_ERROR || producer->outq_len() > 0) {
    return absl::DeadlineExceededError("produce: records still unacknowledged after 60 s");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ConsumedRecord>> ReadTopic(const std::string& bootstrap,
                                                      const std::string& topic,
                                                      absl::Duration timeout) {
  std::unique_ptr<RdKafka::Conf> conf = BaseConf(bootstrap);
  std::string error;
  conf->set("group.id", "cdcjoin-test-reader", error);
  conf->set("enable.auto.commit", "false", error);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (consumer == nullptr) return absl::InternalError(absl::StrCat("consumer: ", error));
  std::unique_ptr<RdKafka::Metadata> metadata_holder;
  RdKafka::Metadata* metadata = nullptr;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(consumer.get(), topic, nullptr, error));
  if (consumer->metadata(false, handle.get(), &metadata, 10000) != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("metadata of ", topic));
  }
  metadata_holder.reset(metadata);
  std::vector<RdKafka::TopicPartition*> partitions;
  std::map<int32_t, int64_t> ends;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      int64_t low = 0;
      int64_t high = 0;
      consumer->query_watermark_offsets(topic, p->id(), &low, &high, 10000);
      if (high > low) {
        ends[p->id()] = high;
        partitions.push_back(
            RdKafka::TopicPartition::create(topic, p->id(), RdKafka::Topic::OFFSET_BEGINNING));
      }
    }
  }
  std::vector<ConsumedRecord> records;
  if (partitions.empty()) return records;
  consumer->assign(partitions);
  RdKafka::TopicPartition::destroy(partitions);
  const absl::Time deadline = absl::Now() + timeout;
  size_t done = 0;
  std::map<int32_t, bool> finished;
  while (done < ends.size() && absl::Now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
    if (message->err() != RdKafka::ERR_NO_ERROR) continue;
    ConsumedRecord record;
    record.partition = message->partition();
    record.offset = message->offset();
    if (message->key() != nullptr) record.key = *message->key();
    if (message->payload() != nullptr) {
      record.value = std::string(static_cast<const char*>(message->payload()), message->len());
    }
    if (RdKafka::Headers* headers = message->headers(); headers != nullptr) {
      for (const RdKafka::Headers::Header& header : headers->get_all()) {
        record.headers[header.key()] =
            header.value() != nullptr
                ? std::string(static_cast<const char*>(header.value()), header.value_size())
                : "";
      }
    }
    records.push_back(std::move(record));
    if (message->offset() + 1 >= ends[message->partition()] && !finished[message->partition()]) {
      finished[message->partition()] = true;
      ++done;
    }
  }
  consumer->close();
  if (done < ends.size()) return absl::DeadlineExceededError(absl::StrCat("reading ", topic));
  return records;
}

absl::StatusOr<std::map<std::pair<std::string, int32_t>, int64_t>> CommittedOffsets(
    const std::string& bootstrap, const std::string& group, const std::vector<std::string>& topics,
    int partitions) {
  std::unique_ptr<RdKafka::Conf> conf = BaseConf(bootstrap);
  std::string error;
  conf->set("group.id", group, error);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (consumer == nullptr) return absl::InternalError(absl::StrCat("consumer: ", error));
  std::vector<RdKafka::TopicPartition*> list;
  for (const std::string& topic : topics) {
    for (int p = 0; p < partitions; ++p) list.push_back(RdKafka::TopicPartition::create(topic, p));
  }
  RdKafka::ErrorCode err = consumer->committed(list, 10000);
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;
  for (RdKafka::TopicPartition* tp : list) offsets[{tp->topic(), tp->partition()}] = tp->offset();
  RdKafka::TopicPartition::destroy(list);
  consumer->close();
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("committed: ", RdKafka::err2str(err)));
  }
  return offsets;
}

absl::StatusOr<std::map<std::pair<std::string, int32_t>, int64_t>> HighWatermarks(
    const std::string& bootstrap, const std::vector<std::string>& topics, int partitions) {
  std::unique_ptr<RdKafka::Conf> conf = BaseConf(bootstrap);
  std::string error;
  std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
  if (client == nullptr) return absl::InternalError(absl::StrCat("client: ", error));
  std::map<std::pair<std::string, int32_t>, int64_t> highs;
  for (const std::string& topic : topics) {
    for (int p = 0; p < partitions; ++p) {
      int64_t low = 0;
      int64_t high = 0;
      RdKafka::ErrorCode err = client->query_watermark_offsets(topic, p, &low, &high, 10000);
      if (err != RdKafka::ERR_NO_ERROR) {
        return absl::UnavailableError(absl::StrCat("watermarks: ", RdKafka::err2str(err)));
      }
      highs[{topic, p}] = high;
    }
  }
  return highs;
}

absl::StatusOr<std::string> WaitForFirstLine(const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) return line;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(path, " did not appear"));
}

}  // namespace cdcjoin::testing
