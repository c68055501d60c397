#include "service/admin_server.h"

#include <grpcpp/alarm.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/cdcjoin/v1/admin.grpc.pb.h"
#include "service/config.h"
#include "service/logging.h"
#include "service/version.h"

namespace cdcjoin {
namespace {

constexpr int kMinWatchIntervalMs = 100;
constexpr int kMaxWatchIntervalMs = 60000;
constexpr int kDefaultWatchIntervalMs = 1000;

absl::StatusOr<std::string> ReadWholeFile(const std::string& field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(field, ": cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Compares without an early exit, so the time taken does not tell how much of a guess matched.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

v1::State ToProtoState(PipelineState state) {
  switch (state) {
    case PipelineState::kStarting:
      return v1::STARTING;
    case PipelineState::kRunning:
      return v1::RUNNING;
    case PipelineState::kPaused:
      return v1::PAUSED;
    case PipelineState::kSwitching:
      return v1::SWITCHING;
    case PipelineState::kDegraded:
      return v1::DEGRADED;
    case PipelineState::kStopping:
    case PipelineState::kStopped:
      return v1::STOPPING;
  }
  return v1::STATE_UNSPECIFIED;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// The Admin methods are served over raw bytes and parsed here: gRPC's typed callback handlers
// answer a request that does not parse with UNIMPLEMENTED and no message, which tells a client
// nothing about what it sent wrong.
template <typename Request>
grpc::Status ParseRequest(const grpc::ByteBuffer& raw, Request* request) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (raw.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (!request->ParseFromString(bytes)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("request: ", raw.Length(), " bytes that are not a ",
                                     Request::descriptor()->full_name()));
  }
  return grpc::Status::OK;
}

grpc::ByteBuffer SerializeResponse(const google::protobuf::Message& response) {
  grpc::Slice slice(response.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

// Answers one unary call: `status` and, when it is OK, `response`. Any thread, exactly once.
template <typename Response>
using Respond = std::function<void(grpc::Status status, const Response& response)>;

// Parses the request, then hands it to `serve` with the way to answer.
template <typename Request, typename Response, typename Serve>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* raw_request,
                                     grpc::ByteBuffer* raw_response, Serve serve) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Request request;
  if (grpc::Status parsed = ParseRequest(*raw_request, &request); !parsed.ok()) {
    reactor->Finish(parsed);
    return reactor;
  }
  serve(request, Respond<Response>([reactor, raw_response](grpc::Status status,
                                                           const Response& response) {
    if (status.ok()) *raw_response = SerializeResponse(response);
    reactor->Finish(status);
  }));
  return reactor;
}

using RawAdminService = v1::Admin::WithRawCallbackMethod_GetStatus<
    v1::Admin::WithRawCallbackMethod_WatchStatus<v1::Admin::WithRawCallbackMethod_SwitchMode<
        v1::Admin::WithRawCallbackMethod_Pause<v1::Admin::WithRawCallbackMethod_Resume<
            v1::Admin::WithRawCallbackMethod_GetConfig<
                v1::Admin::WithRawCallbackMethod_DeadLetter<v1::Admin::Service>>>>>>>;

class AdminServerImpl;

// One WatchStatus stream: write a Status, wait the interval on an alarm, write the next one.
// Writes, alarm callbacks and Finish form one chain (never two at once), so only Stop() and
// OnCancel() come from other threads; they set a flag and cancel the alarm, and the chain
// finishes at its next step. The object deletes itself once OnDone ran and no alarm callback is
// pending.
class StatusWriter : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  StatusWriter(AdminServerImpl* server, absl::Duration interval)
      : server_(server), interval_(interval) {}

  void Begin();
  // Ends the stream with `status` at the chain's next step. Any thread.
  void Stop(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (!stop_requested_) {
      stop_requested_ = true;
      stop_status_ = std::move(status);
    }
    alarm_.Cancel();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Stop(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    }
    {
      absl::MutexLock lock(&mu_);
      if (!stop_requested_) {
        ++refs_;  // Released by the alarm callback, which always runs (ok=false on Cancel).
        alarm_.Set(absl::ToChronoTime(absl::Now() + interval_),
                   [this](bool fired) { OnAlarm(fired); });
        return;
      }
    }
    FinishOnce();
  }

  void OnCancel() override { Stop(grpc::Status::CANCELLED); }

  void OnDone() override;

 private:
  void OnAlarm(bool fired) {
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      stop = stop_requested_ || !fired;
    }
    if (stop) {
      FinishOnce();
    } else {
      WriteNext();
    }
    Unref();
  }

  void WriteNext();

  void FinishOnce() {
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      status = stop_status_;
    }
    Finish(status);
  }

