// The pipeline's loop against a scripted source, dead-letter sink and writer (no broker, no
// database): revocation in the middle of a batch while the sink is full, revocation during a
// mode switch, dead letters that cannot be sent or delivered, and an operator pause during
// back-pressure. Each test asserts what was written and what was committed.

#include "service/pipeline.h"

#include <atomic>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "service/config.h"
#include "tests/support/avro_fixtures.h"
#include "tests/support/schema_registry_stub.h"

namespace cdcjoin {
namespace {

constexpr int kA = 0;
constexpr int kB = 1;

// Waits for `condition` until `timeout`; false on timeout (the caller prints what it saw).
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

std::string Name(const SourcePartition& p) {
  return absl::StrCat(p.source == kA ? "a" : "b", "[", p.partition, "]");
}

// One clock for writes and revocations, so a test can tell which came first.
std::atomic<int64_t> g_sequence{0};

// What the writers applied: each event position a command carried, with the sequence number
// of its write.
class WrittenLog {
 public:
  void Add(const std::vector<RowCommand>& commands) {
    absl::MutexLock lock(&mu_);
    for (const RowCommand& command : commands) {
      for (const EventPosition& position : command.covers) {
        writes_.push_back({position, g_sequence.fetch_add(1)});
      }
    }
  }
  void Clear() {
    absl::MutexLock lock(&mu_);
    writes_.clear();
  }
  // Sequence numbers of the writes of `partition`, by offset.
  std::map<int64_t, int64_t> Of(const SourcePartition& partition) const {
    absl::MutexLock lock(&mu_);
    std::map<int64_t, int64_t> out;
    for (const Write& write : writes_) {
      if (write.position.partition == partition) out[write.position.offset] = write.sequence;
    }
    return out;
  }

 private:
  struct Write {
    EventPosition position;
    int64_t sequence;
  };
  mutable absl::Mutex mu_;
  std::vector<Write> writes_ ABSL_GUARDED_BY(mu_);
};

// A writer that takes `delay` per call and waits while its gate is closed.
class ScriptedWriter final : public RowWriter {
 public:
  struct Shared {
    WrittenLog log;
    absl::Duration delay = absl::ZeroDuration();
    absl::Mutex gate_mu;
    bool gate_open ABSL_GUARDED_BY(gate_mu) = true;
    void SetGate(bool open) {
      absl::MutexLock lock(&gate_mu);
      gate_open = open;
    }
  };
  explicit ScriptedWriter(Shared* shared) : shared_(shared) {}

  absl::Status Apply(const std::vector<RowCommand>& commands) override {
    {
      absl::MutexLock lock(&shared_->gate_mu);
      shared_->gate_mu.Await(absl::Condition(&shared_->gate_open));
    }
    absl::SleepFor(shared_->delay);
    shared_->log.Add(commands);
    return absl::OkStatus();
  }

 private:
  Shared* const shared_;
};

// A source whose topics, assignments and revocations the test writes; it honours pauses and
// hands out at most kMaxPerPoll records per Poll, kMaxPerPartition of each partition, so a test
// sees many batches, each with records of every partition.
class ScriptedSource final : public RecordSource {
 public:
  static constexpr size_t kMaxPerPoll = 64;
  static constexpr int64_t kMaxPerPartition = 16;

  // Test thread.
  void Produce(const SourcePartition& partition, std::string value) {
    absl::MutexLock lock(&mu_);
    logs_[partition].push_back(std::move(value));
  }
  void Assign(std::vector<SourcePartition> partitions) {
    absl::MutexLock lock(&mu_);
    lifecycle_.push_back({true, std::move(partitions)});
  }
  void Revoke(std::vector<SourcePartition> partitions) {
    absl::MutexLock lock(&mu_);
    lifecycle_.push_back({false, std::move(partitions)});
  }
  // As when the group fenced this member off: OnLost, nothing committed.
  void Lose(std::vector<SourcePartition> partitions) {
    absl::MutexLock lock(&mu_);
    lifecycle_.push_back({false, std::move(partitions), /*lost=*/true});
  }
  int64_t Committed(const SourcePartition& p) const {
    absl::MutexLock lock(&mu_);
    auto it = committed_.find(p);
    return it == committed_.end() ? -1 : it->second;
  }
  int64_t Delivered(const SourcePartition& p) const {
    absl::MutexLock lock(&mu_);
    auto it = next_.find(p);
    return it == next_.end() ? 0 : it->second;
  }
  bool Paused(PauseReason reason) const {
    absl::MutexLock lock(&mu_);
    return paused_.count(reason) > 0;
  }
  bool EverBackpressured() const { return ever_backpressured_.load(); }
  bool IsAssigned(const SourcePartition& p) const {
    absl::MutexLock lock(&mu_);
    return assigned_.count(p) > 0;
  }
  // The sequence number at which the revocation of `p` returned, -1 before.
  int64_t RevokedAt(const SourcePartition& p) const {
    absl::MutexLock lock(&mu_);
    auto it = revoked_at_.find(p);
    return it == revoked_at_.end() ? -1 : it->second;
  }

