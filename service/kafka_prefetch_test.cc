#include "service/kafka_prefetch.h"

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
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
  EXPECT_EQ(settings["queued.max.messages.kbytes"], "65536");
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

}  // namespace
}  // namespace cdcjoin
