// The stale-write guard end to end (DB_UPSERT and WINDOWED OUTER), against the mock Kafka cluster, the private
// MariaDB and cdcjoind as a process: after the table converged, the whole stream is consumed
// again from the start, as after `kafka-consumer-groups --reset-offsets --to-earliest` (here: a
// fresh consumer group, which starts from the earliest offsets). Every replayed event is older
// than what the table holds.
//   guard on:  the table equals the reference model in every sample taken during the replay
//              (it never goes back), and the refused writes are counted.
//   guard off: the same replay visibly rolls rows back (which proves the sampling can see it),
//              and the table converges again at the end.

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/reference_model.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin::testing {
namespace {

class StaleWriteGuardEndToEndTest
    : public EndToEndTest,
      public ::testing::WithParamInterface<std::tuple<bool, v1::JoinMode>> {
 protected:
  bool guard() const { return std::get<0>(GetParam()); }
  bool windowed() const { return std::get<1>(GetParam()) == v1::WINDOWED; }

  // Small batches on one lane: the replay takes long enough to be sampled many times. A
  // `group_suffix` names another consumer group.
  std::vector<std::pair<std::string, std::string>> Replacements(
      const std::string& group_suffix = "") const {
    std::vector<std::pair<std::string, std::string>> replacements = {
        {"lanes: 4 batch_rows: 500", "lanes: 1 batch_rows: 20"}};
    if (windowed()) replacements.push_back(WindowedConfig());
    if (!group_suffix.empty()) {
      const std::string group = "group_id: \"" + config_.kafka().group_id();
      replacements.push_back({group + "\"", group + group_suffix + "\""});
      // The new consumer starts from scratch: its window state too.
      if (windowed()) replacements.push_back({"/state\"", "/state" + group_suffix + "\""});
    }
    if (guard()) {
      replacements.push_back({"key_columns: \"userId\"",
                              "key_columns: \"userId\" stale_write_guard: true"});
    }
    return replacements;
  }

  // Adds the version columns with what `cdcjoind --print_ddl` prints for the config.
  void AddVersionColumns() {
    const std::string config_path = dir_ + "/ddl_config.textproto";
    std::ofstream(config_path) << absl::StrReplaceAll(
        config_text_, {{"key_columns: \"userId\"",
                        "key_columns: \"userId\" stale_write_guard: true"}});
    const std::string out = dir_ + "/print_ddl.out";
    absl::StatusOr<Subprocess> ddl = Subprocess::Spawn(
        {RunfilePath("service/cdcjoind"), "--print_ddl", "--config=" + config_path}, out);
    ASSERT_TRUE(ddl.ok()) << ddl.status();
    ASSERT_EQ(ddl->Wait(absl::Seconds(30)), 0) << ReadFile(out);
    std::vector<std::string> statements;
    for (absl::string_view line : absl::StrSplit(ReadFile(out), '\n', absl::SkipEmpty())) {
      statements.emplace_back(line);
    }
    ASSERT_EQ(statements.size(), 2u) << ReadFile(out);
    ASSERT_TRUE(ExecuteSql(mysql_, database_, statements).ok());
  }

  bool AllCommitted(const PartitionOffsets& highs) const {
    absl::StatusOr<PartitionOffsets> committed = Committed();
    if (!committed.ok()) return false;
    for (const auto& [partition, high] : highs) {
      auto it = committed->find(partition);
      if (high > 0 && (it == committed->end() || it->second < high)) return false;
    }
    return true;
  }
};

TEST_P(StaleWriteGuardEndToEndTest, AReplayOfOlderEventsNeverRollsTheTableBack) {
  SeedWorkloadOptions options;
  options.records = 6000;
  options.users = 800;
  options.seed = 14;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  if (guard()) AddVersionColumns();
  if (HasFatalFailure()) return;
  Produce(records, 0, records.size());
  StartDaemon(Replacements());
  ExpectConverges(records, absl::Seconds(120));
  ASSERT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
  const ModelTable expected = ComputeExpectedTable(config_, records);

  // The replay: everything again, from offset 0.
  StartDaemon(Replacements("-replay"));
  auto highs = HighWatermarks(bootstrap_, Topics(), kPartitions);
  ASSERT_TRUE(highs.ok()) << highs.status();
  int samples = 0;
  std::vector<std::string> first_rollback;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    ASSERT_TRUE(daemon_->Running()) << ReadFile(DaemonLog());
    const bool done = AllCommitted(*highs);
    absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql_, database_);
    ASSERT_TRUE(actual.ok()) << actual.status();
    ++samples;
    std::vector<std::string> diffs = DiffTables(expected, *actual);
    if (!diffs.empty() && first_rollback.empty()) first_rollback = std::move(diffs);
    if (done || (!guard() && !first_rollback.empty())) break;
  }
  if (guard()) {
    EXPECT_TRUE(first_rollback.empty())
        << "the table went back during the replay (sample of " << samples << "):\n"
        << absl::StrJoin(first_rollback, "\n");
    EXPECT_GT(samples, 1);
  } else {
    ASSERT_FALSE(first_rollback.empty())
        << "without the guard the replay should roll rows back; " << samples << " samples";
  }
  ExpectConverges(records, absl::Seconds(120));

  // The refused writes are counted (progress lines every 500 ms carry the counter).
  int64_t stopped = -1;
  const absl::Time counted_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < counted_by) {
    stopped = LastLoggedCounter("stale_writes_stopped");
    if (!guard() || stopped > 1000) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::printf("replay (%s, %s): %d samples, first rollback seen: %s, stale_writes_stopped=%lld\n",
              guard() ? "guard" : "no guard", windowed() ? "WINDOWED" : "DB_UPSERT", samples, first_rollback.empty() ? "no" : "yes",
              static_cast<long long>(stopped));
  if (guard()) {
    EXPECT_GT(stopped, 1000) << "the replay wrote nothing new, so most of its writes must have "
                                "been refused";
  } else {
    EXPECT_EQ(stopped, 0);
  }
  EXPECT_EQ(StopDaemon(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    GuardOnAndOff, StaleWriteGuardEndToEndTest,
    ::testing::Combine(::testing::Bool(), ::testing::Values(v1::DB_UPSERT, v1::WINDOWED)),
    [](const ::testing::TestParamInfo<std::tuple<bool, v1::JoinMode>>& info) {
      return absl::StrCat(std::get<0>(info.param) ? "guard_" : "no_guard_",
                          v1::JoinMode_Name(std::get<1>(info.param)));
    });

}  // namespace
}  // namespace cdcjoin::testing