  // RecordSource, on the pipeline's thread.
  absl::Status Start(PartitionListener* listener) override {
    listener_ = listener;
    return absl::OkStatus();
  }

  std::vector<ConsumedRecord> Poll(absl::Duration timeout, size_t max) override {
    ServeLifecycle();
    std::vector<ConsumedRecord> out;
    {
      absl::MutexLock lock(&mu_);
      if (paused_.empty()) {
        for (const SourcePartition& p : assigned_) {
          const std::vector<std::string>& log = logs_[p];
          int64_t& next = next_[p];
          const int64_t end = std::min<int64_t>(static_cast<int64_t>(log.size()),
                                                next + kMaxPerPartition);
          while (out.size() < std::min(max, kMaxPerPoll) && next < end) {
            ConsumedRecord record;
            record.position = EventPosition{p, next};
            record.topic = p.source == kA ? "a" : "b";
            auto bytes = std::make_shared<std::string>(log[static_cast<size_t>(next)]);
            record.value = std::string_view(*bytes);
            record.bytes = bytes;
            out.push_back(std::move(record));
            ++next;
          }
        }
      }
    }
    if (out.empty()) absl::SleepFor(std::min(timeout, absl::Milliseconds(10)));
    return out;
  }

  void Commit(const std::map<SourcePartition, int64_t>& offsets) override {
    absl::MutexLock lock(&mu_);
    for (const auto& [p, offset] : offsets) {
      if (assigned_.count(p) == 0 || offset < 0) continue;
      int64_t& committed = committed_[p];
      committed = std::max(committed, offset);
    }
  }

  void SetPaused(PauseReason reason, bool paused) override {
    if (reason == PauseReason::kBackpressure && paused) ever_backpressured_.store(true);
    absl::MutexLock lock(&mu_);
    if (paused) {
      paused_.insert(reason);
    } else {
      paused_.erase(reason);
    }
  }

  bool FullyFetched(const SourcePartition& p, int64_t next_offset) const override {
    absl::MutexLock lock(&mu_);
    auto it = logs_.find(p);
    return it == logs_.end() || next_offset >= static_cast<int64_t>(it->second.size());
  }

  void Close() override {
    std::vector<SourcePartition> all;
    {
      absl::MutexLock lock(&mu_);
      all.assign(assigned_.begin(), assigned_.end());
    }
    if (!all.empty()) RevokeNow(all);
  }

  std::vector<SourcePartitionStatus> Status() const override {
    absl::MutexLock lock(&mu_);
    std::vector<SourcePartitionStatus> out;
    for (const SourcePartition& p : assigned_) {
      SourcePartitionStatus status;
      status.partition = p;
      status.topic = Name(p);
      auto it = committed_.find(p);
      status.committed = it == committed_.end() ? -1 : it->second;
      out.push_back(status);
    }
    return out;
  }
  bool Assigned() const override {
    absl::MutexLock lock(&mu_);
    return !assigned_.empty();
  }
  std::optional<bool> OwnsEveryPartition() const override {
    absl::MutexLock lock(&mu_);
    return owns_every_partition_;
  }
  void SetOwnsEveryPartition(std::optional<bool> owns) {
    absl::MutexLock lock(&mu_);
    owns_every_partition_ = owns;
  }
  bool DataLoss() const override { return false; }
  std::string Unreachable() const override { return ""; }

 private:
  struct Lifecycle {
    bool assign;
    std::vector<SourcePartition> partitions;
    bool lost = false;
  };

