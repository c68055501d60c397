// End to end in DB_UPSERT mode, against the real parts: the standalone mock Kafka cluster, the
// private MariaDB and cdcjoind itself as a process. The reference model judges every table.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin::testing {
namespace {

using DbUpsertEndToEndTest = EndToEndTest;

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
  WaitForRowsOver(500, absl::Seconds(60));
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
    ASSERT_EQ(letter.headers.count("cdcjoin.reason"), 1u);
    EXPECT_EQ(letter.headers.at("cdcjoin.reason"), "malformed");
    ASSERT_EQ(letter.headers.count("cdcjoin.source.topic"), 1u);
    EXPECT_THAT(Topics(), ::testing::Contains(letter.headers.at("cdcjoin.source.topic")));
    EXPECT_EQ(letter.headers.count("cdcjoin.source.offset"), 1u);
    EXPECT_FALSE(letter.headers.at("cdcjoin.error").empty());
    ASSERT_TRUE(letter.value.has_value());
  }
  EXPECT_EQ(StopDaemon(), 0);
  EXPECT_EQ(LastLoggedCounter("dead_lettered"), static_cast<int64_t>(poison));
}

// An outside writer takes row locks in the opposite order of the daemon's sorted batch: InnoDB
// detects a real deadlock (1213), rolls the daemon's (lighter) transaction back, and the lane
// retries it once the outside transaction commits. Nothing is lost or applied out of order.
TEST_F(DbUpsertEndToEndTest, DeadlocksWithAnOutsideWriterAreRetriedAndCounted) {
  SeedWorkloadOptions options;
  options.records = 6000;
  options.users = 2500;
  options.seed = 4;
  std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  Produce(records, 0, records.size());
  // One lane: the daemon's transaction takes key 5 and then the outside writer's range.
  StartDaemon({{"lanes: 4", "lanes: 1"}, {"linger_ms: 5", "linger_ms: 200"}});
  ExpectConverges(records, absl::Seconds(120));

  auto outside = SqlSession::Open(mysql_, database_);
  ASSERT_TRUE(outside.ok()) << outside.status();
  int64_t deadlocks_seen = 0;
  for (int attempt = 0; attempt < 5 && deadlocks_seen == 0; ++attempt) {
    // The outside transaction locks ~1,000 rows first: heavier, so InnoDB picks the daemon as
    // the victim.
    ASSERT_TRUE((*outside)->Execute("BEGIN").ok());
    ASSERT_TRUE((*outside)
                    ->Execute("UPDATE Nickname SET dateCreated = dateCreated "
                              "WHERE userId BETWEEN 1000 AND 2000")
                    .ok());
    // The daemon's next batch locks key 5, then waits for key 1500 held outside.
    SeedWorkloadOptions more = options;
    more.seed = 100 + attempt;
    std::vector<SeedRecord> next = GenerateSeedWorkload(more);
    std::vector<SeedRecord> pair;
    for (const SeedRecord& record : next) {
      if (record.source == 0 && (record.op == 'r' || record.op == 'c' || record.op == 'u') &&
          record.fields.at("simpleName").has_value() &&
          (record.user_id == 5 || record.user_id == 1500)) {
        pair.push_back(record);
      }
    }
    ASSERT_FALSE(pair.empty());
    const size_t from = records.size();
    records.insert(records.end(), pair.begin(), pair.end());
    Produce(records, from, records.size());
    // Wait (bounded) until the daemon's batch waits for the row held outside. InnoDB refreshes
    // INNODB_TRX only when it was not read for 100 ms, hence the slower polling.
    std::string lock_waits = "never queried";
    const absl::Time waits_by = absl::Now() + absl::Seconds(30);
    while (absl::Now() < waits_by) {
      absl::SleepFor(absl::Milliseconds(150));
      auto rows = QueryRows(mysql_, "",
                            "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                            "WHERE trx_state = 'LOCK WAIT'");
      lock_waits = rows.ok() ? rows->at(0).at(0).value_or("NULL") : rows.status().ToString();
      if (lock_waits != "0") break;
    }
    // No wait (the pair missed key 1500): this attempt provokes no deadlock and the loop tries
    // the next one.
    if (lock_waits == "0") std::printf("attempt %d: the daemon never waited\n", attempt);
    // Closing the cycle: the outside writer now wants key 5.
    absl::Status closed =
        (*outside)->Execute("UPDATE Nickname SET dateCreated = dateCreated WHERE userId = 5");
    ASSERT_TRUE((*outside)->Execute("COMMIT").ok());
    ASSERT_TRUE(closed.ok()) << "the outside writer was chosen as the victim: " << closed;
    ExpectConverges(records, absl::Seconds(60));
    ASSERT_EQ(StopDaemon(), 0);
    deadlocks_seen = LastLoggedCounter("deadlocks");
    if (deadlocks_seen == 0) StartDaemon({{"lanes: 4", "lanes: 1"}, {"linger_ms: 5", "linger_ms: 200"}});
  }
  EXPECT_GE(deadlocks_seen, 1) << ReadFile(DaemonLog());
  EXPECT_GE(LastLoggedCounter("retries"), deadlocks_seen);
}

// The database goes away (the daemon's account is locked and its connections killed): lanes
// retry, then hold; nothing is committed past what was applied and the daemon says it is
// degraded. When the account is unlocked, the lanes resume by themselves and the table converges.
TEST_F(DbUpsertEndToEndTest, HoldsWhileTheDatabaseIsGoneAndResumesWhenItIsBack) {
  const std::string account = absl::StrCat("'cdc_", getpid(), "'@'127.0.0.1'");
  ASSERT_TRUE(ExecuteSql(mysql_, "",
                         {absl::StrCat("DROP USER IF EXISTS ", account),
                          absl::StrCat("CREATE USER ", account),
                          absl::StrCat("GRANT ALL ON `", database_, "`.* TO ", account)})
                  .ok());
  SeedWorkloadOptions options;
  options.records = 8000;
  options.users = 1500;
  options.seed = 5;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  const size_t half = records.size() / 2;
  Produce(records, 0, half);
  StartDaemon({{"user: \"root\"", absl::StrCat("user: \"cdc_", getpid(), "\"")},
               {"linger_ms: 5 }",
                "linger_ms: 5 retry { max_attempts: 3 initial_backoff_ms: 20 "
                "max_backoff_ms: 300 } }"}});
  const std::vector<SeedRecord> first(records.begin(), records.begin() + half);
  ExpectConverges(first, absl::Seconds(120));

  ASSERT_TRUE(ExecuteSql(mysql_, "",
                         {absl::StrCat("ALTER USER ", account, " ACCOUNT LOCK")})
                  .ok());
  // Drop the daemon's open connections: its next write must reconnect, and cannot.
  auto killer = SqlSession::Open(mysql_, "");
  ASSERT_TRUE(killer.ok());
  ASSERT_TRUE((*killer)
                  ->Execute(absl::StrCat("BEGIN NOT ATOMIC FOR c IN (SELECT id FROM "
                                         "information_schema.processlist WHERE user = 'cdc_",
                                         getpid(), "') DO KILL CONNECTION c.id; END FOR; END"))
                  .ok());
  Produce(records, half, records.size());
  EXPECT_TRUE(WaitForLog("state=degraded", absl::Seconds(30)));
  // A locked account is an error retrying cannot fix: the lane holds at once (and keeps
  // retrying slowly, so it resumes once the account is unlocked).
  EXPECT_NE(ReadFile(DaemonLog()).find(", the lane holds its batch"), std::string::npos);
  // No write took effect, so no commit may pass a record that needs one. (Records that need no
  // write, like tombstones or ignored deletes, may be committed: they are done.)
  auto committed_during = Committed();
  ASSERT_TRUE(committed_during.ok());
  std::map<std::pair<std::string, int32_t>, int64_t> next_offset;
  std::map<std::pair<std::string, int32_t>, int64_t> first_needing_write;
  for (size_t i = 0; i < records.size(); ++i) {
    const SeedRecord& record = records[i];
    const auto partition = std::make_pair(Topics()[record.source], record.partition);
    const int64_t offset = next_offset[partition]++;
    const bool upsert = record.op == 'r' || record.op == 'c' || record.op == 'u';
    const bool writes = (upsert && (record.source == 1 || record.fields.at("simpleName"))) ||
                        (record.op == 'd' && record.source == 1);  // user_ext clears on delete.
    if (i >= half && writes && first_needing_write.count(partition) == 0) {
      first_needing_write[partition] = offset;
    }
  }
  ASSERT_FALSE(first_needing_write.empty());
  for (const auto& [partition, offset] : first_needing_write) {
    EXPECT_LE(committed_during->at(partition), offset)
        << partition.first << "[" << partition.second << "] committed past an unapplied write";
  }

  ASSERT_TRUE(ExecuteSql(mysql_, "",
                         {absl::StrCat("ALTER USER ", account, " ACCOUNT UNLOCK")})
                  .ok());
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_NE(ReadFile(DaemonLog()).find("recovered after"), std::string::npos);
  EXPECT_EQ(StopDaemon(), 0);
  ExecuteSql(mysql_, "", {absl::StrCat("DROP USER IF EXISTS ", account)}).IgnoreError();
}

// The seed's warning: a consumer that falls behind the topic's retention loses data. The mock
// cluster keeps ~5 MiB per partition; while the daemon is down, 7 MiB arrive on one partition, so
// its committed offset falls out of range. The daemon must not reset it silently: it reports
// DATA LOSS, stops that partition (commits nothing past it) and keeps the others running.
TEST_F(DbUpsertEndToEndTest, OffsetOutOfRangeIsReportedAsDataLossAndNeverReset) {
  SeedWorkloadOptions options;
  options.records = 2000;
  options.users = 500;
  options.seed = 6;
  std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  Produce(records, 0, records.size());
  StartDaemon();
  ExpectConverges(records, absl::Seconds(120));
  ASSERT_EQ(StopDaemon(), 0);
  auto committed = Committed();
  ASSERT_TRUE(committed.ok());
  const auto lost = std::make_pair(Topics()[0], int32_t{3});
  const int64_t committed_before = committed->at(lost);
  ASSERT_GT(committed_before, 0);

  // 70 records of 100 KB on partition 3 push the records the group has not read yet (and the
  // committed position) out of the mock's retention.
  std::vector<SeedRecord> flood;
  for (int i = 0; i < 70; ++i) {
    SeedRecord record;
    record.source = 0;
    record.partition = lost.second;
    record.op = 'P';
    record.key = absl::StrCat("{\"id\":", 100000 + i, "}");
    record.value = std::string(100 * 1024, 'x');
    flood.push_back(std::move(record));
  }
  // One ordinary change on another partition shows the rest keeps flowing.
  SeedRecord other = records.front();
  other.partition = 5;
  flood.push_back(other);
  const size_t from = records.size();
  records.insert(records.end(), flood.begin(), flood.end());
  Produce(records, from, records.size());

  StartDaemon();
  EXPECT_TRUE(WaitForLog("state=degraded", absl::Seconds(60))) << ReadFile(DaemonLog());
  const std::string log = ReadFile(DaemonLog());
  EXPECT_NE(log.find("DATA LOSS: cdc.azar.User[3]"), std::string::npos) << log;
  EXPECT_EQ(LastLoggedCounter("dead_lettered"), 0) << "nothing of partition 3 may be read";
  auto after = Committed();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->at(lost), committed_before) << "the lost partition's offset was reset";
  EXPECT_EQ(StopDaemon(), 0);
}

}  // namespace
}  // namespace cdcjoin::testing
