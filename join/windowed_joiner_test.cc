#include "join/windowed_joiner.h"

#include <algorithm>
#include <map>
#include <random>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "join/in_memory_window_store.h"
#include "join/row_version.h"
#include "join/windowed_joiner_testing.h"

namespace cdcjoin {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::CommandString;
using testing::RowTable;
using testing::TwoSourceSchema;

// Builds events with increasing offsets per (source, partition).
class EventMaker {
 public:
  ChangeEvent Upsert(int source, int64_t key, int64_t t, std::string value, int32_t partition = 0) {
    ChangeEvent e = Base(source, key, t, partition);
    e.op = ChangeOp::kUpsert;
    e.values = {Value(std::move(value))};
    return e;
  }
  ChangeEvent Delete(int source, int64_t key, int64_t t, int32_t partition = 0) {
    ChangeEvent e = Base(source, key, t, partition);
    e.op = ChangeOp::kDelete;
    return e;
  }

 private:
  ChangeEvent Base(int source, int64_t key, int64_t t, int32_t partition) {
    ChangeEvent e;
    e.source = source;
    e.key = {Value(key)};
    e.event_time_ms = t;
    e.position.partition = SourcePartition{source, partition};
    e.position.offset = next_[e.position.partition]++;
    return e;
  }
  std::map<SourcePartition, int64_t> next_;
};

std::unique_ptr<WindowedJoiner> OpenJoiner(const TableSchema& schema,
                                           const WindowedJoinerOptions& options,
                                           WindowStore* store) {
  absl::StatusOr<std::unique_ptr<WindowedJoiner>> joiner =
      WindowedJoiner::Open(schema, options, store);
  EXPECT_TRUE(joiner.ok()) << joiner.status();
  return joiner.ok() ? *std::move(joiner) : nullptr;
}

std::vector<std::string> Strings(const TableSchema& schema, const std::vector<RowCommand>& cs) {
  std::vector<std::string> out;
  for (const RowCommand& c : cs) out.push_back(CommandString(schema, c));
  return out;
}

// ---- The semantics table ------------------------------------------------------------------------
//
// window_ms = 10, grace_ms = 5, one partition. L = sources[0] (column l), R = sources[1]
// (column r). "emits" is what the step's Process call returns; the last row is Drain.
//
//  #  event        stream  what happens                                   INNER / LEFT / OUTER emits
//  1  L A k1 @0     0      k1 opens W1 [0]
//  2  R a k1 @3     3      joins W1 (span 3)
//  3  L B k1 @8     8      joins W1 (span 8), B replaces A
//  4  R b k1 @12   12      span 12 > 10: k1 opens W2 [12]; W1 waits (close 0+15)
//  5  L C k1 @16   16      joins W2; stream 16 > 15 closes W1      all: U 1 {l=B,r=a}
//  6  R c k2 @20   20      k2 opens W [20]
//  7  L D k1 @5    20      5+15 = 20 is not < 20: accepted; span with W2 is 11: k1 opens W3 [5]
//  8  L E k1 @4    20      4+15 < 20: late: INNER/LEFT drop it; OUTER applies it (joins W3)
//  9  R d k2 @27   27      joins k2's W (span 7); k1 W2 closes at 27+: stream == 27 keeps it
// 10  R e k3 @28   28      k3 opens W; 28 > 27 closes k1 W2, then k1 W3 (close 20, waited)
//                            INNER: U 1 {l=C,r=b}     LEFT: U 1 {l=C,r=b}, U 1 {l=D}
//                            OUTER: U 1 {l=C,r=b}, U 1 {l=E}
// 11  L F k2 @30   30      joins k2's W: span exactly 10
// 12  L G k3 @31   31      joins k3's W
// 13  L H k4 @40   40      k4 opens W; closes k2 (close 35)          all: U 2 {l=F,r=d}
// 14  R f k5 @41   41      k5 opens W
// 15  L I k6 @59   59      k6 opens W; closes k3 (43), k4 (55), k5 (56)
//                            INNER: U 3 {l=G,r=e}   LEFT: + U 4 {l=H}   OUTER: + U 4 {l=H}, U 5 {r=f}
// Drain                     INNER: -   LEFT/OUTER: U 6 {l=I}
//
// Kafka Streams would emit an inner result at steps 2, 3, 5, 9, 11, 12 (each pair, as soon as
// it exists); this joiner emits once per closed window with the latest value of each side.
struct Step {
  ChangeEvent event;
  std::vector<std::string> inner, left, outer;
};

std::vector<Step> SemanticsTable() {
  EventMaker m;
  return {
      {m.Upsert(0, 1, 0, "A"), {}, {}, {}},
      {m.Upsert(1, 1, 3, "a"), {}, {}, {}},
      {m.Upsert(0, 1, 8, "B"), {}, {}, {}},
      {m.Upsert(1, 1, 12, "b"), {}, {}, {}},
      {m.Upsert(0, 1, 16, "C"),
       {"U 1 {l='B',r='a'}"},
       {"U 1 {l='B',r='a'}"},
       {"U 1 {l='B',r='a'}"}},
      {m.Upsert(1, 2, 20, "c"), {}, {}, {}},
      {m.Upsert(0, 1, 5, "D"), {}, {}, {}},
      {m.Upsert(0, 1, 4, "E"), {}, {}, {}},
      {m.Upsert(1, 2, 27, "d"), {}, {}, {}},
      {m.Upsert(1, 3, 28, "e"),
       {"U 1 {l='C',r='b'}"},
       {"U 1 {l='C',r='b'}", "U 1 {l='D'}"},
       {"U 1 {l='C',r='b'}", "U 1 {l='E'}"}},
      {m.Upsert(0, 2, 30, "F"), {}, {}, {}},
      {m.Upsert(0, 3, 31, "G"), {}, {}, {}},
      {m.Upsert(0, 4, 40, "H"),
       {"U 2 {l='F',r='d'}"},
       {"U 2 {l='F',r='d'}"},
       {"U 2 {l='F',r='d'}"}},
      {m.Upsert(1, 5, 41, "f"), {}, {}, {}},
      {m.Upsert(0, 6, 59, "I"),
       {"U 3 {l='G',r='e'}"},
       {"U 3 {l='G',r='e'}", "U 4 {l='H'}"},
       {"U 3 {l='G',r='e'}", "U 4 {l='H'}", "U 5 {r='f'}"}},
  };
}

class SemanticsTableTest : public ::testing::TestWithParam<v1::JoinType> {};

TEST_P(SemanticsTableTest, EmitsExactlyTheTable) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.join_type = GetParam();
  options.window_ms = 10;
  options.grace_ms = 5;
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  ASSERT_NE(joiner, nullptr);
  const std::vector<Step> steps = SemanticsTable();
  for (size_t i = 0; i < steps.size(); ++i) {
    std::vector<RowCommand> out;
    ASSERT_TRUE(joiner->Process({steps[i].event}, /*now_ms=*/0, &out).ok());
    const std::vector<std::string>& want = GetParam() == v1::INNER  ? steps[i].inner
                                           : GetParam() == v1::LEFT ? steps[i].left
                                                                    : steps[i].outer;
    EXPECT_EQ(Strings(schema, out), want) << "step " << i + 1;
  }
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Drain(&out).ok());
  if (GetParam() == v1::INNER) {
    EXPECT_THAT(Strings(schema, out), IsEmpty());
  } else {
    EXPECT_THAT(Strings(schema, out), ElementsAre("U 6 {l='I'}"));
  }
  const WindowedJoiner::Stats stats = joiner->stats();
  // Step 8: dropped by INNER and LEFT, applied by OUTER.
  EXPECT_EQ(stats.late_drops, GetParam() == v1::OUTER ? 0 : 1);
  EXPECT_EQ(stats.late_applied, GetParam() == v1::OUTER ? 1 : 0);
  EXPECT_EQ(stats.windows_opened, 8);
  EXPECT_EQ(stats.joined_pairs, 4);  // k1 W1, k1 W2, k2, k3.
  EXPECT_EQ(stats.windows_emitted,
            GetParam() == v1::INNER ? 4 : GetParam() == v1::LEFT ? 7 : 8);
  EXPECT_EQ(stats.windows_emitted + stats.windows_discarded, 8);
  EXPECT_EQ(stats.state_keys, 0);
}

