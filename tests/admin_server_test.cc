// The admin server over a real gRPC server on a loopback port and real client stubs (the Admin
// service, grpc.health.v1, reflection), in front of a scripted Pipeline: what is under test is
// the gRPC layer (auth, argument checks, streams, health, TLS), not the data path.

#include "service/admin_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_callback.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/cdcjoin/v1/admin.grpc.pb.h"
#include "proto/reflection_copy/reflection.pb.h"
#include "service/config.h"
#include "service/version.h"

namespace cdcjoin {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

// A Pipeline whose every answer the test sets.
class ScriptedPipeline : public Pipeline {
 public:
  ScriptedPipeline() {
    config_.add_sources()->set_name("user");
    config_.add_sources()->set_name("user_ext");
    config_.set_mode(v1::DB_UPSERT);
    (*config_.mutable_kafka()->mutable_properties())["sasl.password"] = "hunter2";
    config_.mutable_target()->set_table("Nickname");
  }

  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  void Pause() override {
    paused_.store(true);
    state_.store(PipelineState::kPaused);
  }
  void Resume() override {
    paused_.store(false);
    state_.store(PipelineState::kRunning);
  }
  absl::StatusOr<SwitchReport> SwitchMode(v1::JoinMode mode) override {
    switch_calls_.fetch_add(1);
    SwitchReport report;
    report.from = mode_.load();
    report.to = mode;
    if (mode == mode_.load()) return report;
    const absl::Time begin = absl::Now();
    absl::SleepFor(switch_duration);
    mode_.store(mode);
    report.changed = true;
    report.paused = absl::Now() - begin;
    return report;
  }
  absl::Status DeadLetterHeld(const std::string& topic, int32_t partition, int64_t offset,
                              const std::string&) override {
    if (topic != held_topic_ || offset != held_offset_) {
      return absl::NotFoundError(
          absl::StrCat("no sink lane holds on ", topic, "[", partition, "]@", offset));
    }
    dead_lettered_.fetch_add(1);
    return absl::OkStatus();
  }
  v1::JoinMode mode() const override { return mode_.load(); }
  std::vector<v1::GroupMember> Members() const override {
    v1::GroupMember member;
    member.set_member("scripted-0");
    member.set_mode(mode_.load());
    return {member};
  }
  const v1::Config& config() const override { return config_; }
  PipelineState state() const override { return state_.load(); }
  std::vector<PartitionStatus> Partitions() const override {
    absl::MutexLock lock(&mu_);
    return partitions_;
  }
  std::vector<LaneStatus> Lanes() const override {
    LaneStatus lane;
    lane.queued = 7;
    lane.holding = true;
    lane.attempts = 3;
    lane.last_error = "deadlock";
    return {LaneStatus{}, lane};
  }
  const PipelineStats& stats() const override { return stats_; }
  bool Assigned() const override { return assigned_.load(); }

  void SetPartitions(std::vector<PartitionStatus> partitions) {
    absl::MutexLock lock(&mu_);
    partitions_ = std::move(partitions);
  }

  PipelineStats stats_;
  std::atomic<PipelineState> state_{PipelineState::kStarting};
  std::atomic<bool> assigned_{false};
  std::atomic<bool> paused_{false};
  std::atomic<int> switch_calls_{0};
  absl::Duration switch_duration = absl::Milliseconds(300);
  // The one event a lane holds on, for DeadLetter.
  std::string held_topic_ = "users";
  int64_t held_offset_ = 41;
  std::atomic<int> dead_lettered_{0};

