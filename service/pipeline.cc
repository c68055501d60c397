#include "service/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "join/offset_tracker.h"
#include "join/table_schema.h"
#include "service/avro_decoder.h"
#include "service/kafka_client.h"
#include "service/logging.h"
#include "service/loop_call.h"
#include "service/rejected_row.h"
#include "service/sink_feed.h"
#include "service/stage.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {

namespace {

// How long one Poll waits for records: short, so pause, stop and commits are prompt.
constexpr absl::Duration kPollTimeout = absl::Milliseconds(100);
// Records handled per poll batch: the windowed joiner commits its state once per batch.
constexpr size_t kMaxPollBatch = 500;
// How long a revocation, a mode switch and a dead-letter flush wait for the sink.
constexpr absl::Duration kRevokeDrainTimeout = absl::Seconds(30);
constexpr absl::Duration kSwitchDrainTimeout = absl::Seconds(60);
constexpr absl::Duration kDeadLetterFlushTimeout = absl::Seconds(30);
// How often idle windows are checked and acknowledgements handed to the window state.
constexpr absl::Duration kAdvanceInterval = absl::Milliseconds(100);
// Reading the group's control topic at start, and writing to it.
constexpr absl::Duration kControlTimeout = absl::Seconds(15);
// How long a member that could not follow the group's mode waits before it tries again.
constexpr absl::Duration kFollowRetry = absl::Seconds(5);
constexpr char kModeKey[] = "mode";
constexpr char kMemberKeyPrefix[] = "member/";

// This instance's name in the group: its static membership id, else host/pid.
std::string MemberName(const v1::KafkaConfig& kafka) {
  if (absl::StatusOr<std::string> id = GroupInstanceId(kafka); id.ok() && !id->empty()) return *id;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return absl::StrCat(host, "/", getpid());
}

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

// Moves a value out of `from` into `*to`, or returns its error.
template <typename T>
absl::Status Take(absl::StatusOr<T> from, T* to) {
  if (!from.ok()) return from.status();
  *to = *std::move(from);
  return absl::OkStatus();
}

class PipelineImpl final : public Pipeline, private PartitionListener {
 public:
  explicit PipelineImpl(Options options) : options_(std::move(options)) {}
  ~PipelineImpl() override { Stop(absl::Seconds(10)).IgnoreError(); }

  absl::Status Init(const Connectors& connectors) {
    absl::Status s = Take(TableSchema::FromConfig(options_.config), &schema_);
    if (s.ok()) schema_.SetColumnFacts(options_.target_columns);
    if (s.ok()) s = Take(NewRecordDecoder(&schema_, options_.config), &decoder_);
    if (s.ok()) s = Take(OpenWindowState(options_.config.window(), schema_), &window_);
    if (s.ok()) s = Take(connectors.source(&stats_), &source_);
    if (s.ok()) {
      s = Take(connectors.dead_letters(
                   &stats_, [this](const EventPosition& position) { tracker_.Done(position); }),
               &dead_letters_);
    }
    if (s.ok()) {
      s = Take(SinkLanes::Start(
                   SinkLanesOptions::FromConfig(options_.config.sink()), options_.connect_writer,
                   [this](absl::Span<const RowCommand> applied) {
                     for (const RowCommand& command : applied) tracker_.Done(command.covers);
                     if (window_.stage != nullptr) window_.stage->Applied(applied);
                   },
                   [this](RowCommand command, const absl::Status& why) {
                     absl::MutexLock lock(&rejected_mu_);
                     rejected_.push_back({std::move(command), why});
                   },
                   &stats_),
               &lanes_);
    }
    if (s.ok()) s = Take(connectors.control(&stats_), &control_);
    if (!s.ok()) return s;
    feed_ = std::make_unique<SinkFeed>(lanes_.get(), &stats_);
    context_ = StageContext{&schema_, &tracker_, feed_.get(), window_.stage.get(), &stats_};
    if (s = Take(MakeStage(InitialMode(), context_), &stage_); !s.ok()) return s;
    mode_.store(stage_->mode());
    PublishMember();
    if (absl::Status s = stage_->Start(); !s.ok()) return s;
    if (absl::Status s = source_->Start(this); !s.ok()) return s;
    poll_thread_ = std::thread([this] { PollLoop(); });
    return absl::OkStatus();
  }

