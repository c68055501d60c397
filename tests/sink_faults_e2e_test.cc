// Sink faults end to end (issue 12), against the mock cluster in its own process and a real
// MariaDB: a row the database refuses among hundreds of good ones, an error nobody classified
// that only the operator can take out, a mapped column that disappears, a frozen database, and a
// dead-letter topic that refuses writes. Each test asserts the final table against the reference
// model of every record that was not dead-lettered, what was committed while the fault lasted,
// and what the dead-letter topic holds.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "proto/cdcjoin/v1/admin.pb.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/test_kafka.h"

namespace cdcjoin::testing {
namespace {

using ::testing::HasSubstr;

// Kafka's Produce API and an error that is not retried.
constexpr int kProduce = 0;
constexpr int kTopicAuthorizationFailed = 29;

// Where a record landed: topic, partition, offset.
using Position = std::tuple<std::string, int32_t, int64_t>;

// The position of each record, produced in order onto empty topics.
std::vector<Position> RecordPositions(const std::vector<SeedRecord>& records,
                                      const std::vector<std::string>& topics) {
  std::map<std::pair<std::string, int32_t>, int64_t> next;
  std::vector<Position> positions;
  for (const SeedRecord& record : records) {
    const std::string& topic = topics[record.source];
    positions.emplace_back(topic, record.partition, next[{topic, record.partition}]++);
  }
  return positions;
}

// The last User upsert of a user with a plain name (no JSON escapes in it), such that the user
// has no later User event: no later command of that key can take its place.
size_t LastPlainUserUpsert(const std::vector<SeedRecord>& records) {
  std::set<int64_t> later_user_events;
  for (size_t i = records.size(); i-- > 0;) {
    const SeedRecord& record = records[i];
    if (record.source != 0) continue;
    const bool upsert = record.op == 'r' || record.op == 'c' || record.op == 'u';
    const std::optional<std::string>& name = record.fields.at("simpleName");
    if (upsert && later_user_events.count(record.user_id) == 0 && name.has_value() &&
        (absl::StartsWith(*name, "neo-") || absl::StartsWith(*name, "trinity-"))) {
      return i;
    }
    later_user_events.insert(record.user_id);
  }
  return records.size();
}

// Gives the record's User row another name.
void Rename(SeedRecord* record, const std::string& name) {
  const std::string old = *record->fields.at("simpleName");
  *record->value = absl::StrReplaceAll(*record->value, {{absl::StrCat("\"", old, "\""),
                                                         absl::StrCat("\"", name, "\"")}});
  record->fields["simpleName"] = name;
}

// The source positions the dead letters name.
std::set<Position> DeadLetteredPositions(const std::vector<ConsumedRecord>& letters) {
  std::set<Position> positions;
  for (const ConsumedRecord& letter : letters) {
    int32_t partition = -1;
    int64_t offset = -1;
    EXPECT_TRUE(absl::SimpleAtoi(letter.headers.at("cdcjoin.source.partition"), &partition));
    EXPECT_TRUE(absl::SimpleAtoi(letter.headers.at("cdcjoin.source.offset"), &offset));
    positions.emplace(letter.headers.at("cdcjoin.source.topic"), partition, offset);
  }
  return positions;
}

std::vector<SeedRecord> Workload(uint64_t seed, int records = 700, int users = 300) {
  SeedWorkloadOptions options;
  options.records = records;
  options.users = users;
  options.seed = seed;
  return GenerateSeedWorkload(options);
}

class SinkFaultsTest : public EndToEndTest {
 protected:
  std::vector<Position> Positions(const std::vector<SeedRecord>& records) const {
    return RecordPositions(records, Topics());
  }

  // What the table must hold: every record but those dead-lettered.
  std::vector<SeedRecord> Without(const std::vector<SeedRecord>& records,
                                  const std::set<Position>& dead_lettered) const {
    const std::vector<Position> positions = Positions(records);
    std::vector<SeedRecord> kept;
    for (size_t i = 0; i < records.size(); ++i) {
      if (dead_lettered.count(positions[i]) == 0) kept.push_back(records[i]);
    }
    return kept;
  }

  // cdcjoinctl ARGS against the running daemon: exit code and stdout.
  std::pair<int, std::string> Ctl(const std::vector<std::string>& args) {
    if (admin_.empty()) {
      absl::StatusOr<std::string> address = WaitForAddress("admin");
      EXPECT_TRUE(address.ok()) << address.status();
      if (address.ok()) admin_ = *address;
    }
    const std::string out = absl::StrCat(dir_, "/ctl_", ++ctl_calls_, ".out");
    std::string command = absl::StrCat(RunfilePath("service/cdcjoinctl"), " --address=", admin_);
    for (const std::string& arg : args) absl::StrAppend(&command, " '", arg, "'");
    absl::StrAppend(&command, " >", out, " 2>&1 </dev/null");
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out)};
  }

