#include "tests/support/e2e_harness.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "service/embedded_kafka.h"
#include "tests/support/reference_model.h"
#include "tests/support/test_kafka.h"

namespace cdcjoin::testing {

const std::vector<std::string>& EndToEndTest::Topics() {
  static const auto* topics = new std::vector<std::string>{"cdc.azar.User", "cdc.azar.UserExtData"};
  return *topics;
}

void EndToEndTest::SetUp() {
  absl::StatusOr<MySqlEndpoint> endpoint = MySqlFromEnv();
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  mysql_ = *endpoint;
  // A parameterized test's name ends in "/<param>": no slash in a directory or database name.
  // The pid first, as long names are cut to MariaDB's 64 characters.
  const std::string name = absl::StrReplaceAll(
      ::testing::UnitTest::GetInstance()->current_test_info()->name(), {{"/", "_"}});
  database_ = absl::StrCat("e2e_", getpid(), "_", name).substr(0, 64);
  ASSERT_TRUE(CreateSeedDatabase(mysql_, database_).ok());

  dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir_, " && mkdir -p ", dir_).c_str()), 0);
  const std::string bootstrap_file = dir_ + "/bootstrap";
  absl::StatusOr<Subprocess> kafka = Subprocess::Spawn(
      {RunfilePath("tests/support/mock_kafka"), "--bootstrap_file=" + bootstrap_file,
       absl::StrCat("--topics=", Topics()[0], ":", kPartitions, ",", Topics()[1], ":",
                    kPartitions, ",", kDeadLetterTopic, ":1"),
       "--control_file=" + KafkaControlFile()},
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

std::string EndToEndTest::KafkaControlFile() const { return dir_ + "/kafka_control"; }

bool EndToEndTest::KafkaFault(const std::string& command) {
  if (!WriteFileAtomically(KafkaControlFile(), command + "\n").ok()) return false;
  // The mock cluster removes the file once it carried the command out.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (std::ifstream(KafkaControlFile()).good()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

void EndToEndTest::TearDown() {
  daemon_.reset();
  if (kafka_.has_value()) {
    // A cluster that went away mid-test looks like a broker outage to everything else.
    if (!kafka_->Running()) {
      ADD_FAILURE() << "the mock cluster exited during the test (status "
                    << kafka_->Wait(absl::ZeroDuration()).value_or(-1) << "):\n"
                    << ReadFile(dir_ + "/mock_kafka.log");
    }
    kafka_->Signal(SIGTERM);
    kafka_->Wait(absl::Seconds(10));
  }
  ExecuteSql(mysql_, "", {absl::StrCat("DROP DATABASE IF EXISTS `", database_, "`")})
      .IgnoreError();
}

void EndToEndTest::StartDaemon(const std::vector<std::pair<std::string, std::string>>& replacements,
                               const std::vector<std::string>& extra_flags) {
  std::string text = config_text_;
  for (const auto& [from, to] : replacements) {
    const std::string replaced = absl::StrReplaceAll(text, {{from, to}});
    ASSERT_NE(replaced, text) << "'" << from << "' is not in the config";
    text = replaced;
  }
  config_ = v1::Config();
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config_)) << text;
  const std::string path = dir_ + "/config.textproto";
  std::ofstream(path) << text;
  // A restart must not read the addresses of the previous start.
  for (const char* server : {"admin", "metrics"}) {
    std::remove(absl::StrCat(dir_, "/", server, "_address").c_str());
  }
  std::vector<std::string> argv = {RunfilePath("service/cdcjoind"), "--config=" + path,
                                   "--progress_interval_ms=500",
                                   "--admin_address_file=" + dir_ + "/admin_address",
                                   "--metrics_address_file=" + dir_ + "/metrics_address"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  ++starts_;
  absl::StatusOr<Subprocess> daemon = Subprocess::Spawn(argv, DaemonLog());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  daemon_.emplace(*std::move(daemon));
}

int EndToEndTest::StopDaemon(absl::Duration limit) {
  daemon_->Signal(SIGTERM);
  return daemon_->Wait(limit).value_or(-1);
}

absl::StatusOr<std::string> EndToEndTest::WaitForAddress(const std::string& server) const {
  absl::StatusOr<std::string> address =
      WaitForFirstLine(absl::StrCat(dir_, "/", server, "_address"), absl::Seconds(30));
  if (!address.ok()) {
    return absl::Status(address.status().code(),
                        absl::StrCat(address.status().message(), "\n", ReadFile(DaemonLog())));
  }
  return address;
}

std::pair<std::string, std::string> EndToEndTest::WindowedConfig(int64_t window_ms,
                                                                  v1::JoinMode mode) const {
  return {"mode: DB_UPSERT",
          absl::StrCat("mode: ", v1::JoinMode_Name(mode),
                       " window { join_type: OUTER window_ms: ", window_ms,
                       " grace_ms: 500 idle_flush_ms: 300 state_dir: \"", dir_, "/state\" }")};
}

void EndToEndTest::Produce(const std::vector<SeedRecord>& records, size_t begin, size_t end) {
  absl::Status produced = ProduceSeedRecords(bootstrap_, Topics(), records, begin, end);
  ASSERT_TRUE(produced.ok()) << produced;
}

size_t EndToEndTest::WaitForRowsOver(size_t rows, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  size_t seen = 0;
  while (absl::Now() < deadline) {
    absl::StatusOr<ModelTable> table = DumpSeedTable(mysql_, database_);
    if (table.ok()) seen = table->size();
    if (seen > rows) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return seen;
}

absl::StatusOr<PartitionOffsets> EndToEndTest::Committed() const {
  return CommittedOffsets(bootstrap_, config_.kafka().group_id(), Topics(), kPartitions);
}

void EndToEndTest::WaitUntilAllCommitted(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto highs = HighWatermarks(bootstrap_, Topics(), kPartitions);
  ASSERT_TRUE(highs.ok()) << highs.status();
  std::string lagging;
  while (absl::Now() < deadline) {
    ASSERT_TRUE(daemon_->Running()) << "cdcjoind exited:\n" << ReadFile(DaemonLog());
    absl::StatusOr<PartitionOffsets> committed = Committed();
    lagging.clear();
    if (committed.ok()) {
      for (const auto& [partition, high] : *highs) {
        const int64_t at = committed->count(partition) ? committed->at(partition) : -1;
        if (high > 0 && at < high) {
          absl::StrAppend(&lagging, partition.first, "[", partition.second, "] ", at, "/", high,
                          " ");
        }
      }
      if (lagging.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  ASSERT_TRUE(lagging.empty()) << "not committed in time: " << lagging << "\n"
                               << ReadFile(DaemonLog());
}

void EndToEndTest::ExpectConverges(const std::vector<SeedRecord>& records,
                                   absl::Duration timeout) {
  WaitUntilAllCommitted(timeout);
  if (::testing::Test::HasFatalFailure()) return;
  ExpectTableIsModelOf(records, 500);
}

void EndToEndTest::ExpectTableIsModelOf(const std::vector<SeedRecord>& records,
                                        size_t more_rows_than) {
  absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql_, database_);
  ASSERT_TRUE(actual.ok()) << actual.status();
  const ModelTable expected = ComputeExpectedTable(config_, records);
  const std::vector<std::string> diffs = DiffTables(expected, *actual);
  EXPECT_TRUE(diffs.empty()) << absl::StrJoin(diffs, "\n");
  EXPECT_GT(expected.size(), more_rows_than);
}

bool EndToEndTest::WaitForLog(const std::string& text, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (ReadFile(DaemonLog()).find(text) == std::string::npos) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return true;
}

int64_t EndToEndTest::LastLoggedCounter(const std::string& name) const {
  const std::string log = ReadFile(DaemonLog());
  const std::string needle = " " + name + "=";
  const size_t at = log.rfind(needle);
  if (at == std::string::npos) return -1;
  const size_t begin = at + needle.size();
  const size_t end = log.find_first_not_of("-0123456789", begin);
  int64_t value = -1;
  if (!absl::SimpleAtoi(log.substr(begin, end - begin), &value)) return -1;
  return value;
}

}  // namespace cdcjoin::testing
