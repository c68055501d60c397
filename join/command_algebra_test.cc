#include "join/command_algebra.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "join/db_upsert_joiner.h"
#include "join/reference_table.h"
#include "join/row_version.h"

namespace cdcjoin {
namespace {

using K = RowCommandKind;
using testing::ClearCommand;
using testing::DeleteCommand;
using testing::Offsets;
using testing::RowTable;
using testing::UpsertCommand;
using testing::Write;
using ::testing::ElementsAre;

constexpr int kColumns = 4;

std::vector<RowCommand> Reduce(std::vector<RowCommand> commands) {
  std::vector<EventPosition> orphans;
  std::vector<RowCommand> out = ReduceKeyCommands(std::move(commands), &orphans);
  EXPECT_TRUE(orphans.empty());
  return out;
}

// The reduced commands act as the originals on every start state of the key: absent, and
// present with every column set.
void ExpectEquivalent(const std::vector<RowCommand>& commands, const std::vector<RowCommand>& out) {
  for (bool present : {false, true}) {
    RowTable sequential;
    if (present) {
      std::vector<ColumnWrite> all;
      for (int c = 0; c < kColumns; ++c) {
        all.push_back(Write(c, true, Value("o" + std::to_string(c))));
      }
      sequential.Apply(UpsertCommand(std::get<int64_t>(commands[0].key[0]), all, -1));
    }
    RowTable reduced = sequential;
    sequential.ApplyAll(commands);
    reduced.ApplyAll(out);
    EXPECT_EQ(sequential, reduced) << "row present before: " << present;
  }
}

TEST(CommandAlgebraTest, UpsertsMergeLaterUpdateWinsFirstInsertOnlyWins) {
  std::vector<RowCommand> in = {
      UpsertCommand(1, {Write(0, true, Value("a1")), Write(1, false, Value("b1"))}, 10),
      UpsertCommand(1, {Write(0, true, Value("a2")), Write(1, false, Value("b2"))}, 11),
      UpsertCommand(1, {Write(0, true, Value("a3")), Write(1, false, Value("b3"))}, 12),
  };
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_THAT(out[0].writes,
              ElementsAre(Write(0, true, Value("a3")), Write(1, false, Value("b1"))));
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(10, 11, 12));
  ExpectEquivalent(in, out);
}

TEST(CommandAlgebraTest, ColumnWrittenByBothWithDifferentFlags) {
  // Update-on-conflict then insert-only: the first value wins and stays update-on-conflict
  // (an existing row got it from the first command; a new row was inserted with it).
  std::vector<RowCommand> in1 = {UpsertCommand(1, {Write(0, true, Value("u"))}, 1),
                                 UpsertCommand(1, {Write(0, false, Value("i"))}, 2)};
  std::vector<RowCommand> out1 = Reduce(in1);
  ASSERT_EQ(out1.size(), 1u);
  EXPECT_THAT(out1[0].writes, ElementsAre(Write(0, true, Value("u"))));
  ExpectEquivalent(in1, out1);

  // Insert-only then update-on-conflict: the later value wins in every case.
  std::vector<RowCommand> in2 = {UpsertCommand(1, {Write(0, false, Value("i"))}, 1),
                                 UpsertCommand(1, {Write(0, true, Value("u"))}, 2)};
  std::vector<RowCommand> out2 = Reduce(in2);
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_THAT(out2[0].writes, ElementsAre(Write(0, true, Value("u"))));
  ExpectEquivalent(in2, out2);
}

TEST(CommandAlgebraTest, TheSeedsTwoSourcesMergeIntoOneUpsert) {
  // user: maskingName(0) + dateCreated(2) updated; user_ext: currentNickname(1) updated,
  // maskingName(0) insert-only.
  std::vector<RowCommand> in = {
      UpsertCommand(7, {Write(0, true, Value("mask")), Write(2, true, Value("2024-01-01"))}, 1),
      UpsertCommand(7, {Write(0, false, Value("ext-mask")), Write(1, true, Value("nick"))}, 2),
  };
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].writes,
              ElementsAre(Write(0, true, Value("mask")), Write(1, true, Value("nick")),
                          Write(2, true, Value("2024-01-01"))));
  ExpectEquivalent(in, out);

  // The other order: user_ext first inserts maskingName, user then overwrites it.
  std::vector<RowCommand> reversed = {in[1], in[0]};
  out = Reduce(reversed);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].writes,
              ElementsAre(Write(0, true, Value("mask")), Write(1, true, Value("nick")),
                          Write(2, true, Value("2024-01-01"))));
  ExpectEquivalent(reversed, out);
}