  v1::Status DaemonStatus() {
    auto [code, out] = Ctl({"status", "--json"});
    v1::Status status;
    // An unparsable answer stays an empty status, which no wait condition accepts.
    if (code == 0) (void)google::protobuf::util::JsonStringToMessage(out, &status);
    return status;
  }

  // Waits up to `timeout` until `holds` is true of the daemon's status; the last status seen.
  template <typename Predicate>
  v1::Status WaitForStatus(Predicate holds, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::Status status = DaemonStatus();
    while (!holds(status) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));
      status = DaemonStatus();
    }
    return status;
  }

  // Makes the target refuse (MariaDB error 4025) a row whose maskingName is REJECT-ME.
  void RefuseRejectMe() {
    ASSERT_TRUE(ExecuteSql(mysql_, database_,
                           {"ALTER TABLE Nickname ADD CONSTRAINT not_rejected "
                            "CHECK (maskingName IS NULL OR maskingName <> 'REJECT-ME')"})
                    .ok());
  }

  // The committed offset of `position`'s partition is not past it: its event is not done.
  void ExpectNotCommittedPast(const Position& position) {
    absl::StatusOr<PartitionOffsets> committed = Committed();
    ASSERT_TRUE(committed.ok()) << committed.status();
    const auto partition = std::make_pair(std::get<0>(position), std::get<1>(position));
    const int64_t at = committed->count(partition) ? committed->at(partition) : -1;
    EXPECT_LE(at, std::get<2>(position)) << "committed past the held event";
  }

  std::vector<ConsumedRecord> DeadLetters() {
    auto letters = ReadTopic(bootstrap_, kDeadLetterTopic, absl::Seconds(10));
    EXPECT_TRUE(letters.ok()) << letters.status();
    return letters.ok() ? *letters : std::vector<ConsumedRecord>{};
  }

  std::string admin_;
  int ctl_calls_ = 0;
};

// One User row among ~700 records breaks a CHECK constraint of the target (MariaDB error
// 4025), a rule no decoder could know. The lane finds that row, dead-letters its events with
// the SQL code, applies every other row and goes on: nothing holds, everything is committed.
// In WINDOWED the row comes out of a window; the window state lets go of it once dead-lettered.
class RowRejectedTest : public SinkFaultsTest,
                        public ::testing::WithParamInterface<v1::JoinMode> {};

TEST_P(RowRejectedTest, ARowTheDatabaseRefusesIsDeadLetteredAndTheRestApplied) {
  std::vector<SeedRecord> records = Workload(21);
  const size_t bad = LastPlainUserUpsert(records);
  ASSERT_LT(bad, records.size());
  Rename(&records[bad], "REJECT-ME");
  RefuseRejectMe();
  Produce(records, 0, records.size());
  if (GetParam() == v1::WINDOWED) {
    StartDaemon({WindowedConfig(/*window_ms=*/500)});
  } else {
    StartDaemon();
  }
  WaitUntilAllCommitted(absl::Seconds(120));

  const std::vector<ConsumedRecord> letters = DeadLetters();
  ASSERT_FALSE(letters.empty()) << ReadFile(DaemonLog());
  // Only the refused row's events: a row carries the events of one key.
  EXPECT_LE(letters.size(), 3u);
  for (const ConsumedRecord& letter : letters) {
    EXPECT_EQ(letter.headers.at("cdcjoin.reason"), "row-rejected");
    EXPECT_EQ(letter.headers.at("cdcjoin.sql.code"), "4025");
    EXPECT_THAT(letter.headers.at("cdcjoin.error"), HasSubstr("4025"));
    ASSERT_TRUE(letter.value.has_value());
    EXPECT_THAT(*letter.value, HasSubstr("\"maskingName\":\"REJECT-ME\""));
  }
  const std::set<Position> dead = DeadLetteredPositions(letters);
  EXPECT_EQ(dead.count(Positions(records)[bad]), 1u);
  ExpectTableIsModelOf(Without(records, dead), 200);
  EXPECT_EQ(DaemonStatus().state(), v1::RUNNING);
  EXPECT_EQ(StopDaemon(), 0);
}