  void ServeLifecycle() {
    while (true) {
      Lifecycle next;
      {
        absl::MutexLock lock(&mu_);
        if (lifecycle_.empty()) return;
        next = std::move(lifecycle_.front());
        lifecycle_.pop_front();
      }
      if (next.assign) {
        std::vector<AssignedPartition> assigned;
        {
          absl::MutexLock lock(&mu_);
          for (const SourcePartition& p : next.partitions) {
            auto it = committed_.find(p);
            const int64_t committed = it == committed_.end() ? -1 : it->second;
            assigned.push_back({p, committed, committed});
          }
        }
        listener_->OnAssigned(assigned);
        absl::MutexLock lock(&mu_);
        for (const AssignedPartition& a : assigned) {
          assigned_.insert(a.partition);
          next_[a.partition] = std::max<int64_t>(a.start, 0);
        }
      } else if (next.lost) {
        listener_->OnLost(next.partitions);
        absl::MutexLock lock(&mu_);
        for (const SourcePartition& p : next.partitions) assigned_.erase(p);
      } else {
        RevokeNow(next.partitions);
      }
    }
  }

  // As KafkaSource does: the listener applies, the offsets it returns are committed, then the
  // partitions go.
  void RevokeNow(const std::vector<SourcePartition>& partitions) {
    Commit(listener_->OnRevoked(partitions));
    absl::MutexLock lock(&mu_);
    const int64_t now = g_sequence.fetch_add(1);
    for (const SourcePartition& p : partitions) {
      assigned_.erase(p);
      revoked_at_[p] = now;
    }
  }

  PartitionListener* listener_ = nullptr;
  std::atomic<bool> ever_backpressured_{false};
  mutable absl::Mutex mu_;
  std::map<SourcePartition, std::vector<std::string>> logs_ ABSL_GUARDED_BY(mu_);
  std::deque<Lifecycle> lifecycle_ ABSL_GUARDED_BY(mu_);
  std::set<SourcePartition> assigned_ ABSL_GUARDED_BY(mu_);
  std::map<SourcePartition, int64_t> next_ ABSL_GUARDED_BY(mu_);
  std::map<SourcePartition, int64_t> committed_ ABSL_GUARDED_BY(mu_);
  std::map<SourcePartition, int64_t> revoked_at_ ABSL_GUARDED_BY(mu_);
  std::set<PauseReason> paused_ ABSL_GUARDED_BY(mu_);
  std::optional<bool> owns_every_partition_ ABSL_GUARDED_BY(mu_) = true;
};

// Delivers what it accepts at the next Poll, unless told to refuse sending or delivering.
class ScriptedDeadLetters final : public DeadLetterSink {
 public:
  struct Script {
    bool refuse_send = false;
    bool never_deliver = false;
    std::atomic<int> sent{0};
  };
  ScriptedDeadLetters(Script* script, std::function<void(const EventPosition&)> on_delivered)
      : script_(script), on_delivered_(std::move(on_delivered)) {}

  bool Send(const ConsumedRecord& record, const absl::Status& error,
            DeadLetterReason reason) override {
    if (script_->refuse_send) return false;
    script_->sent.fetch_add(1);
    queued_.push_back(record.position);
    return true;
  }
  void Poll() override {
    if (script_->never_deliver) return;
    for (const EventPosition& position : queued_) on_delivered_(position);
    queued_.clear();
  }
  absl::Status Flush(absl::Duration timeout) override {
    Poll();
    if (!queued_.empty()) return absl::UnavailableError("dead letters not delivered");
    return absl::OkStatus();
  }

 private:
  Script* const script_;
  const std::function<void(const EventPosition&)> on_delivered_;
  std::vector<EventPosition> queued_;
};

// The group's control topic as a log in memory, which outlives the pipelines of a test.
struct ControlLog {
  void Append(ControlRecord record) {
    absl::MutexLock lock(&mu);
    records.push_back(std::move(record));
  }
  absl::Mutex mu;
  std::vector<ControlRecord> records ABSL_GUARDED_BY(mu);
};

class InMemoryControl final : public GroupControl {
 public:
  explicit InMemoryControl(ControlLog* log) : log_(log) {}
  absl::Status Publish(const ControlRecord& record, absl::Duration) override {
    log_->Append(record);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ControlRecord>> ReadToEnd(absl::Duration) override { return Poll(); }
  std::vector<ControlRecord> Poll() override {
    absl::MutexLock lock(&log_->mu);
    std::vector<ControlRecord> records(log_->records.begin() + static_cast<ptrdiff_t>(next_),
                                       log_->records.end());
    next_ = log_->records.size();
    return records;
  }

 private:
  ControlLog* const log_;
  size_t next_ = 0;
};

std::string Upsert(int source, int64_t key, int64_t version) {
  return absl::StrCat(R"({"op":"u","after":{"id":)", key, source == kA ? R"(,"v":")" : R"(,"w":")",
                      "v", version, R"("},"source":{"ts_ms":)", 1700000000000 + version, "}}");
}

class PipelineLoopTest : public ::testing::Test {
 protected:
  void TearDown() override {
    writer_.SetGate(true);
    if (pipeline_ != nullptr) {
      EXPECT_TRUE(pipeline_->Stop(absl::Seconds(30)).ok());
    }
  }

