#include "join/windowed_stage.h"

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "google/protobuf/text_format.h"
#include "join/in_memory_window_store.h"

namespace cdcjoin {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

TableSchema Schema() {
  v1::Config config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(R"pb(
    target { table: "t" key_columns: "id" }
    sources { name: "l" topic: "l" key_fields: "id" columns { from: "a" to: "l" } }
    sources { name: "r" topic: "r" key_fields: "id" columns { from: "b" to: "r" } }
  )pb", &config));
  return *TableSchema::FromConfig(config);
}

v1::WindowConfig Window() {
  v1::WindowConfig window;
  window.set_join_type(v1::OUTER);
  window.set_window_ms(10);
  window.set_grace_ms(5);
  window.set_idle_flush_ms(1000);
  return window;
}

ChangeEvent Upsert(int source, int64_t key, int64_t offset, int64_t time) {
  ChangeEvent event;
  event.source = source;
  event.key = {Value{key}};
  event.values = {Value{std::string("v") + std::to_string(offset)}};
  event.event_time_ms = time;
  event.position = EventPosition{SourcePartition{source, 0}, offset};
  return event;
}

const EventTimeAligner::CaughtUp kNotCaughtUp = [](const SourcePartition&) { return false; };
const EventTimeAligner::CaughtUp kCaughtUp = [](const SourcePartition&) { return true; };

TEST(WindowedStageTest, EventsReachTheStateOnlyWhenTheAlignerLetsThemGo) {
  InMemoryWindowStore store;
  auto stage = WindowedStage::Open(Schema(), Window(), &store);
  ASSERT_TRUE(stage.ok()) << stage.status();
  (*stage)->Add(Upsert(0, 1, 0, 0), 0);
  std::vector<EventPosition> absorbed;
  std::vector<RowCommand> out;
  // Source 1 may still bring something older: the event waits.
  ASSERT_TRUE((*stage)->Release(0, kNotCaughtUp, &absorbed, &out).ok());
  EXPECT_THAT(absorbed, IsEmpty());
  EXPECT_THAT((*stage)->LowestHeldOffsets(), IsEmpty());
  // Source 1 has nothing more to give: it goes into an open window, held by the state.
  ASSERT_TRUE((*stage)->Release(0, kCaughtUp, &absorbed, &out).ok());
  ASSERT_THAT(absorbed, SizeIs(1));
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ((*stage)->LowestHeldOffsets().at(SourcePartition{0, 0}), 0);
  EXPECT_EQ((*stage)->StoredOffsets().at(SourcePartition{0, 0}), 1);
}

TEST(WindowedStageTest, AcknowledgementsFromAnotherThreadReleaseTheWindows) {
  InMemoryWindowStore store;
  auto stage = WindowedStage::Open(Schema(), Window(), &store);
  ASSERT_TRUE(stage.ok());
  (*stage)->Add(Upsert(0, 1, 0, 0), 0);
  (*stage)->Add(Upsert(1, 1, 0, 3), 0);
  std::vector<EventPosition> absorbed;
  std::vector<RowCommand> out;
  ASSERT_TRUE((*stage)->Flush(0, &absorbed, &out).ok());
  EXPECT_THAT(absorbed, SizeIs(2));
  ASSERT_THAT(out, SizeIs(1)) << "both sides of key 1 merge into one write";
  EXPECT_THAT(out[0].writes, SizeIs(2));
  EXPECT_THAT((*stage)->LowestHeldOffsets(), SizeIs(2)) << "emitted, not yet applied";
  std::thread lane([&] { (*stage)->Applied(out); });
  lane.join();
  ASSERT_TRUE((*stage)->DeliverAcknowledgements().ok());
  EXPECT_THAT((*stage)->LowestHeldOffsets(), IsEmpty());
}

TEST(WindowedStageTest, RecoverResendsUnappliedWindowsAndCanFlushOpenOnes) {
  InMemoryWindowStore store;
  std::vector<RowCommand> emitted;
  {
    auto stage = WindowedStage::Open(Schema(), Window(), &store);
    ASSERT_TRUE(stage.ok());
    std::vector<EventPosition> absorbed;
    (*stage)->Add(Upsert(0, 1, 0, 0), 0);
    (*stage)->Add(Upsert(0, 2, 1, 100), 0);  // Closes key 1's window (100 > 0 + 15).
    ASSERT_TRUE((*stage)->Release(0, kCaughtUp, &absorbed, &emitted).ok());
    ASSERT_THAT(emitted, SizeIs(1));
    // Crash: key 1's write never applied, key 2's window still open.
  }
  auto reopened = WindowedStage::Open(Schema(), Window(), &store);
  ASSERT_TRUE(reopened.ok());
  auto pending = (*reopened)->Recover(/*flush_open=*/false);
  ASSERT_TRUE(pending.ok());
  EXPECT_THAT(*pending, SizeIs(1));
  auto everything = (*reopened)->Recover(/*flush_open=*/true);
  ASSERT_TRUE(everything.ok());
  EXPECT_THAT(*everything, SizeIs(2)) << "key 1 again, and key 2's open window";
}

}  // namespace
}  // namespace cdcjoin