INSTANTIATE_TEST_SUITE_P(BothModes, RowRejectedTest,
                         ::testing::Values(v1::DB_UPSERT, v1::WINDOWED),
                         [](const ::testing::TestParamInfo<v1::JoinMode>& info) {
                           return v1::JoinMode_Name(info.param);
                         });

// A trigger SIGNALs for one row (MariaDB error 1644): no classifier knows whether that is the
// row's fault. The lane holds on that row, DEGRADED, names its event in status and commits
// nothing past it, without a dead letter. `cdcjoinctl dead-letter` takes it out; the rest is
// applied.
TEST_F(SinkFaultsTest, AnErrorNobodyClassifiedHoldsUntilTheOperatorDeadLettersTheRow) {
  std::vector<SeedRecord> records = Workload(22);
  const size_t bad = LastPlainUserUpsert(records);
  ASSERT_LT(bad, records.size());
  Rename(&records[bad], "HOLD-ME");
  for (const char* when : {"INSERT", "UPDATE"}) {
    ASSERT_TRUE(ExecuteSql(mysql_, database_,
                           {absl::StrCat("CREATE TRIGGER hold_me_", when, " BEFORE ", when,
                                         " ON Nickname FOR EACH ROW BEGIN "
                                         "IF NEW.maskingName = 'HOLD-ME' THEN SIGNAL SQLSTATE "
                                         "'45000' SET MESSAGE_TEXT = 'held by a trigger'; "
                                         "END IF; END")})
                    .ok());
  }
  Produce(records, 0, records.size());
  StartDaemon();
  const v1::Status held = WaitForStatus(
      [](const v1::Status& status) {
        for (const v1::LaneStatus& lane : status.lanes()) {
          if (!lane.held_on().empty()) return true;
        }
        return false;
      },
      absl::Seconds(60));
  std::string held_on;
  for (const v1::LaneStatus& lane : held.lanes()) {
    if (!lane.held_on().empty()) {
      held_on = lane.held_on();
      EXPECT_TRUE(lane.holding());
      EXPECT_THAT(lane.last_error(), HasSubstr("1644"));
    }
  }
  ASSERT_FALSE(held_on.empty()) << held.DebugString() << ReadFile(DaemonLog());
  EXPECT_EQ(held.state(), v1::DEGRADED);
  ExpectNotCommittedPast(Positions(records)[bad]);
  EXPECT_TRUE(DeadLetters().empty()) << "an unclassified error is no dead letter by itself";

  // topic[partition]@offset
  const std::vector<std::string> parts = absl::StrSplit(held_on, absl::ByAnyChar("[]@"));
  ASSERT_EQ(parts.size(), 4u) << held_on;
  auto [missing, missing_out] =
      Ctl({"dead-letter", "--topic=" + parts[0], "--partition=" + parts[1], "--offset=999999"});
  EXPECT_EQ(missing, 5) << missing_out;
  EXPECT_THAT(missing_out, HasSubstr("NOT_FOUND"));
  auto [code, out] = Ctl({"dead-letter", "--topic=" + parts[0], "--partition=" + parts[1],
                          "--offset=" + parts[3], "--note=trigger refuses HOLD-ME"});
  ASSERT_EQ(code, 0) << out;
  WaitUntilAllCommitted(absl::Seconds(120));

  const std::vector<ConsumedRecord> letters = DeadLetters();
  ASSERT_FALSE(letters.empty());
  EXPECT_LE(letters.size(), 3u);
  for (const ConsumedRecord& letter : letters) {
    EXPECT_EQ(letter.headers.at("cdcjoin.reason"), "operator");
    EXPECT_THAT(letter.headers.at("cdcjoin.error"), HasSubstr("trigger refuses HOLD-ME"));
  }
  const std::set<Position> dead = DeadLetteredPositions(letters);
  EXPECT_EQ(dead.count(Positions(records)[bad]), 1u);
  ExpectTableIsModelOf(Without(records, dead), 200);
  EXPECT_THAT(ReadFile(DaemonLog()), HasSubstr("asks to dead-letter"));
  EXPECT_EQ(WaitForStatus([](const v1::Status& s) { return s.state() == v1::RUNNING; },
                          absl::Seconds(30))
                .state(),
            v1::RUNNING);
  EXPECT_EQ(StopDaemon(), 0);
}