  void Start(const std::string& extra_config = "", const std::string& join_type = "OUTER") {
    state_dir_ = absl::StrCat(::testing::TempDir(), "/state-",
                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    const std::string text = absl::StrCat(R"pb(
      kafka { group_id: "g" dead_letter_topic: "dlq" commit_interval_ms: 20 }
      target {
        table: "T"
        key_columns: "id"
        database { host: "127.0.0.1" user: "u" database: "d" }
      }
      )pb", sources_config_, R"pb(
      sink { lanes: 2 batch_rows: 10 linger_ms: 1 queue_capacity: 5 }
      window { )pb", window_timing_, R"( state_dir: ")", state_dir_,
                                          R"(" join_type: )", join_type, " }", extra_config);
    v1::Config config;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
    ApplyDefaults(&config);
    auto source = std::make_unique<ScriptedSource>();
    source_ = source.get();
    Pipeline::Connectors connectors;
    connectors.source = [&source](PipelineStats*) -> absl::StatusOr<std::unique_ptr<RecordSource>> {
      return std::unique_ptr<RecordSource>(std::move(source));
    };
    connectors.dead_letters = [this](PipelineStats*,
                                     std::function<void(const EventPosition&)> on_delivered)
        -> absl::StatusOr<std::unique_ptr<DeadLetterSink>> {
      return std::unique_ptr<DeadLetterSink>(
          std::make_unique<ScriptedDeadLetters>(&dead_letter_script_, std::move(on_delivered)));
    };
    connectors.control = [this](PipelineStats*) -> absl::StatusOr<std::unique_ptr<GroupControl>> {
      return std::unique_ptr<GroupControl>(std::make_unique<InMemoryControl>(&control_log_));
    };
    Pipeline::Options options;
    options.config = config;
    options.connect_writer = [this]() -> absl::StatusOr<std::unique_ptr<RowWriter>> {
      return std::unique_ptr<RowWriter>(std::make_unique<ScriptedWriter>(&writer_));
    };
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
        Pipeline::StartWith(options, std::move(connectors));
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = *std::move(pipeline);
  }

  void Produce(const SourcePartition& p, int64_t count, int64_t key_base, int64_t keys) {
    for (int64_t i = 0; i < count; ++i) source_->Produce(p, Upsert(p.source, key_base + i % keys, i));
  }

  // Every offset in [0, end) of `p` was written before `limit` (a sequence number).
  void ExpectWrittenBefore(const SourcePartition& p, int64_t end, int64_t limit) {
    const std::map<int64_t, int64_t> writes = writer_.log.Of(p);
    for (int64_t offset = 0; offset < end; ++offset) {
      auto it = writes.find(offset);
      ASSERT_NE(it, writes.end()) << Name(p) << "@" << offset << " never written";
      EXPECT_LT(it->second, limit) << Name(p) << "@" << offset << " written after its revocation";
    }
  }

  std::string Describe(const SourcePartition& p) const {
    return absl::StrCat(Name(p), ": delivered ", source_->Delivered(p), ", committed ",
                        source_->Committed(p), ", written ", writer_.log.Of(p).size(), ", state ",
                        PipelineStateName(pipeline_->state()));
  }

  std::string sources_config_ = R"pb(
    sources { name: "a" topic: "a" key_fields: "id" columns { from: "v" to: "va" } }
    sources { name: "b" topic: "b" key_fields: "id" columns { from: "w" to: "wb" } })pb";
  std::string window_timing_ = "window_ms: 100 grace_ms: 0 idle_flush_ms: 100";
  ControlLog control_log_;  // The group's control topic, across restarts.
  ScriptedWriter::Shared writer_;
  ScriptedDeadLetters::Script dead_letter_script_;
  ScriptedSource* source_ = nullptr;
  std::unique_ptr<Pipeline> pipeline_;
  std::string state_dir_;
};

TEST_F(PipelineLoopTest, RevokeInTheMiddleOfABatchWhileTheSinkIsFull) {
  writer_.delay = absl::Milliseconds(3);
  Start();
  const SourcePartition a0{kA, 0};
  const SourcePartition a1{kA, 1};
  Produce(a0, 3000, 0, 40);
  Produce(a1, 3000, 1000, 40);
  source_->Assign({a0, a1});
  ASSERT_TRUE(WaitFor([&] { return source_->EverBackpressured() && source_->Delivered(a0) > 0; }))
      << Describe(a0);
  source_->Revoke({a0});
  ASSERT_TRUE(WaitFor([&] { return source_->RevokedAt(a0) >= 0; })) << Describe(a0);
  const int64_t delivered = source_->Delivered(a0);
  ASSERT_LT(delivered, 3000) << "the revocation came after the whole partition was consumed";
  // Everything handed to the pipeline was applied before the revocation returned, and committed.
  EXPECT_EQ(source_->Committed(a0), delivered) << Describe(a0);
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a1) == 3000; })) << Describe(a1);
  ExpectWrittenBefore(a0, delivered, source_->RevokedAt(a0));
  // Nothing consumed after the revocation, nothing of it written afterwards.
  EXPECT_EQ(writer_.log.Of(a0).size(), static_cast<size_t>(delivered)) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a1).size(), 3000u) << Describe(a1);
}

