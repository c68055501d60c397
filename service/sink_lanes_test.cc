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

struct Outcome {
  std::vector<std::vector<int64_t>> applies;  // Keys of each Apply call.
  std::map<int64_t, std::vector<int64_t>> acknowledged;  // Per key, offsets in ack order.
};

// Key 1 holds the only lane while four more commands of key 1 and one of key 2 queue up.
Outcome RunHotKey(bool coalesce) {
  Recorded recorded;
  PipelineStats stats;
  absl::Mutex ack_mu;
  Outcome outcome;
  SinkLanesOptions options;
  options.lanes = 1;
  options.batch_rows = 100;
  options.linger = absl::ZeroDuration();
  options.coalesce_keys = coalesce;
  auto lanes = SinkLanes::Start(
      options,
      [&]() -> absl::StatusOr<std::unique_ptr<RowWriter>> {
        return std::make_unique<RecordingWriter>(&recorded);
      },
      [&](absl::Span<const RowCommand> applied) {
        absl::MutexLock lock(&ack_mu);
        for (const RowCommand& command : applied) {
          for (const EventPosition& p : command.covers) {
            outcome.acknowledged[std::get<int64_t>(command.key[0])].push_back(p.offset);
          }
        }
      },
      &stats);
  EXPECT_TRUE(lanes.ok()) << lanes.status();
  RowCommand first = Upsert(1, 0);
  EXPECT_TRUE((*lanes)->TryEnqueue(first));
  {
    absl::MutexLock lock(&recorded.mu);
    recorded.mu.Await(absl::Condition(&recorded.in_first_apply));
  }
  for (int64_t offset = 1; offset <= 4; ++offset) {
    RowCommand command = Upsert(1, offset);
    EXPECT_TRUE((*lanes)->TryEnqueue(command));
  }
  RowCommand other = Upsert(2, 5);
  EXPECT_TRUE((*lanes)->TryEnqueue(other));
  {
    absl::MutexLock lock(&ack_mu);
    EXPECT_TRUE(outcome.acknowledged.empty()) << "acknowledged before the writer returned";
  }
  recorded.release.Notify();
  EXPECT_TRUE((*lanes)->Drain(absl::Seconds(10)));
  absl::MutexLock lock(&recorded.mu);
  for (const std::vector<RowCommand>& apply : recorded.applies) {
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
  Recorded recorded;
  PipelineStats stats;
  absl::Mutex ack_mu;
  std::vector<EventPosition> acknowledged;
  SinkLanesOptions options;
  options.lanes = 1;
  options.linger = absl::ZeroDuration();
  auto lanes = SinkLanes::Start(
      options,
      [&]() -> absl::StatusOr<std::unique_ptr<RowWriter>> {
        return std::make_unique<RecordingWriter>(&recorded);
      },
      [&](absl::Span<const RowCommand> applied) {
        absl::MutexLock lock(&ack_mu);
        for (const RowCommand& command : applied) {
          acknowledged.insert(acknowledged.end(), command.covers.begin(), command.covers.end());
        }
      },
      &stats);
  ASSERT_TRUE(lanes.ok()) << lanes.status();
  const SourcePartition kept{0, 0};
  const SourcePartition revoked{0, 1};
  auto command = [](int64_t key, const SourcePartition& partition, int64_t offset) {
    RowCommand c = Upsert(key, offset);
    c.covers[0].partition = partition;
    return c;
  };
  RowCommand first = command(1, kept, 0);
  ASSERT_TRUE((*lanes)->TryEnqueue(first));
  {
    absl::MutexLock lock(&recorded.mu);
    recorded.mu.Await(absl::Condition(&recorded.in_first_apply));
  }
  for (int64_t key = 2; key <= 5; ++key) {
    RowCommand c = command(key, key % 2 == 0 ? revoked : kept, key);
    ASSERT_TRUE((*lanes)->TryEnqueue(c));
  }
  (*lanes)->Fence({revoked});
  recorded.release.Notify();
  ASSERT_TRUE((*lanes)->Drain(absl::Seconds(10)));
  {
    absl::MutexLock lock(&recorded.mu);
    for (const std::vector<RowCommand>& apply : recorded.applies) {
      for (const RowCommand& c : apply) {
        EXPECT_FALSE(c.covers[0].partition == revoked) << "key " << std::get<int64_t>(c.key[0]);
      }
    }
  }
  {
    absl::MutexLock lock(&ack_mu);
    std::vector<int64_t> offsets;
    for (const EventPosition& p : acknowledged) offsets.push_back(p.offset);
    std::sort(offsets.begin(), offsets.end());
    EXPECT_EQ(offsets, (std::vector<int64_t>{0, 3, 5}));
  }
  // Back to this instance: written again.
  (*lanes)->Admit({revoked});
  RowCommand again = command(6, revoked, 6);
  ASSERT_TRUE((*lanes)->TryEnqueue(again));
  ASSERT_TRUE((*lanes)->Drain(absl::Seconds(10)));
  absl::MutexLock lock(&ack_mu);
  EXPECT_EQ(acknowledged.back().offset, 6);
}

}  // namespace
}  // namespace cdcjoin
