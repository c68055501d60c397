#include "join/offset_tracker.h"

#include <algorithm>
#include <random>

#include <gtest/gtest.h>

namespace cdcjoin {
namespace {

const SourcePartition kP0{0, 0};
const SourcePartition kP1{1, 0};

int64_t NextOffset(const OffsetTracker& tracker, const SourcePartition& partition) {
  for (const auto& progress : tracker.Progress()) {
    if (progress.partition == partition) return progress.next_offset;
  }
  return -2;
}

TEST(OffsetTrackerTest, CommitsOnlyBelowTheFirstUnfinishedEvent) {
  OffsetTracker tracker;
  tracker.Reset(kP0, 10);
  for (int64_t o = 10; o < 15; ++o) tracker.Track({kP0, o});
  EXPECT_EQ(NextOffset(tracker, kP0), 10);
  tracker.Done({kP0, 11});
  tracker.Done({kP0, 12});
  EXPECT_EQ(NextOffset(tracker, kP0), 10) << "offset 10 is not applied yet";
  tracker.Done({kP0, 10});
  EXPECT_EQ(NextOffset(tracker, kP0), 13);
  tracker.Done({kP0, 14});
  EXPECT_EQ(NextOffset(tracker, kP0), 13);
  tracker.Done({kP0, 13});
  EXPECT_EQ(NextOffset(tracker, kP0), 15);
  EXPECT_EQ(tracker.TotalPending(), 0);
}

TEST(OffsetTrackerTest, GapsInOffsetsAreFine) {
  // Compacted topics and transaction markers leave holes in the offset sequence.
  OffsetTracker tracker;
  tracker.Reset(kP0, 0);
  tracker.Track({kP0, 3});
  tracker.Track({kP0, 7});
  tracker.Done({kP0, 7});
  EXPECT_EQ(NextOffset(tracker, kP0), 0);
  tracker.Done({kP0, 3});
  EXPECT_EQ(NextOffset(tracker, kP0), 8);
}

TEST(OffsetTrackerTest, PartitionsAreIndependentAndDoneTwiceCountsOnce) {
  OffsetTracker tracker;
  tracker.Reset(kP0, 0);
  tracker.Reset(kP1, 0);
  tracker.Track({kP0, 0});
  tracker.Track({kP1, 0});
  tracker.Track({kP1, 1});
  tracker.Done({kP1, 0});
  tracker.Done({kP1, 0});
  EXPECT_EQ(NextOffset(tracker, kP0), 0);
  EXPECT_EQ(NextOffset(tracker, kP1), 1);
  EXPECT_EQ(tracker.TotalPending(), 2);
}

TEST(OffsetTrackerTest, ResetDropsPendingAndRemoveForgets) {
  OffsetTracker tracker;
  tracker.Reset(kP0, 0);
  tracker.Track({kP0, 0});
  tracker.Reset(kP0, 100);
  tracker.Done({kP0, 0});  // A late acknowledgement from before the reset is ignored.
  EXPECT_EQ(NextOffset(tracker, kP0), 100);
  EXPECT_EQ(tracker.TotalPending(), 0);
  tracker.Remove(kP0);
  EXPECT_EQ(NextOffset(tracker, kP0), -2);
}

TEST(OffsetTrackerTest, RandomCompletionOrderNeverPassesAPendingEvent) {
  std::mt19937 rng(7);
  OffsetTracker tracker;
  tracker.Reset(kP0, 0);
  std::vector<int64_t> offsets(2000);
  for (int64_t i = 0; i < 2000; ++i) {
    offsets[i] = i;
    tracker.Track({kP0, i});
  }
  std::shuffle(offsets.begin(), offsets.end(), rng);
  std::vector<bool> done(2000, false);
  for (int64_t offset : offsets) {
    tracker.Done({kP0, offset});
    done[offset] = true;
    const int64_t next = NextOffset(tracker, kP0);
    for (int64_t i = 0; i < next; ++i) {
      ASSERT_TRUE(done[i]) << "committable " << next;
    }
    if (next < 2000) {
      ASSERT_FALSE(done[next]);
    }
  }
  EXPECT_EQ(NextOffset(tracker, kP0), 2000);
}

}  // namespace
}  // namespace cdcjoin
