// Graceful shutdown, end to end against the real parts (the standalone mock Kafka cluster, the
// private MariaDB, cdcjoind as a process): SIGTERM while events stream in must stop consuming,
// apply and commit what was consumed, leave the group and exit 0 within --shutdown_timeout_ms.
//
// "The committed offsets cover exactly what was applied" is checked two ways:
//  1. Right after the exit, the table equals the reference model of exactly the committed prefix
//     of every partition (nothing applied beyond it, nothing below it missing).
//  2. A restart consumes exactly the records above the committed offsets (its consumed counter
//     equals total - committed: nothing re-applied) and the table converges to the reference
//     model of the whole stream.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <mysql_connection.h>
#include <mysql_driver.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
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
constexpr int kShutdownTimeoutMs = 10000;

using PartitionOffsets = std::map<std::pair<std::string, int32_t>, int64_t>;

// The last value of `name=` in the log's progress lines; -1 when absent.
int64_t LastCounter(const std::string& log, const std::string& name) {
  const std::string needle = " " + name + "=";
  const size_t at = log.rfind(needle);
  if (at == std::string::npos) return -1;
  const size_t begin = at + needle.size();
  const size_t end = log.find_first_not_of("-0123456789", begin);
  int64_t value = -1;
  if (!absl::SimpleAtoi(log.substr(begin, end - begin), &value)) return -1;
  return value;
}

class SigtermTest : public ::testing::TestWithParam<v1::JoinMode> {
 protected:
  void SetUp() override {
    absl::StatusOr<MySqlEndpoint> endpoint = MySqlFromEnv();
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    mysql_ = *endpoint;
    // Unique per test and mode: a stale bootstrap file would point at a stopped cluster.
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const std::string name = absl::StrCat(v1::JoinMode_Name(GetParam()), "_",
                                          test.substr(test.find('.') + 1, 5), "_", getpid());
    database_ = absl::StrCat("sigterm_", name);
    ASSERT_TRUE(CreateSeedDatabase(mysql_, database_).ok());
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
    ASSERT_EQ(system(absl::StrCat("mkdir -p ", dir_).c_str()), 0);

    const std::string bootstrap_file = dir_ + "/bootstrap";
    absl::StatusOr<Subprocess> kafka = Subprocess::Spawn(
        {RunfilePath("tests/support/mock_kafka"), "--bootstrap_file=" + bootstrap_file,
         absl::StrCat("--topics=", kTopics[0], ":", kPartitions, ",", kTopics[1], ":",
                      kPartitions, ",cdcjoin.dlq:1")},
        dir_ + "/mock_kafka.log");
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_.emplace(*std::move(kafka));
    absl::StatusOr<std::string> bootstrap = WaitForFirstLine(bootstrap_file, absl::Seconds(20));
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = *bootstrap;

    std::string text = SeedConfigText(bootstrap_, mysql_.host, mysql_.port, mysql_.user,
                                      database_, "sigterm-" + name);
    // Small batches: the stream takes long enough to be stopped in the middle.
    text = absl::StrReplaceAll(text, {{"batch_rows: 500", "batch_rows: 50"}});
    if (GetParam() == v1::WINDOWED) {
      text = absl::StrReplaceAll(
          text, {{"mode: DB_UPSERT",
                  absl::StrCat("mode: WINDOWED window { join_type: OUTER window_ms: 2000 "
                               "grace_ms: 500 idle_flush_ms: 300 state_dir: \"",
                               dir_, "/state\" }")}});
    }
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config_));
    config_path_ = dir_ + "/config.textproto";
    std::ofstream(config_path_) << text;
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

  void StartDaemon(const std::string& log) {
    absl::StatusOr<Subprocess> daemon = Subprocess::Spawn(
        {RunfilePath("service/cdcjoind"), "--config=" + config_path_,
         absl::StrCat("--shutdown_timeout_ms=", kShutdownTimeoutMs), "--progress_interval_ms=200"},
        log);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_.emplace(*std::move(daemon));
  }

  // SIGTERM; the exit code (-1: still running after `limit`) and how long the exit took.
  std::pair<int, absl::Duration> Terminate(absl::Duration limit) {
    const absl::Time start = absl::Now();
    daemon_->Signal(SIGTERM);
    const int code = daemon_->Wait(limit).value_or(-1);
    return {code, absl::Now() - start};
  }

  absl::StatusOr<PartitionOffsets> Committed() {
    return CommittedOffsets(bootstrap_, config_.kafka().group_id(), kTopics, kPartitions);
  }

  // The records below the committed offset of their partition. Offsets are positions in the
  // per-partition produce order: the topics are fresh and the producer is idempotent.
  std::vector<SeedRecord> CommittedPrefix(const std::vector<SeedRecord>& records,
                                          const PartitionOffsets& committed) {
    std::map<std::pair<std::string, int32_t>, int64_t> next_offset;
    std::vector<SeedRecord> prefix;
    for (const SeedRecord& record : records) {
      const auto partition = std::make_pair(kTopics[record.source], record.partition);
      const int64_t offset = next_offset[partition]++;
      const auto it = committed.find(partition);
      if (it != committed.end() && offset < it->second) prefix.push_back(record);
    }
    return prefix;
  }

  void ExpectTableEquals(const std::vector<SeedRecord>& records, const std::string& what) {
    absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql_, database_);
    ASSERT_TRUE(actual.ok()) << actual.status();
    const std::vector<std::string> diffs =
        DiffTables(ComputeExpectedTable(config_, records), *actual);
    EXPECT_TRUE(diffs.empty()) << what << ":\n" << absl::StrJoin(diffs, "\n");
  }

  MySqlEndpoint mysql_;
  std::string database_;
  std::string dir_;
  std::string bootstrap_;
  std::string config_path_;
  v1::Config config_;
  std::optional<Subprocess> kafka_;
  std::optional<Subprocess> daemon_;
};

