// Property test of the windowed joiner's time arithmetic over the whole int64 range: event
// times are whatever a source wrote (Debezium's source.ts_ms, or a record timestamp), and
// window_ms + grace_ms may reach the configured bound. Nothing within window + grace of stream
// time may be dropped as late, and each key's changes keep their order, whatever the times.

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "join/in_memory_window_store.h"
#include "join/windowed_joiner.h"
#include "join/windowed_joiner_testing.h"

namespace cdcjoin {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;  // service/config's bound.

// Event times that stress the arithmetic: both ends of int64, zero, negatives, and the
// neighbourhood of each.
std::vector<int64_t> Anchors() {
  return {kMin, kMin + 1, kMin + kYearMs, -kYearMs, -1, 0, 1, 1624233600000, kYearMs,
          kMax - 2 * kYearMs, kMax - kYearMs, kMax - 1000, kMax - 1, kMax};
}

int64_t RandomTime(std::mt19937_64& rng) {
  const std::vector<int64_t> anchors = Anchors();
  const int64_t anchor = anchors[rng() % anchors.size()];
  // Within a few windows of the anchor, clamped to int64 (the model must not overflow either).
  const __int128 t = static_cast<__int128>(anchor) +
                     static_cast<__int128>(static_cast<int64_t>(rng() % 4001) - 2000);
  if (t > kMax) return kMax;
  if (t < kMin) return kMin;
  return static_cast<int64_t>(t);
}

struct Model {
  int64_t late = 0;
  // Per key: the sequence numbers of the left events that count (not late), in order.
  std::map<int64_t, std::vector<int64_t>> left_sequence;
};

// What the joiner must do, in exact (128-bit) arithmetic: per partition, stream time is the
// largest event time seen; an event is late when t + window + grace < stream time.
Model Expected(const std::vector<ChangeEvent>& events, int64_t window_ms, int64_t grace_ms) {
  Model model;
  std::map<int32_t, __int128> stream;
  for (const ChangeEvent& e : events) {
    const int32_t p = e.position.partition.partition;
    const __int128 t = e.event_time_ms;
    auto it = stream.find(p);
    if (it != stream.end() && t + window_ms + grace_ms < it->second) {
      ++model.late;
      continue;
    }
    if (it == stream.end() || t > it->second) stream[p] = t;
    if (e.source == 0) {
      int64_t seq = 0;
      EXPECT_TRUE(absl::SimpleAtoi(std::get<std::string>(e.values[0]), &seq));
      model.left_sequence[std::get<int64_t>(e.key[0])].push_back(seq);
    }
  }
  return model;
}

struct Params {
  v1::JoinType join_type;
  int64_t window_ms;
  int64_t grace_ms;
};

std::string Describe(const Params& p) {
  return absl::StrCat(v1::JoinType_Name(p.join_type), " window_ms=", p.window_ms,
                      " grace_ms=", p.grace_ms);
}

class EventTimeExtremesTest : public ::testing::TestWithParam<Params> {};

TEST_P(EventTimeExtremesTest, NothingInRangeIsLateAndOrderIsKept) {
  const Params params = GetParam();
  const TableSchema schema = testing::TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.join_type = params.join_type;
  options.window_ms = params.window_ms;
  options.grace_ms = params.grace_ms;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(absl::StrCat(Describe(params), " seed=", seed));
    std::mt19937_64 rng(seed);
    // Three ways to order times: random jumps between anchors, a walk that crosses both ends,
    // and sorted (nothing may be late at all).
    std::vector<ChangeEvent> events;
    std::map<SourcePartition, int64_t> offsets;
    const int shape = static_cast<int>(seed % 3);
    std::vector<int64_t> times;
    for (int i = 0; i < 300; ++i) times.push_back(RandomTime(rng));
    if (shape == 2) std::sort(times.begin(), times.end());
    for (int i = 0; i < 300; ++i) {
      ChangeEvent e;
      e.source = rng() % 4 == 0 ? 1 : 0;
      const int64_t key = static_cast<int64_t>(rng() % 7);
      e.key = {Value(key)};
      e.op = ChangeOp::kUpsert;
      e.values = {Value(absl::StrCat(i))};
      e.event_time_ms = times[static_cast<size_t>(i)];
      e.position.partition = SourcePartition{e.source, static_cast<int32_t>(key % 2)};
      e.position.offset = offsets[e.position.partition]++;
      events.push_back(std::move(e));
    }
    const Model model = Expected(events, params.window_ms, params.grace_ms);
    if (shape == 2) {
      ASSERT_EQ(model.late, 0);
    }

    InMemoryWindowStore store;
    absl::StatusOr<std::unique_ptr<WindowedJoiner>> joiner =
        WindowedJoiner::Open(schema, options, &store);
    ASSERT_TRUE(joiner.ok()) << joiner.status();
    std::vector<RowCommand> out;
    for (size_t begin = 0; begin < events.size(); begin += 37) {
      const size_t end = std::min(events.size(), begin + 37);
      std::vector<ChangeEvent> batch(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                     events.begin() + static_cast<std::ptrdiff_t>(end));
      ASSERT_TRUE((*joiner)->Process(batch, 0, &out).ok());
    }
    ASSERT_TRUE((*joiner)->Drain(&out).ok());
    EXPECT_EQ((*joiner)->stats().late_drops, model.late);

    // Per key, the left values written appear in consumption order; for LEFT (which writes
    // every window holding a left event) the last one written is the last left event of the
    // key that was not late.
    std::map<int64_t, std::vector<int64_t>> written;
    for (const RowCommand& c : out) {
      for (const ColumnWrite& w : c.writes) {
        if (w.column != 0) continue;
        int64_t seq = 0;
        ASSERT_TRUE(absl::SimpleAtoi(std::get<std::string>(w.value), &seq));
        written[std::get<int64_t>(c.key[0])].push_back(seq);
      }
    }
    for (const auto& [key, seqs] : written) {
      for (size_t i = 1; i < seqs.size(); ++i) {
        ASSERT_LT(seqs[i - 1], seqs[i]) << "key " << key << ": written out of order";
      }
    }
    if (params.join_type == v1::LEFT) {
      for (const auto& [key, seqs] : model.left_sequence) {
        ASSERT_EQ(written.count(key), 1u) << "key " << key << ": its left events were lost";
        EXPECT_EQ(written.at(key).back(), seqs.back()) << "key " << key;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    WindowsUpToTheBound, EventTimeExtremesTest,
    ::testing::Values(Params{v1::LEFT, 1, 0}, Params{v1::INNER, 1, 0},
                      Params{v1::LEFT, 5000, 1000}, Params{v1::INNER, 5000, 1000},
                      Params{v1::LEFT, kYearMs, kYearMs}, Params{v1::INNER, kYearMs, kYearMs},
                      Params{v1::LEFT, kYearMs, 0}, Params{v1::INNER, 1, kYearMs},
                      // Beyond the configured bound (the joiner itself takes any int64): no
                      // event is ever late.
                      Params{v1::LEFT, kMax, kMax}, Params{v1::INNER, kMax / 2, 0}));

}  // namespace
}  // namespace cdcjoin
