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

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/seed_workload.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin::testing {
namespace {

constexpr int kShutdownTimeoutMs = 10000;

class SigtermTest : public EndToEndTest, public ::testing::WithParamInterface<v1::JoinMode> {
 protected:
  void Start() {
    // Small batches: the stream takes long enough to be stopped in the middle.
    std::vector<std::pair<std::string, std::string>> replacements = {
        {"batch_rows: 500", "batch_rows: 50"}};
    if (GetParam() == v1::WINDOWED) replacements.push_back(WindowedConfig());
    StartDaemon(replacements, {absl::StrCat("--shutdown_timeout_ms=", kShutdownTimeoutMs),
                               "--progress_interval_ms=200"});
  }

  // SIGTERM; the exit code (-1: still running after `limit`) and how long the exit took.
  std::pair<int, absl::Duration> Terminate(absl::Duration limit) {
    const absl::Time start = absl::Now();
    const int code = StopDaemon(limit);
    return {code, absl::Now() - start};
  }

  // The records below the committed offset of their partition. Offsets are positions in the
  // per-partition produce order: the topics are fresh and the producer is idempotent.
  std::vector<SeedRecord> CommittedPrefix(const std::vector<SeedRecord>& records,
                                          const PartitionOffsets& committed) {
    PartitionOffsets next_offset;
    std::vector<SeedRecord> prefix;
    for (const SeedRecord& record : records) {
      const auto partition = std::make_pair(Topics()[record.source], record.partition);
      const int64_t offset = next_offset[partition]++;
      const auto it = committed.find(partition);
      if (it != committed.end() && offset < it->second) prefix.push_back(record);
    }
    return prefix;
  }
};

TEST_P(SigtermTest, StopsMidStreamCommitsExactlyWhatWasAppliedAndResumes) {
  SeedWorkloadOptions options;
  options.records = 40000;
  options.seed = 11;
  // Event time spread so that windows hold several changes of a key (as e2e_windowed_test).
  options.ts_step_ms = 2;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  const size_t half = records.size() / 2;
  Produce(records, 0, half);

  Start();
  // Live changes keep arriving while the daemon is stopped.
  absl::Status produced;
  std::thread producer([&] {
    produced = ProduceSeedRecords(bootstrap_, Topics(), records, half, records.size());
  });
  ASSERT_GT(WaitForRowsOver(500, absl::Seconds(60)), 500u) << ReadFile(DaemonLog());
  const auto [code, took] = Terminate(absl::Milliseconds(kShutdownTimeoutMs) + absl::Seconds(20));
  producer.join();
  ASSERT_TRUE(produced.ok()) << produced;
  const std::string log = ReadFile(DaemonLog());
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
  EXPECT_EQ(LastLoggedCounter("consumed"), committed_total) << log;
  {
    SCOPED_TRACE("after SIGTERM, the table is not the committed prefix");
    ExpectTableIsModelOf(prefix);
  }

  // Restart: it resumes at the committed offsets and finishes the stream.
  Start();
  {
    SCOPED_TRACE("after the restart, the table is not the reference model");
    ExpectConverges(records, absl::Seconds(120));
  }
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
  // Nothing below the committed offsets was consumed (and so applied) again.
  EXPECT_EQ(LastLoggedCounter("consumed"), static_cast<int64_t>(records.size()) - committed_total)
      << ReadFile(DaemonLog());
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
  Produce(records, 0, records.size());

  // REPEATABLE READ locking read of the whole (empty) table: a next-key lock on the supremum
  // blocks every insert until this transaction ends.
  absl::StatusOr<std::unique_ptr<SqlSession>> blocker = SqlSession::Open(mysql_, database_);
  ASSERT_TRUE(blocker.ok()) << blocker.status();
  for (const char* statement : {"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                                "BEGIN", "SELECT * FROM Nickname FOR UPDATE"}) {
    const absl::Status executed = (*blocker)->Execute(statement);
    ASSERT_TRUE(executed.ok()) << statement << ": " << executed;
  }

  Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && LastLoggedCounter("consumed") < 1000) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GE(LastLoggedCounter("consumed"), 1000) << ReadFile(DaemonLog());
  const auto [code, took] = Terminate(absl::Milliseconds(kShutdownTimeoutMs) + absl::Seconds(60));
  std::printf("SIGTERM with a stuck sink to exit %d: %s\n", code, absl::FormatDuration(took).c_str());
  EXPECT_NE(code, -1) << "still running a minute after the shutdown timeout\n"
                      << ReadFile(DaemonLog());
  EXPECT_NE(code, 0) << "a stop that could not apply everything must not report success";
  // cdcjoind exits at most 5 s after --shutdown_timeout_ms whatever its lanes are blocked in.
  EXPECT_LE(took, absl::Milliseconds(kShutdownTimeoutMs) + absl::Seconds(6))
      << ReadFile(DaemonLog());
  const absl::Status rolled_back = (*blocker)->Execute("ROLLBACK");
  ASSERT_TRUE(rolled_back.ok()) << rolled_back;

  absl::StatusOr<PartitionOffsets> committed = Committed();
  ASSERT_TRUE(committed.ok()) << committed.status();
  for (const auto& [partition, offset] : *committed) {
    EXPECT_LE(offset, 0) << partition.first << "[" << partition.second
                         << "] committed although nothing could be applied";
  }
  absl::StatusOr<ModelTable> table = DumpSeedTable(mysql_, database_);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_TRUE(table->empty());

  Start();
  ExpectConverges(records, absl::Seconds(60));
  EXPECT_EQ(StopDaemon(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SigtermTest, ::testing::Values(v1::DB_UPSERT, v1::WINDOWED),
                         [](const ::testing::TestParamInfo<v1::JoinMode>& info) {
                           return v1::JoinMode_Name(info.param);
                         });

}  // namespace
}  // namespace cdcjoin::testing
