#include "service/metrics_exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace cdcjoin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A Pipeline whose every answer the test sets.
class FakePipeline : public Pipeline {
 public:
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  void Pause() override {}
  void Resume() override {}
  absl::StatusOr<SwitchReport> SwitchMode(v1::JoinMode) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status DeadLetterHeld(const std::string&, int32_t, int64_t,
                              const std::string&) override {
    return absl::UnimplementedError("fake");
  }
  v1::JoinMode mode() const override { return mode_; }
  std::vector<v1::GroupMember> Members() const override { return {}; }
  const v1::Config& config() const override { return config_; }
  PipelineState state() const override { return state_; }
  std::vector<PartitionStatus> Partitions() const override { return partitions_; }
  std::vector<LaneStatus> Lanes() const override { return lanes_; }
  const PipelineStats& stats() const override { return stats_; }
  bool Assigned() const override { return !partitions_.empty(); }

  v1::JoinMode mode_ = v1::DB_UPSERT;
  v1::Config config_;
  PipelineState state_ = PipelineState::kRunning;
  std::vector<PartitionStatus> partitions_;
  std::vector<LaneStatus> lanes_;
  PipelineStats stats_;
};

// GET path over a plain socket; the whole response (headers and body).
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return "";
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

TEST(MetricsExporterTest, DefaultsToLoopback) {
  EXPECT_EQ(MetricsExporterOptions().listen_address, "127.0.0.1:9464");
  v1::MetricsConfig config;
  EXPECT_EQ(MetricsExporterOptionsFromConfig(config).listen_address, "127.0.0.1:9464");
  config.set_listen_address("0.0.0.0:9100");
  EXPECT_EQ(MetricsExporterOptionsFromConfig(config).listen_address, "0.0.0.0:9100");
}

TEST(MetricsExporterTest, RendersCountersGaugesHistogramsModeAndState) {
  FakePipeline pipeline;
  pipeline.stats_.events_create = 3;
  pipeline.stats_.events_update = 5;
  pipeline.stats_.skipped_nulls = 2;
  pipeline.stats_.rows_written = 7;
  pipeline.stats_.deadlocks = 1;
  pipeline.stats_.stale_writes_stopped = 7;
  pipeline.stats_.dead_lettered_by_reason[static_cast<int>(DeadLetterReason::kTypeMismatch)] = 4;
  pipeline.stats_.dead_lettered_by_reason[static_cast<int>(DeadLetterReason::kForeignTable)] = 6;
  pipeline.stats_.key_disagreements = 8;
  pipeline.stats_.sink_latency.Record(absl::Microseconds(100));  // Bucket < 128 µs.
  pipeline.stats_.sink_latency.Record(absl::Milliseconds(3));    // Bucket < 4096 µs.
  PartitionStatus partition;
  partition.topic = "cdc.azar.User";
  partition.partition = 3;
  partition.committed = 40;
  partition.consumed = 45;
  partition.high_watermark = 100;
  partition.lag = 60;
  pipeline.partitions_ = {partition};
  LaneStatus lane;
  lane.queued = 12;
  lane.holding = true;
  pipeline.lanes_ = {LaneStatus{}, lane};
  pipeline.mode_ = v1::WINDOWED;
  pipeline.state_ = PipelineState::kDegraded;

  const std::string text = RenderMetrics(pipeline);
  EXPECT_THAT(text, HasSubstr("# TYPE cdcjoin_events_total counter"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_events_total{op=\"create\"} 3"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_events_total{op=\"update\"} 5"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_records_skipped_total{reason=\"null_field\"} 2"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_records_consumed_total 10"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_rows_written_total 7"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_deadlocks_total 1"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_stale_writes_stopped_total 7"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_dead_lettered_total{reason=\"type-mismatch\"} 4"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_dead_lettered_total{reason=\"foreign-table\"} 6"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_key_disagreements_total 8"));
  EXPECT_THAT(text, HasSubstr("# TYPE cdcjoin_sink_latency_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_latency_seconds_count 2"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_latency_seconds_sum 0.0031"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_latency_seconds_bucket{le=\"0.000128\"} 1"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_latency_seconds_bucket{le=\"0.002048\"} 1"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_latency_seconds_bucket{le=\"0.004096\"} 2"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_sink_latency_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_THAT(text,
              HasSubstr("cdcjoin_partition_lag{topic=\"cdc.azar.User\",partition=\"3\"} 60"));
  EXPECT_THAT(text, HasSubstr(
                        "cdcjoin_partition_committed_offset{topic=\"cdc.azar.User\",partition=\"3\"} 40"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_lane_queued_commands{lane=\"1\"} 12"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_lane_holding{lane=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_lane_holding{lane=\"0\"} 0"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_mode{mode=\"WINDOWED\"} 1"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_mode{mode=\"DB_UPSERT\"} 0"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_state{state=\"degraded\"} 1"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_state{state=\"running\"} 0"));
  EXPECT_THAT(text, HasSubstr("cdcjoin_assigned 1"));
}

TEST(MetricsExporterTest, ServesEachScrapeFromThePipelineNow) {
  FakePipeline pipeline;
  MetricsExporterOptions options;
  options.listen_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<MetricsExporter>> exporter =
      MetricsExporter::Start(options, &pipeline);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_GT((*exporter)->port(), 0);
  EXPECT_EQ((*exporter)->address(), absl::StrCat("127.0.0.1:", (*exporter)->port()));

  std::string first = HttpGet((*exporter)->port(), "/metrics");
  EXPECT_THAT(first, HasSubstr("200 OK"));
  EXPECT_THAT(first, HasSubstr("cdcjoin_rows_written_total 0"));
  pipeline.stats_.rows_written = 1234;
  pipeline.mode_ = v1::WINDOWED;
  std::string second = HttpGet((*exporter)->port(), "/metrics");
  EXPECT_THAT(second, HasSubstr("cdcjoin_rows_written_total 1234"));
  EXPECT_THAT(second, HasSubstr("cdcjoin_mode{mode=\"WINDOWED\"} 1"));
  EXPECT_THAT(HttpGet((*exporter)->port(), "/other"), Not(HasSubstr("cdcjoin_")));

  // A second exporter cannot take the same port: an error, not an exception.
  options.listen_address = (*exporter)->address();
  absl::StatusOr<std::unique_ptr<MetricsExporter>> clash =
      MetricsExporter::Start(options, &pipeline);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kUnavailable) << clash.status();
  EXPECT_THAT(std::string(clash.status().message()), HasSubstr("metrics.listen_address"));

  const int port = (*exporter)->port();
  exporter->reset();
  EXPECT_EQ(HttpGet(port, "/metrics"), "");
}

}  // namespace
}  // namespace cdcjoin