// Debezium keys the two topics differently, so a key's two sides arrive on unrelated partition
// numbers and its window is filed under the first one. Revoking the other side's partition must
// still apply that window before the revocation returns: nothing of the partition may be
// written once its new owner consumes it.
TEST_F(PipelineLoopTest, WindowedRevokeAppliesWindowsFiledUnderAKeptPartitionNumber) {
  window_timing_ = "window_ms: 600000 grace_ms: 0 idle_flush_ms: 600000";
  Start("mode: WINDOWED");
  const SourcePartition a0{kA, 0};
  const SourcePartition b1{kB, 1};
  Produce(a0, 20, 0, 20);
  source_->Assign({a0});
  ASSERT_TRUE(WaitFor([&] { return source_->Delivered(a0) == 20; })) << Describe(a0);
  Produce(b1, 20, 0, 20);
  source_->Assign({b1});
  ASSERT_TRUE(WaitFor([&] { return source_->Delivered(b1) == 20; })) << Describe(b1);
  // The windows are open for ten minutes: nothing is written until something closes them.
  EXPECT_EQ(writer_.log.Of(b1).size(), 0u) << Describe(b1);
  source_->Revoke({b1});
  ASSERT_TRUE(WaitFor([&] { return source_->RevokedAt(b1) >= 0; })) << Describe(b1);
  ExpectWrittenBefore(b1, 20, source_->RevokedAt(b1));
  EXPECT_EQ(source_->Committed(b1), 20) << Describe(b1);
  // The kept side goes on: written with its partners, committed.
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 20; })) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a0).size(), 20u) << Describe(a0);
}

// A lost partition's windows that carry nothing else are dropped unapplied and forgotten: the
// state neither holds the partition's commits below them for ever nor, when the partition comes
// back, skips the events it absorbed and never applied.
TEST_F(PipelineLoopTest, WindowedLossForgetsWhatOnlyTheLostPartitionCarried) {
  window_timing_ = "window_ms: 600000 grace_ms: 0 idle_flush_ms: 600000";
  Start("mode: WINDOWED");
  const SourcePartition a0{kA, 0};
  const SourcePartition b1{kB, 1};
  Produce(a0, 20, 0, 20);
  Produce(b1, 20, 100, 20);  // Keys no event of a0 has: windows of b1 alone.
  source_->Assign({a0, b1});
  ASSERT_TRUE(WaitFor([&] { return source_->Delivered(a0) == 20 && source_->Delivered(b1) == 20; }))
      << Describe(a0) << "; " << Describe(b1);
  source_->Lose({b1});
  ASSERT_TRUE(WaitFor([&] { return !source_->IsAssigned(b1); })) << Describe(b1);
  EXPECT_EQ(writer_.log.Of(b1).size(), 0u) << "a lost partition's own windows were written";
  source_->Assign({b1});
  ASSERT_TRUE(WaitFor([&] { return source_->IsAssigned(b1); })) << Describe(b1);
  // Consumed again from the committed offset, not from where the state had absorbed up to.
  ASSERT_TRUE(WaitFor([&] { return source_->Delivered(b1) == 20; })) << Describe(b1);
  // The revocation closes the windows of the consumed-again events: every one applied, the
  // partition committed to its end.
  source_->Revoke({b1});
  ASSERT_TRUE(WaitFor([&] { return source_->RevokedAt(b1) >= 0; })) << Describe(b1);
  EXPECT_EQ(source_->Committed(b1), 20) << Describe(b1);
  ExpectWrittenBefore(b1, 20, source_->RevokedAt(b1));
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 20; })) << Describe(a0);
}

