// cdcjoinctl against a running cdcjoind, end to end: the standalone mock Kafka cluster, the
// private MariaDB (CDCJOIN_MYSQL_*), cdcjoind as a process with its admin server on a free port
// and a bearer token, the seed workload, and cdcjoinctl as a process whose output and exit codes
// are checked the way a script would use them.

#include <grpcpp/grpcpp.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "proto/cdcjoin/v1/admin.grpc.pb.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/seed_workload.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_kafka.h"

namespace cdcjoin::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "e2e-admin-token-7f3a";

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CdcjoinctlEndToEndTest : public EndToEndTest {
 protected:
  // cdcjoind with a bearer token for mutating calls; address_ is its admin server.
  void Start() {
    token_file_ = dir_ + "/admin.token";
    std::ofstream(token_file_) << kToken << "\n";
    std::ofstream(dir_ + "/wrong.token") << "not-the-token\n";
    const std::string admin = "admin { listen_address: \"127.0.0.1:0\"";
    StartDaemon({{admin, absl::StrCat(admin, " token_file: \"", token_file_, "\"")}});
    absl::StatusOr<std::string> address = WaitForAddress("admin");
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
  }

  // Runs cdcjoinctl --address=<daemon> ARGS with stdout and stderr captured (stdout is a file,
  // not a terminal, as in a script).
  CtlResult Ctl(const std::vector<std::string>& args) {
    static int calls = 0;
    const std::string out = absl::StrCat(dir_, "/ctl_", ++calls, ".out");
    const std::string err = absl::StrCat(dir_, "/ctl_", calls, ".err");
    std::string command = absl::StrCat(RunfilePath("service/cdcjoinctl"), " --address=", address_);
    for (const std::string& arg : args) absl::StrAppend(&command, " '", arg, "'");
    absl::StrAppend(&command, " >", out, " 2>", err, " </dev/null");
    const int status = std::system(command.c_str());
    CtlResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = ReadFile(out);
    result.err = ReadFile(err);
    return result;
  }

  v1::Status StatusJson() {
    CtlResult result = Ctl({"status", "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    v1::Status status;
    const auto parsed = google::protobuf::util::JsonStringToMessage(result.out, &status);
    EXPECT_TRUE(parsed.ok()) << parsed.ToString() << "\n" << result.out;
    return status;
  }

  std::string token_file_;
  std::string address_;
};

TEST_F(CdcjoinctlEndToEndTest, StatusWatchSwitchPauseResumeAuthAndExitCodes) {
  SeedWorkloadOptions options;
  options.records = 12000;
  options.users = 2000;
  options.poison_every = 500;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  std::map<char, int64_t> by_op;
  for (const SeedRecord& record : records) ++by_op[record.op];
  Produce(records, 0, records.size() / 2);
  Start();
  Produce(records, records.size() / 2, records.size());

  // A script waits for the daemon to catch up: watch --until_caught_up exits 0.
  const absl::Time watch_begin = absl::Now();
  CtlResult watch =
      Ctl({"watch", "--interval_ms=200", "--until_caught_up", "--timeout_ms=180000"});
  ASSERT_EQ(watch.exit_code, 0) << watch.err << "\n" << ReadFile(DaemonLog());
  EXPECT_THAT(watch.out, HasSubstr("caught up: lag 0 on 16 partitions"));
  // Not a terminal: plain lines, no ANSI escape codes.
  EXPECT_EQ(watch.out.find('\x1b'), std::string::npos);
  EXPECT_THAT(watch.out, HasSubstr("mode=DB_UPSERT"));
  std::cout << "watch --until_caught_up took " << absl::Now() - watch_begin << "\n";

  // status --json against what was produced.
  v1::Status status = StatusJson();
  EXPECT_EQ(status.mode(), v1::DB_UPSERT);
  EXPECT_EQ(status.state(), v1::RUNNING);
  EXPECT_TRUE(status.assigned());
  ASSERT_EQ(status.partitions_size(), 2 * kPartitions);
  auto highs = HighWatermarks(bootstrap_, Topics(), kPartitions);
  ASSERT_TRUE(highs.ok()) << highs.status();
  int64_t produced = 0;
  for (const v1::PartitionStatus& p : status.partitions()) {
    const int64_t high = highs->at({p.topic(), p.partition()});
    produced += high;
    EXPECT_EQ(p.high_watermark(), high) << p.topic() << "[" << p.partition() << "]";
    EXPECT_EQ(p.committed_offset(), high) << p.topic() << "[" << p.partition() << "]";
    EXPECT_EQ(p.consumed_offset(), high);
    EXPECT_EQ(p.lag(), 0);
    EXPECT_FALSE(p.data_loss());
    EXPECT_EQ(p.source(), p.topic() == Topics()[0] ? "user" : "user_ext");
  }
  EXPECT_EQ(produced, static_cast<int64_t>(records.size()));
  const v1::Counters& counters = status.counters();
  EXPECT_EQ(counters.events_total(), static_cast<int64_t>(records.size()));
  // Upserts whose skip_event_if_null column is null are counted apart from the ops.
  EXPECT_GT(counters.skipped_nulls(), 0);
  EXPECT_EQ(counters.events_read() + counters.events_create() + counters.events_update() +
                counters.skipped_nulls(),
            by_op['r'] + by_op['c'] + by_op['u'])
      << status.counters().DebugString();
  EXPECT_LE(counters.events_read(), by_op['r']);
  EXPECT_LE(counters.events_create(), by_op['c']);
  EXPECT_LE(counters.events_update(), by_op['u']);
  EXPECT_EQ(counters.events_delete(), by_op['d']);
  EXPECT_EQ(counters.tombstones(), by_op['T']);
  EXPECT_EQ(counters.dead_lettered(), by_op['P']);
  EXPECT_GT(by_op['P'], 0);
  EXPECT_GT(counters.rows_written(), 0);
  EXPECT_GT(counters.batches(), 0);
  EXPECT_GT(counters.offset_commits(), 0);
  EXPECT_EQ(status.sink_latency().count(), counters.batches());
  EXPECT_GT(status.sink_latency().p99_ms(), 0);
  EXPECT_EQ(status.lanes_size(), config_.sink().lanes());
  EXPECT_FALSE(status.version().empty());
  EXPECT_GT(status.uptime_seconds(), 0);

  // The readable table.
  CtlResult table = Ctl({"status"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("mode DB_UPSERT   state RUNNING   assigned yes   total lag 0"));
  EXPECT_THAT(table.out, HasSubstr("cdc.azar.UserExtData"));
  EXPECT_THAT(table.out, HasSubstr("dead-lettered " + std::to_string(by_op['P'])));
  EXPECT_THAT(table.out, HasSubstr("LANE"));

  // Mutating calls need the token; already in DB_UPSERT, the switch is a no-op that says so.
  CtlResult denied = Ctl({"switch-mode", "db"});
  EXPECT_EQ(denied.exit_code, 4) << denied.out << denied.err;
  EXPECT_THAT(denied.err, HasSubstr("UNAUTHENTICATED"));
  CtlResult same = Ctl({"switch-mode", "db", "--token_file=" + token_file_});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_THAT(same.out, HasSubstr("already in DB_UPSERT mode: not changed"));
  EXPECT_EQ(Ctl({"switch-mode", "sideways", "--token_file=" + token_file_}).exit_code, 2);

  // Pause / resume, visible in the status; a wrong token is refused.
  CtlResult wrong = Ctl({"pause", "--token_file=" + dir_ + "/wrong.token"});
  EXPECT_EQ(wrong.exit_code, 4) << wrong.out << wrong.err;
  EXPECT_EQ(Ctl({"pause"}).exit_code, 4);
  EXPECT_EQ(StatusJson().state(), v1::RUNNING);
  CtlResult paused = Ctl({"pause", "--token_file=" + token_file_});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_THAT(paused.out, HasSubstr("paused (state PAUSED)"));
  EXPECT_EQ(StatusJson().state(), v1::PAUSED);
  // Records produced while paused are not consumed.
  const int64_t consumed_before = StatusJson().counters().events_total();
  SeedWorkloadOptions more_options = options;
  more_options.records = 2000;
  more_options.seed = 7;
  more_options.poison_every = 0;
  const std::vector<SeedRecord> more = GenerateSeedWorkload(more_options);
  Produce(more, 0, more.size());
  // Paused partitions are not fetched; the lag must still show the backlog. The daemon learns
  // the new high watermarks on its own schedule (it once took over a second, and a
  // sleep-then-assert here failed on a fresh clone): wait for the backlog with a deadline.
  v1::Status while_paused = StatusJson();
  const absl::Time lag_deadline = absl::Now() + absl::Seconds(30);
  while (while_paused.total_lag() < static_cast<int64_t>(more.size()) &&
         absl::Now() < lag_deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    while_paused = StatusJson();
  }
  std::cout << "lag reported while paused after producing " << more.size()
            << " records: " << while_paused.total_lag() << "\n";
  EXPECT_GE(while_paused.total_lag(), static_cast<int64_t>(more.size()))
      << "last status seen: " << while_paused.DebugString();
  // All that time, nothing was consumed.
  EXPECT_EQ(while_paused.counters().events_total(), consumed_before);
  EXPECT_EQ(while_paused.state(), v1::PAUSED);
  CtlResult resumed = Ctl({"resume", "--token_file=" + token_file_});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.out, HasSubstr("resumed (state RUNNING)"));
  const int64_t all = static_cast<int64_t>(records.size() + more.size());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (StatusJson().counters().events_total() < all && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(StatusJson().counters().events_total(), all);
  CtlResult caught_up = Ctl({"watch", "--interval_ms=200", "--until_caught_up", "--json"});
  ASSERT_EQ(caught_up.exit_code, 0) << caught_up.err;
  // --json: one Status object per line.
  v1::Status last;
  const std::string last_line =
      caught_up.out.substr(caught_up.out.rfind('\n', caught_up.out.size() - 2) + 1);
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(last_line, &last).ok()) << last_line;
  EXPECT_EQ(last.total_lag(), 0);

  // The configuration, redacted, as JSON that parses back into the Config message.
  CtlResult config = Ctl({"config", "--json"});
  ASSERT_EQ(config.exit_code, 0) << config.err;
  v1::Config running;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(config.out, &running).ok());
  EXPECT_EQ(running.kafka().group_id(), config_.kafka().group_id());
  EXPECT_EQ(running.admin().token_file(), token_file_);
  EXPECT_EQ(config.out.find(kToken), std::string::npos) << "the token itself never leaves";
  EXPECT_EQ(ReadFile(DaemonLog()).find(kToken), std::string::npos) << "nor is it logged";

  // GetStatus latency over loopback, from a client stub (what a monitoring agent would see).
  auto stub = v1::Admin::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  std::vector<double> micros;
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext context;
    v1::Status reply;
    const absl::Time begin = absl::Now();
    ASSERT_TRUE(stub->GetStatus(&context, v1::GetStatusRequest(), &reply).ok());
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - begin));
  }
  std::sort(micros.begin(), micros.end());
  std::cout << "GetStatus latency over loopback (300 calls, 16 partitions): p50 "
            << micros[micros.size() / 2] << " us, p99 " << micros[micros.size() * 99 / 100]
            << " us, max " << micros.back() << " us\n";
  RecordProperty("getstatus_p50_us", std::to_string(micros[micros.size() / 2]));

  // The daemon goes away: scripts see exit code 3.
  ASSERT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
  CtlResult down = Ctl({"status", "--timeout_ms=3000"});
  EXPECT_EQ(down.exit_code, 3) << down.out << down.err;
  EXPECT_THAT(down.err, HasSubstr("UNAVAILABLE"));
  EXPECT_EQ(Ctl({"watch", "--until_caught_up", "--timeout_ms=3000"}).exit_code, 3);
}