 private:
  v1::Config config_;
  std::atomic<v1::JoinMode> mode_{v1::DB_UPSERT};
  mutable absl::Mutex mu_;
  std::vector<PartitionStatus> partitions_ ABSL_GUARDED_BY(mu_);
};

class AdminServerTest : public ::testing::Test {
 protected:
  void StartServer(AdminServerOptions options = {},
                   const std::string& listen_address = "127.0.0.1:0") {
    options.listen_address = listen_address;
    options.health_interval = absl::Milliseconds(50);
    options.sample_interval = absl::Milliseconds(100);
    absl::StatusOr<std::unique_ptr<AdminServer>> server = AdminServer::Start(options, &pipeline_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Admin::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service = "") {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  // Polls health until it reports `want` (the server follows the pipeline every 50 ms).
  bool WaitForHealth(grpc::health::v1::HealthCheckResponse::ServingStatus want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (Health() == want) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  ScriptedPipeline pipeline_;
  std::unique_ptr<AdminServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> stub_;
};

TEST_F(AdminServerTest, GetStatusReportsEverythingThePipelineKnows) {
  pipeline_.state_.store(PipelineState::kRunning);
  pipeline_.assigned_.store(true);
  PartitionStatus p1{"cdc.azar.UserExtData", 1, 3, 120, 100, 150, 50, false};
  PartitionStatus p0{"cdc.azar.User", 0, 0, 10, 10, 10, 0, true};
  pipeline_.SetPartitions({p1, p0});
  pipeline_.stats_.events_create.store(5);
  pipeline_.stats_.events_update.store(6);
  pipeline_.stats_.events_read.store(7);
  pipeline_.stats_.events_delete.store(8);
  pipeline_.stats_.tombstones.store(2);
  pipeline_.stats_.rows_written.store(20);
  pipeline_.stats_.batches.store(4);
  pipeline_.stats_.retries.store(3);
  pipeline_.stats_.deadlocks.store(1);
  pipeline_.stats_.stale_writes_stopped.store(5);
  pipeline_.stats_.dead_lettered.store(9);
  pipeline_.stats_.dead_lettered_undecoded.store(9);
  pipeline_.stats_.dead_lettered_by_reason[static_cast<int>(DeadLetterReason::kRowRejected)]
      .store(4);
  pipeline_.stats_.key_disagreements.store(3);
  pipeline_.stats_.late_drops.store(11);
  pipeline_.stats_.windows_opened.store(12);
  pipeline_.stats_.windows_emitted.store(13);
  pipeline_.stats_.offset_commits.store(14);
  for (int i = 0; i < 100; ++i) pipeline_.stats_.sink_latency.Record(absl::Milliseconds(3));
  pipeline_.stats_.RecordError("lane 1: deadlock found");
  StartServer();

  v1::Status status;
  grpc::Status rpc = stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &status);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  EXPECT_EQ(status.mode(), v1::DB_UPSERT);
  // Running, but a partition lost data: reported as degraded.
  EXPECT_EQ(status.state(), v1::DEGRADED);
  EXPECT_TRUE(status.assigned());
  ASSERT_EQ(status.partitions_size(), 2);
  // Ordered by topic, with the source's configured name.
  EXPECT_EQ(status.partitions(0).topic(), "cdc.azar.User");
  EXPECT_EQ(status.partitions(0).source(), "user");
  EXPECT_TRUE(status.partitions(0).data_loss());
  EXPECT_EQ(status.partitions(1).source(), "user_ext");
  EXPECT_EQ(status.partitions(1).partition(), 3);
  EXPECT_EQ(status.partitions(1).consumed_offset(), 120);
  EXPECT_EQ(status.partitions(1).committed_offset(), 100);
  EXPECT_EQ(status.partitions(1).high_watermark(), 150);
  EXPECT_EQ(status.partitions(1).lag(), 50);
  EXPECT_EQ(status.total_lag(), 50);
  EXPECT_EQ(status.counters().events_total(), 26 + 2 + 9);  // With tombstones and dead letters.
  EXPECT_EQ(status.counters().events_delete(), 8);
  EXPECT_EQ(status.counters().tombstones(), 2);
  EXPECT_EQ(status.counters().key_disagreements(), 3);
  EXPECT_EQ(status.counters().dead_lettered_by_reason().at("row-rejected"), 4);
  EXPECT_EQ(status.counters().dead_lettered_by_reason().at("type-mismatch"), 0);
  EXPECT_EQ(status.counters().rows_written(), 20);
  EXPECT_EQ(status.counters().deadlocks(), 1);
  EXPECT_EQ(status.counters().stale_writes_stopped(), 5);
  EXPECT_EQ(status.counters().dead_lettered(), 9);
  EXPECT_EQ(status.counters().late_drops(), 11);
  EXPECT_EQ(status.counters().windows_emitted(), 13);
  EXPECT_EQ(status.counters().offset_commits(), 14);
  // 3 ms falls in the bucket below 2^12 µs.
  EXPECT_DOUBLE_EQ(status.sink_latency().p50_ms(), 4.096);
  EXPECT_DOUBLE_EQ(status.sink_latency().p99_ms(), 4.096);
  EXPECT_EQ(status.sink_latency().count(), 100);
  ASSERT_EQ(status.lanes_size(), 2);
  EXPECT_EQ(status.lanes(1).lane(), 1);
  EXPECT_EQ(status.lanes(1).queued(), 7);
  EXPECT_TRUE(status.lanes(1).holding());
  EXPECT_EQ(status.lanes(1).last_error(), "deadlock");
  EXPECT_EQ(status.last_error(), "lane 1: deadlock found");
  EXPECT_NEAR(status.last_error_time_unix_ms(), absl::ToUnixMillis(absl::Now()), 10000);
  EXPECT_EQ(status.version(), kVersion);
  EXPECT_GE(status.uptime_seconds(), 0);
  EXPECT_LT(status.uptime_seconds(), 60);
}

TEST_F(AdminServerTest, RatesFollowTheCounters) {
  pipeline_.state_.store(PipelineState::kRunning);
  StartServer();
  // 1000 events and 500 rows per 100 ms: 10,000 events/s and 5,000 rows/s.
  for (int i = 0; i < 8; ++i) {
    pipeline_.stats_.events_update.fetch_add(1000);
    pipeline_.stats_.rows_written.fetch_add(500);
    absl::SleepFor(absl::Milliseconds(100));
  }
  v1::Status status;
  ASSERT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &status).ok());
  EXPECT_GT(status.rates().window_seconds(), 0.3);
  EXPECT_NEAR(status.rates().events_per_second(), 10000, 3000);
  EXPECT_NEAR(status.rates().rows_per_second(), 5000, 1500);
}

TEST_F(AdminServerTest, WatchStatusStreamsUpdatesUntilCancelled) {
  pipeline_.state_.store(PipelineState::kRunning);
  StartServer();
  grpc::ClientContext context;
  v1::WatchStatusRequest request;
  request.set_interval_ms(100);
  auto reader = stub_->WatchStatus(&context, request);
  std::vector<v1::Status> updates;
  const absl::Time begin = absl::Now();
  v1::Status status;
  while (updates.size() < 5 && reader->Read(&status)) {
    updates.push_back(status);
    pipeline_.stats_.events_create.fetch_add(1);
  }
  const absl::Duration took = absl::Now() - begin;
  ASSERT_EQ(updates.size(), 5u);
  // The first at once, then one per interval.
  EXPECT_GE(took, absl::Milliseconds(350));
  EXPECT_LT(took, absl::Seconds(3));
  for (size_t i = 1; i < updates.size(); ++i) {
    EXPECT_GT(updates[i].counters().events_create(), updates[i - 1].counters().events_create());
    EXPECT_GE(updates[i].time_unix_ms(), updates[i - 1].time_unix_ms() + 80);
  }
  context.TryCancel();
  while (reader->Read(&status)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(AdminServerTest, WatchStatusEndsWhenTheServerShutsDown) {
  StartServer();
  grpc::ClientContext context;
  v1::WatchStatusRequest request;
  request.set_interval_ms(60000);
  auto reader = stub_->WatchStatus(&context, request);
  v1::Status status;
  ASSERT_TRUE(reader->Read(&status));
  const absl::Time begin = absl::Now();
  server_->Shutdown();
  EXPECT_FALSE(reader->Read(&status));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  // Not after the 60 s interval.
  EXPECT_LT(absl::Now() - begin, absl::Seconds(5));
}

TEST_F(AdminServerTest, BadArgumentsNameTheField) {
  StartServer();
  for (int interval : {1, 99, 60001, -5}) {
    grpc::ClientContext context;
    v1::WatchStatusRequest request;
    request.set_interval_ms(interval);
    auto reader = stub_->WatchStatus(&context, request);
    v1::Status status;
    EXPECT_FALSE(reader->Read(&status));
    grpc::Status finished = reader->Finish();
    EXPECT_EQ(finished.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << interval;
    EXPECT_THAT(finished.error_message(), HasSubstr("interval_ms: must be in [100, 60000]"));
  }
  v1::SwitchModeRequest request;
  v1::SwitchModeResponse response;
  grpc::Status status = stub_->SwitchMode(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("mode: must be DB_UPSERT or WINDOWED"));
  request.set_mode(static_cast<v1::JoinMode>(42));
  status = stub_->SwitchMode(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("mode:"));
  EXPECT_EQ(pipeline_.switch_calls_.load(), 0);
}

// Bytes that are no protobuf message: a field tag with wire type 7, which does not exist.
grpc::ByteBuffer NotAMessage() {
  grpc::Slice slice(std::string("\x0f\xff\xff\xff"));
  return grpc::ByteBuffer(&slice, 1);
}

TEST_F(AdminServerTest, ARequestThatDoesNotParseIsInvalidArgumentNamingTheMessage) {
  StartServer();
  const std::vector<std::pair<std::string, std::string>> unary = {
      {"GetStatus", "cdcjoin.v1.GetStatusRequest"},
      {"SwitchMode", "cdcjoin.v1.SwitchModeRequest"},
      {"Pause", "cdcjoin.v1.PauseRequest"},
      {"Resume", "cdcjoin.v1.ResumeRequest"},
      {"GetConfig", "cdcjoin.v1.GetConfigRequest"},
      {"DeadLetter", "cdcjoin.v1.DeadLetterRequest"},
  };
  for (const auto& [method, message] : unary) {
    const std::string path = absl::StrCat("/cdcjoin.v1.Admin/", method);
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(),
        grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
        &context, NotAMessage(), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(), HasSubstr(message)) << method;
  }
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          channel_.get(),
          grpc::internal::RpcMethod("/cdcjoin.v1.Admin/WatchStatus",
                                    grpc::internal::RpcMethod::SERVER_STREAMING),
          &context, NotAMessage()));
  grpc::ByteBuffer update;
  EXPECT_FALSE(reader->Read(&update));
  grpc::Status finished = reader->Finish();
  EXPECT_EQ(finished.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(finished.error_message(), HasSubstr("cdcjoin.v1.WatchStatusRequest"));
  // Nothing was acted on.
  EXPECT_EQ(pipeline_.switch_calls_.load(), 0);
  EXPECT_FALSE(pipeline_.paused_.load());
}

TEST_F(AdminServerTest, DeadLetterIsAMutatingCallThatNamesWhatIsNotHeld) {
  AdminServerOptions options;
  options.token = "s3cret";
  StartServer(options);
  v1::DeadLetterRequest request;
  request.set_topic("users");
  request.set_partition(3);
  request.set_offset(41);
  v1::DeadLetterResponse response;
  EXPECT_EQ(stub_->DeadLetter(Context().get(), request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(pipeline_.dead_lettered_.load(), 0);

  auto with_token = [] { return Context("s3cret"); };
  EXPECT_TRUE(stub_->DeadLetter(with_token().get(), request, &response).ok());
  EXPECT_EQ(pipeline_.dead_lettered_.load(), 1);

  request.set_offset(42);
  grpc::Status missing = stub_->DeadLetter(with_token().get(), request, &response);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(missing.error_message(), HasSubstr("users[3]@42"));

  request.clear_topic();
  grpc::Status no_topic = stub_->DeadLetter(with_token().get(), request, &response);
  EXPECT_EQ(no_topic.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(no_topic.error_message(), HasSubstr("topic:"));
  EXPECT_EQ(pipeline_.dead_lettered_.load(), 1);
}

TEST_F(AdminServerTest, SwitchModeReportsThePauseAndIsIdempotent) {
  pipeline_.state_.store(PipelineState::kRunning);
  StartServer();
  v1::SwitchModeRequest request;
  request.set_mode(v1::WINDOWED);
  v1::SwitchModeResponse response;
  grpc::Status status = stub_->SwitchMode(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.from(), v1::DB_UPSERT);
  EXPECT_EQ(response.to(), v1::WINDOWED);
  EXPECT_TRUE(response.changed());
  EXPECT_GE(response.paused_ms(), 290);
  EXPECT_LT(response.paused_ms(), 5000);

  status = stub_->SwitchMode(Context().get(), request, &response);
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(response.changed());
  EXPECT_EQ(response.from(), v1::WINDOWED);
  EXPECT_EQ(response.paused_ms(), 0);

  v1::Status snapshot;
  ASSERT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &snapshot).ok());
  EXPECT_EQ(snapshot.mode(), v1::WINDOWED);
}

TEST_F(AdminServerTest, SecondSwitchWhileOneRunsIsRefused) {
  pipeline_.state_.store(PipelineState::kRunning);
  pipeline_.switch_duration = absl::Seconds(1);
  StartServer();
  grpc::Status first;
  std::thread background([&] {
    v1::SwitchModeRequest request;
    request.set_mode(v1::WINDOWED);
    v1::SwitchModeResponse response;
    first = stub_->SwitchMode(Context().get(), request, &response);
  });
  // Wait until the first switch is under way, visible in the status.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  v1::Status snapshot;
  while (absl::Now() < deadline) {
    ASSERT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &snapshot).ok());
    if (snapshot.state() == v1::SWITCHING) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(snapshot.state(), v1::SWITCHING);
  v1::SwitchModeRequest request;
  request.set_mode(v1::DB_UPSERT);
  v1::SwitchModeResponse response;
  grpc::Status second = stub_->SwitchMode(Context().get(), request, &response);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(second.error_message(), HasSubstr("already running"));
  background.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
  EXPECT_EQ(pipeline_.switch_calls_.load(), 1);
}

TEST_F(AdminServerTest, PauseResumeAndConfig) {
  pipeline_.state_.store(PipelineState::kRunning);
  StartServer();
  v1::PauseResponse paused;
  ASSERT_TRUE(stub_->Pause(Context().get(), v1::PauseRequest(), &paused).ok());
  EXPECT_TRUE(pipeline_.paused_.load());
  EXPECT_EQ(paused.state(), v1::PAUSED);
  v1::Status status;
  ASSERT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &status).ok());
  EXPECT_EQ(status.state(), v1::PAUSED);
  v1::ResumeResponse resumed;
  ASSERT_TRUE(stub_->Resume(Context().get(), v1::ResumeRequest(), &resumed).ok());
  EXPECT_FALSE(pipeline_.paused_.load());
  EXPECT_EQ(resumed.state(), v1::RUNNING);

