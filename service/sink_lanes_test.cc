#include "service/sink_lanes.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {
namespace {

// Records what each Apply received; the first Apply waits for `release`, so commands queue up
// behind it.
struct Recorded {
  absl::Mutex mu;
  std::vector<std::vector<RowCommand>> applies ABSL_GUARDED_BY(mu);
  bool in_first_apply ABSL_GUARDED_BY(mu) = false;
  absl::Notification release;
  // A batch with one of these keys fails: MySQL 1366, a row error...
  std::set<int64_t> row_error_keys;
  // ...or 1644 (a trigger's SIGNAL), which no classifier knows.
  std::set<int64_t> unclassified_error_keys;
};

class RecordingWriter : public RowWriter {
 public:
  explicit RecordingWriter(Recorded* recorded) : recorded_(recorded) {}
  absl::Status Apply(const std::vector<RowCommand>& commands) override {
    bool first;
    {
      absl::MutexLock lock(&recorded_->mu);
      first = recorded_->applies.empty();
      recorded_->applies.push_back(commands);
      recorded_->in_first_apply = first;
    }
    if (first) recorded_->release.WaitForNotification();
    for (const RowCommand& command : commands) {
      const int64_t key = std::get<int64_t>(command.key[0]);
      if (recorded_->row_error_keys.count(key) > 0) {
        return MySqlErrorToStatus(1366, "22007", absl::StrCat("Incorrect value for key ", key),
                                  "apply");
      }
      if (recorded_->unclassified_error_keys.count(key) > 0) {
        return MySqlErrorToStatus(1644, "45000", absl::StrCat("refused key ", key), "apply");
      }
    }
    return absl::OkStatus();
  }

 private:
  Recorded* recorded_;
};

RowCommand Upsert(int64_t key, int64_t offset) {
  RowCommand command;
  command.key = {Value(key)};
  command.writes = {ColumnWrite{0, true, Value(offset)}};
  EventPosition position;
  position.offset = offset;
  command.covers = {position};
  return command;
}

// One lane over a RecordingWriter that keeps what it acknowledges.
struct RecordingLanes {
  explicit RecordingLanes(SinkLanesOptions options) {
    options.lanes = 1;
    options.linger = absl::ZeroDuration();
    auto started = SinkLanes::Start(
        options,
        [this]() -> absl::StatusOr<std::unique_ptr<RowWriter>> {
          return std::make_unique<RecordingWriter>(&recorded);
        },
        [this](absl::Span<const RowCommand> applied) {
          absl::MutexLock lock(&ack_mu);
          acknowledged.insert(acknowledged.end(), applied.begin(), applied.end());
        },
        [this](RowCommand command, const absl::Status& why) {
          absl::MutexLock lock(&ack_mu);
          rejected.emplace_back(std::move(command), why);
        },
        &stats);
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) lanes = *std::move(started);
  }
  ~RecordingLanes() {
    if (!recorded.release.HasBeenNotified()) recorded.release.Notify();
    if (lanes != nullptr) lanes->Stop();
  }

  // Enqueues `first` and returns once the lane is busy applying it: the writer holds it until
  // recorded.release, so what is enqueued next waits.
  void OccupyLane(RowCommand first) {
    EXPECT_TRUE(lanes->TryEnqueue(first));
    absl::MutexLock lock(&recorded.mu);
    recorded.mu.Await(absl::Condition(&recorded.in_first_apply));
  }

  std::vector<RowCommand> Acknowledged() {
    absl::MutexLock lock(&ack_mu);
    return acknowledged;
  }
  std::vector<std::pair<RowCommand, absl::Status>> Rejected() {
    absl::MutexLock lock(&ack_mu);
    return rejected;
  }

  Recorded recorded;
  PipelineStats stats;
  absl::Mutex ack_mu;
  std::vector<RowCommand> acknowledged ABSL_GUARDED_BY(ack_mu);
  std::vector<std::pair<RowCommand, absl::Status>> rejected ABSL_GUARDED_BY(ack_mu);
  std::unique_ptr<SinkLanes> lanes;
};

struct Outcome {
  std::vector<std::vector<int64_t>> applies;  // Keys of each Apply call.
  std::map<int64_t, std::vector<int64_t>> acknowledged;  // Per key, offsets in ack order.
};

