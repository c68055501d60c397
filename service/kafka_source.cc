#include "service/kafka_source.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "service/kafka_client.h"
#include "service/kafka_prefetch.h"
#include "service/logging.h"

namespace cdcjoin {
namespace {

// How often, and how patiently, the brokers are asked for the watermarks of paused partitions.
constexpr absl::Duration kWatermarkQueryInterval = absl::Seconds(1);
constexpr int kWatermarkQueryTimeoutMs = 2000;
constexpr int kCommittedQueryTimeoutMs = 10000;
// How long no broker may answer before the source reports the cluster unreachable.
constexpr absl::Duration kUnreachableAfter = absl::Seconds(3);
// How often the source topics' partition counts are read again (they rarely change).
constexpr absl::Duration kPartitionCountInterval = absl::Seconds(10);
// The pause before a failed consumer is replaced: doubled up to the maximum while replacements
// keep failing within the reset interval of their creation.
constexpr absl::Duration kMinReplacementBackoff = absl::Seconds(2);
constexpr absl::Duration kMaxReplacementBackoff = absl::Seconds(64);
constexpr absl::Duration kReplacementBackoffReset = absl::Minutes(5);

using TopicPartitions = std::vector<RdKafka::TopicPartition*>;

// Owns the TopicPartition pointers librdkafka's C++ API hands out.
struct TopicPartitionList {
  TopicPartitions items;
  ~TopicPartitionList() { RdKafka::TopicPartition::destroy(items); }
};

void DeleteMessage(const void* message) {
  delete static_cast<const RdKafka::Message*>(message);
}

}  // namespace

class KafkaSource::Impl final : public RdKafka::RebalanceCb, public RdKafka::OffsetCommitCb {
 public:
  explicit Impl(Options options)
      : options_(std::move(options)), kafka_events_(options_.stats) {}

  ~Impl() override {
    stop_watermarks_.store(true);
    if (watermark_thread_.joinable()) watermark_thread_.join();
  }

  absl::Status Create() {
    std::map<std::string, std::string> settings =
        BaseKafkaSettings(options_.kafka, options_.bootstrap_servers);
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> watermark_conf = MakeKafkaConf(settings);
    if (!watermark_conf.ok()) return watermark_conf.status();
    std::string error;
    (*watermark_conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&kafka_events_), error);
    watermark_client_.reset(RdKafka::Producer::create(watermark_conf->get(), error));
    if (watermark_client_ == nullptr) {
      return absl::InternalError(absl::StrCat("kafka watermark client: ", error));
    }

