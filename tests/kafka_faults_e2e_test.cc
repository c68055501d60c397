// Kafka faults against the mock cluster (librdkafka's fault injection, in the mock_kafka process):
// every broker down mid-stream, request errors on Fetch, OffsetCommit and JoinGroup, a 300 ms
// round trip. cdcjoind rides each out by itself, reports DEGRADED while no broker answers, and
// the table converges to the reference model: nothing lost, nothing applied out of order.

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "tests/support/e2e_harness.h"

namespace cdcjoin::testing {
namespace {

// Kafka API keys and error codes (the constants are not in librdkafka's installed headers).
constexpr int kFetch = 1;
constexpr int kOffsetCommit = 8;
constexpr int kJoinGroup = 11;
constexpr int kNotLeaderOrFollower = 6;
constexpr int kCoordinatorNotAvailable = 15;
constexpr int kRebalanceInProgress = 27;

using KafkaFaultsTest = EndToEndTest;

std::vector<SeedRecord> Workload(uint64_t seed) {
  SeedWorkloadOptions options;
  options.records = 6000;
  options.users = 1500;
  options.seed = seed;
  return GenerateSeedWorkload(options);
}

TEST_F(KafkaFaultsTest, EveryBrokerDownMidStreamIsDegradedThenConverges) {
  const std::vector<SeedRecord> records = Workload(11);
  Produce(records, 0, records.size());
  StartDaemon({{"batch_rows: 500", "batch_rows: 20"}});
  WaitForRowsOver(200, absl::Seconds(60));
  ASSERT_TRUE(KafkaFault("down"));
  EXPECT_TRUE(WaitForLog("has answered for", absl::Seconds(30))) << ReadFile(DaemonLog());
  EXPECT_TRUE(WaitForLog("state=degraded", absl::Seconds(30))) << ReadFile(DaemonLog());
  ASSERT_TRUE(KafkaFault("up"));
  EXPECT_TRUE(WaitForLog("the brokers answer again", absl::Seconds(30))) << ReadFile(DaemonLog());
  ExpectConverges(records, absl::Seconds(180));
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
}

struct RequestFault {
  const char* name;
  std::string command;
  bool before_start;  // JoinGroup errors matter when the daemon joins.
};

class KafkaRequestFaultsTest : public EndToEndTest,
                               public ::testing::WithParamInterface<RequestFault> {};

TEST_P(KafkaRequestFaultsTest, ConvergesThroughTheFault) {
  const std::vector<SeedRecord> records = Workload(12);
  Produce(records, 0, records.size() / 2);
  if (GetParam().before_start) {
    ASSERT_TRUE(KafkaFault(GetParam().command));
  }
  StartDaemon({{"batch_rows: 500", "batch_rows: 50"}});
  if (!GetParam().before_start) {
    WaitForRowsOver(100, absl::Seconds(60));
    ASSERT_TRUE(KafkaFault(GetParam().command));
  }
  Produce(records, records.size() / 2, records.size());
  ExpectConverges(records, absl::Seconds(180));
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, KafkaRequestFaultsTest,
    ::testing::Values(
        RequestFault{"FetchNotLeader",
                     "fail " + std::to_string(kFetch) + " 40 " +
                         std::to_string(kNotLeaderOrFollower),
                     false},
        RequestFault{"OffsetCommitRebalancing",
                     "fail " + std::to_string(kOffsetCommit) + " 20 " +
                         std::to_string(kRebalanceInProgress),
                     false},
        RequestFault{"JoinGroupNoCoordinator",
                     "fail " + std::to_string(kJoinGroup) + " 5 " +
                         std::to_string(kCoordinatorNotAvailable),
                     true},
        RequestFault{"Rtt300ms", "rtt 300", true}),
    [](const ::testing::TestParamInfo<RequestFault>& info) { return info.param.name; });

}  // namespace
}  // namespace cdcjoin::testing
