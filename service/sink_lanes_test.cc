#include "service/sink_lanes.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

// Records what each Apply received; the first Apply waits for `release`, so commands queue up
// behind it.
struct Recorded {
  absl::Mutex mu;
  std::vector<std::vector<RowCommand>> applies ABSL_GUARDED_BY(mu);
  bool in_first_apply ABSL_GUARDED_BY(mu) = false;
  absl::Notification release;
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

  Recorded recorded;
  PipelineStats stats;
  absl::Mutex ack_mu;
  std::vector<RowCommand> acknowledged ABSL_GUARDED_BY(ack_mu);
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
  lanes.recorded.release.Notify();
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

}  // namespace
}  // namespace cdcjoin
