// The Prometheus endpoint of a running cdcjoind, end to end against the real parts (the
// standalone mock Kafka cluster, the private MariaDB): scraped over HTTP before, while and after
// events flow; the counters move, never go back, and end where Kafka and the table say they must;
// the per-partition offsets agree with the group's committed offsets; a mode switch over the admin
// API (cdcjoinctl) shows in the mode gauge.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/support/e2e_harness.h"
#include "tests/support/seed_workload.h"
#include "tests/support/subprocess.h"

namespace cdcjoin::testing {
namespace {

// One scrape: "name{labels}" -> value.
using Scrape = std::map<std::string, double>;

// GET /metrics over a plain socket; the body parsed, or nullopt when unreachable.
std::optional<Scrape> ScrapeMetrics(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return std::nullopt;
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in socket_address{};
  socket_address.sin_family = AF_INET;
  socket_address.sin_port = htons(port);
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &socket_address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&socket_address), sizeof(socket_address)) != 0) {
    close(fd);
    return std::nullopt;
  }
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string response;
  char buffer[16384];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return std::nullopt;
  Scrape scrape;
  for (absl::string_view line : absl::StrSplit(response.substr(body + 4), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      continue;
    }
    scrape[std::string(line.substr(0, space))] = value;
  }
  return scrape;
}

// Sum of every series of `name` (any labels).
double Sum(const Scrape& scrape, const std::string& name) {
  double total = 0;
  for (const auto& [series, value] : scrape) {
    if (series == name || series.rfind(name + "{", 0) == 0) total += value;
  }
  return total;
}

size_t Series(const Scrape& scrape, const std::string& name) {
  size_t count = 0;
  for (const auto& [series, value] : scrape) count += series.rfind(name + "{", 0) == 0;
  return count;
}

using MetricsTest = EndToEndTest;