INSTANTIATE_TEST_SUITE_P(JoinTypes, SemanticsTableTest,
                         ::testing::Values(v1::INNER, v1::LEFT, v1::OUTER),
                         [](const ::testing::TestParamInfo<v1::JoinType>& info) {
                           return v1::JoinType_Name(info.param);
                         });

// ---- Boundaries ---------------------------------------------------------------------------------

// OUTER merges any number of sources: one window per key, each source writing its own column;
// INNER and LEFT keep their two-source meaning.
TEST(WindowedJoinerTest, OuterMergesThreeSourcesIntoOneRow) {
  TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  schema.columns.push_back("x");
  SourceMapping third = schema.sources[1];
  third.name = third.topic = "third";
  third.fields = {FieldMapping{"x", 2, true, false, v1::VALUE_TYPE_AUTO}};
  schema.sources.push_back(third);
  WindowedJoinerOptions options;
  options.join_type = v1::OUTER;
  options.window_ms = 100;
  options.grace_ms = 0;
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  EventMaker m;
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 1000, "a"), m.Upsert(2, 1, 1010, "c"),
                               m.Upsert(1, 1, 1020, "b"), m.Upsert(2, 2, 1030, "z")},
                              0, &out)
                  .ok());
  ASSERT_TRUE(joiner->Drain(&out).ok());
  EXPECT_THAT(Strings(schema, out), ElementsAre("U 1 {l='a',r='b',x='c'}", "U 2 {x='z'}"));
  EXPECT_EQ(joiner->stats().joined_pairs, 1);

  for (v1::JoinType join : {v1::INNER, v1::LEFT}) {
    options.join_type = join;
    InMemoryWindowStore other;
    absl::StatusOr<std::unique_ptr<WindowedJoiner>> refused =
        WindowedJoiner::Open(schema, options, &other);
    EXPECT_FALSE(refused.ok()) << v1::JoinType_Name(join);
  }
}

