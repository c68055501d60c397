// End to end, against the real parts: the standalone mock Kafka cluster, the private MariaDB and
// cdcjoind itself as a process. The reference model (tests/support/reference_model) judges
// every final table.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "tests/support/reference_model.h"
#include "tests/support/seed_workload.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin::testing {
namespace {

constexpr int kPartitions = 8;
const std::vector<std::string> kTopics = {"cdc.azar.User", "cdc.azar.UserExtData"};
constexpr char kDeadLetterTopic[] = "cdcjoin.dlq";

class DbUpsertEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MySqlEndpoint> endpoint = MySqlFromEnv();
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    mysql_ = *endpoint;
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    database_ = absl::StrCat("e2e_", name, "_", getpid());
    ASSERT_TRUE(CreateSeedDatabase(mysql_, database_).ok());

    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
    ASSERT_EQ(system(absl::StrCat("mkdir -p ", dir_).c_str()), 0);
    const std::string bootstrap_file = dir_ + "/bootstrap";
    absl::StatusOr<Subprocess> kafka = Subprocess::Spawn(
        {RunfilePath("tests/support/mock_kafka"), "--bootstrap_file=" + bootstrap_file,
         absl::StrCat("--topics=", kTopics[0], ":", kPartitions, ",", kTopics[1], ":",
                      kPartitions, ",", kDeadLetterTopic, ":1")},
        dir_ + "/mock_kafka.log");
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_.emplace(*std::move(kafka));
    absl::StatusOr<std::string> bootstrap = WaitForFirstLine(bootstrap_file, absl::Seconds(20));
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = *bootstrap;

    config_text_ = SeedConfigText(bootstrap_, mysql_.host, mysql_.port, mysql_.user, database_,
                                  "e2e-" + name);
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(config_text_, &config_));
  }

  void TearDown() override {
    daemon_.reset();
    if (kafka_.has_value()) {
      kafka_->Signal(SIGTERM);
      kafka_->Wait(absl::Seconds(10));
    }
    ExecuteSql(mysql_, "", {absl::StrCat("DROP DATABASE IF EXISTS `", database_, "`")})
        .IgnoreError();
  }

  // Writes the config, with text replacements applied, and starts cdcjoind on it.
  void StartDaemon(const std::vector<std::pair<std::string, std::string>>& replacements = {}) {
    const std::string path = dir_ + "/config.textproto";
    const std::string text = absl::StrReplaceAll(config_text_, replacements);
    ASSERT_TRUE(replacements.empty() || text != config_text_);
    std::ofstream(path) << text;
    absl::StatusOr<Subprocess> daemon =
        Subprocess::Spawn({RunfilePath("service/cdcjoind"), "--config=" + path,
                           "--progress_interval_ms=1000"},
                          DaemonLog());
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_.emplace(*std::move(daemon));
  }

  std::string DaemonLog() const { return dir_ + "/cdcjoind.log"; }

  void Produce(const std::vector<SeedRecord>& records, size_t begin, size_t end) {
    absl::Status produced = ProduceSeedRecords(bootstrap_, kTopics, records, begin, end);
    ASSERT_TRUE(produced.ok()) << produced;
  }

  // Waits until every produced record is committed by the group, then compares the table with
  // the reference model. Committed == end of every partition means every event took effect.
  void ExpectConverges(const std::vector<SeedRecord>& records, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    auto highs = HighWatermarks(bootstrap_, kTopics, kPartitions);
    ASSERT_TRUE(highs.ok()) << highs.status();
    std::string lagging;
    while (absl::Now() < deadline) {
      ASSERT_TRUE(daemon_->Running()) << "cdcjoind exited:\n" << ReadFile(DaemonLog());
      auto committed = CommittedOffsets(bootstrap_, config_.kafka().group_id(), kTopics,
                                        kPartitions);
      lagging.clear();
      if (committed.ok()) {
        for (const auto& [partition, high] : *highs) {
          const int64_t at = committed->count(partition) ? committed->at(partition) : -1;
          if (high > 0 && at < high) {
            absl::StrAppend(&lagging, partition.first, "[", partition.second, "] ", at, "/",
                            high, " ");
          }
        }
        if (lagging.empty()) break;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    ASSERT_TRUE(lagging.empty()) << "not committed in time: " << lagging << "\n"
                                 << ReadFile(DaemonLog());
    absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql_, database_);
    ASSERT_TRUE(actual.ok()) << actual.status();
    const ModelTable expected = ComputeExpectedTable(config_, records);
    const std::vector<std::string> diffs = DiffTables(expected, *actual);
    EXPECT_TRUE(diffs.empty()) << absl::StrJoin(diffs, "\n");
    EXPECT_GT(expected.size(), 1000u);
  }

  int StopDaemon() {
    daemon_->Signal(SIGTERM);
    std::optional<int> code = daemon_->Wait(absl::Seconds(60));
    return code.value_or(-1);
  }

  MySqlEndpoint mysql_;
  std::string database_;
  std::string dir_;
  std::string bootstrap_;
  std::string config_text_;
  v1::Config config_;
  std::optional<Subprocess> kafka_;
  std::optional<Subprocess> daemon_;
};