  void Unref() {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  AdminServerImpl* const server_;
  const absl::Duration interval_;
  grpc::ByteBuffer status_;  // The Status being written; only the chain touches it.
  grpc::Alarm alarm_;
  absl::Mutex mu_;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status stop_status_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // One for OnDone, one per pending alarm callback.
  int refs_ ABSL_GUARDED_BY(mu_) = 1;
};

// A WatchStatus refused before it started (auth, a request that does not parse, bad interval).
class RefusedWriter : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedWriter(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

class AdminServerImpl final : public AdminServer, public RawAdminService {
 public:
  AdminServerImpl(AdminServerOptions options, Pipeline* pipeline)
      : options_(std::move(options)), pipeline_(pipeline), started_(absl::Now()) {}

  ~AdminServerImpl() override { Shutdown(absl::Seconds(2)); }

  absl::Status Init() {
    std::shared_ptr<grpc::ServerCredentials> credentials;
    if (!options_.tls_cert_pem.empty()) {
      grpc::SslServerCredentialsOptions ssl(
          options_.tls_client_ca_pem.empty()
              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      ssl.pem_key_cert_pairs.push_back({options_.tls_key_pem, options_.tls_cert_pem});
      ssl.pem_root_certs = options_.tls_client_ca_pem;
      credentials = grpc::SslServerCredentials(ssl);
    } else {
      credentials = grpc::InsecureServerCredentials();
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    // Without this a second daemon on the same port would silently share it (SO_REUSEPORT).
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort(options_.listen_address, credentials, &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("admin.listen_address: cannot listen on ", options_.listen_address));
    }
    if (!options_.health_listen_address.empty()) {
      // Nothing registered: the default health service is all it serves.
      grpc::ServerBuilder health_builder;
      health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
      health_builder.AddListeningPort(options_.health_listen_address,
                                      grpc::InsecureServerCredentials(), &health_port_);
      health_server_ = health_builder.BuildAndStart();
      if (health_server_ == nullptr || health_port_ == 0) {
        return absl::UnavailableError(absl::StrCat("admin.health_listen_address: cannot listen on ",
                                                   options_.health_listen_address));
      }
    }
    // Not serving until the background thread has seen the pipeline ready.
    SetServing(false);
    background_ = std::thread([this] { BackgroundLoop(); });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  std::string health_address() const override {
    const std::string& listen = options_.health_listen_address;
    if (listen.empty()) return "";
    return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", health_port_);
  }

  std::string address() const override {
    const std::string& listen = options_.listen_address;
    return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port_);
  }

  v1::Status Snapshot() const override {
    v1::Status status;
    status.set_mode(pipeline_->mode());
    status.set_state(switching_.load() ? v1::SWITCHING : ToProtoState(pipeline_->state()));
    status.set_assigned(pipeline_->Assigned());
    const v1::Config& config = pipeline_->config();
    std::vector<PartitionStatus> partitions = pipeline_->Partitions();
    std::sort(partitions.begin(), partitions.end(),
              [](const PartitionStatus& a, const PartitionStatus& b) {
                return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
              });
    int64_t total_lag = 0;
    for (const PartitionStatus& p : partitions) {
      v1::PartitionStatus* out = status.add_partitions();
      out->set_topic(p.topic);
      if (p.source >= 0 && p.source < config.sources_size()) {
        out->set_source(config.sources(p.source).name());
      }
      out->set_partition(p.partition);
      out->set_consumed_offset(p.consumed);
      out->set_committed_offset(p.committed);
      out->set_high_watermark(p.high_watermark);
      out->set_lag(p.lag);
      out->set_data_loss(p.data_loss);
      total_lag += p.lag;
    }
    status.set_total_lag(total_lag);
    // A partition that lost data is stopped: the daemon is not healthy, whatever the sink says.
    if (status.state() == v1::RUNNING &&
        std::any_of(partitions.begin(), partitions.end(),
                    [](const PartitionStatus& p) { return p.data_loss; })) {
      status.set_state(v1::DEGRADED);
    }

    const PipelineStats& stats = pipeline_->stats();
    v1::Counters* counters = status.mutable_counters();
    counters->set_events_create(stats.events_create.load());
    counters->set_events_update(stats.events_update.load());
    counters->set_events_read(stats.events_read.load());
    counters->set_events_delete(stats.events_delete.load());
    counters->set_events_total(stats.EventsConsumed());
    counters->set_tombstones(stats.tombstones.load());
    counters->set_skipped_ops(stats.skipped_ops.load());
    counters->set_skipped_nulls(stats.skipped_nulls.load());
    counters->set_commands(stats.commands.load());
    counters->set_rows_written(stats.rows_written.load());
    counters->set_batches(stats.batches.load());
    counters->set_retries(stats.retries.load());
    counters->set_deadlocks(stats.deadlocks.load());
    counters->set_stale_writes_stopped(stats.stale_writes_stopped.load());
    counters->set_dead_lettered(stats.dead_lettered.load());
    for (DeadLetterReason reason : kDeadLetterReasons) {
      (*counters->mutable_dead_lettered_by_reason())[DeadLetterReasonName(reason)] =
          stats.dead_lettered_by_reason[static_cast<int>(reason)].load();
    }
    counters->set_ignored_by_policy(stats.ignored_by_policy.load());
    counters->set_key_disagreements(stats.key_disagreements.load());
    counters->set_late_drops(stats.late_drops.load());
    counters->set_windows_opened(stats.windows_opened.load());
    counters->set_windows_emitted(stats.windows_emitted.load());
    counters->set_offset_commits(stats.offset_commits.load());
    counters->set_data_loss_partitions(stats.data_loss_partitions.load());

    {
      absl::MutexLock lock(&samples_mu_);
      if (samples_.size() >= 2) {
        const Sample& first = samples_.front();
        const Sample& last = samples_.back();
        const double seconds = absl::ToDoubleSeconds(last.time - first.time);
        if (seconds > 0) {
          v1::Rates* rates = status.mutable_rates();
          rates->set_events_per_second((last.events - first.events) / seconds);
          rates->set_rows_per_second((last.rows - first.rows) / seconds);
          rates->set_window_seconds(seconds);
        }
      }
    }

    v1::SinkLatency* latency = status.mutable_sink_latency();
    latency->set_p50_ms(absl::ToDoubleMilliseconds(stats.sink_latency.Quantile(0.5)));
    latency->set_p99_ms(absl::ToDoubleMilliseconds(stats.sink_latency.Quantile(0.99)));
    latency->set_count(stats.sink_latency.Count());

    const std::vector<LaneStatus> lanes = pipeline_->Lanes();
    for (size_t i = 0; i < lanes.size(); ++i) {
      v1::LaneStatus* lane = status.add_lanes();
      lane->set_lane(static_cast<int32_t>(i));
      lane->set_queued(lanes[i].queued);
      lane->set_holding(lanes[i].holding);
      lane->set_attempts(lanes[i].attempts);
      lane->set_last_error(lanes[i].last_error);
      lane->set_stalled_seconds(absl::ToDoubleSeconds(lanes[i].stalled_for));
      if (const std::optional<EventPosition>& held = lanes[i].held_on; held.has_value()) {
        const int source = held->partition.source;
        lane->set_held_on(absl::StrCat(
            source >= 0 && source < config.sources_size() ? config.sources(source).topic() : "?",
            "[", held->partition.partition, "]@", held->offset));
      }
    }

    absl::Time error_time;
    std::string last_error = stats.LastError(&error_time);
    if (!last_error.empty()) {
      status.set_last_error(std::move(last_error));
      status.set_last_error_time_unix_ms(absl::ToUnixMillis(error_time));
    }
    const absl::Time now = absl::Now();
    status.set_uptime_seconds(absl::ToDoubleSeconds(now - started_));
    status.set_version(kVersion);
    for (v1::GroupMember& member : pipeline_->Members()) *status.add_members() = std::move(member);
    for (const std::string& warning : options_.warnings) status.add_warnings(warning);
    status.set_time_unix_ms(absl::ToUnixMillis(now));
    return status;
  }

  void Shutdown(absl::Duration grace) override {
    absl::MutexLock shutdown_lock(&shutdown_mu_);
    if (server_ == nullptr || shut_down_) return;
    shut_down_ = true;
    shutting_down_.store(true);
    SetServing(false);
    {
      absl::MutexLock lock(&writers_mu_);
      for (StatusWriter* writer : writers_) {
        writer->Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "cdcjoind is shutting down"));
      }
    }
    {
      absl::MutexLock lock(&background_mu_);
      stop_background_ = true;
    }
    if (background_.joinable()) background_.join();
    JoinSwitchThread();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
    if (health_server_ != nullptr) {
      health_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
      health_server_->Wait();
    }
    // Writers finish (OnDone) before Shutdown returns, but their alarms' callbacks may still be
    // on their way; they touch only the writer itself.
  }

  // Called by StatusWriter.
  void AddWriter(StatusWriter* writer) {
    bool refuse = false;
    {
      absl::MutexLock lock(&writers_mu_);
      writers_.insert(writer);
      refuse = shutting_down_.load();
    }
    if (refuse) {
      writer->Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "cdcjoind is shutting down"));
    }
  }
  void RemoveWriter(StatusWriter* writer) {
    absl::MutexLock lock(&writers_mu_);
    writers_.erase(writer);
  }