TEST_P(SigtermTest, StopsMidStreamCommitsExactlyWhatWasAppliedAndResumes) {
  SeedWorkloadOptions options;
  options.records = 40000;
  options.seed = 11;
  // Event time spread so that windows hold several changes of a key (as e2e_windowed_test).
  options.ts_step_ms = 2;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  const size_t half = records.size() / 2;
  ASSERT_TRUE(ProduceSeedRecords(bootstrap_, kTopics, records, 0, half).ok());

  const std::string first_log = dir_ + "/cdcjoind.1.log";
  StartDaemon(first_log);
  // Live changes keep arriving while the daemon is stopped.
  absl::Status produced;
  std::thread producer([&] {
    produced = ProduceSeedRecords(bootstrap_, kTopics, records, half, records.size());
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  size_t rows = 0;
  while (absl::Now() < deadline && rows <= 500) {
    absl::StatusOr<ModelTable> table = DumpSeedTable(mysql_, database_);
    if (table.ok()) rows = table->size();
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GT(rows, 500u) << ReadFile(first_log);
  const auto [code, took] = Terminate(absl::Milliseconds(kShutdownTimeoutMs) + absl::Seconds(20));
  producer.join();
  ASSERT_TRUE(produced.ok()) << produced;
  const std::string log = ReadFile(first_log);
  EXPECT_EQ(code, 0) << log;
  EXPECT_LE(took, absl::Milliseconds(kShutdownTimeoutMs)) << log;

  absl::StatusOr<PartitionOffsets> committed = Committed();
  ASSERT_TRUE(committed.ok()) << committed.status();
  int64_t committed_total = 0;
  for (const auto& [partition, offset] : *committed) committed_total += std::max<int64_t>(0, offset);
  const std::vector<SeedRecord> prefix = CommittedPrefix(records, *committed);
  ASSERT_EQ(static_cast<int64_t>(prefix.size()), committed_total);
  // Mid-stream indeed: part of the stream was applied, part is left for the restart.
  ASSERT_GT(committed_total, 0) << log;
  ASSERT_LT(committed_total, static_cast<int64_t>(records.size()))
      << "the daemon finished the whole stream before SIGTERM; the test proves nothing";
  std::printf("SIGTERM to exit 0: %s; %lld of %zu records applied and committed by then\n",
              absl::FormatDuration(took).c_str(), static_cast<long long>(committed_total),
              records.size());
  // Everything consumed was applied and committed before the exit.
  EXPECT_EQ(LastCounter(log, "consumed"), committed_total) << log;
  ExpectTableEquals(prefix, "after SIGTERM, the table is not the committed prefix");

  // Restart: it resumes at the committed offsets and finishes the stream.
  const std::string second_log = dir_ + "/cdcjoind.2.log";
  StartDaemon(second_log);
  absl::StatusOr<PartitionOffsets> highs = HighWatermarks(bootstrap_, kTopics, kPartitions);
  ASSERT_TRUE(highs.ok()) << highs.status();
  const absl::Time converge_deadline = absl::Now() + absl::Seconds(120);
  std::string lagging = "not checked";
  while (absl::Now() < converge_deadline && !lagging.empty()) {
    ASSERT_TRUE(daemon_->Running()) << ReadFile(second_log);
    absl::SleepFor(absl::Milliseconds(250));
    absl::StatusOr<PartitionOffsets> now = Committed();
    if (!now.ok()) continue;
    lagging.clear();
    for (const auto& [partition, high] : *highs) {
      const int64_t at = now->count(partition) ? now->at(partition) : -1;
      if (high > 0 && at < high) absl::StrAppend(&lagging, partition.first, "[", partition.second, "] ");
    }
  }
  ASSERT_TRUE(lagging.empty()) << "not committed in time: " << lagging << "\n"
                               << ReadFile(second_log);
  const auto [second_code, second_took] = Terminate(absl::Seconds(60));
  EXPECT_EQ(second_code, 0) << ReadFile(second_log);
  // Nothing below the committed offsets was consumed (and so applied) again.
  EXPECT_EQ(LastCounter(ReadFile(second_log), "consumed"),
            static_cast<int64_t>(records.size()) - committed_total)
      << ReadFile(second_log);
  ExpectTableEquals(records, "after the restart, the table is not the reference model");
}

// The sink cannot apply anything (an outside transaction holds the table's insert gap lock), so
// the stop cannot finish its work: it must still exit within the timeout, non-zero, and commit
// nothing that was not applied; a restart then applies everything.
TEST_P(SigtermTest, StuckSinkStillExitsInTimeAndCommitsNothingUnapplied) {
  if (GetParam() != v1::DB_UPSERT) GTEST_SKIP() << "the sink is shared by both modes";
  SeedWorkloadOptions options;
  options.records = 4000;
  options.seed = 12;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  ASSERT_TRUE(ProduceSeedRecords(bootstrap_, kTopics, records, 0, records.size()).ok());

  // REPEATABLE READ locking read of the whole (empty) table: a next-key lock on the supremum
  // blocks every insert until this transaction ends.
  std::unique_ptr<sql::Connection> blocker(sql::mysql::get_mysql_driver_instance()->connect(
      absl::StrCat("tcp://", mysql_.host, ":", mysql_.port), mysql_.user, ""));
  blocker->setSchema(database_);
  blocker->setAutoCommit(false);
  std::unique_ptr<sql::Statement> statement(blocker->createStatement());
  statement->execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  std::unique_ptr<sql::ResultSet>(statement->executeQuery("SELECT * FROM Nickname FOR UPDATE"));

  const std::string log = dir_ + "/cdcjoind.stuck.log";
  StartDaemon(log);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && LastCounter(ReadFile(log), "consumed") < 1000) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GE(LastCounter(ReadFile(log), "consumed"), 1000) << ReadFile(log);
  const auto [code, took] = Terminate(absl::Milliseconds(kShutdownTimeoutMs) + absl::Seconds(60));
  std::printf("SIGTERM with a stuck sink to exit %d: %s\n", code, absl::FormatDuration(took).c_str());
  EXPECT_NE(code, -1) << "still running a minute after the shutdown timeout\n" << ReadFile(log);
  EXPECT_NE(code, 0) << "a stop that could not apply everything must not report success";
  // cdcjoind exits at most 5 s after --shutdown_timeout_ms whatever its lanes are blocked in.
  EXPECT_LE(took, absl::Milliseconds(kShutdownTimeoutMs) + absl::Seconds(6)) << ReadFile(log);
  statement->execute("ROLLBACK");

  absl::StatusOr<PartitionOffsets> committed = Committed();
  ASSERT_TRUE(committed.ok()) << committed.status();
  for (const auto& [partition, offset] : *committed) {
    EXPECT_LE(offset, 0) << partition.first << "[" << partition.second
                         << "] committed although nothing could be applied";
  }
  absl::StatusOr<ModelTable> table = DumpSeedTable(mysql_, database_);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_TRUE(table->empty());

  StartDaemon(dir_ + "/cdcjoind.after_stuck.log");
  const absl::Time converge_deadline = absl::Now() + absl::Seconds(60);
  std::vector<std::string> diffs = {"not checked"};
  const ModelTable expected = ComputeExpectedTable(config_, records);
  while (absl::Now() < converge_deadline && !diffs.empty()) {
    absl::SleepFor(absl::Milliseconds(250));
    absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql_, database_);
    if (actual.ok()) diffs = DiffTables(expected, *actual);
  }
  EXPECT_TRUE(diffs.empty()) << absl::StrJoin(diffs, "\n");
  EXPECT_EQ(Terminate(absl::Seconds(60)).first, 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SigtermTest, ::testing::Values(v1::DB_UPSERT, v1::WINDOWED),
                         [](const ::testing::TestParamInfo<v1::JoinMode>& info) {
                           return v1::JoinMode_Name(info.param);
                         });

}  // namespace
}  // namespace cdcjoin::testing
