// Records a typed decoder must refuse, end to end (issue 12): the mock Kafka cluster, the
// private MariaDB and cdcjoind as a process. A string key, a float key, a 60 KB string for a
// VARCHAR(100) and an event of another table are dead-lettered at decode time, with the reason
// in the cdcjoin.reason header; the group's offset passes them; every good row is applied, and
// the table equals the reference model. Event times near 2^63 in WINDOWED LEFT/INNER lose
// nothing.

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/test_kafka.h"

namespace cdcjoin::testing {
namespace {

using ::testing::HasSubstr;

class DecodeFaultsTest : public EndToEndTest {
 protected:
  // The seed's snapshot and live changes: more than 500 rows.
  static std::vector<SeedRecord> Workload(uint64_t seed) {
    SeedWorkloadOptions options;
    options.records = 2000;
    options.users = 600;
    options.seed = seed;
    return GenerateSeedWorkload(options);
  }

  // A User (source 0) or UserExtData (source 1) create whose `after` image is `after`, from
  // table `table` of database azar, on `partition`. Marked poison: the reference model skips
  // it, as cdcjoind must.
  static SeedRecord Bad(int source, int32_t partition, const std::string& key,
                        const std::string& after, const std::string& table) {
    SeedRecord record;
    record.source = source;
    record.partition = partition;
    record.op = 'P';
    record.key = key;
    record.value = absl::StrCat(
        R"({"before":null,"after":)", after,
        R"(,"source":{"version":"1.9.7.Final","connector":"mysql","name":"azar",)",
        R"("ts_ms":1624233600000,"db":"azar","table":")", table,
        R"("},"op":"c","ts_ms":1624233600003})");
    return record;
  }

  // Produces the good records, then `bad` (each last on its partition), starts cdcjoind with
  // `replacements`, and checks what a refused record must leave behind: the group committed
  // past every bad record, the table is the reference model of all records, and the dead-letter
  // topic holds exactly the bad records, each with `reason` and an error containing the
  // matching entry of `errors`.
  void RunWithBadRecords(const std::vector<SeedRecord>& good, const std::vector<SeedRecord>& bad,
                         const std::vector<std::pair<std::string, std::string>>& replacements,
                         const std::string& reason, const std::vector<std::string>& errors) {
    ASSERT_EQ(bad.size(), errors.size());
    Produce(good, 0, good.size());
    auto highs = HighWatermarks(bootstrap_, Topics(), kPartitions);
    ASSERT_TRUE(highs.ok()) << highs.status();
    // Where each bad record lands: the partition's end before it (one bad record per partition).
    std::vector<std::pair<std::pair<std::string, int32_t>, int64_t>> bad_at;
    for (const SeedRecord& record : bad) {
      const auto partition = std::make_pair(Topics()[static_cast<size_t>(record.source)],
                                            record.partition);
      bad_at.emplace_back(partition, highs->count(partition) ? highs->at(partition) : 0);
    }
    Produce(bad, 0, bad.size());
    std::vector<SeedRecord> all = good;
    all.insert(all.end(), bad.begin(), bad.end());

    StartDaemon(replacements);
    ExpectConverges(all, absl::Seconds(150));
    auto committed = Committed();
    ASSERT_TRUE(committed.ok()) << committed.status();
    for (const auto& [partition, offset] : bad_at) {
      EXPECT_GT(committed->count(partition) ? committed->at(partition) : -1, offset)
          << partition.first << "[" << partition.second << "]: the group's offset must pass "
          << "the bad record at " << offset;
    }

    // Dead letters are delivered before the offset passes them; wait for them with a deadline
    // all the same, and show what was there on failure.
    std::vector<ConsumedRecord> letters;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto read = ReadTopic(bootstrap_, kDeadLetterTopic, absl::Seconds(5));
      ASSERT_TRUE(read.ok()) << read.status();
      letters = *std::move(read);
      if (letters.size() >= bad.size()) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    std::vector<std::string> seen;
    for (const ConsumedRecord& letter : letters) {
      seen.push_back(absl::StrCat(
          letter.headers.count("cdcjoin.reason") ? letter.headers.at("cdcjoin.reason") : "-",
          ": ", letter.headers.count("cdcjoin.error") ? letter.headers.at("cdcjoin.error") : "-"));
    }
    ASSERT_EQ(letters.size(), bad.size()) << absl::StrJoin(seen, "\n") << "\n"
                                          << ReadFile(DaemonLog());
    for (size_t i = 0; i < letters.size(); ++i) {
      const ConsumedRecord& letter = letters[i];
      ASSERT_EQ(letter.headers.count("cdcjoin.reason"), 1u) << seen[i];
      EXPECT_EQ(letter.headers.at("cdcjoin.reason"), reason) << seen[i];
      ASSERT_EQ(letter.headers.count("cdcjoin.error"), 1u) << seen[i];
      // The dead-letter topic has one partition: letters come in no fixed order across source
      // partitions, so each must match one of the expected errors.
      bool matched = false;
      for (const std::string& error : errors) {
        matched = matched || letter.headers.at("cdcjoin.error").find(error) != std::string::npos;
      }
      EXPECT_TRUE(matched) << seen[i] << "\nexpected one of:\n" << absl::StrJoin(errors, "\n");
    }
    EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
    EXPECT_EQ(LastLoggedCounter("dead_lettered"), static_cast<int64_t>(bad.size()));
  }
};