TEST(WindowedJoinerTest, LateBoundaryIsInclusiveAndDropsAreCounted) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.join_type = v1::LEFT;
  options.window_ms = 100;
  options.grace_ms = 50;
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  EventMaker m;
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 1000, "x")}, 0, &out).ok());
  // 850 + 100 + 50 == 1000: accepted. 849: late. Neither moves stream time.
  ASSERT_TRUE(joiner->Process({m.Upsert(1, 2, 850, "edge"), m.Upsert(1, 3, 849, "late"),
                               m.Upsert(1, 3, 0, "very late")},
                              0, &out)
                  .ok());
  EXPECT_EQ(joiner->stats().late_drops, 2);
  EXPECT_EQ(joiner->stats().state_keys, 2);
  // A late event's offset is consumed (stored) and not held.
  EXPECT_EQ(joiner->StoredOffsets().at(SourcePartition{1, 0}), 3);
  EXPECT_EQ(joiner->LowestHeldOffsets().at(SourcePartition{1, 0}), 0);
  // Key 2's window (min 850) closes when stream time passes 850 + 150 = 1000: at 1001, not 1000.
  // (LEFT discards the right-only window when it closes: the count shows when that happens.)
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 9, 1000, "y")}, 0, &out).ok());
  EXPECT_EQ(joiner->stats().windows_discarded, 0);
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 9, 1001, "z")}, 0, &out).ok());
  EXPECT_EQ(joiner->stats().windows_discarded, 1);
  EXPECT_THAT(out, IsEmpty());
}

TEST(WindowedJoinerTest, OuterAppliesLateEventsInsteadOfDroppingThem) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.join_type = v1::OUTER;
  options.window_ms = 100;
  options.grace_ms = 50;
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  EventMaker m;
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 1000, "x")}, 0, &out).ok());
  // 849 + 150 < 1000: late. Its window is already past its close time, so the next advance of
  // stream time emits it.
  ASSERT_TRUE(joiner->Process({m.Upsert(1, 3, 849, "late")}, 0, &out).ok());
  EXPECT_EQ(joiner->stats().late_drops, 0);
  EXPECT_EQ(joiner->stats().late_applied, 1);
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 1001, "x2")}, 0, &out).ok());
  EXPECT_THAT(Strings(schema, out), ElementsAre("U 3 {r='late'}"));
}

TEST(WindowedJoinerTest, WindowSpanBoundary) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.window_ms = 100;
  options.grace_ms = 0;
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  EventMaker m;
  std::vector<RowCommand> out;
  // Span exactly 100 joins; 101 opens a new window.
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 0, "A"), m.Upsert(1, 1, 100, "a"),
                               m.Upsert(0, 1, 201, "B")},
                              0, &out)
                  .ok());
  EXPECT_THAT(Strings(schema, out), ElementsAre("U 1 {l='A',r='a'}"));  // Stream 201 > 0+100.
  EXPECT_EQ(joiner->stats().windows_opened, 2);
  EXPECT_EQ(joiner->stats().joined_pairs, 1);
}

// ---- Idle flush ---------------------------------------------------------------------------------

TEST(WindowedJoinerTest, IdleFlushPerPartitionInProcessingTime) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.idle_flush_ms = 2000;
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  EventMaker m;
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 5, "once", /*partition=*/0)}, 1000, &out).ok());
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 2, 5, "busy", /*partition=*/1)}, 2500, &out).ok());
  ASSERT_TRUE(joiner->Advance(2999, &out).ok());
  EXPECT_THAT(out, IsEmpty());
  ASSERT_TRUE(joiner->Advance(3000, &out).ok());  // Partition 0 quiet for 2000.
  EXPECT_THAT(Strings(schema, out), ElementsAre("U 1 {l='once'}"));
  out.clear();
  ASSERT_TRUE(joiner->Process({m.Upsert(1, 2, 6, "still busy", 1)}, 4000, &out).ok());
  ASSERT_TRUE(joiner->Advance(5999, &out).ok());
  EXPECT_THAT(out, IsEmpty());
  ASSERT_TRUE(joiner->Advance(6000, &out).ok());
  EXPECT_THAT(Strings(schema, out), ElementsAre("U 2 {l='busy',r='still busy'}"));
}

// ---- Collapse and deletes -----------------------------------------------------------------------