  // --- cdcjoin.v1.Admin, over raw bytes (see ServeUnary) ---

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    return ServeUnary<v1::GetStatusRequest, v1::Status>(
        context, request, response,
        [this, context](const v1::GetStatusRequest&, const Respond<v1::Status>& respond) {
          grpc::Status auth = Authorize(*context, /*mutating=*/false);
          respond(auth, auth.ok() ? Snapshot() : v1::Status());
        });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchStatus(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request) override {
    grpc::Status auth = Authorize(*context, /*mutating=*/false);
    if (!auth.ok()) return new RefusedWriter(auth);
    v1::WatchStatusRequest request;
    if (grpc::Status parsed = ParseRequest(*raw_request, &request); !parsed.ok()) {
      return new RefusedWriter(parsed);
    }
    int interval_ms = request.interval_ms();
    if (interval_ms == 0) interval_ms = kDefaultWatchIntervalMs;
    if (interval_ms < kMinWatchIntervalMs || interval_ms > kMaxWatchIntervalMs) {
      return new RefusedWriter(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("interval_ms: must be in [", kMinWatchIntervalMs, ", ",
                       kMaxWatchIntervalMs, "] (0 for ", kDefaultWatchIntervalMs, "), got ",
                       request.interval_ms())));
    }
    auto* writer = new StatusWriter(this, absl::Milliseconds(interval_ms));
    writer->Begin();
    return writer;
  }

  grpc::ServerUnaryReactor* SwitchMode(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override {
    return ServeUnary<v1::SwitchModeRequest, v1::SwitchModeResponse>(
        context, request, response,
        [this, context](const v1::SwitchModeRequest& request,
                        const Respond<v1::SwitchModeResponse>& respond) {
          StartSwitch(*context, request.mode(), respond);
        });
  }

  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override {
    return ServeUnary<v1::PauseRequest, v1::PauseResponse>(
        context, request, response,
        [this, context](const v1::PauseRequest&, const Respond<v1::PauseResponse>& respond) {
          grpc::Status auth = Authorize(*context, /*mutating=*/true);
          v1::PauseResponse paused;
          if (auth.ok()) {
            pipeline_->Pause();
            LogInfo("admin: consumption paused by the operator");
            paused.set_state(ToProtoState(pipeline_->state()));
          }
          respond(auth, paused);
        });
  }

  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    return ServeUnary<v1::ResumeRequest, v1::ResumeResponse>(
        context, request, response,
        [this, context](const v1::ResumeRequest&, const Respond<v1::ResumeResponse>& respond) {
          grpc::Status auth = Authorize(*context, /*mutating=*/true);
          v1::ResumeResponse resumed;
          if (auth.ok()) {
            pipeline_->Resume();
            LogInfo("admin: consumption resumed by the operator");
            resumed.set_state(ToProtoState(pipeline_->state()));
          }
          respond(auth, resumed);
        });
  }

  grpc::ServerUnaryReactor* GetConfig(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    return ServeUnary<v1::GetConfigRequest, v1::Config>(
        context, request, response,
        [this, context](const v1::GetConfigRequest&, const Respond<v1::Config>& respond) {
          grpc::Status auth = Authorize(*context, /*mutating=*/false);
          respond(auth, auth.ok() ? RedactSecrets(pipeline_->config()) : v1::Config());
        });
  }

  grpc::ServerUnaryReactor* DeadLetter(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override {
    return ServeUnary<v1::DeadLetterRequest, v1::DeadLetterResponse>(
        context, request, response,
        [this, context](const v1::DeadLetterRequest& request,
                        const Respond<v1::DeadLetterResponse>& respond) {
          grpc::Status status = Authorize(*context, /*mutating=*/true);
          if (status.ok() && request.topic().empty()) {
            status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "topic: required");
          }
          if (status.ok() && (request.partition() < 0 || request.offset() < 0)) {
            status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "partition, offset: must not be negative");
          }
          if (status.ok()) {
            LogWarning("admin: ", context->peer(), " asks to dead-letter ", request.topic(), "[",
                       request.partition(), "]@", request.offset());
            status = ToGrpcStatus(pipeline_->DeadLetterHeld(request.topic(), request.partition(),
                                                            request.offset(), request.note()));
          }
          respond(status, v1::DeadLetterResponse());
        });
  }

 private:
  // SwitchMode's body: validates, then drains and swaps on a thread of its own.
  void StartSwitch(const grpc::ServerContextBase& context, v1::JoinMode mode,
                   const Respond<v1::SwitchModeResponse>& respond) {
    const v1::SwitchModeResponse none;
    grpc::Status auth = Authorize(context, /*mutating=*/true);
    if (!auth.ok()) return respond(auth, none);
    if (mode != v1::DB_UPSERT && mode != v1::WINDOWED) {
      return respond(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  absl::StrCat("mode: must be DB_UPSERT or WINDOWED, got ",
                                               v1::JoinMode_IsValid(mode)
                                                   ? v1::JoinMode_Name(mode)
                                                   : absl::StrCat(static_cast<int>(mode)))),
                     none);
    }
    if (shutting_down_.load()) {
      return respond(
          grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cdcjoind is shutting down"), none);
    }
    if (switching_.exchange(true)) {
      return respond(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                  "a mode switch is already running"),
                     none);
    }
    // The switch drains the sink, which takes a while: not on a gRPC callback thread.
    JoinSwitchThread();
    absl::MutexLock lock(&switch_mu_);
    switch_thread_ = std::thread([this, mode, respond] {
      const absl::Time begin = absl::Now();
      LogInfo("admin: switching to ", v1::JoinMode_Name(mode));
      absl::StatusOr<Pipeline::SwitchReport> report = pipeline_->SwitchMode(mode);
      switching_.store(false);
      v1::SwitchModeResponse response;
      if (!report.ok()) {
        LogWarning("admin: switch to ", v1::JoinMode_Name(mode),
                   " refused: ", report.status().ToString());
        respond(ToGrpcStatus(report.status()), response);
        return;
      }
      response.set_from(report->from);
      response.set_to(report->to);
      response.set_changed(report->changed);
      response.set_paused_ms(absl::ToDoubleMilliseconds(report->paused));
      LogInfo("admin: switch ", v1::JoinMode_Name(report->from), " -> ",
              v1::JoinMode_Name(report->to), report->changed ? "" : " (already in that mode)",
              ": consumption paused ", absl::FormatDuration(report->paused), ", call took ",
              absl::FormatDuration(absl::Now() - begin));
      respond(grpc::Status::OK, response);
    });
  }

  struct Sample {
    absl::Time time;
    int64_t events = 0;
    int64_t rows = 0;
  };

  grpc::Status Authorize(const grpc::ServerContextBase& context, bool mutating) const {
    if (options_.token.empty()) {
      // Any process that reaches a port off loopback could pause or switch the daemon.
      if (mutating && !IsLoopbackListenAddress(options_.listen_address)) {
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            absl::StrCat("mutating calls on ", options_.listen_address,
                                         " (not loopback) need a token: set admin.token_file "
                                         "or admin.token_env"));
      }
      return grpc::Status::OK;
    }
    if (!mutating && options_.allow_unauthenticated_reads) return grpc::Status::OK;
    const auto& metadata = context.client_metadata();
    auto it = metadata.find("authorization");
    if (it == metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "authorization: a Bearer token is required");
    }
    const std::string presented(it->second.data(), it->second.size());
    if (!ConstantTimeEquals(presented, absl::StrCat("Bearer ", options_.token))) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "authorization: invalid token");
    }
    return grpc::Status::OK;
  }

  // The overall status ("") and the Admin service's own name follow the pipeline together.
  void SetServing(bool serving) {
    for (grpc::Server* server : {server_.get(), health_server_.get()}) {
      if (server == nullptr) continue;
      grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
      health->SetServingStatus(serving);
      health->SetServingStatus(v1::Admin::service_full_name(), serving);
    }
  }

  void JoinSwitchThread() {
    std::thread finished;
    {
      absl::MutexLock lock(&switch_mu_);
      finished = std::move(switch_thread_);
    }
    if (finished.joinable()) finished.join();
  }

  // Follows the pipeline's readiness with the health status and samples counters for the rates.
  void BackgroundLoop() {
    bool serving = false;
    absl::Time next_sample = absl::Now();
    while (true) {
      const PipelineState state = pipeline_->state();
      const std::vector<PartitionStatus> partitions = pipeline_->Partitions();
      const bool data_loss = std::any_of(partitions.begin(), partitions.end(),
                                         [](const PartitionStatus& p) { return p.data_loss; });
      const bool ready = pipeline_->Assigned() && !data_loss && state != PipelineState::kDegraded &&
                         state != PipelineState::kStopping && state != PipelineState::kStopped &&
                         state != PipelineState::kStarting;
      if (ready != serving) {
        serving = ready;
        SetServing(serving);
        LogInfo("admin: health ", serving ? "SERVING" : "NOT_SERVING", " (state ",
                PipelineStateName(state), ")");
      }
      const absl::Time now = absl::Now();
      if (now >= next_sample) {
        const PipelineStats& stats = pipeline_->stats();
        absl::MutexLock lock(&samples_mu_);
        samples_.push_back({now, stats.EventsConsumed(), stats.rows_written.load()});
        while (samples_.size() > 2 && now - samples_.front().time > options_.rate_window) {
          samples_.pop_front();
        }
        next_sample = now + options_.sample_interval;
      }
      absl::MutexLock lock(&background_mu_);
      const absl::Duration wait = std::min(options_.health_interval, next_sample - absl::Now());
      if (background_mu_.AwaitWithTimeout(absl::Condition(&stop_background_),
                                          std::max(wait, absl::ZeroDuration()))) {
        return;
      }
    }
  }

  const AdminServerOptions options_;
  Pipeline* const pipeline_;
  const absl::Time started_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> health_server_;  // Only with a health_listen_address.
  int health_port_ = 0;
  std::atomic<bool> switching_{false};
  std::atomic<bool> shutting_down_{false};

  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;

  absl::Mutex switch_mu_;
  std::thread switch_thread_ ABSL_GUARDED_BY(switch_mu_);

  absl::Mutex writers_mu_;
  std::set<StatusWriter*> writers_ ABSL_GUARDED_BY(writers_mu_);

  mutable absl::Mutex samples_mu_;
  std::deque<Sample> samples_ ABSL_GUARDED_BY(samples_mu_);

  absl::Mutex background_mu_;
  bool stop_background_ ABSL_GUARDED_BY(background_mu_) = false;
  std::thread background_;
};