// Before typed decoding, MySQL answered 1366 for the batch, the lane retried forever and the
// partition's offset froze.
TEST_F(DecodeFaultsTest, StringKeyIsDeadLetteredAtDecode) {
  RunWithBadRecords(
      Workload(21),
      {Bad(0, 3, R"({"id":"abc"})",
           R"({"id":"abc","simpleName":"string key","dateCreated":1624233600000})", "User"),
       Bad(1, 5, R"({"userId":"x5"})", R"({"userId":"x5","originalName":"string key"})",
           "UserExtData")},
      {}, "type-mismatch",
      {"after.id: JSON string 'abc' does not fit column userId bigint(20)",
       "after.userId: JSON string 'x5' does not fit column userId bigint(20)"});
}

// Before typed decoding, MySQL rounded 1.5 to 2 and overwrote key 2's row, silently.
TEST_F(DecodeFaultsTest, FloatKeyIsDeadLetteredNotRounded) {
  RunWithBadRecords(
      Workload(22),
      {Bad(0, 2, R"({"id":1.5})",
           R"({"id":1.5,"simpleName":"float key","dateCreated":1624233600000})", "User"),
       Bad(1, 4, R"({"userId":3.5})", R"({"userId":3.5,"originalName":"float key"})",
           "UserExtData")},
      {}, "type-mismatch",
      {"after.id: JSON floating-point number 1.5 does not fit column userId",
       "after.userId: JSON floating-point number 3.5 does not fit column userId"});
}

// A 60 KB string is under sink.max_value_bytes (65535) but over currentNickname's
// VARCHAR(100): refused when decoded (reason type-mismatch), not when MySQL answers 1406.
TEST_F(DecodeFaultsTest, OverLongValueAmongGoodRowsIsDeadLetteredAtDecode) {
  const std::string long_name(60000, 'n');
  RunWithBadRecords(
      Workload(23),
      {Bad(1, 6, R"({"userId":6})", absl::StrCat(R"({"userId":6,"originalName":")", long_name,
                                                 R"("})"),
           "UserExtData")},
      {}, "type-mismatch",
      {"after.originalName: JSON string of 60000 bytes does not fit column currentNickname "
       "varchar(100): 60000 characters, longer than the column's 100"});
}

// With sources[].database/table set, an event whose source.table names another table is not
// applied as a row of the source's table.
TEST_F(DecodeFaultsTest, ForeignSourceTableIsDeadLettered) {
  RunWithBadRecords(
      Workload(24),
      {Bad(0, 1, R"({"id":9})",
           R"({"id":9,"simpleName":"from Orders","dateCreated":1624233600000})", "Orders"),
       Bad(1, 7, R"({"userId":15})", R"({"userId":15,"originalName":"from User"})", "User")},
      {{R"(key_fields: "id")", R"(key_fields: "id" database: "azar" table: "User")"},
       {R"(key_fields: "userId")",
        R"(key_fields: "userId" database: "azar" table: "UserExtData")"}},
      "foreign-table",
      {"source.table: 'Orders' but sources[0].table (user) is 'User'",
       "source.table: 'User' but sources[1].table (user_ext) is 'UserExtData'"});
}