std::vector<std::string> RunOneWindow(const TableSchema& schema,
                                      const std::vector<ChangeEvent>& events) {
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
  std::vector<RowCommand> out;
  EXPECT_TRUE(joiner->Process(events, 0, &out).ok());
  EXPECT_THAT(out, IsEmpty());
  EXPECT_TRUE(joiner->Drain(&out).ok());
  // Only the last command carries the window's positions: all of them.
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].covers.size(), i + 1 == out.size() ? events.size() : 0u);
  }
  return Strings(schema, out);
}

TEST(WindowedJoinerTest, SeveralChangesCollapseToOneWriteOfTheLatest) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  EventMaker m;
  EXPECT_THAT(RunOneWindow(schema, {m.Upsert(0, 1, 0, "v1"), m.Upsert(0, 1, 1, "v2"),
                                    m.Upsert(1, 1, 2, "w1"), m.Upsert(0, 1, 3, "v3"),
                                    m.Upsert(1, 1, 4, "w2")}),
              ElementsAre("U 1 {l='v3',r='w2'}"));
}

TEST(WindowedJoinerTest, InsertOnlyColumnsKeepTheFirstValue) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE, /*insert_only=*/true);
  ChangeEvent a;
  a.source = 0;
  a.key = {Value(int64_t{1})};
  a.values = {Value("v1"), Value("first")};
  a.position = {SourcePartition{0, 0}, 0};
  ChangeEvent b = a;
  b.values = {Value("v2"), Value("second")};
  b.position.offset = 1;
  // l takes the latest value; li (insert only) the first: U1;U2 inserts what U1 inserted, and
  // on an existing row neither touches li.
  EXPECT_THAT(RunOneWindow(schema, {a, b}), ElementsAre("U 1 {l='v2',li='first'}"));
}

TEST(WindowedJoinerTest, DeleteRowPolicyKeepsOrderInsideTheWindow) {
  const TableSchema schema = TwoSourceSchema(v1::DELETE_ROW, v1::IGNORE);
  EventMaker m;
  EXPECT_THAT(RunOneWindow(schema, {m.Upsert(0, 1, 0, "A"), m.Upsert(1, 1, 1, "a"),
                                    m.Delete(0, 1, 2)}),
              ElementsAre("D 1"));
  EXPECT_THAT(RunOneWindow(schema, {m.Delete(0, 1, 0), m.Upsert(0, 1, 1, "B")}),
              ElementsAre("D 1", "U 1 {l='B'}"));
  EXPECT_THAT(RunOneWindow(schema, {m.Upsert(1, 1, 0, "a"), m.Delete(0, 1, 1),
                                    m.Upsert(0, 1, 2, "B"), m.Upsert(1, 1, 3, "b")}),
              ElementsAre("D 1", "U 1 {l='B',r='b'}"));

  // On a table where the row exists: upsert then delete ends deleted; delete then upsert ends
  // with only the upsert's columns.
  RowCommand existing;
  existing.key = {Value(int64_t{1})};
  existing.writes = {ColumnWrite{0, true, Value("old l")}, ColumnWrite{1, true, Value("old r")}};
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 0, "A"), m.Delete(0, 1, 1)}, 0, &out).ok());
  ASSERT_TRUE(joiner->Drain(&out).ok());
  RowTable table;
  table.Apply(existing);
  table.ApplyAll(out);
  EXPECT_EQ(table.size(), 0u);

  out.clear();
  ASSERT_TRUE(joiner->Process({m.Delete(0, 1, 100), m.Upsert(0, 1, 101, "B")}, 0, &out).ok());
  ASSERT_TRUE(joiner->Drain(&out).ok());
  RowTable got, want;
  got.Apply(existing);
  got.ApplyAll(out);
  RowCommand only_b;
  only_b.key = existing.key;
  only_b.writes = {ColumnWrite{0, true, Value("B")}};
  want.Apply(only_b);
  EXPECT_EQ(got, want) << got.DebugString(schema);
}

TEST(WindowedJoinerTest, ClearColumnsPolicyInsideTheWindow) {
  const TableSchema schema = TwoSourceSchema(v1::CLEAR_COLUMNS, v1::CLEAR_COLUMNS);
  EventMaker m;
  // Upsert then clear: one upsert writing NULL for the cleared side, the other side kept.
  EXPECT_THAT(RunOneWindow(schema, {m.Upsert(0, 1, 0, "A"), m.Upsert(1, 1, 1, "a"),
                                    m.Delete(0, 1, 2)}),
              ElementsAre("U 1 {l=NULL,r='a'}"));
  // Clear then upsert of the same side: the upsert.
  EXPECT_THAT(RunOneWindow(schema, {m.Delete(0, 1, 0), m.Upsert(0, 1, 1, "B")}),
              ElementsAre("U 1 {l='B'}"));
  // Clear of one side then upsert of the other: the clear survives as a NULL write.
  EXPECT_THAT(RunOneWindow(schema, {m.Delete(0, 1, 0), m.Upsert(1, 1, 1, "b")}),
              ElementsAre("U 1 {l=NULL,r='b'}"));
  // Clears alone stay clears (the row may not exist; a clear must not create it).
  EXPECT_THAT(RunOneWindow(schema, {m.Delete(0, 1, 0), m.Delete(1, 1, 1)}),
              ElementsAre("C 1 {l,r}"));
}

