// End to end in WINDOWED mode (outer join, RocksDB state on disk), against the real parts. The
// reference model is the same judge as for DB_UPSERT: in OUTER mode the table must converge to
// exactly the same result.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/test_kafka.h"

namespace cdcjoin::testing {
namespace {

using WindowedEndToEndTest = EndToEndTest;

SeedWorkloadOptions Workload(uint64_t seed) {
  SeedWorkloadOptions options;
  options.records = 20000;
  options.seed = seed;
  // 20,000 records over ~40 s of event time: each key changes several times per 2 s window.
  options.ts_step_ms = 2;
  return options;
}

TEST_F(WindowedEndToEndTest, OuterJoinConvergesToTheReferenceModel) {
  const std::vector<SeedRecord> records = GenerateSeedWorkload(Workload(11));
  Produce(records, 0, records.size() / 2);
  StartDaemon({WindowedConfig()});
  Produce(records, records.size() / 2, records.size());
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
  EXPECT_GT(LastLoggedCounter("windows_emitted"), 0);
}

TEST_F(WindowedEndToEndTest, SigkillMidStreamAndRestartStillConverges) {
  const std::vector<SeedRecord> records = GenerateSeedWorkload(Workload(12));
  Produce(records, 0, records.size() / 2);
  StartDaemon({WindowedConfig()});
  WaitForRowsOver(300, absl::Seconds(60));
  daemon_->Signal(SIGKILL);
  ASSERT_EQ(daemon_->Wait(absl::Seconds(10)), 128 + SIGKILL);
  Produce(records, records.size() / 2, records.size());
  StartDaemon({WindowedConfig()});
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_EQ(StopDaemon(), 0);
}

// Failover to an instance without the state (node lost, state directory gone): Kafka's committed
// offsets never pass an event the state still holds, so a fresh instance reads those events again
// and nothing is lost.
TEST_F(WindowedEndToEndTest, LosingTheStateDirectoryLosesNothing) {
  const std::vector<SeedRecord> records = GenerateSeedWorkload(Workload(14));
  Produce(records, 0, records.size() / 2);
  // A long window keeps many events held in open windows when the daemon dies.
  StartDaemon({WindowedConfig(30000)});
  WaitForRowsOver(300, absl::Seconds(60));
  daemon_->Signal(SIGKILL);
  ASSERT_EQ(daemon_->Wait(absl::Seconds(10)), 128 + SIGKILL);
  // Something must have been held (consumed, not yet applied) for the test to mean anything.
  auto committed = Committed();
  auto highs = HighWatermarks(bootstrap_, Topics(), kPartitions);
  ASSERT_TRUE(committed.ok() && highs.ok());
  int64_t held = 0;
  for (const auto& [partition, high] : *highs) {
    held += high - std::max<int64_t>(0, committed->count(partition) ? committed->at(partition) : 0);
  }
  ASSERT_GT(held, 0);
  ASSERT_EQ(system(("rm -rf " + dir_ + "/state").c_str()), 0);
  Produce(records, records.size() / 2, records.size());
  StartDaemon({WindowedConfig(30000)});
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_EQ(StopDaemon(), 0);
}

// The point of the application-side join: related changes that fall in one window become one
// write. Same input through both modes; the windowed one must write fewer rows.
TEST_F(WindowedEndToEndTest, WritesFewerRowsThanTheDatabaseSideJoin) {
  const std::vector<SeedRecord> records = GenerateSeedWorkload(Workload(13));
  Produce(records, 0, records.size());
  StartDaemon();
  ExpectConverges(records, absl::Seconds(120));
  ASSERT_EQ(StopDaemon(), 0);
  const int64_t db_rows = LastLoggedCounter("applied");

  ASSERT_TRUE(CreateSeedDatabase(mysql_, database_).ok());
  config_text_ = absl::StrReplaceAll(config_text_, {{"group_id: \"", "group_id: \"windowed-"}});
  // The workload spans ~40 s of event time: a 10 s window sees several changes of most keys.
  StartDaemon({WindowedConfig(10000)});
  ExpectConverges(records, absl::Seconds(120));
  ASSERT_EQ(StopDaemon(), 0);
  const int64_t windowed_rows = LastLoggedCounter("applied");
  std::printf("row commands applied for %zu records: DB_UPSERT %lld, WINDOWED %lld (%.1fx fewer)\n",
              records.size(), static_cast<long long>(db_rows),
              static_cast<long long>(windowed_rows),
              static_cast<double>(db_rows) / std::max<int64_t>(1, windowed_rows));
  ASSERT_GT(db_rows, 0);
  ASSERT_GT(windowed_rows, 0);
  EXPECT_LT(windowed_rows, db_rows);
}

}  // namespace
}  // namespace cdcjoin::testing