// A mapped column disappears under a running daemon (1054): that concerns every row, so the
// lane holds at once, DEGRADED with the error, and dead-letters nothing. When the column is
// back, everything is applied.
TEST_F(SinkFaultsTest, AMissingColumnHoldsWithoutDeadLettersUntilItIsBack) {
  const std::vector<SeedRecord> records = Workload(23, 4000, 1300);
  const size_t half = records.size() / 2;
  Produce(records, 0, half);
  StartDaemon();
  ExpectConverges(std::vector<SeedRecord>(records.begin(), records.begin() + half),
                  absl::Seconds(120));

  ASSERT_TRUE(ExecuteSql(mysql_, database_,
                         {"ALTER TABLE Nickname RENAME COLUMN currentNickname TO parked"})
                  .ok());
  Produce(records, half, records.size());
  const v1::Status held = WaitForStatus(
      [](const v1::Status& status) {
        for (const v1::LaneStatus& lane : status.lanes()) {
          if (lane.holding() && absl::StrContains(lane.last_error(), "1054")) return true;
        }
        return false;
      },
      absl::Seconds(60));
  EXPECT_EQ(held.state(), v1::DEGRADED) << held.DebugString();
  EXPECT_TRUE(DeadLetters().empty());

  ASSERT_TRUE(ExecuteSql(mysql_, database_,
                         {"ALTER TABLE Nickname RENAME COLUMN parked TO currentNickname"})
                  .ok());
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_TRUE(DeadLetters().empty());
  EXPECT_EQ(StopDaemon(), 0);
}

// The dead-letter topic refuses writes while a row is refused by the database: consumption
// holds (DEGRADED) and nothing is committed past the row, so nothing is lost. Once the topic
// takes writes again, a restart replays the row into it.
TEST_F(SinkFaultsTest, ADeadLetterTopicThatRefusesWritesHoldsAndCommitsNothingPast) {
  std::vector<SeedRecord> records = Workload(24);
  const size_t bad = LastPlainUserUpsert(records);
  ASSERT_LT(bad, records.size());
  Rename(&records[bad], "REJECT-ME");
  RefuseRejectMe();
  Produce(records, 0, records.size());
  ASSERT_TRUE(KafkaFault(absl::StrCat("fail ", kProduce, " 100000 ", kTopicAuthorizationFailed)));
  StartDaemon();
  ASSERT_TRUE(WaitForLog("nothing is committed past this point", absl::Seconds(60)))
      << ReadFile(DaemonLog());
  EXPECT_EQ(WaitForStatus([](const v1::Status& s) { return s.state() == v1::DEGRADED; },
                          absl::Seconds(30))
                .state(),
            v1::DEGRADED);
  ExpectNotCommittedPast(Positions(records)[bad]);
  EXPECT_TRUE(DeadLetters().empty());

  ASSERT_TRUE(KafkaFault(absl::StrCat("clear ", kProduce)));
  EXPECT_EQ(StopDaemon(), 0);
  StartDaemon();
  WaitUntilAllCommitted(absl::Seconds(120));
  const std::vector<ConsumedRecord> letters = DeadLetters();
  ASSERT_FALSE(letters.empty()) << ReadFile(DaemonLog());
  const std::set<Position> dead = DeadLetteredPositions(letters);
  EXPECT_EQ(dead.count(Positions(records)[bad]), 1u);
  ExpectTableIsModelOf(Without(records, dead), 200);
  EXPECT_EQ(StopDaemon(), 0);
}