    // A topic that Debezium creates after the subscription is found at the next metadata
    // refresh: librdkafka's default (5 minutes) would leave it unread that long.
    settings.emplace("topic.metadata.refresh.interval.ms", "10000");
    AddConsumerPrefetchDefaults(settings);
    settings["group.id"] = options_.kafka.group_id();
    settings["session.timeout.ms"] = absl::StrCat(options_.kafka.session_timeout_ms());
    absl::StatusOr<std::string> instance = GroupInstanceId(options_.kafka);
    if (!instance.ok()) return instance.status();
    if (!instance->empty()) settings["group.instance.id"] = *instance;
    // Offsets are stored by hand, only as far as the pipeline reports them durable, and
    // librdkafka commits what is stored: on its timer only while the group is steady (a commit
    // sent while the generation is in flux fails with ILLEGAL_GENERATION, which librdkafka
    // answers by dropping the whole assignment as lost), and for revoked partitions when they go.
    settings["enable.auto.commit"] = "true";
    settings["enable.auto.offset.store"] = "false";
    settings["auto.commit.interval.ms"] = absl::StrCat(options_.kafka.commit_interval_ms());
    // An out-of-range offset means retention overtook us: data loss, never silently reset.
    settings["auto.offset.reset"] = "error";
    // Incremental: a member joining or leaving moves only the partitions that change owner, and
    // the others go on consuming. Nothing relies on co-partitioning: Debezium keys the topics
    // differently anyway, a windowed INNER/LEFT join runs alone in its group, and the sides of
    // an OUTER merge and of DB_UPSERT are written on their own.
    settings.emplace("partition.assignment.strategy", "cooperative-sticky");
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeKafkaConf(settings);
    if (!conf.ok()) return conf.status();
    (*conf)->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), error);
    (*conf)->set("offset_commit_cb", static_cast<RdKafka::OffsetCommitCb*>(this), error);
    (*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(&kafka_events_), error);
    consumer_conf_ = *std::move(conf);
    consumer_settings_ = std::move(settings);
    return CreateConsumer();
  }

  absl::Status CreateConsumer() {
    std::string error;
    consumer_.reset(RdKafka::KafkaConsumer::create(consumer_conf_.get(), error));
    if (consumer_ == nullptr) return absl::InternalError(absl::StrCat("kafka consumer: ", error));
    fetch_waker_ = std::make_unique<FetchWaker>(consumer_.get(), consumer_settings_);
    return absl::OkStatus();
  }

  // The consumer goes after its waker, which uses it.
  void DestroyConsumer() {
    fetch_waker_.reset();
    consumer_.reset();
  }

  absl::Status Start(PartitionListener* listener) {
    listener_ = listener;
    if (absl::Status s = Subscribe(); !s.ok()) return s;
    LogInfo("consuming ", absl::StrJoin(options_.topics, ", "), " as group ",
            options_.kafka.group_id(), " from ", options_.bootstrap_servers);
    watermark_thread_ = std::thread([this] { WatchBrokers(); });
    return absl::OkStatus();
  }

  std::vector<ConsumedRecord> Poll(absl::Duration timeout, size_t max) {
    if (ReplacingFailedConsumer(timeout)) return {};
    // Every record waits in held_ until it is handed out: a rebalance inside a later consume()
    // of this loop then drops what it revokes (OnRevoke), wherever it sits in the batch.
    // Block for the first record only; then take what is already fetched.
    int timeout_ms = held_.empty() ? static_cast<int>(absl::ToInt64Milliseconds(timeout)) : 0;
    int64_t records = 0;
    int64_t bytes = 0;
    do {
      std::unique_ptr<RdKafka::Message> message(consumer_->consume(timeout_ms));
      timeout_ms = 0;
      if (message == nullptr || message->err() == RdKafka::ERR__TIMED_OUT) break;
      ++records;
      bytes += static_cast<int64_t>(message->key_len() + message->len());
      std::optional<ConsumedRecord> record = Accept(std::move(message));
      if (record.has_value()) held_.push_back(*std::move(record));
    } while (held_.size() < max);
    if (fetch_waker_ != nullptr) fetch_waker_->AfterConsume(records, bytes);
    std::vector<ConsumedRecord> out;
    while (!held_.empty() && out.size() < max) {
      out.push_back(std::move(held_.front()));
      held_.pop_front();
    }
    return out;
  }

  // Stores the offsets that move an assigned partition forward, for librdkafka to commit.
  void Commit(const std::map<SourcePartition, int64_t>& offsets) {
    TopicPartitionList list;
    for (const auto& [partition, offset] : offsets) {
      auto it = committed_.find(partition);
      if (it == committed_.end() || offset < 0 || offset <= it->second) continue;
      list.items.push_back(
          RdKafka::TopicPartition::create(Topic(partition), partition.partition, offset));
    }
    if (!list.items.empty()) consumer_->offsets_store(list.items);
    RefreshStatus();
  }

  void SetPaused(PauseReason reason, bool paused) {
    const bool was_paused = !pause_reasons_.empty();
    if (paused) {
      pause_reasons_.insert(reason);
    } else {
      pause_reasons_.erase(reason);
    }
    const bool is_paused = !pause_reasons_.empty();
    // Backpressure comes and goes with the sink; the backlog only goes stale in longer stops.
    paused_for_status_.store(pause_reasons_.count(PauseReason::kOperator) > 0 ||
                             pause_reasons_.count(PauseReason::kHold) > 0);
    if (is_paused == was_paused) return;
    TopicPartitionList assignment;
    consumer_->assignment(assignment.items);
    if (is_paused) {
      consumer_->pause(assignment.items);
      return;
    }
    // Partitions stopped for data loss stay stopped.
    TopicPartitions resumable;
    for (RdKafka::TopicPartition* tp : assignment.items) {
      if (data_loss_.count(ToSourcePartition(*tp)) == 0) resumable.push_back(tp);
    }
    consumer_->resume(resumable);
  }

  bool FullyFetched(const SourcePartition& partition, int64_t next_offset) const {
    int64_t low = -1;
    int64_t high = -1;
    if (consumer_->get_watermark_offsets(Topic(partition), partition.partition, &low, &high) !=
            RdKafka::ERR_NO_ERROR ||
        high < 0) {
      return false;
    }
    return high == 0 || next_offset >= high;
  }

  void Close() {
    closing_ = true;
    fetch_waker_.reset();
    consumer_->close();
    stop_watermarks_.store(true);
    if (watermark_thread_.joinable()) watermark_thread_.join();
  }

  std::vector<SourcePartitionStatus> Status() const {
    absl::MutexLock lock(&status_mu_);
    return status_;
  }
  bool Assigned() const { return assigned_.load(); }

  std::optional<bool> OwnsEveryPartition() const {
    absl::MutexLock lock(&status_mu_);
    if (partition_counts_.size() != options_.topics.size()) return std::nullopt;
    std::map<std::string, int> assigned;
    for (const SourcePartitionStatus& status : status_) ++assigned[status.topic];
    for (const auto& [topic, count] : partition_counts_) {
      if (assigned[topic] < count) return false;
    }
    return true;
  }

  bool DataLoss() const { return data_loss_count_.load() > 0; }
  std::string Unreachable() const {
    absl::MutexLock lock(&unreachable_mu_);
    return unreachable_;
  }

  // RdKafka::RebalanceCb: runs inside consume() and close(), on the polling thread.
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    TopicPartitions& partitions) override {
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      OnAssign(partitions);
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
      // What is newly assigned stands still while anything pauses consumption.
      if (!pause_reasons_.empty()) consumer->pause(partitions);
    } else {
      OnRevoke(partitions, /*lost=*/consumer->assignment_lost());
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
    RefreshStatus();
  }

  // RdKafka::OffsetCommitCb: librdkafka's commits of what Commit stored, inside consume() and
  // close(), on the polling thread.
  void offset_commit_cb(RdKafka::ErrorCode err, TopicPartitions& offsets) override {
    if (err == RdKafka::ERR__NO_OFFSET) return;  // Nothing new was stored.
    if (err != RdKafka::ERR_NO_ERROR) {
      // Nothing is lost: the next commit covers these offsets too (or, after a revocation, the
      // partitions' new owner consumes again from the last commit).
      LogWarning("kafka commit: ", RdKafka::err2str(err));
      options_.stats->RecordError(absl::StrCat("kafka commit: ", RdKafka::err2str(err)));
    }
    bool any = false;
    for (RdKafka::TopicPartition* tp : offsets) {
      if (tp->err() != RdKafka::ERR_NO_ERROR) {
        if (err == RdKafka::ERR_NO_ERROR) {
          LogWarning("kafka commit ", tp->topic(), "[", tp->partition(), "]: ",
                     RdKafka::err2str(tp->err()));
        }
        continue;
      }
      auto it = committed_.find(ToSourcePartition(*tp));
      if (it == committed_.end() || tp->offset() < 0) continue;
      it->second = std::max(it->second, tp->offset());
      any = true;
    }
    if (any) options_.stats->offset_commits.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  absl::Status Subscribe() {
    RdKafka::ErrorCode err = consumer_->subscribe(options_.topics);
    if (err == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("kafka subscribe ",
                                               absl::StrJoin(options_.topics, ","), ": ",
                                               RdKafka::err2str(err)));
  }

  // A consumer with a fatal error (a static member fenced by another with its
  // group.instance.id: after a coordinator restart, a commit or heartbeat still carrying the old
  // member id is enough) never consumes again. Its partitions count as lost, and after a pause
  // that doubles while it keeps happening (two instances really sharing an id fence each other
  // in turn) a new consumer joins the group in its place. True while there is no usable one.
  bool ReplacingFailedConsumer(absl::Duration timeout) {
    std::string reason;
    const RdKafka::ErrorCode fatal = consumer_->fatal_error(reason);
    if (fatal == RdKafka::ERR_NO_ERROR) return false;
    const absl::Time now = absl::Now();
    if (replace_consumer_at_ == absl::InfiniteFuture()) {
      const bool again = replace_backoff_ > absl::ZeroDuration() &&
                         now - consumer_created_ < kReplacementBackoffReset;
      replace_backoff_ = again ? std::min(replace_backoff_ * 2, kMaxReplacementBackoff)
                               : kMinReplacementBackoff;
      replace_consumer_at_ = now + replace_backoff_;
      const std::string error = absl::StrCat(
          "kafka consumer failed for good (", RdKafka::err2str(fatal), ": ", reason,
          "); its partitions count as lost and a new consumer joins the group in ",
          absl::FormatDuration(replace_backoff_));
      LogError(error);
      options_.stats->RecordError(error);
      std::vector<SourcePartition> owned;
      for (const auto& [partition, committed] : committed_) owned.push_back(partition);
      if (!owned.empty()) listener_->OnLost(owned);
      held_.clear();
      committed_.clear();
      assigned_.store(false);
      RefreshStatus();
    }
    if (now < replace_consumer_at_) {
      absl::SleepFor(std::min(timeout, replace_consumer_at_ - now));
      return true;
    }
    // Destroyed without close(): a failed consumer can neither commit nor leave the group.
    DestroyConsumer();
    absl::Status created = CreateConsumer();
    if (created.ok()) created = Subscribe();
    if (!created.ok()) {
      LogError("kafka consumer replacement: ", created.message());
      options_.stats->RecordError(std::string(created.message()));
      replace_consumer_at_ = now + replace_backoff_;
      return true;
    }
    LogInfo("a new kafka consumer joins group ", options_.kafka.group_id());
    replace_consumer_at_ = absl::InfiniteFuture();
    consumer_created_ = now;
    return false;
  }

  const std::string& Topic(const SourcePartition& partition) const {
    return options_.topics[static_cast<size_t>(partition.source)];
  }

  int SourceOfTopic(const std::string& topic) const {
    for (size_t i = 0; i < options_.topics.size(); ++i) {
      if (options_.topics[i] == topic) return static_cast<int>(i);
    }
    return -1;
  }

  SourcePartition ToSourcePartition(const RdKafka::TopicPartition& tp) const {
    return SourcePartition{SourceOfTopic(tp.topic()), tp.partition()};
  }

  // A consumed message as a record, or nullopt for an event of the consumer (EOF, error).
  std::optional<ConsumedRecord> Accept(std::unique_ptr<RdKafka::Message> message) {
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR:
        break;
      case RdKafka::ERR__PARTITION_EOF:
        return std::nullopt;
      case RdKafka::ERR__AUTO_OFFSET_RESET:
      case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
        OnDataLoss(*message);
        return std::nullopt;
      default:
        LogWarning("kafka consume: ", message->errstr());
        return std::nullopt;
    }
    const int source = SourceOfTopic(message->topic_name());
    if (source < 0) return std::nullopt;
    ConsumedRecord record;
    record.position = EventPosition{SourcePartition{source, message->partition()},
                                    message->offset()};
    record.topic = Topic(record.position.partition);
    if (message->key_pointer() != nullptr) {
      record.key = std::string_view(static_cast<const char*>(message->key_pointer()),
                                    message->key_len());
    }
    if (message->payload() != nullptr) {
      record.value = std::string_view(static_cast<const char*>(message->payload()),
                                      message->len());
    }
    record.timestamp_ms = message->timestamp().timestamp;
    if (RdKafka::Headers* headers = message->headers(); headers != nullptr) {
      for (const RdKafka::Headers::Header& header : headers->get_all()) {
        record.headers.emplace_back(
            header.key(), header.value() == nullptr
                              ? std::string()
                              : std::string(static_cast<const char*>(header.value()),
                                            header.value_size()));
      }
    }
    record.bytes = std::shared_ptr<const void>(message.release(), DeleteMessage);
    return record;
  }

  void OnDataLoss(RdKafka::Message& message) {
    const SourcePartition sp{SourceOfTopic(message.topic_name()), message.partition()};
    if (sp.source < 0 || !data_loss_.insert(sp).second) return;
    const std::string error = absl::StrCat(
        "DATA LOSS: ", message.topic_name(), "[", message.partition(),
        "]: the committed offset is out of range (retention overtook the consumer): ",
        message.errstr(),
        ". The partition is stopped and will not be reset automatically; an operator must decide "
        "(re-snapshot the source, or reset the group's offset deliberately) and restart.");
    LogError(error);
    options_.stats->RecordError(error);
    options_.stats->data_loss_partitions.fetch_add(1, std::memory_order_relaxed);
    data_loss_count_.store(static_cast<int>(data_loss_.size()));
    TopicPartitionList list;
    list.items.push_back(
        RdKafka::TopicPartition::create(message.topic_name(), message.partition()));
    consumer_->pause(list.items);
    RefreshStatus();
  }

  void OnAssign(TopicPartitions& partitions) {
    RdKafka::ErrorCode err = consumer_->committed(partitions, kCommittedQueryTimeoutMs);
    if (err != RdKafka::ERR_NO_ERROR) {
      LogWarning("kafka committed offsets: ", RdKafka::err2str(err),
                 "; partitions without them start per kafka.start_from");
    }
    std::vector<AssignedPartition> assigned;
    for (RdKafka::TopicPartition* tp : partitions) {
      AssignedPartition partition;
      partition.partition = ToSourcePartition(*tp);
      // librdkafka says "none" with a logical offset (-1001); we say -1.
      partition.committed = tp->offset() >= 0 ? tp->offset() : -1;
      partition.start = partition.committed;
      assigned.push_back(partition);
    }
    listener_->OnAssigned(assigned);
    const bool from_latest = options_.kafka.start_from() == v1::LATEST;
    std::vector<std::string> described;
    for (size_t i = 0; i < partitions.size(); ++i) {
      RdKafka::TopicPartition* tp = partitions[i];
      const AssignedPartition& partition = assigned[i];
      tp->set_offset(partition.start >= 0 ? partition.start
                     : from_latest        ? RdKafka::Topic::OFFSET_END
                                          : RdKafka::Topic::OFFSET_BEGINNING);
      committed_[partition.partition] = partition.committed;
      if (data_loss_.erase(partition.partition) > 0) {
        data_loss_count_.store(static_cast<int>(data_loss_.size()));
      }
      described.push_back(absl::StrCat(
          tp->topic(), "[", tp->partition(), "]@",
          partition.start >= 0 ? absl::StrCat(partition.start)
                               : (from_latest ? "latest" : "earliest")));
    }
    LogInfo("assigned ", partitions.size(), " partitions: ", absl::StrJoin(described, " "));
  }

  void OnRevoke(TopicPartitions& partitions, bool lost) {
    std::vector<SourcePartition> gone;
    std::set<SourcePartition> gone_set;
    std::vector<std::string> described;
    for (RdKafka::TopicPartition* tp : partitions) {
      gone.push_back(ToSourcePartition(*tp));
      gone_set.insert(gone.back());
      described.push_back(absl::StrCat(tp->topic(), "[", tp->partition(), "]"));
    }
    std::deque<ConsumedRecord> kept;
    for (ConsumedRecord& record : held_) {
      if (gone_set.count(record.position.partition) == 0) kept.push_back(std::move(record));
    }
    held_ = std::move(kept);
    if (lost) {
      LogWarning("lost ", partitions.size(),
                 " partitions (another member owns them now): dropping what they fed us: ",
                 absl::StrJoin(described, " "));
      listener_->OnLost(gone);
    } else {
      LogInfo("revoking ", partitions.size(), " partitions: applying what they fed us first: ",
              absl::StrJoin(described, " "));
      // librdkafka commits what is stored for them as they go, before the group moves on.
      Commit(listener_->OnRevoked(gone));
      LogInfo("revoked ", partitions.size(), " partitions: ", absl::StrJoin(described, " "));
    }
    // Leaving the group on close revokes everything: the last status stays for the report.
    if (closing_) return;
    for (const SourcePartition& partition : gone) committed_.erase(partition);
  }

  // The status snapshot for other threads. A paused partition is not fetched, so its cached
  // watermarks go stale and its lag would read as zero while the backlog grows: then what the
  // broker said last counts (WatchBrokers).
  void RefreshStatus() {
    std::map<SourcePartition, int64_t> queried;
    {
      absl::MutexLock lock(&queried_mu_);
      queried = queried_high_;
    }
    const bool paused = !pause_reasons_.empty();
    std::vector<SourcePartitionStatus> statuses;
    for (const auto& [partition, committed] : committed_) {
      SourcePartitionStatus status;
      status.partition = partition;
      status.topic = Topic(partition);
      status.committed = committed;
      status.data_loss = data_loss_.count(partition) > 0;
      int64_t low = -1;
      int64_t high = -1;
      if (consumer_->get_watermark_offsets(status.topic, partition.partition, &low, &high) ==
          RdKafka::ERR_NO_ERROR) {
        status.low_watermark = low;
        status.high_watermark = high;
      }
      if (paused || status.data_loss) {
        if (auto it = queried.find(partition); it != queried.end()) {
          status.high_watermark = std::max(status.high_watermark, it->second);
        }
      }
      statuses.push_back(std::move(status));
    }
    absl::MutexLock lock(&status_mu_);
    status_ = std::move(statuses);
  }

  // Off the polling thread (each query is a round trip, through a client of its own): asks a
  // broker for metadata every second, so an unreachable cluster shows as such even while nothing
  // is fetched; and while consumption is paused, asks for the watermarks of the assigned
  // partitions, which are not fetched then, so status keeps showing the backlog.
  void WatchBrokers() {
    absl::Time last_answer = absl::Now();
    absl::Time counted = absl::InfinitePast();
    while (!stop_watermarks_.load()) {
      if (absl::Now() - counted >= kPartitionCountInterval && CountPartitions()) {
        counted = absl::Now();
      }
      absl::SleepFor(kWatermarkQueryInterval);
      ProbeBrokers(&last_answer);
      std::vector<SourcePartitionStatus> statuses = Status();
      bool any_stopped = false;
      for (const SourcePartitionStatus& status : statuses) any_stopped |= status.data_loss;
      if (!paused_for_status_.load() && !any_stopped) continue;
      std::map<SourcePartition, int64_t> highs;
      for (const SourcePartitionStatus& status : statuses) {
        int64_t low = -1;
        int64_t high = -1;
        if (watermark_client_->query_watermark_offsets(status.topic, status.partition.partition,
                                                       &low, &high, kWatermarkQueryTimeoutMs) ==
            RdKafka::ERR_NO_ERROR) {
          highs[status.partition] = high;
        }
        if (stop_watermarks_.load()) return;
      }
      absl::MutexLock lock(&queried_mu_);
      queried_high_ = std::move(highs);
    }
  }

  // Reads each source topic's partition count; false when a topic's could not be read.
  bool CountPartitions() {
    std::map<std::string, int> counts;
    for (const std::string& name : options_.topics) {
      std::string error;
      std::unique_ptr<RdKafka::Topic> topic(
          RdKafka::Topic::create(watermark_client_.get(), name, nullptr, error));
      if (topic == nullptr) return false;
      RdKafka::Metadata* metadata = nullptr;
      const RdKafka::ErrorCode err =
          watermark_client_->metadata(/*all_topics=*/false, topic.get(), &metadata,
                                      kWatermarkQueryTimeoutMs);
      std::unique_ptr<RdKafka::Metadata> owned(metadata);
      if (err != RdKafka::ERR_NO_ERROR || metadata == nullptr) return false;
      for (const RdKafka::TopicMetadata* described : *metadata->topics()) {
        if (described->topic() == name && described->err() == RdKafka::ERR_NO_ERROR) {
          counts[name] = static_cast<int>(described->partitions()->size());
        }
      }
      if (counts.count(name) == 0) return false;
    }
    absl::MutexLock lock(&status_mu_);
    partition_counts_ = std::move(counts);
    return true;
  }

  void ProbeBrokers(absl::Time* last_answer) {
    RdKafka::Metadata* metadata = nullptr;
    const RdKafka::ErrorCode err = watermark_client_->metadata(
        /*all_topics=*/false, /*only_rkt=*/nullptr, &metadata, kWatermarkQueryTimeoutMs);
    delete metadata;
    absl::MutexLock lock(&unreachable_mu_);
    if (err == RdKafka::ERR_NO_ERROR) {
      *last_answer = absl::Now();
      if (!unreachable_.empty()) LogInfo("kafka: the brokers answer again");
      unreachable_.clear();
      return;
    }
    const absl::Duration silent = absl::Now() - *last_answer;
    if (silent < kUnreachableAfter || !unreachable_.empty()) return;
    unreachable_ = absl::StrCat("kafka: no broker of ", options_.bootstrap_servers,
                                " has answered for ", absl::FormatDuration(silent), " (",
                                RdKafka::err2str(err), "); consumption and commits wait for it");
    LogError(unreachable_);
    options_.stats->RecordError(unreachable_);
  }

  const Options options_;
  KafkaEventLogger kafka_events_;
  PartitionListener* listener_ = nullptr;
  std::unique_ptr<RdKafka::Conf> consumer_conf_;
  std::map<std::string, std::string> consumer_settings_;  // What consumer_conf_ was made from.
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<FetchWaker> fetch_waker_;  // Null once closing.
  std::unique_ptr<RdKafka::Producer> watermark_client_;  // WatchBrokers thread.

  // Polling thread only (the rebalance callback runs inside its consume and close calls).
  std::deque<ConsumedRecord> held_;
  std::map<SourcePartition, int64_t> committed_;  // Every assigned partition.
  absl::Time consumer_created_ = absl::Now();
  absl::Time replace_consumer_at_ = absl::InfiniteFuture();  // Set while it has failed.
  absl::Duration replace_backoff_ = absl::ZeroDuration();
  std::set<SourcePartition> data_loss_;
  std::set<PauseReason> pause_reasons_;
  bool closing_ = false;

  std::atomic<bool> assigned_{false};
  std::atomic<int> data_loss_count_{0};
  // Whether the operator or a hold stopped consumption: then watermarks are queried.
  std::atomic<bool> paused_for_status_{false};

  mutable absl::Mutex status_mu_;
  std::vector<SourcePartitionStatus> status_ ABSL_GUARDED_BY(status_mu_);  // Assigned ones.
  std::map<std::string, int> partition_counts_ ABSL_GUARDED_BY(status_mu_);  // Per topic.

  mutable absl::Mutex unreachable_mu_;
  std::string unreachable_ ABSL_GUARDED_BY(unreachable_mu_);  // Empty while brokers answer.

  absl::Mutex queried_mu_;
  std::map<SourcePartition, int64_t> queried_high_ ABSL_GUARDED_BY(queried_mu_);
  std::atomic<bool> stop_watermarks_{false};
  std::thread watermark_thread_;
};