// Event times near 2^63 with a window and grace of 365 days (the configured bound): before the
// arithmetic saturated, t + window_ms + grace_ms wrapped negative and every event after the
// first of a partition was dropped as late, its offset committed. Every key has both sources
// in one window, so INNER and LEFT write what the reference model expects. (idle_flush_ms is
// long enough for both topics of a partition to arrive: an idle flush between them would close
// a one-sided window, which INNER and LEFT rightly discard.)
class ExtremeEventTimesTest : public EndToEndTest,
                              public ::testing::WithParamInterface<v1::JoinType> {};

// A snapshot of `users` keys, each key's User and UserExtData row side by side, with event
// times (source.ts_ms) counting up from `start_ts_ms`. (The seed generator derives dateCreated
// from its start time, which would put it past year 9999.)
std::vector<SeedRecord> Snapshot(int users, int64_t start_ts_ms) {
  std::vector<SeedRecord> records;
  int64_t ts = start_ts_ms;
  for (int64_t user = 1; user <= users; ++user) {
    for (int source = 0; source < 2; ++source) {
      SeedRecord record;
      record.source = source;
      record.op = 'r';
      record.user_id = user;
      record.partition = static_cast<int32_t>(user % 8);
      record.ts_ms = ts;
      std::string after;
      if (source == 0) {
        record.key = absl::StrCat(R"({"id":)", user, "}");
        record.fields["id"] = absl::StrCat(user);
        record.fields["simpleName"] = absl::StrCat("name-", user);
        record.fields["dateCreated"] = "2021-06-21 00:00:00.000000";
        after = absl::StrCat(R"({"id":)", user, R"(,"simpleName":"name-)", user,
                             R"(","dateCreated":1624233600000})");
      } else {
        record.key = absl::StrCat(R"({"userId":)", user, "}");
        record.fields["userId"] = absl::StrCat(user);
        record.fields["originalName"] = absl::StrCat("orig-", user);
        after = absl::StrCat(R"({"userId":)", user, R"(,"originalName":"orig-)", user, R"("})");
      }
      record.value = absl::StrCat(
          R"({"before":null,"after":)", after, R"(,"source":{"connector":"mysql","ts_ms":)", ts,
          R"(,"db":"azar","table":")", source == 0 ? "User" : "UserExtData",
          R"("},"op":"r","ts_ms":)", ts, "}");
      records.push_back(std::move(record));
      ++ts;
    }
  }
  return records;
}

TEST_P(ExtremeEventTimesTest, NothingIsDroppedAsLate) {
  const std::vector<SeedRecord> records =
      Snapshot(700, std::numeric_limits<int64_t>::max() - 10'000'000);
  Produce(records, 0, records.size());
  StartDaemon({{"mode: DB_UPSERT",
                absl::StrCat("mode: WINDOWED window { join_type: ",
                             v1::JoinType_Name(GetParam()),
                             " window_ms: 31536000000 grace_ms: 31536000000 idle_flush_ms: 5000 "
                             "state_dir: \"",
                             dir_, "/state\" }")}});
  ExpectConverges(records, absl::Seconds(150));
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
  EXPECT_EQ(LastLoggedCounter("late_drops"), 0);
  EXPECT_EQ(LastLoggedCounter("dead_lettered"), 0);
}

INSTANTIATE_TEST_SUITE_P(LeftAndInner, ExtremeEventTimesTest,
                         ::testing::Values(v1::LEFT, v1::INNER),
                         [](const ::testing::TestParamInfo<v1::JoinType>& info) {
                           return v1::JoinType_Name(info.param);
                         });

}  // namespace
}  // namespace cdcjoin::testing