TEST(WindowedJoinerTest, IgnorePolicyWritesNothingAndReleasesOffsets) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  EventMaker m;
  EXPECT_THAT(RunOneWindow(schema, {m.Upsert(0, 1, 0, "A"), m.Delete(0, 1, 1)}),
              ElementsAre("U 1 {l='A'}"));
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Delete(1, 7, 0), m.Delete(1, 7, 1)}, 0, &out).ok());
  EXPECT_EQ(joiner->CommittableOffsets().at(SourcePartition{1, 0}), 0);
  ASSERT_TRUE(joiner->Drain(&out).ok());
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(joiner->stats().windows_discarded, 1);
  EXPECT_EQ(joiner->CommittableOffsets().at(SourcePartition{1, 0}), 2);
}

// ---- Offsets, acknowledgement, purge ------------------------------------------------------------

TEST(WindowedJoinerTest, OffsetsAreHeldUntilAcknowledgedAndStateIsPurged) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
  EventMaker m;
  std::vector<ChangeEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(m.Upsert(0, i, 100, "v"));
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process(events, 0, &out).ok());
  const SourcePartition sp{0, 0};
  EXPECT_EQ(joiner->StoredOffsets().at(sp), 10);
  EXPECT_EQ(joiner->LowestHeldOffsets().at(sp), 0);
  EXPECT_EQ(joiner->CommittableOffsets().at(sp), 0);
  ASSERT_TRUE(joiner->Drain(&out).ok());
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(joiner->CommittableOffsets().at(sp), 0);  // Emitted is not applied.
  // Acknowledge out of key order: keys 1..9 first; offset 0 still holds the commit back.
  for (size_t i = 1; i < out.size(); ++i) ASSERT_TRUE(joiner->Acknowledge(out[i].covers).ok());
  EXPECT_EQ(joiner->CommittableOffsets().at(sp), 0);
  ASSERT_TRUE(joiner->Acknowledge(out[0].covers).ok());
  ASSERT_TRUE(joiner->Acknowledge(out[0].covers).ok());  // Twice: ignored.
  EXPECT_EQ(joiner->CommittableOffsets().at(sp), 10);
  EXPECT_THAT(joiner->LowestHeldOffsets(), IsEmpty());
  EXPECT_EQ(joiner->stats().windows_acknowledged, 10);
  EXPECT_EQ(joiner->stats().state_keys, 0);
  EXPECT_EQ(joiner->stats().emitting_windows, 0);
  EXPECT_EQ(store.size(), 1u);  // Only partition 0's stream time is left.
  EXPECT_THAT(joiner->PendingCommands(), IsEmpty());
}