// Key 1 holds the only lane while four more commands of key 1 and one of key 2 queue up.
Outcome RunHotKey(bool coalesce) {
  SinkLanesOptions options;
  options.batch_rows = 100;
  options.coalesce_keys = coalesce;
  RecordingLanes lanes(options);
  lanes.OccupyLane(Upsert(1, 0));
  for (int64_t offset = 1; offset <= 4; ++offset) {
    RowCommand command = Upsert(1, offset);
    EXPECT_TRUE(lanes.lanes->TryEnqueue(command));
  }
  RowCommand other = Upsert(2, 5);
  EXPECT_TRUE(lanes.lanes->TryEnqueue(other));
  EXPECT_TRUE(lanes.Acknowledged().empty()) << "acknowledged before the writer returned";
  lanes.recorded.release.Notify();
  EXPECT_TRUE(lanes.lanes->Drain(absl::Seconds(10)));
  Outcome outcome;
  for (const RowCommand& command : lanes.Acknowledged()) {
    for (const EventPosition& p : command.covers) {
      outcome.acknowledged[std::get<int64_t>(command.key[0])].push_back(p.offset);
    }
  }
  absl::MutexLock lock(&lanes.recorded.mu);
  for (const std::vector<RowCommand>& apply : lanes.recorded.applies) {
    std::vector<int64_t> keys;
    for (const RowCommand& command : apply) keys.push_back(std::get<int64_t>(command.key[0]));
    outcome.applies.push_back(keys);
  }
  return outcome;
}

TEST(SinkLanesTest, HotKeyRunGoesToTheWriterInOneBatchInOrder) {
  const Outcome outcome = RunHotKey(/*coalesce=*/true);
  EXPECT_EQ(outcome.applies,
            (std::vector<std::vector<int64_t>>{{1}, {2, 1, 1, 1, 1}}));
  EXPECT_EQ(outcome.acknowledged.at(1), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(outcome.acknowledged.at(2), (std::vector<int64_t>{5}));
}

TEST(SinkLanesTest, WithoutCoalescingAHotKeyCostsOneBatchPerCommand) {
  const Outcome outcome = RunHotKey(/*coalesce=*/false);
  EXPECT_EQ(outcome.applies,
            (std::vector<std::vector<int64_t>>{{1}, {2, 1}, {1}, {1}, {1}}));
  EXPECT_EQ(outcome.acknowledged.at(1), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

// A partition is revoked while its commands wait behind a busy lane: they are never written nor
// acknowledged; the other partition's are; Drain still completes; Admit lifts the fence.
TEST(SinkLanesTest, FencedPartitionsAreNeverWrittenAfterTheFence) {
  RecordingLanes lanes({});
  const SourcePartition kept{0, 0};
  const SourcePartition revoked{0, 1};
  auto command = [](int64_t key, const SourcePartition& partition, int64_t offset) {
    RowCommand c = Upsert(key, offset);
    c.covers[0].partition = partition;
    return c;
  };
  lanes.OccupyLane(command(1, kept, 0));
  for (int64_t key = 2; key <= 5; ++key) {
    RowCommand c = command(key, key % 2 == 0 ? revoked : kept, key);
    ASSERT_TRUE(lanes.lanes->TryEnqueue(c));
  }
  lanes.lanes->Fence({revoked});
  // The statement at the database is not recalled: a revocation waits for it to return.
  EXPECT_FALSE(lanes.lanes->AwaitWritesInFlight(absl::Milliseconds(20)));
  std::thread release([&] {
    absl::SleepFor(absl::Milliseconds(20));
    lanes.recorded.release.Notify();
  });
  EXPECT_TRUE(lanes.lanes->AwaitWritesInFlight(absl::Seconds(10)));
  release.join();
  ASSERT_TRUE(lanes.lanes->Drain(absl::Seconds(10)));
  {
    absl::MutexLock lock(&lanes.recorded.mu);
    for (const std::vector<RowCommand>& apply : lanes.recorded.applies) {
      for (const RowCommand& c : apply) {
        EXPECT_FALSE(c.covers[0].partition == revoked) << "key " << std::get<int64_t>(c.key[0]);
      }
    }
  }
  std::vector<int64_t> offsets;
  for (const RowCommand& c : lanes.Acknowledged()) offsets.push_back(c.covers[0].offset);
  std::sort(offsets.begin(), offsets.end());
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 3, 5}));
  // Back to this instance: written again.
  lanes.lanes->Admit({revoked});
  RowCommand again = command(6, revoked, 6);
  ASSERT_TRUE(lanes.lanes->TryEnqueue(again));
  ASSERT_TRUE(lanes.lanes->Drain(absl::Seconds(10)));
  EXPECT_EQ(lanes.Acknowledged().back().covers[0].offset, 6);
}

std::vector<int64_t> Keys(const std::vector<RowCommand>& commands) {
  std::vector<int64_t> keys;
  for (const RowCommand& c : commands) keys.push_back(std::get<int64_t>(c.key[0]));
  return keys;
}

