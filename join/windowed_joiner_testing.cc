#include "join/windowed_joiner_testing.h"

#include <deque>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cdcjoin {
namespace testing {
namespace {

using Pos = std::pair<SourcePartition, int64_t>;

Pos P(const EventPosition& p) { return {p.partition, p.offset}; }

}  // namespace

TableSchema TwoSourceSchema(v1::DeletePolicy left_delete, v1::DeletePolicy right_delete,
                            bool insert_only) {
  TableSchema schema;
  schema.table = "t";
  schema.key_columns = {"id"};
  schema.columns = {"l", "r"};
  if (insert_only) schema.columns = {"l", "r", "li", "ri"};
  SourceMapping left;
  left.name = "left";
  left.topic = "left";
  left.key_fields = {"id"};
  left.on_delete = left_delete;
  left.fields.push_back(FieldMapping{"l", 0, true, false, v1::VALUE_TYPE_AUTO});
  SourceMapping right = left;
  right.name = right.topic = "right";
  right.on_delete = right_delete;
  right.fields = {FieldMapping{"r", 1, true, false, v1::VALUE_TYPE_AUTO}};
  if (insert_only) {
    left.fields.push_back(FieldMapping{"li", 2, false, false, v1::VALUE_TYPE_AUTO});
    right.fields.push_back(FieldMapping{"ri", 3, false, false, v1::VALUE_TYPE_AUTO});
  }
  schema.sources = {left, right};
  return schema;
}

std::vector<ChangeEvent> RandomEvents(uint32_t seed, const RandomEventsOptions& options) {
  std::mt19937 rng(seed);
  std::map<SourcePartition, int64_t> next_offset;
  std::vector<ChangeEvent> events;
  int64_t clock = 1000;
  for (int i = 0; i < options.count; ++i) {
    clock += std::uniform_int_distribution<int64_t>(0, options.max_step_ms)(rng);
    ChangeEvent event;
    event.source = std::uniform_int_distribution<int>(0, 1)(rng);
    const int64_t k = std::uniform_int_distribution<int>(0, options.keys - 1)(rng);
    event.key = {Value(k)};
    event.event_time_ms = clock - std::uniform_int_distribution<int64_t>(0, options.max_lag_ms)(rng);
    if (std::uniform_real_distribution<double>(0, 1)(rng) < options.delete_fraction) {
      event.op = ChangeOp::kDelete;
    } else {
      event.op = ChangeOp::kUpsert;
      const int v = std::uniform_int_distribution<int>(0, 99)(rng);
      // Mix value types; now and then a NULL.
      if (v < 5) {
        event.values.push_back(std::monostate{});
      } else if (v % 2 == 0) {
        event.values.push_back(absl::StrCat(event.source == 0 ? "L" : "R", i));
      } else {
        event.values.push_back(int64_t{i});
      }
      if (options.insert_only) event.values.push_back(absl::StrCat("first", i));
    }
    event.position.partition =
        SourcePartition{event.source, static_cast<int32_t>(k % options.partitions)};
    event.position.offset = next_offset[event.position.partition]++;
    events.push_back(std::move(event));
  }
  return events;
}

std::string CommandString(const TableSchema& schema, const RowCommand& command) {
  std::string key = absl::StrJoin(command.key, ",", [](std::string* out, const Value& v) {
    out->append(ValueDebugString(v));
  });
  switch (command.kind) {
    case RowCommandKind::kDelete:
      return absl::StrCat("D ", key);
    case RowCommandKind::kClear:
    case RowCommandKind::kRelease:
      return absl::StrCat(command.kind == RowCommandKind::kClear ? "C " : "R ", key, " {",
                          absl::StrJoin(command.writes, ",",
                                        [&](std::string* out, const ColumnWrite& w) {
                                          out->append(schema.columns[w.column]);
                                        }),
                          "}");
    case RowCommandKind::kUpsert:
      return absl::StrCat("U ", key, " {",
                          absl::StrJoin(command.writes, ",",
                                        [&](std::string* out, const ColumnWrite& w) {
                                          absl::StrAppend(out, schema.columns[w.column], "=",
                                                          ValueDebugString(w.value));
                                        }),
                          "}");
  }
  return "?";
}

absl::Status RunCrashScenario(const TableSchema& schema, const WindowedJoinerOptions& options,
                              const std::vector<ChangeEvent>& events, uint32_t seed,
                              int crash_every, const std::function<WindowStore*()>& reopen_store,
                              const std::function<void(WindowStore*, bool)>& fail_commits,
                              CrashScenarioResult* result) {
  std::mt19937 rng(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  std::map<Pos, std::vector<EventPosition>> window_of;  // position -> covers of its window
  auto note_window = [&](const RowCommand& c) {
    if (c.covers.empty()) return;
    const auto first = window_of.find(P(c.covers.front()));
    if (first == window_of.end()) ++result->windows_emitted;
    for (const EventPosition& p : c.covers) {
      auto [it, inserted] = window_of.try_emplace(P(p), c.covers);
      if (!inserted && (it->second.size() != c.covers.size() ||
                        P(it->second.front()) != P(c.covers.front()))) {
        result->doubly_covered.push_back(p);
      }
    }
  };

  int64_t now_ms = 0;
  bool finished = false;
  while (!finished) {
    WindowStore* store = reopen_store();
    absl::StatusOr<std::unique_ptr<WindowedJoiner>> opened =
        WindowedJoiner::Open(schema, options, store);
    if (!opened.ok()) return opened.status();
    std::unique_ptr<WindowedJoiner> joiner = *std::move(opened);

    const std::vector<RowCommand> pending = joiner->PendingCommands();
    std::deque<RowCommand> sent(pending.begin(), pending.end());
    for (const RowCommand& c : sent) note_window(c);
    std::deque<RowCommand> applied_unacked;
    auto sink_step = [&](bool everything) -> absl::Status {
      size_t apply = everything ? sent.size()
                                : std::uniform_int_distribution<size_t>(0, sent.size())(rng);
      for (size_t i = 0; i < apply; ++i) {
        result->table.Apply(sent.front());
        ++result->commands_applied;
        applied_unacked.push_back(std::move(sent.front()));
        sent.pop_front();
      }
      size_t ack = everything ? applied_unacked.size()
                              : std::uniform_int_distribution<size_t>(0, applied_unacked.size())(rng);
      for (size_t i = 0; i < ack; ++i) {
        absl::Status status = joiner->Acknowledge(applied_unacked.front().covers);
        if (!status.ok()) return status;
        applied_unacked.pop_front();
      }
      return absl::OkStatus();
    };

    // The consumer seeks to the stored offsets; it also re-delivers up to two already absorbed
    // events per restart, which the joiner must skip.
    const std::map<SourcePartition, int64_t> seek = joiner->StoredOffsets();
    std::vector<ChangeEvent> log;
    int redelivered = 0;
    for (const ChangeEvent& e : events) {
      auto it = seek.find(e.position.partition);
      const bool absorbed = it != seek.end() && e.position.offset < it->second;
      if (!absorbed) {
        log.push_back(e);
      } else if (it->second - e.position.offset <= 1 && redelivered < 2 && result->crashes > 0) {
        log.push_back(e);
        ++redelivered;
      }
    }

    size_t next = 0;
    int batches = 0;
    bool crashed = false;
    while (next < log.size()) {
      const size_t n = std::min(log.size() - next,
                                std::uniform_int_distribution<size_t>(1, 40)(rng));
      std::vector<RowCommand> out;
      now_ms += std::uniform_int_distribution<int64_t>(0, 30)(rng);
      const bool fail = fail_commits && chance(0.02);
      if (fail) fail_commits(store, true);
      absl::Status status =
          joiner->Process(absl::MakeConstSpan(log.data() + next, n), now_ms, &out);
      if (fail) {
        fail_commits(store, false);
        if (status.ok()) return absl::InternalError("Process succeeded with a failing store");
        if (!out.empty()) return absl::InternalError("a failed commit emitted commands");
        crashed = true;
        break;
      }
      if (!status.ok()) return status;
      next += n;
      for (RowCommand& c : out) {
        note_window(c);
        sent.push_back(std::move(c));
      }
      if (chance(0.3)) {
        out.clear();
        status = joiner->Advance(now_ms, &out);
        if (!status.ok()) return status;
        for (RowCommand& c : out) {
          note_window(c);
          sent.push_back(std::move(c));
        }
      }
      status = sink_step(false);
      if (!status.ok()) return status;
      if (crash_every > 0 && ++batches % crash_every == 0 && next < log.size()) {
        crashed = true;  // Whatever the sink had not applied or acknowledged is lost.
        break;
      }
    }
    if (crashed) {
      ++result->crashes;
      continue;  // The joiner is destroyed without Drain; the store stays.
    }
    std::vector<RowCommand> out;
    absl::Status status = joiner->Drain(&out);
    if (!status.ok()) return status;
    for (RowCommand& c : out) {
      note_window(c);
      sent.push_back(std::move(c));
    }
    status = sink_step(true);
    if (!status.ok()) return status;
    result->final_committable = joiner->CommittableOffsets();
    finished = true;
  }
  for (const ChangeEvent& e : events) {
    if (window_of.find(P(e.position)) == window_of.end()) result->uncovered.push_back(e.position);
  }
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace cdcjoin