TEST(WindowedJoinerTest, InvalidEventsAbsorbNothing) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
  EventMaker m;
  ChangeEvent bad = m.Upsert(0, 1, 0, "x");
  bad.values.push_back(Value(int64_t{1}));
  std::vector<RowCommand> out;
  EXPECT_EQ(joiner->Process({m.Upsert(0, 2, 0, "ok"), bad}, 0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  ChangeEvent unknown = m.Upsert(0, 1, 0, "x");
  unknown.source = 2;
  EXPECT_EQ(joiner->Process({unknown}, 0, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(joiner->stats().state_keys, 0);
  EXPECT_EQ(store.commits(), 0);
}

TEST(WindowedJoinerTest, FailedCommitEmitsNothingAndRefusesFurtherCalls) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  InMemoryWindowStore store;
  WindowedJoinerOptions options;
  options.window_ms = 10;
  options.grace_ms = 0;
  auto joiner = OpenJoiner(schema, options, &store);
  EventMaker m;
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process({m.Upsert(0, 1, 0, "A")}, 0, &out).ok());
  store.set_fail_commits(true);
  EXPECT_FALSE(joiner->Process({m.Upsert(0, 2, 100, "B")}, 0, &out).ok());  // Would close k1.
  EXPECT_THAT(out, IsEmpty());
  store.set_fail_commits(false);
  EXPECT_EQ(joiner->Drain(&out).code(), absl::StatusCode::kFailedPrecondition);
  joiner = OpenJoiner(schema, options, &store);
  EXPECT_EQ(joiner->StoredOffsets().at(SourcePartition{0, 0}), 1);
  EXPECT_EQ(joiner->stats().state_keys, 1);
}

// ---- Convergence (OUTER) ------------------------------------------------------------------------

// Every short sequence of one key's events in one window, on an absent or an existing row, under
// every pair of delete policies, with insert-only columns: the window's reduced commands leave
// the same row as the events' commands one by one.
TEST(WindowedJoinerTest, OneWindowReductionIsExactOnAnyRow) {
  const v1::DeletePolicy policies[] = {v1::IGNORE, v1::CLEAR_COLUMNS, v1::DELETE_ROW};
  for (uint32_t seed = 1; seed <= 6000; ++seed) {
    const TableSchema schema =
        TwoSourceSchema(policies[seed % 3], policies[(seed / 3) % 3], /*insert_only=*/true);
    testing::RandomEventsOptions gen;
    gen.count = 1 + static_cast<int>(seed % 7);
    gen.keys = 1;
    gen.partitions = 1;
    gen.insert_only = true;
    gen.max_lag_ms = 0;
    gen.delete_fraction = 0.35;
    const std::vector<ChangeEvent> events = testing::RandomEvents(seed, gen);
    InMemoryWindowStore store;
    WindowedJoinerOptions options;
    options.window_ms = 1000000;  // One window.
    auto joiner = OpenJoiner(schema, options, &store);
    std::vector<RowCommand> out;
    ASSERT_TRUE(joiner->Process(events, 0, &out).ok());
    ASSERT_TRUE(joiner->Drain(&out).ok());
    ASSERT_LE(out.size(), 2u);
    RowTable got, want;
    if (seed % 2 == 0) {  // The row exists before the window, every column set.
      RowCommand existing;
      existing.key = events[0].key;
      for (int c = 0; c < 4; ++c) existing.writes.push_back(ColumnWrite{c, true, Value("old")});
      got.Apply(existing);
      want.Apply(existing);
    }
    got.ApplyAll(out);
    for (const ChangeEvent& e : events) want.ApplyEvent(schema, e);
    ASSERT_EQ(got, want) << "seed " << seed << "\nwindowed:\n"
                         << got.DebugString(schema) << "reference:\n"
                         << want.DebugString(schema);
  }
}


TEST(WindowedJoinerTest, RandomizedOuterConvergesToTheReferenceModel) {
  const v1::DeletePolicy policies[] = {v1::IGNORE, v1::CLEAR_COLUMNS, v1::DELETE_ROW};
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    const bool insert_only = seed % 2 == 0;
    const TableSchema schema =
        TwoSourceSchema(policies[seed % 3], policies[(seed / 3) % 3], insert_only);
    testing::RandomEventsOptions gen;
    gen.count = 1500;
    gen.keys = 5 + static_cast<int>(seed % 40);
    gen.partitions = 1 + static_cast<int>(seed % 4);
    gen.insert_only = insert_only;
    WindowedJoinerOptions options;
    options.window_ms = 1 + seed % 20;
    options.grace_ms = seed % 5;
    // An event lagging the clock by at most window + grace is never late.
    gen.max_lag_ms = std::min<int64_t>(seed % 7, options.window_ms + options.grace_ms);
    options.idle_flush_ms = 50;
    const std::vector<ChangeEvent> events = testing::RandomEvents(seed, gen);

    InMemoryWindowStore store;
    auto joiner = OpenJoiner(schema, options, &store);
    ASSERT_NE(joiner, nullptr);
    RowTable table;
    std::mt19937 rng(seed);
    int64_t now = 0;
    for (size_t next = 0; next < events.size();) {
      const size_t n = std::min<size_t>(events.size() - next, 1 + rng() % 64);
      std::vector<RowCommand> out;
      now += rng() % 20;
      ASSERT_TRUE(joiner->Process(absl::MakeConstSpan(events.data() + next, n), now, &out).ok());
      if (rng() % 4 == 0) {
        ASSERT_TRUE(joiner->Advance(now, &out).ok());
      }
      table.ApplyAll(out);
      for (const RowCommand& c : out) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
      next += n;
    }
    std::vector<RowCommand> out;
    ASSERT_TRUE(joiner->Drain(&out).ok());
    table.ApplyAll(out);
    for (const RowCommand& c : out) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
    const WindowedJoiner::Stats stats = joiner->stats();
    ASSERT_EQ(stats.late_drops, 0) << "seed " << seed;
    const RowTable reference = testing::ReferenceTable(schema, events);
    ASSERT_EQ(table, reference) << "seed " << seed << "\nwindowed:\n"
                                << table.DebugString(schema) << "reference:\n"
                                << reference.DebugString(schema);
    // Fewer writes than one command per event, and nothing left in state.
    EXPECT_LT(stats.commands_emitted, static_cast<int64_t>(events.size())) << "seed " << seed;
    EXPECT_EQ(stats.state_keys, 0);
    EXPECT_EQ(stats.emitting_windows, 0);
    EXPECT_EQ(store.size(), static_cast<size_t>(gen.partitions));  // Stream times only.
  }
}

// ---- Crash safety -------------------------------------------------------------------------------