void StatusWriter::Begin() {
  server_->AddWriter(this);
  WriteNext();
}

void StatusWriter::WriteNext() {
  // Finish and StartWrite run outside the lock: a reaction may run inline.
  bool stop = false;
  {
    absl::MutexLock lock(&mu_);
    stop = stop_requested_;
  }
  if (stop) {
    FinishOnce();
    return;
  }
  status_ = SerializeResponse(server_->Snapshot());
  StartWrite(&status_);
}

void StatusWriter::OnDone() {
  server_->RemoveWriter(this);
  Unref();
}

}  // namespace

absl::StatusOr<AdminServerOptions> AdminServerOptionsFromConfig(const v1::AdminConfig& config) {
  AdminServerOptions options;
  if (!config.listen_address().empty()) options.listen_address = config.listen_address();
  options.allow_unauthenticated_reads = !config.require_token_for_reads();
  options.health_listen_address = config.health_listen_address();
  if (!IsLoopbackListenAddress(options.listen_address)) {
    if (config.tls().cert_file().empty()) {
      options.warnings.push_back(absl::StrCat("admin: ", options.listen_address,
                                              " is not loopback and speaks plaintext "
                                              "(admin.insecure): tokens and status cross the "
                                              "network in clear"));
    }
    if (config.token_file().empty() && config.token_env().empty()) {
      options.warnings.push_back(absl::StrCat("admin: ", options.listen_address,
                                              " is not loopback and has no token "
                                              "(admin.insecure): mutating calls are refused"));
    }
  }
  if (!config.token_file().empty()) {
    absl::StatusOr<std::string> token = ReadWholeFile("admin.token_file", config.token_file());
    if (!token.ok()) return token.status();
    // The first line, without surrounding whitespace (files usually end with a newline).
    options.token = std::string(absl::StripAsciiWhitespace(token->substr(0, token->find('\n'))));
    if (options.token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin.token_file: ", config.token_file(), " holds no token"));
    }
  } else if (!config.token_env().empty()) {
    const char* value = std::getenv(config.token_env().c_str());
    if (value == nullptr || *value == '\0') {
      return absl::NotFoundError(
          absl::StrCat("admin.token_env: $", config.token_env(), " is not set or empty"));
    }
    options.token = value;
  }
  const v1::AdminTlsConfig& tls = config.tls();
  if (!tls.cert_file().empty()) {
    absl::StatusOr<std::string> cert = ReadWholeFile("admin.tls.cert_file", tls.cert_file());
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadWholeFile("admin.tls.key_file", tls.key_file());
    if (!key.ok()) return key.status();
    options.tls_cert_pem = *std::move(cert);
    options.tls_key_pem = *std::move(key);
    if (!tls.client_ca_file().empty()) {
      absl::StatusOr<std::string> ca =
          ReadWholeFile("admin.tls.client_ca_file", tls.client_ca_file());
      if (!ca.ok()) return ca.status();
      options.tls_client_ca_pem = *std::move(ca);
    }
  }
  return options;
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(AdminServerOptions options,
                                                                Pipeline* pipeline) {
  auto server = std::make_unique<AdminServerImpl>(std::move(options), pipeline);
  if (absl::Status s = server->Init(); !s.ok()) return s;
  return std::unique_ptr<AdminServer>(std::move(server));
}

}  // namespace cdcjoin