// Keys 1..20 wait in one batch behind a busy lane; 7 and 13 are refused by the database for
// their own data. Every other key is applied and acknowledged in order; 7 and 13 are handed over
// with the database's error, neither applied nor acknowledged.
TEST(SinkLanesTest, ARowErrorRejectsThatRowAndAppliesTheRest) {
  SinkLanesOptions options;
  options.batch_rows = 100;
  RecordingLanes lanes(options);
  lanes.recorded.row_error_keys = {7, 13};
  lanes.OccupyLane(Upsert(100, 0));
  for (int64_t key = 1; key <= 20; ++key) {
    RowCommand command = Upsert(key, key);
    ASSERT_TRUE(lanes.lanes->TryEnqueue(command));
  }
  lanes.recorded.release.Notify();
  ASSERT_TRUE(lanes.lanes->Drain(absl::Seconds(10)));
  std::vector<int64_t> expected = {100};
  for (int64_t key = 1; key <= 20; ++key) {
    if (key != 7 && key != 13) expected.push_back(key);
  }
  EXPECT_EQ(Keys(lanes.Acknowledged()), expected);
  const auto rejected = lanes.Rejected();
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(rejected[0].first.key[0]), 7);
  EXPECT_EQ(std::get<int64_t>(rejected[1].first.key[0]), 13);
  EXPECT_EQ(MySqlErrorCode(rejected[0].second), 1366);
  EXPECT_FALSE(lanes.lanes->Degraded());
  // Each refused key was narrowed down to an attempt of its own, once.
  absl::MutexLock lock(&lanes.recorded.mu);
  int isolated = 0;
  for (const std::vector<RowCommand>& apply : lanes.recorded.applies) {
    const std::vector<int64_t> keys = Keys(apply);
    const bool bad = std::find(keys.begin(), keys.end(), 7) != keys.end() ||
                     std::find(keys.begin(), keys.end(), 13) != keys.end();
    if (bad && keys.size() == 1) ++isolated;
  }
  EXPECT_EQ(isolated, 2);
}

// An error no classifier knows holds the lane at once (DEGRADED), without a dead letter, until
// the operator takes the command out; then the batch goes on.
TEST(SinkLanesTest, TheOperatorTakesAHeldCommandOut) {
  SinkLanesOptions options;
  options.max_backoff = absl::Milliseconds(20);
  options.initial_backoff = absl::Milliseconds(5);
  RecordingLanes lanes(options);
  lanes.recorded.unclassified_error_keys = {5};
  lanes.recorded.release.Notify();
  for (int64_t key = 1; key <= 6; ++key) {
    RowCommand command = Upsert(key, key);
    ASSERT_TRUE(lanes.lanes->TryEnqueue(command));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!lanes.lanes->Degraded() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(lanes.lanes->Degraded()) << "the lane never held";
  EXPECT_TRUE(lanes.Rejected().empty()) << "an unclassified error is not a dead letter by itself";
  EventPosition unknown;
  unknown.offset = 99;
  EXPECT_FALSE(lanes.lanes->RejectHeld(unknown, absl::AbortedError("operator")));
  EventPosition held;
  held.offset = 5;
  ASSERT_TRUE(lanes.lanes->RejectHeld(held, absl::AbortedError("dead-lettered by the operator")));
  ASSERT_TRUE(lanes.lanes->Drain(absl::Seconds(10)));
  EXPECT_FALSE(lanes.lanes->Degraded());
  std::vector<int64_t> acknowledged = Keys(lanes.Acknowledged());
  std::sort(acknowledged.begin(), acknowledged.end());
  EXPECT_EQ(acknowledged, (std::vector<int64_t>{1, 2, 3, 4, 6}));
  const auto rejected = lanes.Rejected();
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(rejected[0].first.key[0]), 5);
  EXPECT_EQ(rejected[0].second.message(), "dead-lettered by the operator");
}

// A writer that answers nothing (a frozen database) raises no error; the lane still shows as
// stalled once it has applied nothing for stall_after, and recovers when the writer returns.
TEST(SinkLanesTest, ALaneThatAppliesNothingIsStalled) {
  SinkLanesOptions options;
  options.stall_after = absl::Milliseconds(50);
  RecordingLanes lanes(options);
  lanes.OccupyLane(Upsert(1, 0));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!lanes.lanes->Degraded() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(lanes.lanes->Degraded());
  const std::vector<LaneStatus> status = lanes.lanes->Status();
  EXPECT_GE(status[0].stalled_for, absl::Milliseconds(50));
  EXPECT_NE(status[0].last_error.find("sink stalled"), std::string::npos) << status[0].last_error;
  lanes.recorded.release.Notify();
  ASSERT_TRUE(lanes.lanes->Drain(absl::Seconds(10)));
  EXPECT_FALSE(lanes.lanes->Degraded());
}

}  // namespace
}  // namespace cdcjoin