// A runtime switch is the group's: written to its control topic, so a member that starts later
// (a restart, a new instance) joins in that mode whatever its configuration says, and a member
// that reads another's switch follows it.
TEST_F(PipelineLoopTest, TheModeIsTheGroupsAndOutlivesARestart) {
  Start();  // Configured DB_UPSERT.
  absl::StatusOr<Pipeline::SwitchReport> report = pipeline_->SwitchMode(v1::WINDOWED);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(pipeline_->Members().size(), 1u);
  EXPECT_EQ(pipeline_->Members()[0].mode(), v1::WINDOWED);
  ASSERT_TRUE(pipeline_->Stop(absl::Seconds(30)).ok());
  pipeline_.reset();

  Start();  // Configured DB_UPSERT again.
  EXPECT_EQ(pipeline_->mode(), v1::WINDOWED);
  // Another member switches the group back: this one follows at its next barrier.
  v1::GroupMode back;
  back.set_mode(v1::DB_UPSERT);
  back.set_by_member("another");
  control_log_.Append({"mode", back.SerializeAsString()});
  ASSERT_TRUE(WaitFor([&] { return pipeline_->mode() == v1::DB_UPSERT; }));
  const std::vector<v1::GroupMember> members = pipeline_->Members();
  ASSERT_EQ(members.size(), 1u);  // One member, restarted: the same name.
  EXPECT_TRUE(WaitFor([&] { return pipeline_->Members()[0].mode() == v1::DB_UPSERT; }));
}

// A third source owning a column of its own: every event of every source is applied and
// committed, in DB_UPSERT and in a WINDOWED OUTER merge.
TEST_F(PipelineLoopTest, ThreeSourcesInBothModes) {
  for (const char* mode : {"DB_UPSERT", "WINDOWED"}) {
    Start(absl::StrCat("sources { name: \"c\" topic: \"c\" key_fields: \"id\" "
                       "columns { from: \"w\" to: \"wc\" } } mode: ",
                       mode));
    const std::vector<SourcePartition> partitions = {{kA, 0}, {kB, 0}, {2, 0}};
    for (const SourcePartition& p : partitions) Produce(p, 50, 0, 25);
    source_->Assign(partitions);
    for (const SourcePartition& p : partitions) {
      ASSERT_TRUE(WaitFor([&] { return source_->Committed(p) == 50; }))
          << mode << " source " << p.source << ": " << Describe(p);
      EXPECT_EQ(writer_.log.Of(p).size(), 50u) << mode << " source " << p.source;
    }
    ASSERT_TRUE(pipeline_->Stop(absl::Seconds(30)).ok());
    pipeline_.reset();
    writer_.log.Clear();
  }
}