// A MariaDB of its own, so that freezing it (SIGSTOP) disturbs no other test.
class FrozenDatabaseTest : public SinkFaultsTest {
 protected:
  void SetUp() override {
    // Under /tmp: the server's socket path must stay under 108 bytes, which TEST_TMPDIR is not.
    char dir[] = "/tmp/cdcjoin-frozen.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    mysql_dir_ = dir;
    const std::string exports = mysql_dir_ + ".env";
    const std::string start = absl::StrCat(RunfilePath("scripts/mariadb.sh"), " start ",
                                           mysql_dir_, " >", exports, " 2>", mysql_dir_, ".log");
    ASSERT_EQ(std::system(start.c_str()), 0) << ReadFile(mysql_dir_ + ".log");
    // export NAME=VALUE NAME=VALUE ...
    for (absl::string_view word :
         absl::StrSplit(ReadFile(exports), absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      const std::vector<std::string> pair = absl::StrSplit(word, absl::MaxSplits('=', 1));
      if (pair.size() != 2) continue;
      if (const char* old = std::getenv(pair[0].c_str())) saved_env_.emplace_back(pair[0], old);
      setenv(pair[0].c_str(), pair[1].c_str(), 1);
    }
    ASSERT_TRUE(absl::SimpleAtoi(ReadFile(mysql_dir_ + "/mysqld.pid"), &mysql_pid_));
    SinkFaultsTest::SetUp();
  }

  void TearDown() override {
    if (mysql_pid_ > 0) kill(mysql_pid_, SIGCONT);
    SinkFaultsTest::TearDown();
    for (const auto& [name, value] : saved_env_) setenv(name.c_str(), value.c_str(), 1);
    if (mysql_dir_.empty()) return;
    std::system(absl::StrCat(RunfilePath("scripts/mariadb.sh"), " stop ", mysql_dir_,
                             " >/dev/null 2>&1; rm -rf ", mysql_dir_, " ", mysql_dir_, ".env ",
                             mysql_dir_, ".log")
                    .c_str());
  }

  std::string mysql_dir_;
  pid_t mysql_pid_ = 0;
  std::vector<std::pair<std::string, std::string>> saved_env_;  // The shared MariaDB's.
};

// The database freezes (SIGSTOP) with work queued: no error comes back, yet within
// stall_after_ms the lane shows "sink stalled", the state is DEGRADED and nothing more is
// committed; SIGTERM still stops the daemon within its shutdown deadline. Thawed, a restart
// applies everything.
TEST_F(FrozenDatabaseTest, AFrozenDatabaseIsAStalledSinkAndSigtermStillStops) {
  const std::vector<SeedRecord> records = Workload(25, 4000, 1300);
  const size_t half = records.size() / 2;
  const std::vector<std::pair<std::string, std::string>> config = {
      {"database: \"", "connect_timeout_ms: 2000 read_write_timeout_ms: 3000 database: \""},
      {"linger_ms: 5", "linger_ms: 5 stall_after_ms: 1500"}};
  const std::vector<std::string> flags = {"--shutdown_timeout_ms=3000"};
  Produce(records, 0, half);
  StartDaemon(config, flags);
  ExpectConverges(std::vector<SeedRecord>(records.begin(), records.begin() + half),
                  absl::Seconds(120));

  ASSERT_EQ(kill(mysql_pid_, SIGSTOP), 0);
  Produce(records, half, records.size());
  const v1::Status stalled = WaitForStatus(
      [](const v1::Status& status) {
        for (const v1::LaneStatus& lane : status.lanes()) {
          if (lane.stalled_seconds() > 0 &&
              absl::StrContains(lane.last_error(), "sink stalled")) {
            return status.state() == v1::DEGRADED;
          }
        }
        return false;
      },
      absl::Seconds(30));
  ASSERT_EQ(stalled.state(), v1::DEGRADED) << stalled.DebugString() << ReadFile(DaemonLog());

  const absl::Time sigterm = absl::Now();
  StopDaemon(absl::Seconds(30));
  const absl::Duration took = absl::Now() - sigterm;
  // --shutdown_timeout_ms plus the 5 s the watchdog adds, and slack for a loaded machine.
  EXPECT_LT(took, absl::Seconds(15)) << ReadFile(DaemonLog());
  // Nothing could be written, so no commit passed a record of the second half that needs a
  // write (records that need none, a tombstone, an ignored delete, are done without the sink).
  const absl::StatusOr<PartitionOffsets> committed = Committed();
  ASSERT_TRUE(committed.ok());
  const std::vector<Position> positions = Positions(records);
  std::map<std::pair<std::string, int32_t>, int64_t> first_write;
  for (size_t i = half; i < records.size(); ++i) {
    const SeedRecord& record = records[i];
    const bool upsert = record.op == 'r' || record.op == 'c' || record.op == 'u';
    const bool writes = (upsert && (record.source == 1 || record.fields.at("simpleName"))) ||
                        (record.op == 'd' && record.source == 1);  // user_ext clears.
    const auto partition = std::make_pair(std::get<0>(positions[i]), std::get<1>(positions[i]));
    if (writes && first_write.count(partition) == 0) {
      first_write[partition] = std::get<2>(positions[i]);
    }
  }
  ASSERT_FALSE(first_write.empty());
  for (const auto& [partition, offset] : first_write) {
    const int64_t at = committed->count(partition) ? committed->at(partition) : -1;
    EXPECT_LE(at, offset) << partition.first << "[" << partition.second << "]";
  }

  ASSERT_EQ(kill(mysql_pid_, SIGCONT), 0);
  StartDaemon(config, flags);
  ExpectConverges(records, absl::Seconds(120));
  EXPECT_EQ(StopDaemon(), 0);
}

}  // namespace
}  // namespace cdcjoin::testing