TEST(WindowedJoinerTest, CrashAndReopenLosesAndDoublesNothing) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const TableSchema schema = TwoSourceSchema(
        seed % 2 ? v1::DELETE_ROW : v1::CLEAR_COLUMNS, v1::CLEAR_COLUMNS, seed % 3 == 0);
    testing::RandomEventsOptions gen;
    gen.count = 1200;
    gen.keys = 10 + static_cast<int>(seed % 30);
    gen.partitions = 1 + static_cast<int>(seed % 3);
    gen.insert_only = seed % 3 == 0;
    gen.max_lag_ms = 4;
    WindowedJoinerOptions options;
    options.window_ms = 8;
    options.grace_ms = 2;
    options.idle_flush_ms = 40;
    const std::vector<ChangeEvent> events = testing::RandomEvents(seed + 1000, gen);

    InMemoryWindowStore store;
    testing::CrashScenarioResult result;
    absl::Status status = testing::RunCrashScenario(
        schema, options, events, seed, /*crash_every=*/3 + seed % 5, [&] { return &store; },
        [&](WindowStore*, bool fail) { store.set_fail_commits(fail); }, &result);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_GT(result.crashes, 3) << "seed " << seed;
    const RowTable reference = testing::ReferenceTable(schema, events);
    ASSERT_EQ(result.table, reference) << "seed " << seed << "\nwindowed:\n"
                                       << result.table.DebugString(schema) << "reference:\n"
                                       << reference.DebugString(schema);
    EXPECT_THAT(result.doubly_covered, IsEmpty());
    EXPECT_THAT(result.uncovered, IsEmpty());
    // Everything applied and acknowledged: Kafka may commit the end of every partition.
    std::map<SourcePartition, int64_t> ends;
    for (const ChangeEvent& e : events) ends[e.position.partition] = e.position.offset + 1;
    EXPECT_EQ(result.final_committable, ends);
  }
}

}  // namespace
}  // namespace cdcjoin