TEST(CdcjoinctlUsageTest, HelpAndUsageErrors) {
  const std::string ctl = RunfilePath("service/cdcjoinctl");
  const std::string out = absl::StrCat(std::getenv("TEST_TMPDIR"), "/help.out");
  auto run = [&](const std::string& args) {
    const int status = std::system(absl::StrCat(ctl, " ", args, " >", out, " 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run("--help"), 0);
  const std::string help = ReadFile(out);
  EXPECT_THAT(help, HasSubstr("Exit codes:"));
  EXPECT_THAT(help, HasSubstr("3  daemon unreachable"));
  EXPECT_THAT(help, HasSubstr("switch-mode db|windowed"));
  EXPECT_EQ(run(""), 2);
  EXPECT_EQ(run("frobnicate"), 2);
  EXPECT_EQ(run("--no_such_flag status"), 2);
  EXPECT_EQ(run("watch --interval_ms=5"), 2);
  EXPECT_EQ(run("status extra"), 2);
  EXPECT_EQ(run("status --token_file=/nonexistent/token"), 2);
  // Nothing listens on port 1.
  EXPECT_EQ(run("--address=127.0.0.1:1 status"), 3);
  EXPECT_EQ(run("--address=127.0.0.1:1 --token_file=/dev/null pause"), 2) << "empty token file";
}

}  // namespace
}  // namespace cdcjoin::testing