TEST_F(PipelineLoopTest, RevokeDuringAModeSwitch) {
  writer_.delay = absl::Milliseconds(2);
  Start();
  const std::vector<SourcePartition> kept = {{kA, 0}, {kB, 0}};
  const std::vector<SourcePartition> revoked = {{kA, 1}, {kB, 1}};
  for (const SourcePartition& p : kept) Produce(p, 1000, 0, 50);
  for (const SourcePartition& p : revoked) Produce(p, 1000, 5000, 50);
  source_->Assign({kept[0], kept[1], revoked[0], revoked[1]});
  ASSERT_TRUE(WaitFor([&] { return source_->Delivered(revoked[1]) > 0; }))
      << Describe(revoked[1]);
  absl::StatusOr<Pipeline::SwitchReport> report;
  std::thread switcher([&] { report = pipeline_->SwitchMode(v1::WINDOWED); });
  source_->Revoke(revoked);
  switcher.join();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->changed);
  EXPECT_EQ(pipeline_->mode(), v1::WINDOWED);
  ASSERT_TRUE(WaitFor([&] { return source_->RevokedAt(revoked[1]) >= 0; }))
      << Describe(revoked[1]);
  for (const SourcePartition& p : revoked) {
    const int64_t delivered = source_->Delivered(p);
    EXPECT_EQ(source_->Committed(p), delivered) << Describe(p);
    ExpectWrittenBefore(p, delivered, source_->RevokedAt(p));
    EXPECT_EQ(writer_.log.Of(p).size(), static_cast<size_t>(delivered)) << Describe(p);
  }
  // The kept partitions go on in WINDOWED: every event carried by a written window, committed.
  for (const SourcePartition& p : kept) {
    ASSERT_TRUE(WaitFor([&] { return source_->Committed(p) == 1000; })) << Describe(p);
    EXPECT_EQ(writer_.log.Of(p).size(), 1000u) << Describe(p);
  }
}

TEST_F(PipelineLoopTest, ADeadLetterThatCannotBeSentHoldsThePartition) {
  dead_letter_script_.refuse_send = true;
  Start();
  const SourcePartition a0{kA, 0};
  Produce(a0, 10, 0, 10);
  source_->Produce(a0, "not json");
  Produce(a0, 10, 100, 10);
  source_->Assign({a0});
  ASSERT_TRUE(WaitFor([&] { return pipeline_->state() == PipelineState::kDegraded; }))
      << Describe(a0);
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 10; })) << Describe(a0);
  EXPECT_TRUE(source_->Paused(PauseReason::kHold));
  // The ten before it are applied; nothing past it is applied or committed.
  EXPECT_EQ(writer_.log.Of(a0).size(), 10u) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a0).count(10), 0u);
  EXPECT_EQ(source_->Committed(a0), 10);
}

TEST_F(PipelineLoopTest, ADeadLetterThatIsNeverDeliveredIsNeverCommittedPast) {
  dead_letter_script_.never_deliver = true;
  Start();
  const SourcePartition a0{kA, 0};
  Produce(a0, 10, 0, 10);
  source_->Produce(a0, R"({"op":"u","after":{"id":7,"v":)");  // Truncated.
  Produce(a0, 10, 100, 10);
  source_->Assign({a0});
  ASSERT_TRUE(WaitFor([&] { return pipeline_->state() == PipelineState::kDegraded; }))
      << Describe(a0);
  EXPECT_EQ(dead_letter_script_.sent.load(), 1);
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 10; })) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a0).size(), 10u) << Describe(a0);
}

TEST_F(PipelineLoopTest, OperatorPauseDuringBackpressure) {
  writer_.SetGate(false);
  Start();
  const SourcePartition a0{kA, 0};
  Produce(a0, 2000, 0, 100);
  source_->Assign({a0});
  ASSERT_TRUE(WaitFor([&] { return source_->Paused(PauseReason::kBackpressure); }))
      << Describe(a0);
  pipeline_->Pause();
  ASSERT_TRUE(WaitFor([&] { return source_->Paused(PauseReason::kOperator); })) << Describe(a0);
  const int64_t delivered = source_->Delivered(a0);
  writer_.SetGate(true);
  // What was consumed before the pause is applied and committed while paused...
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == delivered; })) << Describe(a0);
  EXPECT_EQ(pipeline_->state(), PipelineState::kPaused);
  // ...back-pressure is gone, the operator's pause stays, and nothing more is consumed.
  ASSERT_TRUE(WaitFor([&] { return !source_->Paused(PauseReason::kBackpressure); }))
      << Describe(a0);
  EXPECT_TRUE(source_->Paused(PauseReason::kOperator));
  EXPECT_EQ(source_->Delivered(a0), delivered);
  EXPECT_EQ(writer_.log.Of(a0).size(), static_cast<size_t>(delivered));
  pipeline_->Resume();
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 2000; })) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a0).size(), 2000u);
}

