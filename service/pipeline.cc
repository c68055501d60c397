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
#include "join/offset_tracker.h"
#include "join/table_schema.h"
#include "service/debezium_decoder.h"
#include "service/logging.h"

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
    case PipelineState::kStopping:
      return "stopping";
    case PipelineState::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

// Headers of a dead-lettered record, beside the original headers.
constexpr char kErrorHeader[] = "cdcjoin.error";
constexpr char kSourceTopicHeader[] = "cdcjoin.source.topic";
constexpr char kSourcePartitionHeader[] = "cdcjoin.source.partition";
constexpr char kSourceOffsetHeader[] = "cdcjoin.source.offset";

// How long the poll thread blocks in one consume(): short, so pause, stop and commits are prompt.
constexpr int kPollTimeoutMs = 100;
// How long a revocation waits for the lanes to apply what the revoked partitions fed them.
constexpr absl::Duration kRevokeDrainTimeout = absl::Seconds(30);

using TopicPartitions = std::vector<RdKafka::TopicPartition*>;

// Owns the TopicPartition pointers librdkafka's C++ API hands out.
struct TopicPartitionList {
  TopicPartitions items;
  ~TopicPartitionList() { RdKafka::TopicPartition::destroy(items); }
};

absl::Status SetAll(RdKafka::Conf* conf, const std::map<std::string, std::string>& settings) {
  std::string error;
  for (const auto& [name, value] : settings) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

class PipelineImpl final : public Pipeline,
                           public RdKafka::RebalanceCb,
                           public RdKafka::EventCb,
                           public RdKafka::DeliveryReportCb {
 public:
  explicit PipelineImpl(Options options) : options_(std::move(options)) {}

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

    if (absl::Status s = CreateProducer(); !s.ok()) return s;
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
    lanes_ = SinkLanes::Start(
        lanes, options_.connect_writer,
        [this](const std::vector<RowCommand>& applied) {
          for (const RowCommand& command : applied) tracker_.Done(command.covers);
        },
        &stats_);

    std::vector<std::string> topics = {schema_.sources[0].topic, schema_.sources[1].topic};
    RdKafka::ErrorCode err = consumer_->subscribe(topics);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka subscribe ", absl::StrJoin(topics, ","),
                                                 ": ", RdKafka::err2str(err)));
    }
    LogInfo("consuming ", absl::StrJoin(topics, ", "), " as group ",
            options_.config.kafka().group_id(), " from ", options_.bootstrap_servers);
    poll_thread_ = std::thread([this] { PollLoop(); });
    return absl::OkStatus();
  }

  absl::Status Stop(absl::Duration timeout) override {
    absl::MutexLock stop_lock(&stop_mu_);
    if (stopped_ || lanes_ == nullptr) return absl::OkStatus();
    state_.store(PipelineState::kStopping);
    stop_requested_.store(true);
    if (poll_thread_.joinable()) poll_thread_.join();

    absl::Status result = absl::OkStatus();
    if (!lanes_->Drain(timeout)) {
      result = absl::DeadlineExceededError(
          absl::StrCat("stopping: the sink did not apply everything within ",
                       absl::FormatDuration(timeout), "; the rest is consumed again on restart"));
      LogWarning(result.message());
    }
    lanes_->Stop();
    // Dead-letter deliveries still in flight count as unapplied until their report arrives.
    producer_->flush(5000);
    producer_->poll(0);
    CommitApplied();
    RefreshPartitionStatus();
    consumer_->close();
    state_.store(PipelineState::kStopped);
    stopped_ = true;
    LogInfo("stopped: ", stats_.EventsConsumed(), " events consumed, ", stats_.rows_written.load(),
            " commands applied, ", stats_.dead_lettered.load(), " dead-lettered");
    return result;
  }

  void Pause() override { operator_paused_.store(true); }
  void Resume() override { operator_paused_.store(false); }

  PipelineState state() const override {
    const PipelineState state = state_.load();
    if (state == PipelineState::kRunning && lanes_->Degraded()) return PipelineState::kDegraded;
    return state;
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
    RefreshPartitionStatus();
  }

  // RdKafka::EventCb: client errors are mostly informational; librdkafka recovers by itself.
  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        if (event.fatal()) {
          LogError("kafka fatal error: ", event.str());
          stats_.RecordError(absl::StrCat("kafka fatal: ", event.str()));
        } else {
          LogWarning("kafka: ", RdKafka::err2str(event.err()), ": ", event.str());
        }
        break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
          LogWarning("kafka ", event.fac(), ": ", event.str());
        }
        break;
      default:
        break;
    }
  }

  // RdKafka::DeliveryReportCb for the dead-letter producer. Runs on the poll thread.
  void dr_cb(RdKafka::Message& message) override {
    std::unique_ptr<EventPosition> position(static_cast<EventPosition*>(message.msg_opaque()));
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      // Not acknowledged: the offset stays uncommitted and the record is redelivered.
      const std::string error = absl::StrCat("dead-letter delivery to ", message.topic_name(),
                                             " failed: ", message.errstr());
      LogError(error);
      stats_.RecordError(error);
      return;
    }
    tracker_.Done(*position);
  }

 private:
  absl::Status CreateProducer() {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::map<std::string, std::string> settings(options_.config.kafka().properties().begin(),
                                                options_.config.kafka().properties().end());
    settings["bootstrap.servers"] = options_.bootstrap_servers;
    settings["enable.idempotence"] = "true";
    // A dead letter is retried until it is delivered: losing it would lose the record.
    settings["message.timeout.ms"] = "0";
    settings["linger.ms"] = "5";
    if (absl::Status s = SetAll(conf.get(), settings); !s.ok()) return s;
    std::string error;
    conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), error);
    conf->set("event_cb", static_cast<RdKafka::EventCb*>(this), error);
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    if (producer_ == nullptr) return absl::InternalError(absl::StrCat("kafka producer: ", error));
    return absl::OkStatus();
  }

  absl::Status CreateConsumer() {
    const v1::KafkaConfig& kafka = options_.config.kafka();
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::map<std::string, std::string> settings(kafka.properties().begin(),
                                                kafka.properties().end());
    settings["bootstrap.servers"] = options_.bootstrap_servers;
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
    if (absl::Status s = SetAll(conf.get(), settings); !s.ok()) return s;
    std::string error;
    conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), error);
    conf->set("event_cb", static_cast<RdKafka::EventCb*>(this), error);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (consumer_ == nullptr) return absl::InternalError(absl::StrCat("kafka consumer: ", error));
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
    std::vector<std::string> described;
    for (RdKafka::TopicPartition* tp : partitions) {
      const SourcePartition sp = ToSourcePartition(*tp);
      const int64_t committed = tp->offset();
      if (committed < 0) {
        tp->set_offset(from_latest ? RdKafka::Topic::OFFSET_END
                                   : RdKafka::Topic::OFFSET_BEGINNING);
      }
      tracker_.Reset(sp, committed >= 0 ? committed : -1);
      committed_[sp] = committed;
      data_loss_.erase(sp);
      described.push_back(absl::StrCat(tp->topic(), "[", tp->partition(), "]@",
                                       committed >= 0 ? absl::StrCat(committed)
                                                      : (from_latest ? "latest" : "earliest")));
    }
    LogInfo("assigned ", partitions.size(), " partitions: ", absl::StrJoin(described, " "));
  }

  void OnRevoke(TopicPartitions& partitions) {
    LogInfo("revoking ", partitions.size(), " partitions: applying what they fed the sink first");
    if (!lanes_->Drain(kRevokeDrainTimeout)) {
      LogWarning("revocation: the sink did not apply everything within ",
                 absl::FormatDuration(kRevokeDrainTimeout),
                 "; the new owner consumes those events again");
    }
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
    std::vector<std::pair<SourcePartition, int64_t>> advanced;
    for (const OffsetTracker::PartitionProgress& progress : tracker_.Progress()) {
      auto it = committed_.find(progress.partition);
      if (it == committed_.end() || progress.next_offset < 0 ||
          progress.next_offset <= it->second) {
        continue;
      }
      list.items.push_back(RdKafka::TopicPartition::create(
          schema_.sources[progress.partition.source].topic, progress.partition.partition,
          progress.next_offset));
      advanced.emplace_back(progress.partition, progress.next_offset);
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
      if (consumer_->get_watermark_offsets(status.topic, status.partition, &low, &high) ==
              RdKafka::ERR_NO_ERROR &&
          high >= 0) {
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
    producer_->poll(0);
    MaybeCommit();
    std::unique_ptr<RdKafka::Message> message(consumer_->consume(0));
    if (message != nullptr && message->err() != RdKafka::ERR__TIMED_OUT) {
      held_.push_back(std::move(message));
    }
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
    // Debezium ops are not kept past decoding; c/u/r are all upserts. Creates and reads are
    // told apart by the envelope only, so upserts count as updates here.
    if (decoded.event.op == ChangeOp::kDelete) {
      stats_.events_delete.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.events_update.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void DeadLetter(RdKafka::Message& message, const EventPosition& position,
                  const absl::Status& error) {
    RdKafka::Headers* headers = message.headers() != nullptr
                                    ? RdKafka::Headers::create(message.headers()->get_all())
                                    : RdKafka::Headers::create();
    headers->add(kErrorHeader, std::string(error.message()));
    headers->add(kSourceTopicHeader, message.topic_name());
    headers->add(kSourcePartitionHeader, absl::StrCat(message.partition()));
    headers->add(kSourceOffsetHeader, absl::StrCat(message.offset()));
    auto* opaque = new EventPosition(position);
    while (true) {
      RdKafka::ErrorCode err = producer_->produce(
          options_.config.kafka().dead_letter_topic(), RdKafka::Topic::PARTITION_UA,
          RdKafka::Producer::RK_MSG_COPY, const_cast<void*>(message.payload()), message.len(),
          message.key_pointer(), message.key_len(), message.timestamp().timestamp, headers,
          opaque);
      if (err == RdKafka::ERR_NO_ERROR) break;
      if (err == RdKafka::ERR__QUEUE_FULL && !stop_requested_.load()) {
        producer_->poll(50);
        continue;
      }
      // Not acknowledged, so never committed: the record comes back after a restart.
      LogError("dead-letter produce failed: ", RdKafka::err2str(err));
      stats_.RecordError(absl::StrCat("dead-letter produce: ", RdKafka::err2str(err)));
      delete headers;
      delete opaque;
      return;
    }
    stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
    LogWarning("dead-lettered ", message.topic_name(), "[", message.partition(), "]@",
               message.offset(), ": ", error.message());
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
    TopicPartitionList list;
    list.items.push_back(RdKafka::TopicPartition::create(message.topic_name(), message.partition()));
    consumer_->pause(list.items);
  }

  void Handle(std::unique_ptr<RdKafka::Message> message) {
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR:
        break;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return;
      case RdKafka::ERR__AUTO_OFFSET_RESET:
      case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
        OnDataLoss(*message);
        return;
      default:
        LogWarning("kafka consume: ", message->errstr());
        return;
    }
    const int source = schema_.SourceIndexOfTopic(message->topic_name());
    if (source < 0) return;
    const EventPosition position{SourcePartition{source, message->partition()},
                                 message->offset()};
    tracker_.Track(position);
    std::optional<std::string_view> key;
    if (message->key_pointer() != nullptr) {
      key = std::string_view(static_cast<const char*>(message->key_pointer()), message->key_len());
    }
    std::optional<std::string_view> value;
    if (message->payload() != nullptr) {
      value = std::string_view(static_cast<const char*>(message->payload()), message->len());
    }
    absl::StatusOr<Decoded> decoded =
        decoder_->Decode(source, key, value, message->timestamp().timestamp, position);
    if (!decoded.ok()) {
      DeadLetter(*message, position, decoded.status());
      return;
    }
    CountOp(*decoded);
    if (decoded->outcome != DecodeOutcome::kEvent) {
      tracker_.Done(position);
      return;
    }
    std::optional<RowCommand> command = BuildDbUpsertCommand(schema_, decoded->event);
    if (!command.has_value()) {
      tracker_.Done(position);
      return;
    }
    Enqueue(*command);
  }

  void MaybeCommit() {
    const absl::Time now = absl::Now();
    if (now - last_commit_ < absl::Milliseconds(options_.config.kafka().commit_interval_ms())) {
      return;
    }
    last_commit_ = now;
    CommitApplied();
    RefreshPartitionStatus();
  }

  void PollLoop() {
    state_.store(PipelineState::kRunning);
    bool paused_by_operator = false;
    while (!stop_requested_.load()) {
      const bool want_paused = operator_paused_.load();
      if (want_paused != paused_by_operator) {
        paused_by_operator = want_paused;
        if (want_paused) {
          PauseAssigned();
          state_.store(PipelineState::kPaused);
          LogInfo("consumption paused by the operator");
        } else {
          if (!backpressure_paused_) ResumeAssigned();
          state_.store(PipelineState::kRunning);
          LogInfo("consumption resumed by the operator");
        }
      }
      std::unique_ptr<RdKafka::Message> message;
      if (!held_.empty()) {
        message = std::move(held_.front());
        held_.pop_front();
      } else {
        message.reset(consumer_->consume(kPollTimeoutMs));
      }
      if (message != nullptr) Handle(std::move(message));
      // Resume only once the lanes are half empty, so a full lane does not flip the partitions
      // between paused and resumed on every record (each resume restarts the fetchers).
      if (backpressure_paused_ && held_.empty() &&
          lanes_->MaxQueued() <= options_.config.sink().queue_capacity() / 2) {
        backpressure_paused_ = false;
        if (!paused_by_operator) ResumeAssigned();
      }
      producer_->poll(0);
      MaybeCommit();
    }
  }

  Options options_;
  TableSchema schema_;
  std::unique_ptr<DebeziumDecoder> decoder_;     // Poll thread.
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<RdKafka::Producer> producer_;  // Dead letters.
  std::unique_ptr<SinkLanes> lanes_;
  OffsetTracker tracker_;
  PipelineStats stats_;

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

  mutable absl::Mutex status_mu_;
  std::vector<PartitionStatus> partitions_ ABSL_GUARDED_BY(status_mu_);

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
