#include "service/pipeline.h"

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "join/db_upsert_joiner.h"
#include "join/event_time_aligner.h"
#include "join/windowed_stage.h"
#include "join/offset_tracker.h"
#include "join/table_schema.h"
#include "service/dead_letter_queue.h"
#include "service/debezium_decoder.h"
#include "service/kafka_client.h"
#include "service/logging.h"
#include "storage/rocksdb_window_store.h"

namespace cdcjoin {

const char* PipelineStateName(PipelineState state) {
  switch (state) {
    case PipelineState::kStarting:
      return "starting";
    case PipelineState::kRunning:
      return "running";
    case PipelineState::kPaused:
      return "paused";
    case PipelineState::kDegraded:
      return "degraded";
    case PipelineState::kSwitching:
      return "switching";
    case PipelineState::kStopping:
      return "stopping";
    case PipelineState::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

// How long the poll thread blocks in one consume(): short, so pause, stop and commits are prompt.
constexpr int kPollTimeoutMs = 100;
// How long a revocation waits for the lanes to apply what the revoked partitions fed them.
constexpr absl::Duration kRevokeDrainTimeout = absl::Seconds(30);
// How long a mode switch waits for pending batches before it gives up (and keeps the old mode).
constexpr absl::Duration kSwitchDrainTimeout = absl::Seconds(60);
// How often, and how patiently, the brokers are asked for the watermarks of paused partitions.
constexpr absl::Duration kWatermarkQueryInterval = absl::Seconds(1);
constexpr int kWatermarkQueryTimeoutMs = 2000;
// Records handled per poll batch: the windowed joiner commits its state once per batch.
constexpr size_t kMaxPollBatch = 500;
// How often idle windows are checked and acknowledgements handed to the joiner.
constexpr absl::Duration kAdvanceInterval = absl::Milliseconds(100);

using TopicPartitions = std::vector<RdKafka::TopicPartition*>;

// Owns the TopicPartition pointers librdkafka's C++ API hands out.
struct TopicPartitionList {
  TopicPartitions items;
  ~TopicPartitionList() { RdKafka::TopicPartition::destroy(items); }
};

class PipelineImpl final : public Pipeline, public RdKafka::RebalanceCb {
 public:
  explicit PipelineImpl(Options options)
      : options_(std::move(options)), kafka_events_(&stats_) {}

  ~PipelineImpl() override { Stop(absl::Seconds(10)).IgnoreError(); }

  absl::Status Init() {
    absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(options_.config);
    if (!schema.ok()) return schema.status();
    schema_ = *std::move(schema);

    DecoderOptions decoder_options;
    decoder_options.max_value_bytes = options_.config.sink().max_value_bytes();
    decoder_options.event_time_from_record_timestamp =
        options_.config.window().event_time() == v1::RECORD_TIMESTAMP;
    absl::StatusOr<DebeziumDecoder> decoder = DebeziumDecoder::Create(&schema_, decoder_options);
    if (!decoder.ok()) return decoder.status();
    decoder_ = std::make_unique<DebeziumDecoder>(*std::move(decoder));

    mode_.store(options_.config.mode());
    if (absl::Status s = OpenWindowState(); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<DeadLetterQueue>> dead_letters = DeadLetterQueue::Create(
        BaseKafkaSettings(options_.config.kafka(), options_.bootstrap_servers),
        options_.config.kafka().dead_letter_topic(),
        [this](const EventPosition& position) { tracker_.Done(position); }, &stats_);
    if (!dead_letters.ok()) return dead_letters.status();
    dead_letters_ = *std::move(dead_letters);
    if (absl::Status s = CreateWatermarkClient(); !s.ok()) return s;
    if (absl::Status s = CreateConsumer(); !s.ok()) return s;

    const v1::SinkConfig& sink = options_.config.sink();
    SinkLanesOptions lanes;
    lanes.lanes = sink.lanes();
    lanes.batch_rows = sink.batch_rows();
    lanes.linger = absl::Milliseconds(sink.linger_ms());
    lanes.queue_capacity = sink.queue_capacity();
    lanes.max_attempts = sink.retry().max_attempts();
    lanes.initial_backoff = absl::Milliseconds(sink.retry().initial_backoff_ms());
    lanes.max_backoff = absl::Milliseconds(sink.retry().max_backoff_ms());
    absl::StatusOr<std::unique_ptr<SinkLanes>> started = SinkLanes::Start(
        lanes, options_.connect_writer,
        [this](absl::Span<const RowCommand> applied) {
          for (const RowCommand& command : applied) tracker_.Done(command.covers);
          if (windowed_ != nullptr) windowed_->Applied(applied);
        },
        &stats_);
    if (!started.ok()) return started.status();
    lanes_ = *std::move(started);
    if (windowed_ != nullptr) {
      // Windows emitted before a crash and never acknowledged go first; in DB_UPSERT mode the
      // windows still open are flushed too, so nothing a windowed run held is lost.
      absl::StatusOr<std::vector<RowCommand>> recovered =
          windowed_->Recover(/*flush_open=*/mode_.load() != v1::WINDOWED);
      if (!recovered.ok()) return recovered.status();
      if (!recovered->empty()) {
        LogInfo("window state: re-sending ", recovered->size(),
                " commands of windows not yet applied");
      }
      EnqueueBefore(*recovered, absl::InfiniteFuture());
    }

    std::vector<std::string> topics = {schema_.sources[0].topic, schema_.sources[1].topic};
    RdKafka::ErrorCode err = consumer_->subscribe(topics);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka subscribe ", absl::StrJoin(topics, ","),
                                                 ": ", RdKafka::err2str(err)));
    }
    LogInfo("consuming ", absl::StrJoin(topics, ", "), " as group ",
            options_.config.kafka().group_id(), " from ", options_.bootstrap_servers);
    poll_thread_ = std::thread([this] { PollLoop(); });
    watermark_thread_ = std::thread([this] { QueryWatermarks(); });
    return absl::OkStatus();
  }

  // While consumption is paused nothing is fetched, so the consumer's cached watermarks go
  // stale. This thread asks the brokers (through the producer's handle, off the poll thread:
  // each query is a round trip) so status keeps showing the backlog.
  void QueryWatermarks() {
    while (!stop_requested_.load()) {
      absl::SleepFor(kWatermarkQueryInterval);
      if (!operator_paused_.load() && !held_fatal_.load() &&
          stats_.data_loss_partitions.load() == 0) {
        continue;
      }
      std::map<SourcePartition, int64_t> highs;
      for (const PartitionStatus& partition : Partitions()) {
        int64_t low = -1;
        int64_t high = -1;
        if (watermark_client_->query_watermark_offsets(partition.topic, partition.partition, &low, &high,
                                               kWatermarkQueryTimeoutMs) ==
            RdKafka::ERR_NO_ERROR) {
          highs[SourcePartition{partition.source, partition.partition}] = high;
        }
        if (stop_requested_.load()) return;
      }
      absl::MutexLock lock(&queried_mu_);
      queried_high_ = std::move(highs);
    }
  }

  absl::Status Stop(absl::Duration timeout) override {
    absl::MutexLock stop_lock(&stop_mu_);
    if (stopped_ || lanes_ == nullptr) return absl::OkStatus();
    state_.store(PipelineState::kStopping);
    stop_requested_.store(true);
    {
      // Wakes a SwitchMode caller waiting for a poll thread that is about to end.
      absl::MutexLock lock(&switch_mu_);
    }
    if (poll_thread_.joinable()) poll_thread_.join();
    if (watermark_thread_.joinable()) watermark_thread_.join();

    const absl::Time deadline = absl::Now() + timeout;
    absl::Status result = absl::OkStatus();
    if (windowed_ != nullptr && mode_.load() == v1::WINDOWED) {
      std::vector<EventPosition> absorbed;
      std::vector<RowCommand> emitted;
      if (absl::Status s = windowed_->Flush(NowMillis(), &absorbed, &emitted); !s.ok()) {
        LogError("stopping: flushing windows: ", s.ToString());
      }
      tracker_.Done(absorbed);
      EnqueueBefore(emitted, deadline);
    }
    if (!lanes_->Drain(deadline - absl::Now())) {
      result = absl::DeadlineExceededError(
          absl::StrCat("stopping: the sink did not apply everything within ",
                       absl::FormatDuration(timeout), "; the rest is consumed again on restart"));
      LogWarning(result.message());
    }
    lanes_->Stop();
    // Dead-letter deliveries still in flight count as unapplied until their report arrives.
    dead_letters_->Flush(absl::Seconds(5));
    DeliverAcknowledgements();
    CommitApplied();
    RefreshPartitionStatus();
    consumer_->close();
    state_.store(PipelineState::kStopped);
    stopped_ = true;
    LogInfo("stopped: ", stats_.EventsConsumed(), " events consumed, ", stats_.rows_written.load(),
            " commands applied, ", stats_.dead_lettered.load(), " dead-lettered");
    return result;
  }

  absl::StatusOr<SwitchReport> SwitchMode(v1::JoinMode target) override {
    if (target != v1::DB_UPSERT && target != v1::WINDOWED) {
      return absl::InvalidArgumentError("mode: must be DB_UPSERT or WINDOWED");
    }
    absl::MutexLock lock(&switch_mu_);
    if (switch_requested_.load()) {
      return absl::FailedPreconditionError("mode: another switch is running");
    }
    if (stop_requested_.load()) return absl::FailedPreconditionError("stopping");
    if (mode_.load() == target) {
      SwitchReport report;
      report.from = report.to = target;
      return report;
    }
    switch_target_ = target;
    switch_result_ = absl::UnknownError("pending");
    switch_requested_.store(true);
    auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(switch_mu_) {
      return !switch_requested_.load() || stop_requested_.load();
    };
    switch_mu_.Await(absl::Condition(&done));
    if (switch_requested_.load()) {
      switch_requested_.store(false);
      return absl::CancelledError("stopping");
    }
    return switch_result_;
  }

  v1::JoinMode mode() const override { return mode_.load(); }
  const v1::Config& config() const override { return options_.config; }

  void Pause() override { operator_paused_.store(true); }
  void Resume() override { operator_paused_.store(false); }

  PipelineState state() const override {
    const PipelineState state = state_.load();
    if (state == PipelineState::kRunning &&
        (lanes_->Degraded() || held_fatal_.load() || AnyDataLoss())) {
      return PipelineState::kDegraded;
    }
    return state;
  }

  bool AnyDataLoss() const {
    absl::MutexLock lock(&status_mu_);
    for (const PartitionStatus& partition : partitions_) {
      if (partition.data_loss) return true;
    }
    return false;
  }

  std::vector<PartitionStatus> Partitions() const override {
    absl::MutexLock lock(&status_mu_);
    return partitions_;
  }

  std::vector<LaneStatus> Lanes() const override { return lanes_->Status(); }
  const PipelineStats& stats() const override { return stats_; }
  bool Assigned() const override { return assigned_.load(); }

  // RdKafka::RebalanceCb. Runs on the poll thread, inside consume().
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    TopicPartitions& partitions) override {
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      OnAssign(consumer, partitions);
      RdKafka::Error* error = nullptr;
      if (cooperative) {
        error = consumer->incremental_assign(partitions);
      } else {
        consumer->assign(partitions);
      }
      if (error != nullptr) {
        LogError("kafka assign: ", error->str());
        delete error;
      }
      assigned_.store(true);
      // Paused state carries over to what is newly assigned.
      if (operator_paused_.load() || backpressure_paused_) consumer->pause(partitions);
    } else {
      OnRevoke(partitions);
      if (cooperative) {
        RdKafka::Error* error = consumer->incremental_unassign(partitions);
        if (error != nullptr) {
          LogError("kafka unassign: ", error->str());
          delete error;
        }
      } else {
        consumer->unassign();
        assigned_.store(false);
      }
    }
    // Leaving the group on stop revokes everything: keep the last status for the final report.
    if (!stop_requested_.load()) RefreshPartitionStatus();
  }

 private:
  // A client of its own for the watermark queries of paused partitions (QueryWatermarks), so
  // those round trips never queue behind dead letters.
  absl::Status CreateWatermarkClient() {
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeKafkaConf(
        BaseKafkaSettings(options_.config.kafka(), options_.bootstrap_servers));
    if (!conf.ok()) return conf.status();
    std::string error;
    (*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&kafka_events_), error);
    watermark_client_.reset(RdKafka::Producer::create(conf->get(), error));
    if (watermark_client_ == nullptr) {
      return absl::InternalError(absl::StrCat("kafka watermark client: ", error));
    }
    return absl::OkStatus();
  }

  absl::Status CreateConsumer() {
    const v1::KafkaConfig& kafka = options_.config.kafka();
    std::map<std::string, std::string> settings =
        BaseKafkaSettings(kafka, options_.bootstrap_servers);
    settings["group.id"] = kafka.group_id();
    settings["session.timeout.ms"] = absl::StrCat(kafka.session_timeout_ms());
    // Offsets are committed by hand, only up to what the sink applied (at-least-once).
    settings["enable.auto.commit"] = "false";
    settings["enable.auto.offset.store"] = "false";
    // An out-of-range offset means retention overtook us: data loss, never silently reset.
    settings["auto.offset.reset"] = "error";
    // Range assignment over one subscription to both topics keeps partition p of both topics on
    // one instance (co-partitioning, which the windowed joiner needs).
    if (settings.count("partition.assignment.strategy") == 0) {
      settings["partition.assignment.strategy"] = "range";
    }
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeKafkaConf(settings);
    if (!conf.ok()) return conf.status();
    std::string error;
    (*conf)->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), error);
    (*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&kafka_events_), error);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf->get(), error));
    if (consumer_ == nullptr) return absl::InternalError(absl::StrCat("kafka consumer: ", error));
    return absl::OkStatus();
  }

  // The windowed joiner's RocksDB state, opened whenever a state_dir is configured so that a
  // switch to WINDOWED needs nothing new and state a windowed run left behind is never ignored.
  absl::Status OpenWindowState() {
    const v1::WindowConfig& window = options_.config.window();
    if (window.state_dir().empty()) return absl::OkStatus();
    absl::StatusOr<std::unique_ptr<RocksDbWindowStore>> store = RocksDbWindowStore::Open(
        window.state_dir(), RocksDbWindowStoreOptions::FromConfig(window));
    if (!store.ok()) return store.status();
    window_store_ = *std::move(store);
    absl::StatusOr<std::unique_ptr<WindowedStage>> stage =
        WindowedStage::Open(schema_, window, window_store_.get());
    if (!stage.ok()) return stage.status();
    windowed_ = *std::move(stage);
    return absl::OkStatus();
  }

  SourcePartition ToSourcePartition(const RdKafka::TopicPartition& tp) const {
    return SourcePartition{schema_.SourceIndexOfTopic(tp.topic()), tp.partition()};
  }

  void OnAssign(RdKafka::KafkaConsumer* consumer, TopicPartitions& partitions) {
    RdKafka::ErrorCode err = consumer->committed(partitions, 10000);
    if (err != RdKafka::ERR_NO_ERROR) {
      LogWarning("kafka committed offsets: ", RdKafka::err2str(err),
                 "; partitions without them start per kafka.start_from");
    }
    const bool from_latest = options_.config.kafka().start_from() == v1::LATEST;
    // The window state's offsets were written atomically with the state: in WINDOWED mode
    // they, not Kafka's (which lag behind what the state holds), say where to go on, unless
    // Kafka's are newer because a DB_UPSERT run came after the state was last written.
    std::map<SourcePartition, int64_t> stored;
    if (windowed_ != nullptr && mode_.load() == v1::WINDOWED) stored = windowed_->StoredOffsets();
    std::vector<std::string> described;
    for (RdKafka::TopicPartition* tp : partitions) {
      const SourcePartition sp = ToSourcePartition(*tp);
      auto in_state = stored.find(sp);
      if (in_state != stored.end() && in_state->second > tp->offset()) {
        tp->set_offset(in_state->second);
      }
      const int64_t committed = tp->offset();
      if (committed < 0) {
        tp->set_offset(from_latest ? RdKafka::Topic::OFFSET_END
                                   : RdKafka::Topic::OFFSET_BEGINNING);
      }
      tracker_.Reset(sp, committed >= 0 ? committed : -1);
      // librdkafka says "none" with a logical offset (-1001); status says -1.
      committed_[sp] = committed >= 0 ? committed : -1;
      data_loss_.erase(sp);
      described.push_back(absl::StrCat(tp->topic(), "[", tp->partition(), "]@",
                                       committed >= 0 ? absl::StrCat(committed)
                                                      : (from_latest ? "latest" : "earliest")));
    }
    LogInfo("assigned ", partitions.size(), " partitions: ", absl::StrJoin(described, " "));
  }

  void OnRevoke(TopicPartitions& partitions) {
    LogInfo("revoking ", partitions.size(), " partitions: applying what they fed the sink first");
    if (windowed_ != nullptr && mode_.load() == v1::WINDOWED) {
      std::set<int32_t> numbers;
      for (RdKafka::TopicPartition* tp : partitions) numbers.insert(tp->partition());
      for (int32_t number : numbers) {
        std::vector<EventPosition> absorbed;
        std::vector<RowCommand> emitted;
        TakeWindowOutput(windowed_->FlushPartition(number, NowMillis(), &absorbed, &emitted),
                         absorbed, emitted);
      }
    }
    if (!lanes_->Drain(kRevokeDrainTimeout)) {
      LogWarning("revocation: the sink did not apply everything within ",
                 absl::FormatDuration(kRevokeDrainTimeout),
                 "; the new owner consumes those events again");
    }
    DeliverAcknowledgements();
    CommitApplied();
    for (RdKafka::TopicPartition* tp : partitions) {
      const SourcePartition sp = ToSourcePartition(*tp);
      tracker_.Remove(sp);
      committed_.erase(sp);
    }
  }

  // Commits, per partition, the offset below which every event took effect.
  void CommitApplied() {
    TopicPartitionList list;
    // Events the window state holds are not applied yet: Kafka's offset stays below them, so
    // an instance that takes over without this state reads them again.
    std::map<SourcePartition, int64_t> held;
    if (windowed_ != nullptr) held = windowed_->LowestHeldOffsets();
    for (const OffsetTracker::PartitionProgress& progress : tracker_.Progress()) {
      int64_t next = progress.next_offset;
      if (auto in_state = held.find(progress.partition); in_state != held.end()) {
        next = std::min(next, in_state->second);
      }
      auto it = committed_.find(progress.partition);
      if (it == committed_.end() || next < 0 || next <= it->second) continue;
      list.items.push_back(RdKafka::TopicPartition::create(
          schema_.sources[progress.partition.source].topic, progress.partition.partition, next));
    }
    if (list.items.empty()) return;
    RdKafka::ErrorCode err = consumer_->commitSync(list.items);
    if (err != RdKafka::ERR_NO_ERROR) {
      // Nothing is lost: the next commit covers these offsets too.
      LogWarning("kafka commit: ", RdKafka::err2str(err));
      stats_.RecordError(absl::StrCat("kafka commit: ", RdKafka::err2str(err)));
      return;
    }
    for (RdKafka::TopicPartition* tp : list.items) {
      if (tp->err() != RdKafka::ERR_NO_ERROR) {
        LogWarning("kafka commit ", tp->topic(), "[", tp->partition(), "]: ",
                   RdKafka::err2str(tp->err()));
        continue;
      }
      committed_[ToSourcePartition(*tp)] = tp->offset();
    }
    stats_.offset_commits.fetch_add(1, std::memory_order_relaxed);
  }

  void RefreshPartitionStatus() {
    std::vector<PartitionStatus> statuses;
    for (const OffsetTracker::PartitionProgress& progress : tracker_.Progress()) {
      PartitionStatus status;
      status.source = progress.partition.source;
      status.partition = progress.partition.partition;
      status.topic = schema_.sources[status.source].topic;
      status.consumed = progress.consumed >= 0 ? progress.consumed + 1 : progress.next_offset;
      auto it = committed_.find(progress.partition);
      status.committed = it == committed_.end() ? -1 : it->second;
      int64_t low = -1;
      int64_t high = -1;
      RdKafka::ErrorCode watermarks =
          consumer_->get_watermark_offsets(status.topic, status.partition, &low, &high);
      // A paused partition is not fetched, so its cached watermarks go stale and its lag would
      // read as zero while the backlog grows: use what the broker said last (QueryWatermarks).
      const bool paused = operator_paused_.load() || held_fatal_.load() ||
                          data_loss_.count(progress.partition) > 0;
      if (paused) {
        absl::MutexLock lock(&queried_mu_);
        if (auto it = queried_high_.find(progress.partition); it != queried_high_.end()) {
          high = std::max(high, it->second);
          watermarks = RdKafka::ERR_NO_ERROR;
        }
      }
      if (watermarks == RdKafka::ERR_NO_ERROR && high >= 0) {
        status.high_watermark = high;
        status.lag = high - std::max<int64_t>(status.committed, low < 0 ? 0 : low);
        if (status.lag < 0) status.lag = 0;
      }
      status.data_loss = data_loss_.count(progress.partition) > 0;
      statuses.push_back(std::move(status));
    }
    absl::MutexLock lock(&status_mu_);
    partitions_ = std::move(statuses);
  }

  void PauseAssigned() {
    TopicPartitionList assignment;
    consumer_->assignment(assignment.items);
    consumer_->pause(assignment.items);
  }

  // Resumes everything assigned except partitions stopped for data loss.
  void ResumeAssigned() {
    TopicPartitionList assignment;
    consumer_->assignment(assignment.items);
    TopicPartitions resumable;
    for (RdKafka::TopicPartition* tp : assignment.items) {
      if (data_loss_.count(ToSourcePartition(*tp)) == 0) resumable.push_back(tp);
    }
    consumer_->resume(resumable);
  }

  // Background work that must go on while the poll thread waits: delivery reports, commits,
  // status. Records a paused consumer still returns (fetched before the pause) are kept, in
  // order, for later.
  void ServeWhileBlocked() {
    dead_letters_->Poll();
    MaybeCommit();
    std::unique_ptr<RdKafka::Message> message(consumer_->consume(0));
    if (message != nullptr && message->err() != RdKafka::ERR__TIMED_OUT) {
      held_.push_back(std::move(message));
    }
    DeliverAcknowledgements();
  }

  // Hands a command to its lane, waiting (partitions paused) while the lane is full. False when
  // stopping: the command is then not applied and its event not acknowledged.
  bool Enqueue(RowCommand& command) {
    while (!lanes_->TryEnqueue(command)) {
      if (!backpressure_paused_) {
        backpressure_paused_ = true;
        PauseAssigned();
      }
      if (stop_requested_.load()) return false;
      lanes_->WaitForRoom(absl::Milliseconds(50));
      ServeWhileBlocked();
    }
    stats_.commands.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void CountOp(const Decoded& decoded) {
    switch (decoded.outcome) {
      case DecodeOutcome::kTombstone:
        stats_.tombstones.fetch_add(1, std::memory_order_relaxed);
        return;
      case DecodeOutcome::kSkippedOp:
        stats_.skipped_ops.fetch_add(1, std::memory_order_relaxed);
        return;
      case DecodeOutcome::kSkippedNull:
        stats_.skipped_nulls.fetch_add(1, std::memory_order_relaxed);
        return;
      case DecodeOutcome::kEvent:
        break;
    }
    switch (decoded.op) {
      case 'c':
        stats_.events_create.fetch_add(1, std::memory_order_relaxed);
        break;
      case 'r':
        stats_.events_read.fetch_add(1, std::memory_order_relaxed);
        break;
      case 'd':
        stats_.events_delete.fetch_add(1, std::memory_order_relaxed);
        break;
      default:
        stats_.events_update.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void OnDataLoss(RdKafka::Message& message) {
    const SourcePartition sp{schema_.SourceIndexOfTopic(message.topic_name()),
                             message.partition()};
    if (sp.source < 0 || !data_loss_.insert(sp).second) return;
    const std::string error = absl::StrCat(
        "DATA LOSS: ", message.topic_name(), "[", message.partition(),
        "]: the committed offset is out of range (retention overtook the consumer): ",
        message.errstr(),
        ". The partition is stopped and will not be reset automatically; an operator must decide "
        "(re-snapshot the source, or reset the group's offset deliberately) and restart.");
    LogError(error);
    stats_.RecordError(error);
    stats_.data_loss_partitions.fetch_add(1, std::memory_order_relaxed);
    RefreshPartitionStatus();
    TopicPartitionList list;
    list.items.push_back(RdKafka::TopicPartition::create(message.topic_name(), message.partition()));
    consumer_->pause(list.items);
  }

  // Decodes one record; nullopt when it needs no joiner (error, skipped, dead-lettered: then it
  // is already acknowledged or will be on delivery). Sets *dead_lettered when it was.
  std::optional<ChangeEvent> Decode(RdKafka::Message& message, bool* dead_lettered) {
    switch (message.err()) {
      case RdKafka::ERR_NO_ERROR:
        break;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return std::nullopt;
      case RdKafka::ERR__AUTO_OFFSET_RESET:
      case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
        OnDataLoss(message);
        return std::nullopt;
      default:
        LogWarning("kafka consume: ", message.errstr());
        return std::nullopt;
    }
    const int source = schema_.SourceIndexOfTopic(message.topic_name());
    if (source < 0) return std::nullopt;
    const EventPosition position{SourcePartition{source, message.partition()}, message.offset()};
    tracker_.Track(position);
    std::optional<std::string_view> key;
    if (message.key_pointer() != nullptr) {
      key = std::string_view(static_cast<const char*>(message.key_pointer()), message.key_len());
    }
    std::optional<std::string_view> value;
    if (message.payload() != nullptr) {
      value = std::string_view(static_cast<const char*>(message.payload()), message.len());
    }
    absl::StatusOr<Decoded> decoded =
        decoder_->Decode(source, key, value, message.timestamp().timestamp, position);
    if (!decoded.ok()) {
      dead_letters_->Send(message, position, decoded.status(),
                          [this] { return stop_requested_.load(); });
      *dead_lettered = true;
      return std::nullopt;
    }
    CountOp(*decoded);
    if (decoded->outcome != DecodeOutcome::kEvent) {
      tracker_.Done(position);
      return std::nullopt;
    }
    return std::move(decoded->event);
  }

  // One poll batch, in consumption order, through the joiner of the current mode.
  void HandleBatch(std::vector<std::unique_ptr<RdKafka::Message>>& messages) {
    const bool windowed = mode_.load() == v1::WINDOWED;
    std::vector<ChangeEvent> window_events;
    bool dead_lettered = false;
    for (std::unique_ptr<RdKafka::Message>& message : messages) {
      std::optional<ChangeEvent> event = Decode(*message, &dead_lettered);
      if (!event.has_value()) continue;
      if (windowed) {
        window_events.push_back(*std::move(event));
        continue;
      }
      std::optional<RowCommand> command = BuildDbUpsertCommand(schema_, *event);
      if (!command.has_value()) {
        tracker_.Done(event->position);
        continue;
      }
      if (!Enqueue(*command)) return;
    }
    if (window_events.empty()) return;
    if (dead_lettered) {
      // The joiner stores offsets past these records: their dead letters must be durable
      // first, or a crash now would lose them.
      dead_letters_->Flush(absl::Seconds(30));
    }
    const int64_t now = NowMillis();
    for (ChangeEvent& event : window_events) windowed_->Add(std::move(event), now);
    std::vector<EventPosition> absorbed;
    std::vector<RowCommand> emitted;
    TakeWindowOutput(windowed_->Release(now, CaughtUp(), &absorbed, &emitted), absorbed, emitted);
  }

  // Whether a source's partition has nothing left to fetch: what the broker has is consumed.
  EventTimeAligner::CaughtUp CaughtUp() {
    std::map<SourcePartition, int64_t> next_to_fetch;
    for (const OffsetTracker::PartitionProgress& progress : tracker_.Progress()) {
      next_to_fetch[progress.partition] =
          progress.consumed >= 0 ? progress.consumed + 1 : progress.next_offset;
    }
    return [this, next_to_fetch = std::move(next_to_fetch)](const SourcePartition& partition) {
      int64_t low = -1;
      int64_t high = -1;
      if (consumer_->get_watermark_offsets(schema_.sources[partition.source].topic,
                                           partition.partition, &low, &high) !=
              RdKafka::ERR_NO_ERROR ||
          high < 0) {
        return false;
      }
      auto it = next_to_fetch.find(partition);
      return high == 0 || (it != next_to_fetch.end() && it->second >= high);
    };
  }

  // What the windowed stage absorbed is carried by its state, so those events are done here;
  // what it emitted goes to the lanes. An error means its store failed: hold.
  bool TakeWindowOutput(const absl::Status& status, const std::vector<EventPosition>& absorbed,
                        std::vector<RowCommand>& emitted) {
    if (!status.ok()) {
      Hold(absl::StrCat("windowed joiner: ", status.ToString()));
      return false;
    }
    tracker_.Done(absorbed);
    return EnqueueAll(emitted);
  }

  // Off the poll thread (start, stop), where no partition needs pausing: waits for room until
  // `deadline`; what does not fit by then stays unapplied and unacknowledged.
  void EnqueueBefore(std::vector<RowCommand>& commands, absl::Time deadline) {
    for (RowCommand& command : commands) {
      while (!lanes_->TryEnqueue(command)) {
        if (absl::Now() >= deadline) return;
        lanes_->WaitForRoom(absl::Milliseconds(50));
      }
    }
  }

  bool EnqueueAll(std::vector<RowCommand>& commands) {
    for (RowCommand& command : commands) {
      if (!Enqueue(command)) return false;
    }
    return true;
  }

  // Stops consuming for good (until restart) after an error that retrying here cannot fix;
  // nothing is committed past it.
  void Hold(const std::string& error) {
    LogError(error, "; consumption stops, nothing is committed past this point");
    stats_.RecordError(error);
    held_fatal_ = true;
    PauseAssigned();
  }

  static int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

  // Hands the lanes' acknowledgements to the joiner (it is not thread-safe; the poll thread
  // owns it).
  // Hands the lanes' acknowledgements to the windowed stage (its joiner lives on this thread).
  void DeliverAcknowledgements() {
    if (windowed_ == nullptr) return;
    if (absl::Status s = windowed_->DeliverAcknowledgements(); !s.ok()) {
      Hold(absl::StrCat("windowed joiner acknowledge: ", s.ToString()));
    }
  }

  void AdvanceWindows() {
    if (windowed_ == nullptr || mode_.load() != v1::WINDOWED) return;
    std::vector<EventPosition> absorbed;
    std::vector<RowCommand> emitted;
    TakeWindowOutput(windowed_->Advance(NowMillis(), CaughtUp(), &absorbed, &emitted), absorbed,
                     emitted);
  }

  void CopyJoinerStats() {
    if (windowed_ == nullptr) return;
    const WindowedJoiner::Stats joined = windowed_->stats();
    stats_.late_drops.store(joined.late_drops, std::memory_order_relaxed);
    stats_.windows_opened.store(joined.windows_opened, std::memory_order_relaxed);
    stats_.windows_emitted.store(joined.windows_emitted, std::memory_order_relaxed);
  }

  void MaybeCommit() {
    const absl::Time now = absl::Now();
    if (now - last_commit_ < absl::Milliseconds(options_.config.kafka().commit_interval_ms())) {
      return;
    }
    last_commit_ = now;
    DeliverAcknowledgements();
    CommitApplied();
    CopyJoinerStats();
    RefreshPartitionStatus();
  }

  // Pause, drain (open windows, pending batches), commit, swap, resume: all on the poll thread,
  // which consumes nothing meanwhile.
  absl::StatusOr<SwitchReport> PerformSwitch(v1::JoinMode target) {
    const absl::Time start = absl::Now();
    SwitchReport report;
    report.from = mode_.load();
    report.to = target;
    if (report.from == target) return report;
    if (target == v1::WINDOWED && windowed_ == nullptr) {
      return absl::FailedPreconditionError(
          "window.state_dir: required to switch to WINDOWED (the joiner's state lives there)");
    }
    if (report.from == v1::WINDOWED) {
      std::vector<EventPosition> absorbed;
      std::vector<RowCommand> emitted;
      const absl::Status flushed = windowed_->Flush(NowMillis(), &absorbed, &emitted);
      if (!TakeWindowOutput(flushed, absorbed, emitted)) {
        return flushed.ok() ? absl::CancelledError("stopping") : flushed;
      }
    }
    if (!lanes_->Drain(kSwitchDrainTimeout)) {
      return absl::UnavailableError(absl::StrCat(
          "the sink did not apply pending batches within ", absl::FormatDuration(kSwitchDrainTimeout),
          "; staying in ", v1::JoinMode_Name(report.from)));
    }
    DeliverAcknowledgements();
    CommitApplied();
    mode_.store(target);
    report.changed = true;
    report.paused = absl::Now() - start;
    LogInfo("switched ", v1::JoinMode_Name(report.from), " -> ", v1::JoinMode_Name(target),
            "; consumption paused for ", absl::FormatDuration(report.paused));
    return report;
  }

  void ServeSwitchRequest() {
    if (!switch_requested_.load()) return;
    v1::JoinMode target;
    {
      absl::MutexLock lock(&switch_mu_);
      target = switch_target_;
    }
    const PipelineState before = state_.load();
    state_.store(PipelineState::kSwitching);
    absl::StatusOr<SwitchReport> result = PerformSwitch(target);
    state_.store(before);
    absl::MutexLock lock(&switch_mu_);
    switch_result_ = std::move(result);
    switch_requested_.store(false);
  }

  void PollLoop() {
    state_.store(PipelineState::kRunning);
    bool paused_by_operator = false;
    std::vector<std::unique_ptr<RdKafka::Message>> batch;
    absl::Time last_advance = absl::Now();
    while (!stop_requested_.load()) {
      ServeSwitchRequest();
      const bool want_paused = operator_paused_.load();
      if (want_paused != paused_by_operator) {
        paused_by_operator = want_paused;
        if (want_paused) {
          PauseAssigned();
          state_.store(PipelineState::kPaused);
          LogInfo("consumption paused by the operator");
        } else {
          if (!backpressure_paused_ && !held_fatal_) ResumeAssigned();
          state_.store(PipelineState::kRunning);
          LogInfo("consumption resumed by the operator");
        }
      }
      batch.clear();
      while (!held_.empty() && batch.size() < kMaxPollBatch) {
        batch.push_back(std::move(held_.front()));
        held_.pop_front();
      }
      // Block for the first record only; then take what is already fetched.
      int timeout_ms = batch.empty() ? kPollTimeoutMs : 0;
      while (batch.size() < kMaxPollBatch) {
        std::unique_ptr<RdKafka::Message> message(consumer_->consume(timeout_ms));
        if (message == nullptr || message->err() == RdKafka::ERR__TIMED_OUT) break;
        batch.push_back(std::move(message));
        timeout_ms = 0;
      }
      if (!batch.empty()) HandleBatch(batch);
      if (absl::Now() - last_advance >= kAdvanceInterval) {
        last_advance = absl::Now();
        DeliverAcknowledgements();
        AdvanceWindows();
      }
      // Resume only once the lanes are half empty, so a full lane does not flip the partitions
      // between paused and resumed on every record (each resume restarts the fetchers).
      if (backpressure_paused_ && held_.empty() &&
          lanes_->Queued() <= lanes_->Capacity() / 2) {
        backpressure_paused_ = false;
        if (!paused_by_operator && !held_fatal_) ResumeAssigned();
      }
      dead_letters_->Poll();
      MaybeCommit();
    }
  }

  // Declared first, destroyed last: everything below reports into them.
  Options options_;
  PipelineStats stats_;
  OffsetTracker tracker_;
  KafkaEventLogger kafka_events_;
  TableSchema schema_;

  std::unique_ptr<DebeziumDecoder> decoder_;              // Poll thread.
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<DeadLetterQueue> dead_letters_;         // Poll thread.
  std::unique_ptr<RdKafka::Producer> watermark_client_;   // QueryWatermarks thread.
  std::atomic<v1::JoinMode> mode_{v1::DB_UPSERT};
  std::unique_ptr<RocksDbWindowStore> window_store_;
  // Poll thread (and Stop once it has ended); acknowledgements from the lanes.
  std::unique_ptr<WindowedStage> windowed_;
  std::unique_ptr<SinkLanes> lanes_;  // Calls back into tracker_ and windowed_.

  // Poll thread only (rebalance and delivery callbacks run inside its consume/poll calls).
  std::map<SourcePartition, int64_t> committed_;
  std::set<SourcePartition> data_loss_;
  std::deque<std::unique_ptr<RdKafka::Message>> held_;
  bool backpressure_paused_ = false;
  absl::Time last_commit_ = absl::InfinitePast();

  std::atomic<PipelineState> state_{PipelineState::kStarting};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> operator_paused_{false};
  std::atomic<bool> assigned_{false};
  std::atomic<bool> held_fatal_{false};

  absl::Mutex switch_mu_;
  std::atomic<bool> switch_requested_{false};
  v1::JoinMode switch_target_ ABSL_GUARDED_BY(switch_mu_) = v1::DB_UPSERT;
  absl::StatusOr<SwitchReport> switch_result_ ABSL_GUARDED_BY(switch_mu_);

  mutable absl::Mutex status_mu_;
  std::vector<PartitionStatus> partitions_ ABSL_GUARDED_BY(status_mu_);

  // Broker watermarks of partitions while paused (QueryWatermarks).
  absl::Mutex queried_mu_;
  std::map<SourcePartition, int64_t> queried_high_ ABSL_GUARDED_BY(queried_mu_);
  std::thread watermark_thread_;

  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread poll_thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Start(Options options) {
  auto pipeline = std::make_unique<PipelineImpl>(std::move(options));
  if (absl::Status s = pipeline->Init(); !s.ok()) return s;
  return std::unique_ptr<Pipeline>(std::move(pipeline));
}

}  // namespace cdcjoin