  v1::Config config;
  ASSERT_TRUE(stub_->GetConfig(Context().get(), v1::GetConfigRequest(), &config).ok());
  EXPECT_EQ(config.target().table(), "Nickname");
  EXPECT_EQ(config.kafka().properties().at("sasl.password"), "<redacted>");
}

TEST_F(AdminServerTest, TokenGuardsMutatingCallsAndReadsStayOpenByDefault) {
  AdminServerOptions options;
  options.token = "s3cret-token";
  StartServer(options);
  v1::PauseResponse paused;
  grpc::Status status = stub_->Pause(Context().get(), v1::PauseRequest(), &paused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("authorization"));
  status = stub_->Pause(Context("s3cret-tokeX").get(), v1::PauseRequest(), &paused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  status = stub_->Pause(Context("s3cret-token-and-more").get(), v1::PauseRequest(), &paused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  {
    // Not Bearer.
    grpc::ClientContext context;
    context.AddMetadata("authorization", "s3cret-token");
    EXPECT_EQ(stub_->Pause(&context, v1::PauseRequest(), &paused).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_FALSE(pipeline_.paused_.load());
  v1::ResumeResponse resumed;
  EXPECT_EQ(stub_->Resume(Context().get(), v1::ResumeRequest(), &resumed).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::SwitchModeRequest switch_request;
  switch_request.set_mode(v1::WINDOWED);
  v1::SwitchModeResponse switched;
  EXPECT_EQ(stub_->SwitchMode(Context().get(), switch_request, &switched).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(pipeline_.switch_calls_.load(), 0);

  ASSERT_TRUE(stub_->Pause(Context("s3cret-token").get(), v1::PauseRequest(), &paused).ok());
  EXPECT_TRUE(pipeline_.paused_.load());
  ASSERT_TRUE(stub_->Resume(Context("s3cret-token").get(), v1::ResumeRequest(), &resumed).ok());
  ASSERT_TRUE(
      stub_->SwitchMode(Context("s3cret-token").get(), switch_request, &switched).ok());

  v1::Status snapshot;
  EXPECT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &snapshot).ok());
  v1::Config config;
  EXPECT_TRUE(stub_->GetConfig(Context().get(), v1::GetConfigRequest(), &config).ok());
}

TEST_F(AdminServerTest, ReadsNeedTheTokenWhenConfigured) {
  AdminServerOptions options;
  options.token = "s3cret-token";
  options.allow_unauthenticated_reads = false;
  StartServer(options);
  v1::Status snapshot;
  EXPECT_EQ(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &snapshot).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(
      stub_->GetStatus(Context("wrong").get(), v1::GetStatusRequest(), &snapshot).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  v1::Config config;
  EXPECT_EQ(stub_->GetConfig(Context().get(), v1::GetConfigRequest(), &config).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  {
    auto context = Context();
    auto reader = stub_->WatchStatus(context.get(), v1::WatchStatusRequest());
    EXPECT_FALSE(reader->Read(&snapshot));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_TRUE(
      stub_->GetStatus(Context("s3cret-token").get(), v1::GetStatusRequest(), &snapshot).ok());
  EXPECT_TRUE(
      stub_->GetConfig(Context("s3cret-token").get(), v1::GetConfigRequest(), &config).ok());
  auto context = Context("s3cret-token");
  auto reader = stub_->WatchStatus(context.get(), v1::WatchStatusRequest());
  EXPECT_TRUE(reader->Read(&snapshot));
  context->TryCancel();
  // Health stays open: orchestrators probe it without credentials.
  EXPECT_EQ(Health(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

TEST_F(AdminServerTest, HealthFollowsAssignmentAndDegradation) {
  using Health = grpc::health::v1::HealthCheckResponse;
  StartServer();
  EXPECT_EQ(this->Health(), Health::NOT_SERVING);
  EXPECT_EQ(this->Health("cdcjoin.v1.Admin"), Health::NOT_SERVING);
  pipeline_.state_.store(PipelineState::kRunning);
  // Running but nothing assigned yet: health must stay NOT_SERVING through several of the
  // server's 50 ms follow-ups (checked at each poll, not once after a sleep).
  for (const absl::Time until = absl::Now() + absl::Milliseconds(300); absl::Now() < until;) {
    ASSERT_EQ(this->Health(), Health::NOT_SERVING) << "running but nothing assigned yet";
    absl::SleepFor(absl::Milliseconds(20));
  }
  pipeline_.assigned_.store(true);
  EXPECT_TRUE(WaitForHealth(Health::SERVING));
  EXPECT_EQ(this->Health("cdcjoin.v1.Admin"), Health::SERVING);
  pipeline_.state_.store(PipelineState::kDegraded);
  EXPECT_TRUE(WaitForHealth(Health::NOT_SERVING));
  pipeline_.state_.store(PipelineState::kPaused);
  EXPECT_TRUE(WaitForHealth(Health::SERVING)) << "an operator pause is healthy";
  pipeline_.state_.store(PipelineState::kRunning);
  EXPECT_TRUE(WaitForHealth(Health::SERVING));
  PartitionStatus lost{"cdc.azar.User", 0, 2, 10, 10, 99, 89, /*data_loss=*/true};
  pipeline_.SetPartitions({lost});
  EXPECT_TRUE(WaitForHealth(Health::NOT_SERVING)) << "a partition lost data";
  pipeline_.SetPartitions({});
  EXPECT_TRUE(WaitForHealth(Health::SERVING));
  pipeline_.state_.store(PipelineState::kStopping);
  EXPECT_TRUE(WaitForHealth(Health::NOT_SERVING));
}

TEST_F(AdminServerTest, OffLoopbackMutatingCallsNeedAToken) {
  pipeline_.state_.store(PipelineState::kRunning);
  StartServer({}, "0.0.0.0:0");
  v1::PauseResponse paused;
  grpc::Status rpc = stub_->Pause(Context().get(), v1::PauseRequest(), &paused);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(rpc.error_message(), HasSubstr("need a token: set admin.token_file"));
  EXPECT_FALSE(pipeline_.paused_.load());
  v1::Status status;
  EXPECT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &status).ok());
}

TEST_F(AdminServerTest, TheHealthPortServesHealthOnly) {
  using Health = grpc::health::v1::HealthCheckResponse;
  AdminServerOptions options;
  options.health_listen_address = "127.0.0.1:0";
  StartServer(options);
  ASSERT_THAT(server_->health_address(), ::testing::StartsWith("127.0.0.1:"));
  auto health_channel =
      grpc::CreateChannel(server_->health_address(), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(health_channel);
  auto check = [&] {
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status rpc =
        health->Check(Context().get(), grpc::health::v1::HealthCheckRequest(), &response);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return response.status();
  };
  EXPECT_EQ(check(), Health::NOT_SERVING);
  pipeline_.state_.store(PipelineState::kRunning);
  pipeline_.assigned_.store(true);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (check() != Health::SERVING && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(check(), Health::SERVING) << "the health port follows the pipeline";
  // Nothing else is served there.
  v1::Status status;
  grpc::Status rpc = v1::Admin::NewStub(health_channel)
                         ->GetStatus(Context().get(), v1::GetStatusRequest(), &status);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(AdminServerTest, AnInsecureConfigurationIsAWarningInStatus) {
  v1::AdminConfig config;
  config.set_listen_address("0.0.0.0:0");
  config.set_insecure(true);
  absl::StatusOr<AdminServerOptions> options = AdminServerOptionsFromConfig(config);
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_EQ(options->warnings.size(), 2u);
  StartServer(*options, "0.0.0.0:0");
  v1::Status status;
  ASSERT_TRUE(stub_->GetStatus(Context().get(), v1::GetStatusRequest(), &status).ok());
  ASSERT_EQ(status.warnings_size(), 2);
  EXPECT_THAT(status.warnings(0), HasSubstr("speaks plaintext"));
  EXPECT_THAT(status.warnings(1), HasSubstr("has no token"));
}

TEST_F(AdminServerTest, ReflectionListsTheServices) {
  namespace reflection = ::cdcjoin::testing::reflection;
  StartServer();
  // What a generated ServerReflection stub does, with the message copy (see proto/BUILD).
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING, channel_);
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<reflection::ServerReflectionRequest,
                                           reflection::ServerReflectionResponse>>
      stream(grpc::internal::ClientReaderWriterFactory<
             reflection::ServerReflectionRequest,
             reflection::ServerReflectionResponse>::Create(channel_.get(), method, &context));
  reflection::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  reflection::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& service : response.list_services_response().service()) {
    services.push_back(service.name());
  }
  EXPECT_THAT(services, Contains("cdcjoin.v1.Admin"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));

  // A generic tool can fetch the schema too.
  request.set_file_containing_symbol("cdcjoin.v1.Admin");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(AdminServerOptionsTest, FromConfigReadsTheTokenAndNamesTheField) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  std::ofstream(dir + "/token") << "  tok-123 \nsecond line\n";
  v1::AdminConfig config;
  config.set_listen_address("127.0.0.1:0");
  config.set_token_file(dir + "/token");
  absl::StatusOr<AdminServerOptions> options = AdminServerOptionsFromConfig(config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->token, "tok-123");
  EXPECT_TRUE(options->allow_unauthenticated_reads);
  config.set_require_token_for_reads(true);
  EXPECT_FALSE(AdminServerOptionsFromConfig(config)->allow_unauthenticated_reads);

  config.set_token_file(dir + "/missing");
  EXPECT_THAT(std::string(AdminServerOptionsFromConfig(config).status().message()),
              HasSubstr("admin.token_file"));
  // The token itself never appears in an error.
  std::ofstream(dir + "/empty") << "\n";
  config.set_token_file(dir + "/empty");
  EXPECT_THAT(std::string(AdminServerOptionsFromConfig(config).status().message()),
              HasSubstr("holds no token"));
  config.clear_token_file();
  config.set_token_env("CDCJOIN_ADMIN_TEST_TOKEN");
  setenv("CDCJOIN_ADMIN_TEST_TOKEN", "from-env", 1);
  EXPECT_EQ(AdminServerOptionsFromConfig(config)->token, "from-env");
  unsetenv("CDCJOIN_ADMIN_TEST_TOKEN");
  EXPECT_THAT(std::string(AdminServerOptionsFromConfig(config).status().message()),
              HasSubstr("admin.token_env"));
  config.clear_token_env();
  config.mutable_tls()->set_cert_file(dir + "/nope.pem");
  config.mutable_tls()->set_key_file(dir + "/nope.key");
  EXPECT_THAT(std::string(AdminServerOptionsFromConfig(config).status().message()),
              HasSubstr("admin.tls.cert_file"));
}

TEST(AdminServerListenTest, ABusyPortIsAnError) {
  ScriptedPipeline pipeline;
  AdminServerOptions options;
  options.listen_address = "127.0.0.1:0";
  auto first = AdminServer::Start(options, &pipeline);
  ASSERT_TRUE(first.ok());
  options.listen_address = (*first)->address();
  auto second = AdminServer::Start(options, &pipeline);
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("admin.listen_address"));
}

// TLS and mutual TLS with certificates made by openssl in the test.
class AdminServerTlsTest : public AdminServerTest {
 protected:
  void SetUp() override {
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "openssl is not installed: cannot make test certificates";
    }
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/tls");
    const std::string script = absl::StrCat(
        "set -e; mkdir -p ", dir_, "; cd ", dir_, "; ",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj /CN=cdcjoin-test-ca 2>/dev/null; "
        "for name in server client; do "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout $name.key -out $name.csr -subj /CN=localhost 2>/dev/null; "
        "openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out $name.pem -days 2 -extfile san.ext 2>/dev/null; done; "
        // A second CA whose certificates the server must refuse.
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout other.key -out other.pem -days 2 -subj /CN=other 2>/dev/null");
    ASSERT_EQ(system(script.c_str()), 0) << "openssl failed";
  }

  std::string Pem(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // GetStatus over a TLS channel trusting ca.pem, with an optional client certificate.
  grpc::Status CallOverTls(const std::string& cert, const std::string& key) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Pem("ca.pem");
    ssl.pem_cert_chain = cert;
    ssl.pem_private_key = key;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto channel =
        grpc::CreateCustomChannel(server_->address(), grpc::SslCredentials(ssl), args);
    auto stub = v1::Admin::NewStub(channel);
    v1::Status status;
    auto context = Context();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    return stub->GetStatus(context.get(), v1::GetStatusRequest(), &status);
  }

  std::string dir_;
};

TEST_F(AdminServerTlsTest, ServerCertificate) {
  AdminServerOptions options;
  options.tls_cert_pem = Pem("server.pem");
  options.tls_key_pem = Pem("server.key");
  StartServer(options);
  grpc::Status status = CallOverTls("", "");
  EXPECT_TRUE(status.ok()) << status.error_message();
  // A plaintext client gets nowhere.
  v1::Status snapshot;
  auto context = Context();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(stub_->GetStatus(context.get(), v1::GetStatusRequest(), &snapshot).ok());
}

TEST_F(AdminServerTlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  AdminServerOptions options;
  options.tls_cert_pem = Pem("server.pem");
  options.tls_key_pem = Pem("server.key");
  options.tls_client_ca_pem = Pem("ca.pem");
  StartServer(options);
  EXPECT_FALSE(CallOverTls("", "").ok()) << "no client certificate";
  EXPECT_FALSE(CallOverTls(Pem("other.pem"), Pem("other.key")).ok()) << "certificate of another CA";
  grpc::Status status = CallOverTls(Pem("client.pem"), Pem("client.key"));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace cdcjoin