TEST_F(MetricsTest, ValuesMoveAsEventsFlowAndAgreeWithKafka) {
  // Windowed state for the mode switch at the end; the metrics endpoint takes a free port.
  StartDaemon({{"mode: DB_UPSERT",
                absl::StrCat("mode: DB_UPSERT window { state_dir: \"", dir_, "/state\" }")}});
  ASSERT_EQ(config_.metrics().listen_address(), "127.0.0.1:0");
  const std::string log = DaemonLog();
  absl::StatusOr<std::string> address = WaitForAddress("metrics");
  ASSERT_TRUE(address.ok()) << address.status();
  ASSERT_EQ(address->rfind("127.0.0.1:", 0), 0u) << *address;

  // Before any event.
  std::optional<Scrape> before = ScrapeMetrics(*address);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(Sum(*before, "cdcjoin_rows_written_total"), 0);
  EXPECT_EQ(Sum(*before, "cdcjoin_records_consumed_total"), 0);
  EXPECT_EQ(before->at("cdcjoin_mode{mode=\"DB_UPSERT\"}"), 1);
  EXPECT_EQ(before->at("cdcjoin_mode{mode=\"WINDOWED\"}"), 0);
  EXPECT_EQ(before->at("cdcjoin_build_info{version=\"0.1.0\"}"), 1);
  EXPECT_EQ(Series(*before, "cdcjoin_lane_queued_commands"), 4u);

  SeedWorkloadOptions options;
  options.records = 8000;
  options.users = 1500;
  options.poison_every = 500;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  size_t poison = 0;
  for (const SeedRecord& record : records) poison += record.op == 'P';
  Produce(records, 0, records.size());

  // Scrape while the stream is applied, until every record is committed per the metrics.
  const std::vector<std::string> counters = {
      "cdcjoin_records_consumed_total", "cdcjoin_events_total", "cdcjoin_rows_written_total",
      "cdcjoin_sink_batches_total", "cdcjoin_offset_commits_total",
      "cdcjoin_sink_latency_seconds_count", "cdcjoin_dead_lettered_total"};
  Scrape last = *before;
  int scrapes = 0;
  bool moving_seen = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (absl::Now() < deadline) {
    ASSERT_TRUE(daemon_->Running()) << ReadFile(log);
    std::optional<Scrape> now = ScrapeMetrics(*address);
    ASSERT_TRUE(now.has_value()) << "scrape " << scrapes << " failed";
    ++scrapes;
    for (const std::string& counter : counters) {
      EXPECT_GE(Sum(*now, counter), Sum(last, counter)) << counter << " went back";
    }
    const double consumed = Sum(*now, "cdcjoin_records_consumed_total");
    if (consumed > 0 && consumed < records.size()) moving_seen = true;
    last = *now;
    if (Sum(last, "cdcjoin_partition_committed_offset") == records.size() &&
        Sum(last, "cdcjoin_partition_lag") == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(Sum(last, "cdcjoin_partition_committed_offset"), records.size()) << ReadFile(log);
  std::printf("%d scrapes; a scrape saw the stream half-consumed: %s\n", scrapes,
              moving_seen ? "yes" : "no");

  // Where the counters must end.
  EXPECT_EQ(Sum(last, "cdcjoin_records_consumed_total"), records.size());
  EXPECT_EQ(Sum(last, "cdcjoin_events_total") + Sum(last, "cdcjoin_records_skipped_total") +
                Sum(last, "cdcjoin_dead_lettered_total"),
            records.size());
  EXPECT_EQ(Sum(last, "cdcjoin_dead_lettered_total"), poison);
  EXPECT_EQ(Sum(last, "cdcjoin_dead_lettered_total{reason=\"malformed\"}"), poison);
  // User's deletes are ignored by its policy, UserExtData's clear its columns: the ignored ones
  // are some of the deletes, not all.
  EXPECT_GT(Sum(last, "cdcjoin_events_ignored_by_policy_total"), 0);
  EXPECT_LT(Sum(last, "cdcjoin_events_ignored_by_policy_total"),
            Sum(last, "cdcjoin_events_total{op=\"delete\"}"));
  EXPECT_GT(Sum(last, "cdcjoin_rows_written_total"), 1000);
  EXPECT_EQ(Sum(last, "cdcjoin_rows_written_total"), Sum(last, "cdcjoin_commands_total"));
  EXPECT_GT(Sum(last, "cdcjoin_sink_batches_total"), 0);
  // One latency sample per attempt to apply a batch: at least one per batch.
  EXPECT_GE(last.at("cdcjoin_sink_latency_seconds_count"), Sum(last, "cdcjoin_sink_batches_total"));
  EXPECT_LE(last.at("cdcjoin_sink_latency_seconds_count"),
            Sum(last, "cdcjoin_sink_batches_total") + Sum(last, "cdcjoin_sink_retries_total"));
  EXPECT_GT(last.at("cdcjoin_sink_latency_seconds_sum"), 0);
  EXPECT_GT(Sum(last, "cdcjoin_offset_commits_total"), 0);
  EXPECT_EQ(last.at("cdcjoin_assigned"), 1);
  EXPECT_EQ(last.at("cdcjoin_state{state=\"running\"}"), 1);
  EXPECT_EQ(Series(last, "cdcjoin_partition_lag"), 2u * kPartitions);
  EXPECT_EQ(Sum(last, "cdcjoin_partition_data_loss"), 0);

  // The per-partition gauges say what the group committed in Kafka.
  absl::StatusOr<PartitionOffsets> committed = Committed();
  ASSERT_TRUE(committed.ok()) << committed.status();
  for (const auto& [partition, offset] : *committed) {
    const std::string series = absl::StrCat("cdcjoin_partition_committed_offset{topic=\"",
                                            partition.first, "\",partition=\"", partition.second,
                                            "\"}");
    ASSERT_EQ(last.count(series), 1u) << series;
    EXPECT_EQ(last.at(series), offset) << series;
  }

  // A mode switch over the admin API shows in the mode gauge.
  absl::StatusOr<std::string> admin = WaitForAddress("admin");
  ASSERT_TRUE(admin.ok()) << admin.status();
  absl::StatusOr<Subprocess> switched =
      Subprocess::Spawn({RunfilePath("service/cdcjoinctl"), "--address=" + *admin, "switch-mode",
                         "windowed"},
                        dir_ + "/cdcjoinctl.log");
  ASSERT_TRUE(switched.ok()) << switched.status();
  ASSERT_EQ(switched->Wait(absl::Seconds(60)), 0) << ReadFile(dir_ + "/cdcjoinctl.log");
  std::optional<Scrape> after_switch = ScrapeMetrics(*address);
  ASSERT_TRUE(after_switch.has_value());
  EXPECT_EQ(after_switch->at("cdcjoin_mode{mode=\"WINDOWED\"}"), 1);
  EXPECT_EQ(after_switch->at("cdcjoin_mode{mode=\"DB_UPSERT\"}"), 0);

  EXPECT_EQ(StopDaemon(), 0) << ReadFile(log);
  EXPECT_FALSE(ScrapeMetrics(*address).has_value()) << "still serving after exit";
}

}  // namespace
}  // namespace cdcjoin::testing