TEST(CommandAlgebraTest, InsertOnlyColumnOnlyInTheLaterUpsertIsDropped) {
  std::vector<RowCommand> in = {UpsertCommand(1, {Write(0, true, Value("a"))}, 1),
                                UpsertCommand(1, {Write(1, false, Value("b"))}, 2)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].writes, ElementsAre(Write(0, true, Value("a"))));
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(1, 2));
  ExpectEquivalent(in, out);
}

TEST(CommandAlgebraTest, AnythingThenDeleteBecomesTheDelete) {
  std::vector<RowCommand> in = {UpsertCommand(1, {Write(0, true, Value("a"))}, 1),
                                ClearCommand(1, {1}, 2),
                                UpsertCommand(1, {Write(1, true, Value("b"))}, 3),
                                DeleteCommand(1, 4)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kDelete);
  EXPECT_TRUE(out[0].writes.empty());
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(1, 2, 3, 4));
  ExpectEquivalent(in, out);
}

TEST(CommandAlgebraTest, DeleteThenUpsertStaysTwoInOrder) {
  std::vector<RowCommand> in = {DeleteCommand(1, 1),
                                UpsertCommand(1, {Write(0, true, Value("a"))}, 2),
                                UpsertCommand(1, {Write(0, true, Value("b"))}, 3)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, K::kDelete);
  EXPECT_EQ(out[1].kind, K::kUpsert);
  EXPECT_THAT(out[1].writes, ElementsAre(Write(0, true, Value("b"))));
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(1));
  EXPECT_THAT(Offsets(out[1].covers), ElementsAre(2, 3));
  ExpectEquivalent(in, out);

  // A delete after the pair erases both.
  in.push_back(DeleteCommand(1, 4));
  out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(1, 2, 3, 4));
}

TEST(CommandAlgebraTest, DeleteThenClearIsTheDelete) {
  std::vector<RowCommand> in = {DeleteCommand(1, 1), ClearCommand(1, {0, 1}, 2)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kDelete);
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(1, 2));
  ExpectEquivalent(in, out);
}

TEST(CommandAlgebraTest, ClearsMergeIntoTheirUnion) {
  std::vector<RowCommand> in = {ClearCommand(1, {0, 2}, 1), ClearCommand(1, {1, 2}, 2)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kClear);
  std::vector<int> columns;
  for (const ColumnWrite& w : out[0].writes) columns.push_back(w.column);
  EXPECT_THAT(columns, ElementsAre(0, 1, 2));
  ExpectEquivalent(in, out);
}