KafkaSource::KafkaSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaSource::~KafkaSource() = default;

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Create(Options options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->Create(); !s.ok()) return s;
  return std::unique_ptr<KafkaSource>(new KafkaSource(std::move(impl)));
}

absl::Status KafkaSource::Start(PartitionListener* listener) { return impl_->Start(listener); }
std::vector<ConsumedRecord> KafkaSource::Poll(absl::Duration timeout, size_t max) {
  return impl_->Poll(timeout, max);
}
void KafkaSource::Commit(const std::map<SourcePartition, int64_t>& offsets) {
  impl_->Commit(offsets);
}
void KafkaSource::SetPaused(PauseReason reason, bool paused) {
  impl_->SetPaused(reason, paused);
}
bool KafkaSource::FullyFetched(const SourcePartition& partition, int64_t next_offset) const {
  return impl_->FullyFetched(partition, next_offset);
}
void KafkaSource::Close() { impl_->Close(); }
std::vector<SourcePartitionStatus> KafkaSource::Status() const { return impl_->Status(); }
std::optional<bool> KafkaSource::OwnsEveryPartition() const {
  return impl_->OwnsEveryPartition();
}
bool KafkaSource::Assigned() const { return impl_->Assigned(); }
bool KafkaSource::DataLoss() const { return impl_->DataLoss(); }
std::string KafkaSource::Unreachable() const { return impl_->Unreachable(); }

}  // namespace cdcjoin
