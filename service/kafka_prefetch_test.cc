#include "service/kafka_prefetch.h"

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "service/embedded_kafka.h"
#include "service/kafka_client.h"

namespace cdcjoin {
namespace {

// librdkafka checks the fetch settings against each other only when a client is created.
std::string CreateConsumer(const std::map<std::string, std::string>& prefetch) {
  std::map<std::string, std::string> settings = prefetch;
  settings["bootstrap.servers"] = "127.0.0.1:1";  // Never reached: nothing is subscribed.
  settings["group.id"] = "kafka_prefetch_test";
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeKafkaConf(settings);
  if (!conf.ok()) return std::string(conf.status().message());
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  if (consumer == nullptr) return error;
  consumer->close();
  return "";
}

TEST(KafkaPrefetchTest, BoundsTheQueueAndEachFetchResponse) {
  std::map<std::string, std::string> settings;
  AddConsumerPrefetchDefaults(settings);
  EXPECT_EQ(settings["queued.max.messages.kbytes"], "32768");
  EXPECT_EQ(settings["fetch.max.bytes"], "1048576");
  EXPECT_EQ(CreateConsumer(settings), "");
}

TEST(KafkaPrefetchTest, KeepsWhatKafkaPropertiesSet) {
  std::map<std::string, std::string> settings = {{"queued.max.messages.kbytes", "2048"},
                                                 {"fetch.max.bytes", "5000000"}};
  AddConsumerPrefetchDefaults(settings);
  EXPECT_EQ(settings["queued.max.messages.kbytes"], "2048");
  EXPECT_EQ(settings["fetch.max.bytes"], "5000000");
  EXPECT_EQ(CreateConsumer(settings), "");
}

TEST(KafkaPrefetchTest, FetchBoundFollowsALargerMessageMaxBytes) {
  std::map<std::string, std::string> settings = {{"message.max.bytes", "4000000"}};
  // The bound librdkafka would refuse next to it.
  std::map<std::string, std::string> refused = settings;
  refused["fetch.max.bytes"] = "1048576";
  EXPECT_NE(CreateConsumer(refused), "");

  AddConsumerPrefetchDefaults(settings);
  EXPECT_EQ(settings["fetch.max.bytes"], "4000000");
  EXPECT_EQ(CreateConsumer(settings), "");
}

// Writes `count` records of `bytes` each, one record batch apiece, so that a fetch of the
// smallest size brings one record.
void ProduceOneBatchEach(const std::string& bootstrap, const std::string& topic, int count,
                         size_t bytes) {
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
      MakeKafkaConf({{"bootstrap.servers", bootstrap}, {"linger.ms", "0"}});
  ASSERT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  ASSERT_NE(producer, nullptr) << error;
  std::string value(bytes, 'v');
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(producer->produce(topic, 0, RdKafka::Producer::RK_MSG_COPY, value.data(),
                                value.size(), nullptr, 0, 0, nullptr),
              RdKafka::ERR_NO_ERROR);
    ASSERT_EQ(producer->flush(10000), RdKafka::ERR_NO_ERROR);
  }
}

// A queue bound smaller than one record: librdkafka 2.0.2 alone fetches the next record only
// when its broker thread wakes up on its own, about once a second, so 40 records would take
// ~40 s. The waker has each one fetched as soon as the one before is consumed.
TEST(FetchWakerTest, FetchesAgainAsSoonAsTheFullQueueIsConsumed) {
  constexpr int kRecords = 40;
  absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka =
      EmbeddedKafka::Start(1, {{.name = "waked", .partitions = 1}});
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string& bootstrap = (*kafka)->bootstrap_servers();
  ProduceOneBatchEach(bootstrap, "waked", kRecords, 2000);

  const std::map<std::string, std::string> settings = {
      {"bootstrap.servers", bootstrap},
      {"group.id", "fetch_waker_test"},
      {"queued.max.messages.kbytes", "1"},
      {"message.max.bytes", "1000"},
      {"fetch.max.bytes", "1000"},
      {"fetch.message.max.bytes", "1000"},
  };
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeKafkaConf(settings);
  ASSERT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  ASSERT_NE(consumer, nullptr) << error;
  std::unique_ptr<RdKafka::TopicPartition> partition(
      RdKafka::TopicPartition::create("waked", 0, RdKafka::Topic::OFFSET_BEGINNING));
  ASSERT_EQ(consumer->assign({partition.get()}), RdKafka::ERR_NO_ERROR);

  int consumed = 0;
  {
    FetchWaker waker(consumer.get(), settings);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (consumed < kRecords && absl::Now() < deadline) {
      std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
      if (message->err() == RdKafka::ERR_NO_ERROR) {
        ++consumed;
        waker.AfterConsume(1, static_cast<int64_t>(message->len()));
      } else {
        waker.AfterConsume(0, 0);
      }
    }
    EXPECT_EQ(consumed, kRecords) << "consumed in 20 s, with " << waker.wakes() << " wakes";
    EXPECT_GT(waker.wakes(), 0);
  }
  consumer->close();
}

}  // namespace
}  // namespace cdcjoin