TEST(CommandAlgebraTest, UpsertThenClearWritesNulls) {
  std::vector<RowCommand> in = {
      UpsertCommand(1, {Write(0, true, Value("a")), Write(1, false, Value("b"))}, 1),
      ClearCommand(1, {1, 3}, 2)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_THAT(out[0].writes, ElementsAre(Write(0, true, Value("a")), Write(1, true, Value()),
                                         Write(3, true, Value())));
  ExpectEquivalent(in, out);
}

TEST(CommandAlgebraTest, ClearThenUpsertMergesUnlessAClearedColumnIsInsertOnly) {
  // Column 2 is cleared and not written: the merged upsert writes it NULL.
  std::vector<RowCommand> in = {
      ClearCommand(1, {0, 2}, 1),
      UpsertCommand(1, {Write(0, true, Value("a")), Write(1, false, Value("b"))}, 2)};
  std::vector<RowCommand> out = Reduce(in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_THAT(out[0].writes, ElementsAre(Write(0, true, Value("a")), Write(1, false, Value("b")),
                                         Write(2, true, Value())));
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(1, 2));
  ExpectEquivalent(in, out);

  // Column 1 is insert-only: an existing row must end with it NULL, a new one with "b".
  std::vector<RowCommand> in2 = {
      ClearCommand(1, {0, 1}, 1),
      UpsertCommand(1, {Write(0, true, Value("a")), Write(1, false, Value("b"))}, 2)};
  std::vector<RowCommand> out2 = Reduce(in2);
  ASSERT_EQ(out2.size(), 2u);
  EXPECT_EQ(out2[0].kind, K::kClear);
  EXPECT_EQ(out2[1].kind, K::kUpsert);
  ExpectEquivalent(in2, out2);

  // A later clear makes the upsert overwrite column 1 too: everything folds into one.
  std::vector<RowCommand> in3 = in2;
  in3.push_back(ClearCommand(1, {1}, 3));
  std::vector<RowCommand> out3 = Reduce(in3);
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_THAT(Offsets(out3[0].covers), ElementsAre(1, 2, 3));
  ExpectEquivalent(in3, out3);
}

TEST(CommandAlgebraTest, LoneEmptyClearLeavesOnlyItsCovers) {
  std::vector<EventPosition> orphans;
  std::vector<RowCommand> out =
      ReduceKeyCommands({ClearCommand(1, {}, 5), ClearCommand(1, {}, 6)}, &orphans);
  EXPECT_TRUE(out.empty());
  EXPECT_THAT(Offsets(orphans), ElementsAre(5, 6));

  orphans.clear();
  out = ReduceKeyCommands(
      {ClearCommand(1, {}, 5), UpsertCommand(1, {Write(0, false, Value("x"))}, 6)}, &orphans);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(orphans.empty());
  EXPECT_THAT(Offsets(out[0].covers), ElementsAre(5, 6));
}

TEST(CommandAlgebraTest, MergeLaterUpsertWriteIsTheUpsertRuleForOneWrite) {
  std::vector<ColumnWrite> writes = {Write(0, false, Value("i")), Write(2, true, Value("c"))};
  MergeLaterUpsertWrite(&writes, 0, true, Value("u"));
  MergeLaterUpsertWrite(&writes, 1, true, Value("n"));
  MergeLaterUpsertWrite(&writes, 2, false, Value("ignored"));
  MergeLaterUpsertWrite(&writes, 3, false, Value("ignored"));
  EXPECT_THAT(writes, ElementsAre(Write(0, true, Value("u")), Write(1, true, Value("n")),
                                  Write(2, true, Value("c"))));
}

Value RandomValue(std::mt19937* rng) {
  switch (std::uniform_int_distribution<int>(0, 3)(*rng)) {
    case 0:
      return Value();
    case 1:
      return Value(int64_t{std::uniform_int_distribution<int>(0, 4)(*rng)});
    case 2:
      return Value(0.5 * std::uniform_int_distribution<int>(0, 4)(*rng));
    default:
      return Value(std::string(
          1, static_cast<char>('a' + std::uniform_int_distribution<int>(0, 4)(*rng))));
  }
}

// The property: for random command sequences over a few keys, from a random start table,
// applying each key's reduced commands gives the table that applying the commands one by one
// gives, every event stays covered exactly once, and no key needs more than two commands. It
// checks every prefix, since AppendReduced's list must stand for what was appended so far.
TEST(CommandAlgebraTest, ReducedSequencesApplyAsTheOriginals) {
  std::mt19937 rng(20261201);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  int two_command_lists = 0;
  for (int iteration = 0; iteration < 5000; ++iteration) {
    const int keys = 1 + pick(3);
    RowTable start;
    for (int key = 0; key < keys; ++key) {
      if (pick(2) == 0) continue;
      std::vector<ColumnWrite> row;
      for (int c = 0; c < kColumns; ++c) row.push_back(Write(c, true, RandomValue(&rng)));
      start.Apply(UpsertCommand(key, row, -1));
    }
    RowTable sequential = start;
    std::vector<std::vector<RowCommand>> reduced(keys);
    std::vector<int64_t> covered;
    const int length = 1 + pick(20);
    for (int i = 0; i < length; ++i) {
      const int64_t key = pick(keys);
      RowCommand command;
      const int kind = pick(10);
      if (kind < 6) {
        std::vector<ColumnWrite> writes;
        for (int c = 0; c < kColumns; ++c) {
          if (pick(2) == 0) writes.push_back(Write(c, pick(2) == 0, RandomValue(&rng)));
        }
        command = UpsertCommand(key, writes, i);
      } else if (kind < 8) {
        std::vector<int> columns;
        for (int c = 0; c < kColumns; ++c) {
          if (pick(3) == 0) columns.push_back(c);
        }
        command = ClearCommand(key, columns, i);
      } else {
        command = DeleteCommand(key, i);
      }
      sequential.Apply(command);
      AppendReduced(&reduced[key], std::move(command));

      RowTable applied = start;
      covered.clear();
      for (const std::vector<RowCommand>& commands : reduced) {
        ASSERT_LE(commands.size(), 2u);
        if (commands.size() == 2) ++two_command_lists;
        applied.ApplyAll(commands);
        for (const RowCommand& c : commands) {
          for (int64_t offset : Offsets(c.covers)) covered.push_back(offset);
        }
      }
      ASSERT_EQ(sequential, applied) << "iteration " << iteration << ", command " << i;
      std::sort(covered.begin(), covered.end());
      ASSERT_EQ(covered.size(), static_cast<size_t>(i + 1));
      for (int j = 0; j <= i; ++j) ASSERT_EQ(covered[j], j);
    }
  }
  EXPECT_GT(two_command_lists, 1000);  // The test reached the lists that cannot be one command.
}

// The same property from events: each event's database-side command (BuildDbUpsertCommand),
// reduced per key, must give the reference model's table (written from DESIGN.md alone), so
// a bug in the builder or in the algebra fails here.
TEST(CommandAlgebraTest, ReducedEventCommandsGiveTheReferenceTable) {
  TableSchema schema;
  schema.table = "t";
  schema.key_columns = {"id"};
  schema.columns = {"l", "r", "li", "shared"};
  SourceMapping left;
  left.name = left.topic = "left";
  left.key_fields = {"id"};
  left.fields = {FieldMapping{"l", 0, true, false, v1::VALUE_TYPE_AUTO},
                 FieldMapping{"li", 2, false, false, v1::VALUE_TYPE_AUTO},
                 FieldMapping{"s", 3, true, false, v1::VALUE_TYPE_AUTO}};
  SourceMapping right = left;
  right.name = right.topic = "right";
  // "shared" is the right side's only on insert: the left side owns it.
  right.fields = {FieldMapping{"r", 1, true, false, v1::VALUE_TYPE_AUTO},
                  FieldMapping{"s", 3, false, false, v1::VALUE_TYPE_AUTO}};
  std::mt19937 rng(7);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const v1::DeletePolicy policies[] = {v1::IGNORE, v1::CLEAR_COLUMNS, v1::DELETE_ROW};
  for (int iteration = 0; iteration < 3000; ++iteration) {
    left.on_delete = policies[pick(3)];
    right.on_delete = policies[pick(3)];
    schema.sources = {left, right};
    std::vector<ChangeEvent> events;
    const int keys = 1 + pick(3);
    for (int i = 0, n = pick(16); i < n; ++i) {
      ChangeEvent event;
      event.source = pick(2);
      event.key = {Value(int64_t{pick(keys)})};
      event.op = pick(4) == 0 ? ChangeOp::kDelete : ChangeOp::kUpsert;
      if (event.op == ChangeOp::kUpsert) {
        for (size_t f = 0; f < schema.sources[event.source].fields.size(); ++f) {
          event.values.push_back(RandomValue(&rng));
        }
      }
      event.position.offset = i;
      events.push_back(std::move(event));
    }
    std::map<int64_t, std::vector<RowCommand>> by_key;
    for (const ChangeEvent& event : events) {
      std::optional<RowCommand> command = BuildDbUpsertCommand(schema, event);
      if (command.has_value()) {
        AppendReduced(&by_key[std::get<int64_t>(event.key[0])], *std::move(command));
      }
    }
    RowTable applied;
    for (const auto& [key, commands] : by_key) applied.ApplyAll(commands);
    const RowTable reference = testing::ReferenceTable(schema, events);
    ASSERT_EQ(applied, reference) << "iteration " << iteration << "\napplied:\n"
                                  << applied.DebugString(schema) << "reference:\n"
                                  << reference.DebugString(schema);
  }
}

// With the stale-write guard: commands of two sources with random (often older) versions. The
// reduced commands must act as the originals under the guard's semantics (RowTable with the
// schema's column_guard), and every stale command folded away must keep its covers.
TEST(CommandAlgebraTest, GuardedReducedSequencesApplyAsTheOriginals) {
  TableSchema schema;
  schema.columns = {"a0", "a1", "b0", "b1"};
  schema.sources.resize(2);
  schema.sources[0].version_column = "v0";
  schema.sources[1].version_column = "v1";
  schema.stale_write_guard = true;
  schema.column_guard = {0, 0, 1, 1};
  std::mt19937 rng(14);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto version = [](int pos, bool deleted) {
    ChangeEvent event;
    event.op = deleted ? ChangeOp::kDelete : ChangeOp::kUpsert;
    event.binlog = BinlogCoordinates{1, static_cast<uint64_t>(pos), 0, false};
    return RowVersionOf(event);
  };
  size_t folded = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    RowTable start(schema);
    if (pick(2) == 0) {
      RowCommand row = UpsertCommand(0, {Write(0, true, Value("s0")), Write(2, true, Value("s2"))},
                                     -1);
      row.versions = {SourceVersion{0, version(pick(20), false)},
                      SourceVersion{1, version(pick(20), false)}};
      start.Apply(row);
    }
    std::vector<RowCommand> commands;
    const int length = 1 + pick(8);
    for (int i = 0; i < length; ++i) {
      const int source = pick(2);
      const int first = source * 2;
      RowCommand command;
      const int kind = pick(10);
      // As SourceCommands builds them: an upsert writes all the source's columns (the second
      // insert-only), a clear its updatable one.
      if (kind < 5) {
        command = UpsertCommand(
            0, {Write(first, true, RandomValue(&rng)), Write(first + 1, false, RandomValue(&rng))},
            i);
      } else if (kind < 7) {
        command = ClearCommand(0, {first}, i);
      } else {
        command = kind < 9 ? DeleteCommand(0, i) : ClearCommand(0, {first}, i);
        if (kind == 9) command.kind = K::kRelease;
      }
      command.versions = {SourceVersion{source, version(pick(20), command.kind != K::kUpsert)}};
      commands.push_back(std::move(command));
    }
    RowTable sequential = start;
    sequential.ApplyAll(commands);
    std::vector<EventPosition> orphans;
    std::vector<RowCommand> reduced = ReduceKeyCommands(commands, &orphans, &folded);
    RowTable applied = start;
    applied.ApplyAll(reduced);
    auto describe = [](const std::vector<RowCommand>& list) {
      std::string out;
      for (const RowCommand& c : list) {
        out += std::string(RowCommandKindName(c.kind)) + " ";
        for (const SourceVersion& v : c.versions) {
          out += std::to_string(v.source) + "@" + v.version.substr(10, 12) + v.version.back();
        }
        out += " [";
        for (const ColumnWrite& w : c.writes) {
          out += std::to_string(w.column) + (w.update_on_conflict ? "u" : "i") + "=" +
                 ValueDebugString(w.value) + " ";
        }
        out += "]\n";
      }
      return out;
    };
    ASSERT_EQ(sequential, applied) << "iteration " << iteration << "\n"
                                   << describe(commands) << "reduced:\n"
                                   << describe(reduced)
                                   << sequential.DebugString(schema) << "vs\n"
                                   << applied.DebugString(schema);
    std::vector<int64_t> covered = Offsets(orphans);
    for (const RowCommand& c : reduced) {
      for (int64_t offset : Offsets(c.covers)) covered.push_back(offset);
    }
    std::sort(covered.begin(), covered.end());
    ASSERT_EQ(covered.size(), static_cast<size_t>(length));
  }
  EXPECT_GT(folded, 500u);  // The test reached the stale rule.
}

TEST(CommandAlgebraTest, AGuardedDeleteAbsorbsNothing) {
  RowCommand upsert = UpsertCommand(1, {Write(0, true, Value("a"))}, 10);
  upsert.versions = {SourceVersion{1, "100000000000000000010000000000"}};
  RowCommand remove = DeleteCommand(1, 11);
  remove.versions = {SourceVersion{0, "100000000000000000011000000001"}};
  std::vector<RowCommand> out = Reduce({upsert, remove});
  ASSERT_EQ(out.size(), 2u) << "the delete may be refused, so the upsert must stay";
  EXPECT_EQ(out[0].kind, K::kUpsert);
  EXPECT_EQ(out[1].kind, K::kDelete);
}

}  // namespace
}  // namespace cdcjoin