// WINDOWED LEFT while another instance shares the group: nothing is consumed or written, the
// state is DEGRADED; once this instance owns every partition again, everything is joined.
TEST_F(PipelineLoopTest, ALeftJoinSharingItsGroupConsumesNothingUntilItOwnsEveryPartition) {
  Start("mode: WINDOWED", "LEFT");
  const SourcePartition a0{kA, 0};
  const SourcePartition b0{kB, 0};
  Produce(a0, 50, 0, 50);
  Produce(b0, 50, 0, 50);
  source_->SetOwnsEveryPartition(false);
  source_->Assign({a0, b0});
  ASSERT_TRUE(WaitFor([&] { return source_->Paused(PauseReason::kSplitGroup); }))
      << Describe(a0);
  EXPECT_EQ(pipeline_->state(), PipelineState::kDegraded);
  // Said loudly, in the log and in status.
  absl::Time when;
  ASSERT_TRUE(WaitFor([&] {
    return pipeline_->stats().LastError(&when).find("needs every partition") != std::string::npos;
  })) << pipeline_->stats().LastError(&when);
  // Paused before the first poll that could return records: nothing consumed, nothing written.
  EXPECT_EQ(source_->Delivered(a0), 0) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a0).size(), 0u);
  source_->SetOwnsEveryPartition(true);
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 50 && source_->Committed(b0) == 50; }))
      << Describe(a0) << "; " << Describe(b0);
  EXPECT_FALSE(source_->Paused(PauseReason::kSplitGroup));
  EXPECT_EQ(writer_.log.Of(a0).size(), 50u) << Describe(a0);
}

// Avro records whose writer schema the registry cannot give (503, then refused connections):
// not the records' fault, so nothing is dead-lettered, applied or committed past them; the
// pipeline is DEGRADED and consumption waits; once the registry answers, everything is applied
// in order without a restart.
TEST_F(PipelineLoopTest, AnAvroSourceWaitsForAnUnavailableRegistryAndResumesByItself) {
  const AvroFixtures fixtures = LoadAvroFixtures();
  SchemaRegistryStub registry;
  for (const auto& [id, schema] : fixtures.schemas_by_id) registry.Serve(id, schema);
  registry.SetFailing(true);
  sources_config_ = absl::StrCat(R"pb(
    schema_registry { url: ")pb", registry.url(), R"pb(" }
    sources {
      name: "a" topic: "a" key_fields: "id" value_format: AVRO key_format: AVRO
      columns { from: "note" to: "note" }
      columns { from: "amount" to: "amount" }
    }
    sources { name: "b" topic: "b" key_fields: "id" columns { from: "w" to: "wb" } })pb");
  Start();
  const SourcePartition a0{kA, 0};
  const std::vector<std::string> names = {"snapshot_full_row", "snapshot_edges_and_nulls",
                                          "snapshot_all_null", "insert_max_values",
                                          "insert_only_key"};
  for (const std::string& name : names) source_->Produce(a0, *fixtures.records.at(name).value);
  source_->Assign({a0});
  ASSERT_TRUE(WaitFor([&] {
    return pipeline_->state() == PipelineState::kDegraded && registry.requests() > 0;
  })) << Describe(a0);
  EXPECT_TRUE(source_->Paused(PauseReason::kDecodeRetry));
  registry.SetFailing(false);
  registry.Stop();
  // Retries keep failing (refused): still waiting, nothing lost or passed, at every moment of
  // two seconds of retries.
  EXPECT_FALSE(WaitFor(
      [&] {
        return pipeline_->state() != PipelineState::kDegraded ||
               dead_letter_script_.sent.load() != 0 || !writer_.log.Of(a0).empty() ||
               source_->Committed(a0) > 0;
      },
      absl::Seconds(2)))
      << "stopped holding: " << Describe(a0);
  EXPECT_EQ(pipeline_->state(), PipelineState::kDegraded) << Describe(a0);
  EXPECT_EQ(dead_letter_script_.sent.load(), 0);
  EXPECT_EQ(writer_.log.Of(a0).size(), 0u) << Describe(a0);
  EXPECT_LE(source_->Committed(a0), 0) << Describe(a0);

  registry.Restart();
  ASSERT_TRUE(WaitFor([&] { return source_->Committed(a0) == 5; })) << Describe(a0);
  EXPECT_EQ(writer_.log.Of(a0).size(), 5u) << Describe(a0);
  EXPECT_EQ(dead_letter_script_.sent.load(), 0);
  EXPECT_FALSE(source_->Paused(PauseReason::kDecodeRetry));
  EXPECT_EQ(pipeline_->state(), PipelineState::kRunning) << Describe(a0);
}

}  // namespace
}  // namespace cdcjoin