  absl::Status Stop(absl::Duration timeout) override {
    absl::MutexLock stop_lock(&stop_mu_);
    if (stopped_ || lanes_ == nullptr) return absl::OkStatus();
    state_.store(PipelineState::kStopping);
    stop_requested_.store(true);
    switch_.Close();
    if (poll_thread_.joinable()) poll_thread_.join();
    absl::Status result = stage_->Drain(absl::Now() + timeout);
    if (!result.ok()) {
      result = absl::DeadlineExceededError(absl::StrCat(
          "stopping: ", result.message(), " (within ", absl::FormatDuration(timeout),
          "); the rest is consumed again on restart"));
      LogWarning(result.message());
    }
    lanes_->Stop();
    // Dead letters still in flight count as unapplied until their report arrives.
    dead_letters_->Flush(absl::Seconds(5)).IgnoreError();
    DeliverAcknowledgements();
    source_->Commit(stage_->DurableOffsets());
    closing_ = true;
    source_->Close();
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
    return switch_.Run([this, target]() -> absl::StatusOr<SwitchReport> {
      v1::GroupMode group;
      group.set_mode(target);
      group.set_by_member(member_);
      group.set_switched_unix_ms(NowMillis());
      const std::string record = group.SerializeAsString();
      if (absl::Status s = control_->Publish({kModeKey, record}, kControlTimeout); !s.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "the group's control topic did not take the switch, nothing changed: ", s.message()));
      }
      // Read up to the switch first: an older switch read after it would undo it here.
      ReadUpTo(record, absl::Now() + kControlTimeout);
      group_mode_ = target;
      absl::StatusOr<SwitchReport> report = PerformSwitch(target);
      if (!report.ok()) next_follow_ = absl::Now() + kFollowRetry;
      return report;
    });
  }

  std::vector<v1::GroupMember> Members() const override {
    absl::MutexLock lock(&members_mu_);
    std::vector<v1::GroupMember> members;
    for (const auto& [name, member] : members_) members.push_back(member);
    return members;
  }

  v1::JoinMode mode() const override { return mode_.load(); }

  absl::Status DeadLetterHeld(const std::string& topic, int32_t partition, int64_t offset,
                              const std::string& note) override {
    const int source = schema_.SourceIndexOfTopic(topic);
    if (source < 0) {
      return absl::InvalidArgumentError(absl::StrCat("topic: ", topic, " is no source's topic"));
    }
    EventPosition position;
    position.partition = SourcePartition{source, partition};
    position.offset = offset;
    const std::string where = absl::StrCat(topic, "[", partition, "]@", offset);
    if (!lanes_->RejectHeld(position, absl::CancelledError(absl::StrCat(
                                          "dead-lettered by the operator",
                                          note.empty() ? "" : ": ", note)))) {
      return absl::NotFoundError(absl::StrCat(
          "no sink lane holds on ", where,
          lanes_->Degraded() ? " (a lane holds other events: see the lanes in status)" : ""));
    }
    LogWarning("the operator dead-letters ", where, note.empty() ? "" : ": ", note);
    return absl::OkStatus();
  }
  const v1::Config& config() const override { return options_.config; }
  void Pause() override { operator_paused_.store(true); }
  void Resume() override { operator_paused_.store(false); }

  PipelineState state() const override {
    const PipelineState state = state_.load();
    if (state != PipelineState::kRunning) return state;
    if (lanes_->Degraded() || held_.load() || split_.load() || decode_waits_.load() ||
        source_->DataLoss() ||
        !source_->Unreachable().empty()) {
      return PipelineState::kDegraded;
    }
    // Until the group gives this instance partitions there is nothing to run.
    return source_->Assigned() ? state : PipelineState::kStarting;
  }

  std::vector<PartitionStatus> Partitions() const override {
    return MergePartitionStatus(source_->Status(), tracker_.Progress());
  }

  std::vector<LaneStatus> Lanes() const override { return lanes_->Status(); }
  const PipelineStats& stats() const override { return stats_; }
  bool Assigned() const override { return source_->Assigned(); }

 private:
  // PartitionListener: called inside source_->Poll and Close, on the poll thread.
  void OnAssigned(std::vector<AssignedPartition>& partitions) override {
    stage_->OnAssigned(partitions);
    std::vector<SourcePartition> admitted;
    for (const AssignedPartition& partition : partitions) {
      tracker_.Reset(partition.partition, partition.start);
      admitted.push_back(partition.partition);
    }
    feed_->Admit(admitted);  // Ours again: what a revocation fenced off may be written.
    // Whether the group is split is known only once the source has the new assignment: stand
    // still until the loop has checked (CheckWholeStream).
    if (NeedsEveryPartition()) {
      split_.store(true);
      source_->SetPaused(PauseReason::kSplitGroup, true);
    }
  }

  std::map<SourcePartition, int64_t> OnRevoked(
      const std::vector<SourcePartition>& partitions) override {
    // On close the stage is drained and the lanes are stopped already.
    ForgetUndecoded(partitions);
    if (!closing_) stage_->OnRevoked(partitions, absl::Now() + kRevokeDrainTimeout);
    DeliverAcknowledgements();
    const std::map<SourcePartition, int64_t> durable = stage_->DurableOffsets();
    std::map<SourcePartition, int64_t> commit;
    for (const SourcePartition& partition : partitions) {
      if (auto it = durable.find(partition); it != durable.end()) commit.insert(*it);
      tracker_.Remove(partition);
    }
    return commit;
  }

  void OnLost(const std::vector<SourcePartition>& partitions) override {
    ForgetUndecoded(partitions);
    stage_->OnLost(partitions);
    for (const SourcePartition& partition : partitions) tracker_.Remove(partition);
  }

  void PollLoop() {
    state_.store(PipelineState::kRunning);
    absl::Time last_advance = absl::Now();
    absl::Time last_commit = absl::InfinitePast();
    const absl::Duration commit_interval =
        absl::Milliseconds(options_.config.kafka().commit_interval_ms());
    while (!stop_requested_.load()) {
      switch_.Serve();
      ServeOperatorPause();
      CheckWholeStream();
      const bool room = feed_->HasRoom();
      source_->SetPaused(PauseReason::kBackpressure, !room);
      if (!room) lanes_->WaitForRoom(absl::Milliseconds(50));
      if (room && !undecoded_.empty()) RetryUndecoded();
      // While records wait to be decoded, nothing newer is taken (the group is still served).
      const bool take = room && undecoded_.empty();
      std::vector<ConsumedRecord> records =
          source_->Poll(room ? kPollTimeout : absl::ZeroDuration(), take ? kMaxPollBatch : 0);
      if (!records.empty()) HandleBatch(records);
      if (absl::Now() - last_advance >= kAdvanceInterval) {
        last_advance = absl::Now();
        FollowGroup();
        DeliverAcknowledgements();
        // Split, windows would close with a key's other side in another process.
        if (!split_.load()) {
          if (absl::Status s = stage_->Advance(NowMillis(), CaughtUp()); !s.ok()) Hold(s);
        }
      }
      DeadLetterRejectedRows();
      dead_letters_->Poll();
      if (absl::Now() - last_commit >= commit_interval) {
        last_commit = absl::Now();
        DeliverAcknowledgements();
        source_->Commit(stage_->DurableOffsets());
        CopyJoinerStats();
      }
    }
  }

  // One poll batch, in consumption order: decoded, dead-lettered or skipped, then to the stage.
  // A record that must hold consumption ends the batch there: what came before it still goes on.
  void HandleBatch(std::vector<ConsumedRecord>& records) {
    std::vector<ChangeEvent> events;
    std::optional<size_t> events_before_dead_letters;
    absl::Status hold;
    for (size_t i = 0; i < records.size(); ++i) {
      const ConsumedRecord& record = records[i];
      absl::StatusOr<Decoded> decoded =
          decoder_->Decode(record.position.partition.source, record.key, record.value,
                           record.timestamp_ms, record.position);
      if (!decoded.ok() && decoded.status().code() == absl::StatusCode::kUnavailable) {
        WaitToDecode(records, i, decoded.status());
        break;
      }
      tracker_.Track(record.position);
      if (!decoded.ok()) {
        // Only a malformed record is dead-lettered (record_decoder.h); anything else holds.
        if (decoded.status().code() != absl::StatusCode::kInvalidArgument) {
          hold = decoded.status();
          break;
        }
        if (!dead_letters_->Send(record, decoded.status(),
                                 DeadLetterReasonOfDecodeError(decoded.status()))) {
          hold = absl::UnavailableError("the dead-letter queue refused a record");
          break;
        }
        stats_.dead_lettered_undecoded.fetch_add(1, std::memory_order_relaxed);
        if (!events_before_dead_letters.has_value()) events_before_dead_letters = events.size();
        continue;
      }
      stats_.CountDecoded(decoded->outcome, decoded->op);
      if (decoded->key_disagreed) stats_.key_disagreements.fetch_add(1, std::memory_order_relaxed);
      if (decoded->outcome != DecodeOutcome::kEvent) {
        tracker_.Done(record.position);
        continue;
      }
      events.push_back(std::move(decoded->event));
    }
    // A stage with state stores offsets past these events: the dead letters before them must be
    // delivered first.
    if (events_before_dead_letters.has_value()) {
      if (absl::Status s = dead_letters_->Flush(kDeadLetterFlushTimeout); !s.ok()) {
        events.resize(*events_before_dead_letters);
        hold = s;
      }
    }
    if (absl::Status s = stage_->OnEvents(std::move(events), CaughtUp()); !s.ok()) return Hold(s);
    if (!hold.ok()) Hold(hold);
  }

  // Decoding needs something outside the record that is not there now (the schema registry is
  // down): this record and the rest of its batch wait, in order, untracked, and are decoded again
  // on the next turns of the loop; nothing newer is consumed and nothing is committed past them.
  void WaitToDecode(std::vector<ConsumedRecord>& records, size_t first, const absl::Status& why) {
    undecoded_.assign(std::make_move_iterator(records.begin() + static_cast<ptrdiff_t>(first)),
                      std::make_move_iterator(records.end()));
    source_->SetPaused(PauseReason::kDecodeRetry, true);
    if (!decode_waits_.exchange(true)) {
      const std::string message =
          absl::StrCat(why.ToString(), "; consumption waits and retries, nothing is committed "
                                       "past this record");
      LogError(message);
      stats_.RecordError(message);
    }
  }

  void RetryUndecoded() {
    std::vector<ConsumedRecord> retry;
    retry.swap(undecoded_);
    HandleBatch(retry);
    if (!undecoded_.empty()) return;
    source_->SetPaused(PauseReason::kDecodeRetry, false);
    if (decode_waits_.exchange(false)) LogInfo("decoding works again: consumption resumes");
  }

  // A revoked or lost partition's waiting records are someone else's now.
  void ForgetUndecoded(const std::vector<SourcePartition>& partitions) {
    undecoded_.erase(std::remove_if(undecoded_.begin(), undecoded_.end(),
                                    [&](const ConsumedRecord& record) {
                                      return std::find(partitions.begin(), partitions.end(),
                                                       record.position.partition) !=
                                             partitions.end();
                                    }),
                     undecoded_.end());
  }

  // The rows the sink lanes could not apply (the database refused them, or the operator took them
  // out): each event they carry becomes a dead letter holding the row, and counts as done once
  // that is delivered. Until then nothing is committed past them; if the dead-letter topic
  // refuses them, consumption holds.
  void DeadLetterRejectedRows() {
    std::vector<std::pair<RowCommand, absl::Status>> rejected;
    {
      absl::MutexLock lock(&rejected_mu_);
      rejected.swap(rejected_);
    }
    if (rejected.empty()) return;
    std::vector<RowCommand> delivered;
    for (auto& [command, why] : rejected) {
      const std::string row = RejectedRowJson(command, schema_);
      const std::optional<int> sql_code = MySqlErrorCode(why);
      const DeadLetterReason reason =
          sql_code.has_value() ? DeadLetterReason::kRowRejected : DeadLetterReason::kOperator;
      for (const EventPosition& position : command.covers) {
        ConsumedRecord record;
        record.position = position;
        record.topic = options_.config.sources(position.partition.source).topic();
        record.value = row;
        record.timestamp_ms = NowMillis();
        if (sql_code.has_value()) {
          record.headers.push_back({"cdcjoin.sql.code", absl::StrCat(*sql_code)});
        }
        if (!dead_letters_->Send(record, why, reason)) {
          return Hold(absl::UnavailableError(
              "the dead-letter queue refused a row the database rejected"));
        }
      }
      delivered.push_back(std::move(command));
    }
    if (absl::Status s = dead_letters_->Flush(kDeadLetterFlushTimeout); !s.ok()) return Hold(s);
    if (window_.stage != nullptr) window_.stage->Applied(delivered);
  }

  // Whether a source's partition has nothing left to fetch: what the broker has is consumed. A
  // partition another member owns sends nothing here: waiting for it would only delay the
  // windows of its partition number.
  EventTimeAligner::CaughtUp CaughtUp() {
    std::map<SourcePartition, int64_t> next_to_fetch;
    for (const OffsetTracker::PartitionProgress& progress : tracker_.Progress()) {
      next_to_fetch[progress.partition] =
          progress.consumed >= 0 ? progress.consumed + 1 : progress.next_offset;
    }
    return [this, next_to_fetch = std::move(next_to_fetch)](const SourcePartition& partition) {
      auto it = next_to_fetch.find(partition);
      return it == next_to_fetch.end() || source_->FullyFetched(partition, it->second);
    };
  }

  // Stops consuming (until restart) after an error that retrying here cannot fix; nothing is
  // committed past it.
  void Hold(const absl::Status& error) {
    const std::string message = absl::StrCat(error.ToString(),
                                             "; consumption stops, nothing is committed past "
                                             "this point");
    LogError(message);
    stats_.RecordError(message);
    held_.store(true);
    source_->SetPaused(PauseReason::kHold, true);
  }

  // WINDOWED INNER and LEFT match a key's two sides in one process. Debezium keys the two topics
  // differently, so the sides of a key sit on unrelated partitions and, with another instance in
  // the group, in another process, where a left side would be written as unmatched. Such a join
  // consumes only while this instance owns every partition (one instance per group; OUTER has no
  // such limit: each side's columns are written on their own).
  bool NeedsEveryPartition() const {
    const v1::JoinType join = options_.config.window().join_type();
    return mode_.load() == v1::WINDOWED && (join == v1::INNER || join == v1::LEFT);
  }

  void CheckWholeStream() {
    const v1::JoinType join = options_.config.window().join_type();
    const std::optional<bool> owns_all = source_->OwnsEveryPartition();
    // Until the partition counts are known, wait: consuming might already be wrong.
    const bool split =
        NeedsEveryPartition() && source_->Assigned() && owns_all != std::optional<bool>(true);
    if (split != split_.load()) {
      split_.store(split);
      source_->SetPaused(PauseReason::kSplitGroup, split);
    }
    if (split && owns_all.has_value() && !split_announced_) {
      split_announced_ = true;
      const std::string message = absl::StrCat(
          "WINDOWED ", v1::JoinType_Name(join),
          " needs every partition of both topics in this process, and another instance of group ",
          options_.config.kafka().group_id(),
          " holds some: consumption paused until one instance owns them all (run one instance "
          "per group for INNER/LEFT, or join OUTER)");
      LogError(message);
      stats_.RecordError(message);
    } else if (!split && split_announced_) {
      split_announced_ = false;
      LogInfo("this instance owns every partition again: the ", v1::JoinType_Name(join),
              " join consumes");
    }
  }

  // Hands the lanes' acknowledgements to the window state (its joiner lives on this thread).
  void DeliverAcknowledgements() {
    if (window_.stage == nullptr) return;
    if (absl::Status s = window_.stage->DeliverAcknowledgements(); !s.ok()) Hold(s);
  }

  void CopyJoinerStats() {
    if (window_.stage == nullptr) return;
    const WindowedJoiner::Stats joined = window_.stage->stats();
    stats_.late_drops.store(joined.late_drops, std::memory_order_relaxed);
    stats_.windows_opened.store(joined.windows_opened, std::memory_order_relaxed);
    stats_.windows_emitted.store(joined.windows_emitted, std::memory_order_relaxed);
  }

  void ServeOperatorPause() {
    const bool want = operator_paused_.load();
    if (want == paused_by_operator_) return;
    paused_by_operator_ = want;
    source_->SetPaused(PauseReason::kOperator, want);
    state_.store(want ? PipelineState::kPaused : PipelineState::kRunning);
    LogInfo(want ? "consumption paused by the operator" : "consumption resumed by the operator");
  }

  // The group's mode as the control topic holds it, read to its end; the configured mode when
  // it holds none or cannot be read (then the member follows once it can).
  v1::JoinMode InitialMode() {
    absl::StatusOr<std::vector<ControlRecord>> records = control_->ReadToEnd(kControlTimeout);
    if (!records.ok()) {
      LogWarning("the group's control topic could not be read (", records.status().message(),
                 "): starting in the configured mode, following the group's once it is read");
      return options_.config.mode();
    }
    TakeControlRecords(*records);
    if (!group_mode_.has_value()) return options_.config.mode();
    if (*group_mode_ != options_.config.mode()) {
      LogInfo("the group ", options_.config.kafka().group_id(), " runs in ",
              v1::JoinMode_Name(*group_mode_), " (a runtime switch): this member joins in it, not in "
              "the configured ", v1::JoinMode_Name(options_.config.mode()));
    }
    if (*group_mode_ == v1::WINDOWED && window_.stage == nullptr) {
      LogError("the group runs in WINDOWED but this member has no window.state_dir: it stays in ",
               v1::JoinMode_Name(options_.config.mode()));
      return options_.config.mode();
    }
    return *group_mode_;
  }

  void TakeControlRecords(const std::vector<ControlRecord>& records) {
    for (const ControlRecord& record : records) {
      if (record.key == kModeKey) {
        v1::GroupMode group;
        if (group.ParseFromString(record.value)) group_mode_ = group.mode();
      } else if (absl::StartsWith(record.key, kMemberKeyPrefix)) {
        v1::GroupMember member;
        if (!member.ParseFromString(record.value)) continue;
        absl::MutexLock lock(&members_mu_);
        members_[member.member()] = member;
      }
    }
  }

  // Takes the control topic's records until the mode record `value` has come by.
  void ReadUpTo(const std::string& value, absl::Time deadline) {
    while (absl::Now() < deadline) {
      const std::vector<ControlRecord> records = control_->Poll();
      TakeControlRecords(records);
      for (const ControlRecord& record : records) {
        if (record.key == kModeKey && record.value == value) return;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    LogWarning("the group's control topic did not return this member's switch in time");
  }

  // Switches to the group's mode when another member changed it (at this barrier: between two
  // poll batches).
  void FollowGroup() {
    TakeControlRecords(control_->Poll());
    if (!group_mode_.has_value() || *group_mode_ == mode_.load() || absl::Now() < next_follow_) {
      return;
    }
    LogInfo("the group switched to ", v1::JoinMode_Name(*group_mode_), ": following");
    if (!PerformSwitch(*group_mode_).ok()) next_follow_ = absl::Now() + kFollowRetry;
  }

  // This member's mode on the control topic, for every member's status.
  void PublishMember() {
    v1::GroupMember member;
    member.set_member(member_);
    member.set_mode(mode_.load());
    member.set_updated_unix_ms(NowMillis());
    {
      absl::MutexLock lock(&members_mu_);
      members_[member_] = member;
    }
    if (absl::Status s = control_->Publish(
            {absl::StrCat(kMemberKeyPrefix, member_), member.SerializeAsString()},
            kControlTimeout);
        !s.ok()) {
      LogWarning("the group's control topic did not take this member's mode: ", s.message());
    }
  }

  // Pause, drain (open windows, pending batches), commit, swap, resume: all on the poll thread,
  // which consumes nothing meanwhile.
  absl::StatusOr<SwitchReport> PerformSwitch(v1::JoinMode target) {
    const absl::Time start = absl::Now();
    SwitchReport report{mode_.load(), target, false, absl::ZeroDuration()};
    if (report.from == target) return report;
    absl::StatusOr<std::unique_ptr<Stage>> next = MakeStage(target, context_);
    if (!next.ok()) return next.status();
    const PipelineState before = state_.exchange(PipelineState::kSwitching);
    const absl::Status drained = stage_->Drain(start + kSwitchDrainTimeout);
    state_.store(before);
    if (!drained.ok()) {
      return absl::UnavailableError(
          absl::StrCat(drained.message(), "; staying in ", v1::JoinMode_Name(report.from)));
    }
    DeliverAcknowledgements();
    source_->Commit(stage_->DurableOffsets());
    stage_ = *std::move(next);
    mode_.store(target);
    report.changed = true;
    report.paused = absl::Now() - start;
    PublishMember();
    LogInfo("switched ", v1::JoinMode_Name(report.from), " -> ", v1::JoinMode_Name(target),
            "; consumption paused for ", absl::FormatDuration(report.paused));
    return report;
  }

  // Declared first, destroyed last: everything below reports into them.
  Options options_;
  PipelineStats stats_;
  OffsetTracker tracker_;
  TableSchema schema_;
  std::unique_ptr<RecordSource> source_;
  std::unique_ptr<RecordDecoder> decoder_;          // Poll thread.
  std::unique_ptr<DeadLetterSink> dead_letters_;    // Poll thread.
  std::unique_ptr<GroupControl> control_;           // Poll thread.
  const std::string member_ = MemberName(options_.config.kafka());
  std::optional<v1::JoinMode> group_mode_;          // Poll thread: the control topic's.
  absl::Time next_follow_ = absl::InfinitePast();   // Poll thread.
  mutable absl::Mutex members_mu_;
  std::map<std::string, v1::GroupMember> members_ ABSL_GUARDED_BY(members_mu_);
  WindowState window_;  // Poll thread; Applied from the lanes.
  std::unique_ptr<SinkLanes> lanes_;                // Calls back into tracker_, window_.stage.
  std::unique_ptr<SinkFeed> feed_;                  // Poll thread.
  StageContext context_;
  std::unique_ptr<Stage> stage_;                    // Poll thread (Stop once it has ended).
  std::atomic<v1::JoinMode> mode_{v1::DB_UPSERT};

  bool paused_by_operator_ = false;  // Poll thread.
  bool closing_ = false;             // Stop, after the poll thread ended.
  std::atomic<PipelineState> state_{PipelineState::kStarting};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> operator_paused_{false};
  std::atomic<bool> held_{false};
  std::atomic<bool> split_{false};  // CheckWholeStream.
  std::atomic<bool> decode_waits_{false};      // WaitToDecode until RetryUndecoded succeeds.
  std::vector<ConsumedRecord> undecoded_;      // Poll thread: WaitToDecode.
  bool split_announced_ = false;     // Poll thread: CheckWholeStream logged the split.

  LoopCall<SwitchReport> switch_;

  absl::Mutex rejected_mu_;  // Lanes push, the poll thread takes.
  std::vector<std::pair<RowCommand, absl::Status>> rejected_ ABSL_GUARDED_BY(rejected_mu_);

  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread poll_thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::StartWith(Options options,
                                                              Connectors connectors) {
  auto pipeline = std::make_unique<PipelineImpl>(std::move(options));
  if (absl::Status s = pipeline->Init(connectors); !s.ok()) return s;
  return std::unique_ptr<Pipeline>(std::move(pipeline));
}

}  // namespace cdcjoin