namespace cdcjoin {
namespace {

// ---- The state log ------------------------------------------------------------------------------

// The store holds only what live windows need: with one emitted window never acknowledged, the
// log stays small however long the stream runs; a reopen rebuilds exactly that window as
// pending; once it is acknowledged only the stream times are left.
TEST(WindowedJoinerTest, LogRecordsLiveOnlyAsLongAsTheirWindows) {
  const TableSchema schema = TwoSourceSchema(v1::DELETE_ROW, v1::CLEAR_COLUMNS);
  testing::RandomEventsOptions gen;
  gen.count = 20000;
  gen.keys = 200;
  gen.partitions = 2;
  WindowedJoinerOptions options;
  options.window_ms = 10;
  options.grace_ms = 5;
  const std::vector<ChangeEvent> events = testing::RandomEvents(7, gen);

  InMemoryWindowStore store;
  auto joiner = OpenJoiner(schema, options, &store);
  ASSERT_NE(joiner, nullptr);
  std::vector<RowCommand> held;  // One window's commands, never acknowledged.
  size_t max_size = 0;
  for (size_t next = 0; next < events.size(); next += 50) {
    std::vector<RowCommand> out;
    ASSERT_TRUE(joiner->Process(absl::MakeConstSpan(events.data() + next, 50), 0, &out).ok());
    size_t hold_begin = out.size(), hold_end = out.size();
    for (size_t i = 0; held.empty() && i < out.size(); ++i) {
      if (out[i].covers.empty()) continue;
      hold_begin = i;  // The window's commands: only its last one carries the covers.
      hold_end = i + 1;
      while (hold_begin > 0 && out[hold_begin - 1].covers.empty()) --hold_begin;
      held.assign(out.begin() + hold_begin, out.begin() + hold_end);
    }
    for (size_t i = 0; i < out.size(); ++i) {
      if (i >= hold_begin && i < hold_end) continue;
      ASSERT_TRUE(joiner->Acknowledge(out[i].covers).ok());
    }
    if (next >= events.size() / 2) max_size = std::max(max_size, store.size());
  }
  ASSERT_FALSE(held.empty());
  // Thousands of commits wrote records; what is left is the held window's events, "dead"
  // markers of windows whose events share its record, the open windows and the stream times.
  EXPECT_LT(max_size, 120u);

  joiner.reset();  // A crash: no Drain.
  joiner = OpenJoiner(schema, options, &store);
  ASSERT_NE(joiner, nullptr);
  const std::vector<RowCommand> pending = joiner->PendingCommands();
  EXPECT_EQ(Strings(schema, pending), Strings(schema, held));
  ASSERT_FALSE(pending.empty());
  ASSERT_EQ(pending.back().covers.size(), held.back().covers.size());
  for (size_t i = 0; i < held.back().covers.size(); ++i) {
    EXPECT_EQ(pending.back().covers[i].partition, held.back().covers[i].partition);
    EXPECT_EQ(pending.back().covers[i].offset, held.back().covers[i].offset);
  }
  ASSERT_TRUE(joiner->Acknowledge(held.back().covers).ok());
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Drain(&out).ok());
  for (const RowCommand& c : out) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
  EXPECT_EQ(joiner->stats().emitting_windows, 0);
  EXPECT_THAT(joiner->LowestHeldOffsets(), IsEmpty());
  EXPECT_EQ(store.size(), static_cast<size_t>(gen.partitions));  // Stream times only.
}

// State written in the per-key layout that preceded the log ("k" + key, "e" + sequence) is
// refused rather than silently ignored: its windows would be lost.
TEST(WindowedJoinerTest, RefusesTheOlderPerKeyLayout) {
  const TableSchema schema = TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  for (const char prefix : {'k', 'e'}) {
    InMemoryWindowStore store;
    WindowStoreBatch batch;
    batch.Put(std::string(1, prefix) + std::string(8, '\x01'), "x");
    ASSERT_TRUE(store.Commit(batch).ok());
    EXPECT_EQ(WindowedJoiner::Open(schema, WindowedJoinerOptions(), &store).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

// ---- The stale-write guard --------------------------------------------------------------------

TableSchema GuardedSchema(bool guard) {
  TableSchema schema = TwoSourceSchema(v1::DELETE_ROW_WHEN_ALL_DELETED, v1::CLEAR_COLUMNS);
  schema.stale_write_guard = guard;
  schema.sources[0].version_column = "v_left";
  schema.sources[1].version_column = "v_right";
  schema.column_guard = {0, 1};
  return schema;
}

ChangeEvent AtBinlog(ChangeEvent event, uint64_t pos) {
  event.binlog = BinlogCoordinates{7, pos, 0, false};
  return event;
}

// A merged window row carries each side's version, through the window state and a reopen; a
// stale event of one side inside the window never replaces that side's newer values.
TEST(WindowedJoinerTest, GuardedWindowsCarryEachSidesVersionThroughTheState) {
  const TableSchema schema = GuardedSchema(true);
  InMemoryWindowStore store;
  EventMaker m;
  {
    std::unique_ptr<WindowedJoiner> joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
    ASSERT_NE(joiner, nullptr);
    std::vector<RowCommand> out;
    ASSERT_TRUE(joiner
                    ->Process({AtBinlog(m.Upsert(0, 1, 0, "new"), 900),
                               AtBinlog(m.Upsert(1, 1, 1, "w"), 500),
                               AtBinlog(m.Upsert(0, 1, 2, "old"), 800)},
                              0, &out)
                    .ok());
    EXPECT_THAT(out, IsEmpty());  // Still open: it lives in the store only.
  }
  std::unique_ptr<WindowedJoiner> joiner = OpenJoiner(schema, WindowedJoinerOptions(), &store);
  ASSERT_NE(joiner, nullptr);
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Drain(&out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(CommandString(schema, out[0]), "U 1 {l='new',r='w'}");
  ChangeEvent left = AtBinlog(m.Upsert(0, 1, 0, ""), 900);
  ChangeEvent right = AtBinlog(m.Upsert(1, 1, 0, ""), 500);
  EXPECT_THAT(out[0].versions, ElementsAre(SourceVersion{0, RowVersionOf(left)},
                                           SourceVersion{1, RowVersionOf(right)}));

  // The ownership-aware delete is a release, carried with its version too.
  ASSERT_TRUE(joiner->Process({AtBinlog(m.Delete(0, 2, 10), 950)}, 0, &out).ok());
  out.clear();
  ASSERT_TRUE(joiner->Drain(&out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, RowCommandKind::kRelease);
  ASSERT_EQ(out[0].versions.size(), 1u);
  EXPECT_EQ(out[0].versions[0].version.back(), '1');
}

// Windows written without the guard have no versions: a guarded start refuses them (they would
// be applied unguarded) rather than misreading them; an unguarded start reads guarded windows
// and leaves the versions out.
TEST(WindowedJoinerTest, GuardChangesAcrossARestartAreReadOrRefusedNeverMisread) {
  EventMaker m;
  for (const bool written_guarded : {false, true}) {
    InMemoryWindowStore store;
    {
      std::unique_ptr<WindowedJoiner> joiner =
          OpenJoiner(GuardedSchema(written_guarded), WindowedJoinerOptions(), &store);
      ASSERT_NE(joiner, nullptr);
      std::vector<RowCommand> out;
      ASSERT_TRUE(joiner->Process({AtBinlog(m.Upsert(0, 1, 0, "a"), 5)}, 0, &out).ok());
    }
    absl::StatusOr<std::unique_ptr<WindowedJoiner>> reopened =
        WindowedJoiner::Open(GuardedSchema(!written_guarded), WindowedJoinerOptions(), &store);
    if (!written_guarded) {
      EXPECT_EQ(reopened.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(std::string(reopened.status().message()),
                  ::testing::HasSubstr("without target.stale_write_guard"));
      continue;
    }
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    std::vector<RowCommand> out;
    ASSERT_TRUE((*reopened)->Drain(&out).ok());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(CommandString(GuardedSchema(false), out[0]), "U 1 {l='a'}");
    EXPECT_THAT(out[0].versions, IsEmpty());
  }
}

}  // namespace
}  // namespace cdcjoin