TEST_F(DbUpsertEndToEndTest, SeedExampleConvergesToTheReferenceModel) {
  SeedWorkloadOptions options;
  options.records = 20000;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  Produce(records, 0, records.size() / 2);
  StartDaemon();
  // Live changes keep arriving while the daemon works through the snapshot.
  Produce(records, records.size() / 2, records.size());
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
}

TEST_F(DbUpsertEndToEndTest, SigkillMidStreamAndRestartStillConverges) {
  SeedWorkloadOptions options;
  options.records = 20000;
  options.seed = 2;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  Produce(records, 0, records.size() / 2);
  StartDaemon({{"batch_rows: 500", "batch_rows: 50"}});
  // Kill it once it has applied part of the stream, with batches in flight.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    auto table = DumpSeedTable(mysql_, database_);
    if (table.ok() && table->size() > 500) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  daemon_->Signal(SIGKILL);
  ASSERT_EQ(daemon_->Wait(absl::Seconds(10)), 128 + SIGKILL);
  auto partial = DumpSeedTable(mysql_, database_);
  ASSERT_TRUE(partial.ok());
  ASSERT_GT(partial->size(), 500u);
  Produce(records, records.size() / 2, records.size());
  StartDaemon({{"batch_rows: 500", "batch_rows: 50"}});
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(DbUpsertEndToEndTest, PoisonRecordsAreDeadLetteredAndGoodOnesApplied) {
  SeedWorkloadOptions options;
  options.records = 6000;
  options.users = 1000;
  options.poison_every = 97;
  options.seed = 3;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  size_t poison = 0;
  for (const SeedRecord& record : records) poison += record.op == 'P';
  ASSERT_GT(poison, 50u);
  Produce(records, 0, records.size());
  StartDaemon();
  ExpectConverges(records, absl::Seconds(120));

  auto dead_letters = ReadTopic(bootstrap_, kDeadLetterTopic, absl::Seconds(30));
  ASSERT_TRUE(dead_letters.ok()) << dead_letters.status();
  ASSERT_EQ(dead_letters->size(), poison);
  for (const ConsumedRecord& letter : *dead_letters) {
    EXPECT_THAT(letter.headers, ::testing::Contains(::testing::Key("cdcjoin.error")));
    ASSERT_EQ(letter.headers.count("cdcjoin.source.topic"), 1u);
    EXPECT_THAT(kTopics, ::testing::Contains(letter.headers.at("cdcjoin.source.topic")));
    EXPECT_EQ(letter.headers.count("cdcjoin.source.offset"), 1u);
    EXPECT_FALSE(letter.headers.at("cdcjoin.error").empty());
    ASSERT_TRUE(letter.value.has_value());
  }
  EXPECT_EQ(StopDaemon(), 0);
  EXPECT_THAT(ReadFile(DaemonLog()), ::testing::HasSubstr(absl::StrCat("dead_lettered=", poison)));
}

}  // namespace
}  // namespace cdcjoin::testing
