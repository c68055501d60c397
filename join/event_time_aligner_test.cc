#include "join/event_time_aligner.h"

#include <random>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cdcjoin {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

ChangeEvent Event(int source, int32_t partition, int64_t offset, int64_t time) {
  ChangeEvent event;
  event.source = source;
  event.key = {Value{offset}};
  event.event_time_ms = time;
  event.position = EventPosition{SourcePartition{source, partition}, offset};
  return event;
}

// "s<source>@<time>" per released event.
std::vector<std::string> Names(const std::vector<ChangeEvent>& events) {
  std::vector<std::string> names;
  for (const ChangeEvent& e : events) {
    names.push_back("s" + std::to_string(e.source) + "@" + std::to_string(e.event_time_ms));
  }
  return names;
}

const EventTimeAligner::CaughtUp kNeverCaughtUp = [](const SourcePartition&) { return false; };
const EventTimeAligner::CaughtUp kAlwaysCaughtUp = [](const SourcePartition&) { return true; };

TEST(EventTimeAlignerTest, MergesBothSourcesInEventTimeOrder) {
  EventTimeAligner aligner({});
  // Source 0 was fetched well ahead of source 1.
  aligner.Add(Event(0, 3, 0, 10), 0);
  aligner.Add(Event(0, 3, 1, 30), 0);
  aligner.Add(Event(0, 3, 2, 50), 0);
  aligner.Add(Event(1, 3, 0, 20), 0);
  aligner.Add(Event(1, 3, 1, 40), 0);
  std::vector<ChangeEvent> out;
  aligner.Release(0, kNeverCaughtUp, &out);
  // s0@50 waits: source 1 may still bring something older.
  EXPECT_THAT(Names(out), ElementsAre("s0@10", "s1@20", "s0@30", "s1@40"));
  EXPECT_EQ(aligner.buffered(), 1u);
  out.clear();
  aligner.Add(Event(1, 3, 2, 45), 5);
  aligner.Release(5, kNeverCaughtUp, &out);
  EXPECT_THAT(Names(out), ElementsAre("s1@45"));
}

TEST(EventTimeAlignerTest, ALoneSourceGoesWhenTheOtherIsCaughtUpOrAfterTheWait) {
  EventTimeAligner::Options options;
  options.max_wait_ms = 100;
  EventTimeAligner aligner(options);
  aligner.Add(Event(0, 1, 0, 10), 1000);
  std::vector<ChangeEvent> out;
  aligner.Release(1050, kNeverCaughtUp, &out);
  EXPECT_THAT(out, IsEmpty());
  aligner.Release(1050, kAlwaysCaughtUp, &out);
  EXPECT_THAT(Names(out), ElementsAre("s0@10"));
  out.clear();
  aligner.Add(Event(1, 1, 0, 5), 2000);
  aligner.Release(2099, kNeverCaughtUp, &out);
  EXPECT_THAT(out, IsEmpty());
  aligner.Release(2100, kNeverCaughtUp, &out);
  EXPECT_THAT(Names(out), ElementsAre("s1@5"));
}

// Three sources: the earliest head goes first, and a third source with nothing buffered holds
// the other two until it is caught up.
TEST(EventTimeAlignerTest, MergesThreeSourcesAndWaitsForEachEmptyOne) {
  EventTimeAligner::Options options;
  options.sources = 3;
  EventTimeAligner aligner(options);
  aligner.Add(Event(0, 0, 0, 30), 0);
  aligner.Add(Event(1, 0, 0, 10), 0);
  aligner.Add(Event(0, 0, 1, 40), 0);
  std::vector<ChangeEvent> out;
  aligner.Release(0, kNeverCaughtUp, &out);
  EXPECT_THAT(out, IsEmpty()) << "source 2 may still send an earlier event";
  aligner.Add(Event(2, 0, 0, 20), 0);
  aligner.Release(0, kNeverCaughtUp, &out);
  // s1@10 goes; s2@20 waits, since source 1 has nothing buffered now and may send an earlier one.
  EXPECT_THAT(Names(out), ElementsAre("s1@10"));
  out.clear();
  aligner.Release(0, kAlwaysCaughtUp, &out);
  EXPECT_THAT(Names(out), ElementsAre("s2@20", "s0@30", "s0@40"));
  EXPECT_EQ(aligner.buffered(), 0u);
}

TEST(EventTimeAlignerTest, AFullBufferGoesWithoutWaiting) {
  EventTimeAligner::Options options;
  options.max_buffered = 3;
  EventTimeAligner aligner(options);
  for (int i = 0; i < 4; ++i) aligner.Add(Event(0, 0, i, i), 0);
  std::vector<ChangeEvent> out;
  aligner.Release(0, kNeverCaughtUp, &out);
  EXPECT_THAT(Names(out), ElementsAre("s0@0", "s0@1"));
}

TEST(EventTimeAlignerTest, PartitionsAreIndependentAndReleaseAllEmptiesEverything) {
  EventTimeAligner aligner({});
  aligner.Add(Event(0, 0, 0, 10), 0);
  aligner.Add(Event(1, 1, 0, 20), 0);
  aligner.Add(Event(0, 1, 0, 30), 0);
  std::vector<ChangeEvent> out;
  aligner.Release(0, kNeverCaughtUp, &out);
  EXPECT_THAT(Names(out), ElementsAre("s1@20"));
  out.clear();
  aligner.ReleaseAll(&out);
  EXPECT_THAT(Names(out), ElementsAre("s0@10", "s0@30"));
  EXPECT_EQ(aligner.buffered(), 0u);
}

TEST(EventTimeAlignerTest, EachSourceKeepsItsOwnOrderWhateverTheTimes) {
  std::mt19937 rng(5);
  EventTimeAligner aligner({});
  std::vector<ChangeEvent> out;
  int64_t offsets[2] = {0, 0};
  for (int i = 0; i < 5000; ++i) {
    const int source = static_cast<int>(rng() % 2);
    // Times jump backwards now and then: Debezium's ts_ms is not monotonic across transactions.
    aligner.Add(Event(source, 0, offsets[source]++, static_cast<int64_t>(rng() % 1000)), i);
    if (i % 7 == 0) aligner.Release(i, kNeverCaughtUp, &out);
  }
  aligner.ReleaseAll(&out);
  ASSERT_EQ(out.size(), 5000u);
  int64_t next[2] = {0, 0};
  for (const ChangeEvent& e : out) {
    ASSERT_EQ(e.position.offset, next[e.source]) << "source " << e.source;
    ++next[e.source];
  }
}

}  // namespace
}  // namespace cdcjoin
