#include "join/windowed_joiner.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace cdcjoin {
namespace {

// ---- Store layout ---------------------------------------------------------------------------
// "k" + EncodeKey(key)      -> the key's open windows (KeyEntry)
// "e" + big-endian seq      -> an emitted, not yet acknowledged window (Emitting)
// "t" + big-endian partition -> that partition's stream time
constexpr char kKeyPrefix = 'k';
constexpr char kEmittingPrefix = 'e';
constexpr char kStreamTimePrefix = 't';

constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();

std::string BigEndianKey(char prefix, uint64_t n) {
  std::string out(9, '\0');
  out[0] = prefix;
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((n >> (56 - 8 * i)) & 0xff);
  return out;
}

uint64_t FromBigEndian(absl::string_view bytes) {
  uint64_t n = 0;
  for (char c : bytes) n = (n << 8) | static_cast<unsigned char>(c);
  return n;
}

// ---- Compact binary encoding (varints, zigzag) ------------------------------------------------
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Signed(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Byte(uint8_t b) { out_->push_back(static_cast<char>(b)); }
  void Bytes(absl::string_view s) {
    Varint(s.size());
    out_->append(s.data(), s.size());
  }
  void Val(const Value& value) {
    switch (value.index()) {
      case 0:
        Byte(0);
        break;
      case 1:
        Byte(1);
        Signed(std::get<int64_t>(value));
        break;
      case 2: {
        Byte(2);
        const double d = std::get<double>(value);
        char buf[sizeof d];
        std::memcpy(buf, &d, sizeof d);
        out_->append(buf, sizeof d);
        break;
      }
      default:
        Byte(3);
        Bytes(std::get<std::string>(value));
    }
  }

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return Fail();
      const uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail();
  }
  int64_t Signed() {
    const uint64_t v = Varint();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  uint8_t Byte() {
    if (pos_ >= in_.size()) return static_cast<uint8_t>(Fail());
    return static_cast<uint8_t>(in_[pos_++]);
  }
  std::string Bytes() {
    const uint64_t n = Varint();
    if (!ok_ || in_.size() - pos_ < n) {
      Fail();
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  Value Val() {
    switch (Byte()) {
      case 0:
        return std::monostate{};
      case 1:
        return Signed();
      case 2: {
        double d = 0;
        if (in_.size() - pos_ < sizeof d) {
          Fail();
          return std::monostate{};
        }
        std::memcpy(&d, in_.data() + pos_, sizeof d);
        pos_ += sizeof d;
        return d;
      }
      case 3:
        return Bytes();
      default:
        Fail();
        return std::monostate{};
    }
  }
  // Bounds a count read from the input, so corrupt data cannot make us allocate wildly.
  size_t Count() {
    const uint64_t n = Varint();
    if (n > in_.size()) return static_cast<size_t>(Fail());
    return static_cast<size_t>(n);
  }

 private:
  uint64_t Fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  absl::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// ---- Commands and their reduction -------------------------------------------------------------
struct Cmd {
  RowCommandKind kind = RowCommandKind::kUpsert;
  std::vector<ColumnWrite> writes;  // Sorted by column. kClear: values unused (NULL).
};

// Returns the write for `column` in sorted `writes`, or nullptr.
ColumnWrite* FindWrite(std::vector<ColumnWrite>* writes, int column) {
  auto it = std::lower_bound(writes->begin(), writes->end(), column,
                             [](const ColumnWrite& w, int c) { return w.column < c; });
  return it != writes->end() && it->column == column ? &*it : nullptr;
}

// Inserts or replaces `write` in sorted `writes`.
void SetWrite(std::vector<ColumnWrite>* writes, ColumnWrite write) {
  auto it = std::lower_bound(writes->begin(), writes->end(), write.column,
                             [](const ColumnWrite& w, int c) { return w.column < c; });
  if (it != writes->end() && it->column == write.column) {
    *it = std::move(write);
  } else {
    writes->insert(it, std::move(write));
  }
}

// Appends `next` to `list`, merging it with the last command when the pair is equivalent to one
// command on every row state (absent or present). Each rule is exact, so `list` always has the
// effect of applying every appended command in order. It never grows beyond two commands:
// [kDelete, kUpsert] or [kClear, kUpsert] at most.
void AppendReduced(std::vector<Cmd>* list, Cmd next) {
  if (next.kind == RowCommandKind::kDelete) {  // X;D = D
    list->clear();
    list->push_back(std::move(next));
    return;
  }
  if (list->empty()) {
    list->push_back(std::move(next));
    return;
  }
  Cmd& last = list->back();
  if (next.kind == RowCommandKind::kClear) {
    switch (last.kind) {
      case RowCommandKind::kDelete:  // D;C = D (nothing to clear)
        return;
      case RowCommandKind::kClear:  // C1;C2 = C(1 u 2)
        for (ColumnWrite& w : next.writes) SetWrite(&last.writes, std::move(w));
        return;
      case RowCommandKind::kUpsert:  // U;C = U with NULLs: the row exists after U
        for (const ColumnWrite& w : next.writes) {
          SetWrite(&last.writes, ColumnWrite{w.column, true, std::monostate{}});
        }
        return;
    }
  }
  // next is an upsert.
  switch (last.kind) {
    case RowCommandKind::kDelete:  // D;U: the row is inserted fresh; no single command says that
      list->push_back(std::move(next));
      return;
    case RowCommandKind::kUpsert:  // U1;U2: U2's updatable writes win
      for (ColumnWrite& w : next.writes) {
        // The row exists after U1 whatever it was before, so U2's insert-only writes never
        // take effect.
        if (w.update_on_conflict) SetWrite(&last.writes, std::move(w));
      }
      return;
    case RowCommandKind::kClear: {
      // C;U = U plus NULLs for C's other columns, unless an insert-only column of U is also
      // cleared: then "absent: value, present: NULL" needs both commands.
      for (const ColumnWrite& w : next.writes) {
        if (!w.update_on_conflict && FindWrite(&last.writes, w.column) != nullptr) {
          list->push_back(std::move(next));
          return;
        }
      }
      std::vector<ColumnWrite> cleared = std::move(last.writes);
      last = std::move(next);
      for (const ColumnWrite& c : cleared) {
        if (FindWrite(&last.writes, c.column) == nullptr) {
          SetWrite(&last.writes, ColumnWrite{c.column, true, std::monostate{}});
        }
      }
      return;
    }
  }
}

void WriteCmd(Writer* w, const Cmd& cmd) {
  w->Byte(static_cast<uint8_t>(cmd.kind));
  w->Varint(cmd.writes.size());
  for (const ColumnWrite& cw : cmd.writes) {
    w->Varint(static_cast<uint64_t>(cw.column));
    w->Byte(cw.update_on_conflict ? 1 : 0);
    if (cmd.kind == RowCommandKind::kUpsert) w->Val(cw.value);
  }
}

Cmd ReadCmd(Reader* r) {
  Cmd cmd;
  const uint8_t kind = r->Byte();
  if (kind > static_cast<uint8_t>(RowCommandKind::kDelete)) {
    r->Count();  // Poison: any kind beyond the enum is corrupt.
    return cmd;
  }
  cmd.kind = static_cast<RowCommandKind>(kind);
  const size_t n = r->Count();
  cmd.writes.reserve(n);
  for (size_t i = 0; i < n && r->ok(); ++i) {
    ColumnWrite cw;
    cw.column = static_cast<int>(r->Varint());
    cw.update_on_conflict = r->Byte() != 0;
    if (cmd.kind == RowCommandKind::kUpsert) cw.value = r->Val();
    cmd.writes.push_back(std::move(cw));
  }
  return cmd;
}

void WriteCovers(Writer* w, const std::vector<EventPosition>& covers) {
  w->Varint(covers.size());
  int64_t previous = 0;
  for (const EventPosition& p : covers) {
    w->Varint(static_cast<uint64_t>(p.partition.source));
    w->Signed(p.partition.partition);
    w->Signed(p.offset - previous);  // Offsets of one window are close: small deltas.
    previous = p.offset;
  }
}

std::vector<EventPosition> ReadCovers(Reader* r) {
  std::vector<EventPosition> covers(r->Count());
  int64_t previous = 0;
  for (EventPosition& p : covers) {
    p.partition.source = static_cast<int>(r->Varint());
    p.partition.partition = static_cast<int32_t>(r->Signed());
    p.offset = previous + r->Signed();
    previous = p.offset;
  }
  return covers;
}

// ---- State ------------------------------------------------------------------------------------
struct Window {
  int64_t min_ms = 0;
  int64_t max_ms = 0;
  uint8_t sides = 0;  // Bit s: an event of sources[s] is in the window.
  std::vector<Cmd> cmds;
  std::vector<EventPosition> covers;
};

struct KeyEntry {
  int32_t partition = 0;           // Of the event that created the entry: its stream time rules.
  std::vector<Window> windows;     // Oldest first; only the newest takes events.
  int64_t indexed_close = kNoTime; // The close time under which the entry sits in the index.
  bool persisted = false;          // A "k" record exists in the store.
  bool dirty = false;
};

struct Emitting {
  std::string key;  // EncodeKey bytes.
  std::vector<Cmd> cmds;
  std::vector<EventPosition> covers;
};

struct PartitionState {
  int64_t stream_time = kNoTime;
  bool stream_time_dirty = false;
  int64_t last_event_processing_ms = kNoTime;
  // (close time of the entry's oldest window, key): the keys of this partition, soonest first.
  absl::btree_set<std::pair<int64_t, std::string>> closes;
};

std::string SerializeEntry(const KeyEntry& entry) {
  std::string out;
  Writer w(&out);
  w.Signed(entry.partition);
  w.Varint(entry.windows.size());
  for (const Window& window : entry.windows) {
    w.Signed(window.min_ms);
    w.Varint(static_cast<uint64_t>(window.max_ms - window.min_ms));
    w.Byte(window.sides);
    w.Varint(window.cmds.size());
    for (const Cmd& cmd : window.cmds) WriteCmd(&w, cmd);
    WriteCovers(&w, window.covers);
  }
  return out;
}

bool ParseEntry(absl::string_view bytes, KeyEntry* entry) {
  Reader r(bytes);
  entry->partition = static_cast<int32_t>(r.Signed());
  entry->windows.resize(r.Count());
  for (Window& window : entry->windows) {
    window.min_ms = r.Signed();
    window.max_ms = window.min_ms + static_cast<int64_t>(r.Varint());
    window.sides = r.Byte();
    window.cmds.resize(r.Count());
    for (Cmd& cmd : window.cmds) cmd = ReadCmd(&r);
    window.covers = ReadCovers(&r);
  }
  return r.ok() && r.done() && !entry->windows.empty();
}

std::string SerializeEmitting(const Emitting& e) {
  std::string out;
  Writer w(&out);
  w.Bytes(e.key);
  w.Varint(e.cmds.size());
  for (const Cmd& cmd : e.cmds) WriteCmd(&w, cmd);
  WriteCovers(&w, e.covers);
  return out;
}

bool ParseEmitting(absl::string_view bytes, Emitting* e) {
  Reader r(bytes);
  e->key = r.Bytes();
  e->cmds.resize(r.Count());
  for (Cmd& cmd : e->cmds) cmd = ReadCmd(&r);
  e->covers = ReadCovers(&r);
  return r.ok() && r.done() && !e->cmds.empty();
}

// Per source, what its events write: upsert columns (sorted, one per column) and clears.
struct SourcePlan {
  struct Field {
    int column;
    bool update_on_conflict;
    size_t value_index;
  };
  std::vector<Field> fields;
  std::vector<ColumnWrite> clear_writes;
  v1::DeletePolicy on_delete = v1::IGNORE;
  size_t value_count = 0;
};

struct PositionHash {
  size_t operator()(const std::pair<SourcePartition, int64_t>& p) const {
    return absl::Hash<std::pair<SourcePartition, int64_t>>()(p);
  }
};

class WindowedJoinerImpl : public WindowedJoiner {
 public:
  WindowedJoinerImpl(const TableSchema& schema, const WindowedJoinerOptions& options,
                     WindowStore* store)
      : options_(options), store_(store) {
    for (const SourceMapping& source : schema.sources) {
      SourcePlan plan;
      plan.on_delete = source.on_delete;
      plan.value_count = source.fields.size();
      for (size_t i = 0; i < source.fields.size(); ++i) {
        const FieldMapping& f = source.fields[i];
        auto it = std::find_if(plan.fields.begin(), plan.fields.end(),
                               [&](const SourcePlan::Field& x) { return x.column == f.column; });
        if (it != plan.fields.end()) {
          *it = SourcePlan::Field{f.column, f.update_on_conflict, i};  // The last mapping wins.
        } else {
          plan.fields.push_back(SourcePlan::Field{f.column, f.update_on_conflict, i});
        }
      }
      std::sort(plan.fields.begin(), plan.fields.end(),
                [](const SourcePlan::Field& a, const SourcePlan::Field& b) {
                  return a.column < b.column;
                });
      // As the database-side joiner (BuildDbUpsertCommand): an insert-only column was never the
      // source's to maintain, so a clear leaves it.
      for (const SourcePlan::Field& f : plan.fields) {
        if (f.update_on_conflict) {
          plan.clear_writes.push_back(ColumnWrite{f.column, true, std::monostate{}});
        }
      }
      plans_.push_back(std::move(plan));
    }
  }

  absl::Status Load() {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::map<SourcePartition, int64_t>> offsets = store_->StoredOffsets();
    if (!offsets.ok()) return offsets.status();
    next_offsets_ = *std::move(offsets);

    absl::Status status = store_->Scan(
        std::string(1, kStreamTimePrefix), [&](absl::string_view key, absl::string_view value) {
          Reader r(value);
          const int64_t t = r.Signed();
          if (key.size() != 9 || !r.ok()) return absl::DataLossError("bad stream time record");
          partitions_[static_cast<int32_t>(FromBigEndian(key.substr(1)))].stream_time = t;
          return absl::OkStatus();
        });
    if (!status.ok()) return status;

    status = store_->Scan(std::string(1, kKeyPrefix), [&](absl::string_view key,
                                                          absl::string_view value) {
      KeyEntry entry;
      if (!ParseEntry(value, &entry)) {
        return absl::DataLossError(absl::StrCat("undecodable window state of key record of ",
                                                key.size(), " bytes"));
      }
      entry.persisted = true;
      for (const Window& window : entry.windows) {
        for (const EventPosition& p : window.covers) held_[p.partition].insert(p.offset);
      }
      open_windows_ += static_cast<int64_t>(entry.windows.size());
      auto [it, inserted] = keys_.emplace(std::string(key.substr(1)), std::move(entry));
      Reindex(it->first, &it->second);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;

    return store_->Scan(std::string(1, kEmittingPrefix), [&](absl::string_view key,
                                                             absl::string_view value) {
      Emitting e;
      if (key.size() != 9 || !ParseEmitting(value, &e)) {
        return absl::DataLossError("undecodable emitted window record");
      }
      const uint64_t seq = FromBigEndian(key.substr(1));
      next_seq_ = std::max(next_seq_, seq + 1);
      for (const EventPosition& p : e.covers) {
        held_[p.partition].insert(p.offset);
        position_index_[{p.partition, p.offset}] = seq;
      }
      emitting_.emplace(seq, std::move(e));
      return absl::OkStatus();
    });
  }

  std::vector<RowCommand> PendingCommands() const override {
    absl::MutexLock lock(&mu_);
    std::vector<RowCommand> out;
    for (const auto& [seq, e] : emitting_) AppendCommands(e, &out);
    return out;
  }

  std::map<SourcePartition, int64_t> StoredOffsets() const override {
    absl::MutexLock lock(&mu_);
    return next_offsets_;
  }

  std::map<SourcePartition, int64_t> LowestHeldOffsets() const override {
    absl::MutexLock lock(&mu_);
    std::map<SourcePartition, int64_t> out;
    for (const auto& [partition, offsets] : held_) {
      if (!offsets.empty()) out[partition] = *offsets.begin();
    }
    return out;
  }

  std::map<SourcePartition, int64_t> CommittableOffsets() const override {
    absl::MutexLock lock(&mu_);
    std::map<SourcePartition, int64_t> out = next_offsets_;
    for (const auto& [partition, offsets] : held_) {
      if (!offsets.empty()) out[partition] = *offsets.begin();
    }
    return out;
  }

  absl::Status Process(absl::Span<const ChangeEvent> events, int64_t now_ms,
                       std::vector<RowCommand>* out) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    for (const ChangeEvent& event : events) {
      if (event.source < 0 || event.source >= static_cast<int>(plans_.size())) {
        return absl::InvalidArgumentError(absl::StrCat("event source ", event.source,
                                                       " is not 0 or 1"));
      }
      if (event.op == ChangeOp::kUpsert &&
          event.values.size() != plans_[event.source].value_count) {
        return absl::InvalidArgumentError(
            absl::StrCat("upsert of source ", event.source, " has ", event.values.size(),
                         " values, the mapping has ", plans_[event.source].value_count));
      }
    }
    for (const ChangeEvent& event : events) Absorb(event, now_ms);
    return CommitAndEmit(out);
  }

  absl::Status Advance(int64_t now_ms, std::vector<RowCommand>* out) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    for (auto& [partition, ps] : partitions_) {
      if (ps.last_event_processing_ms == kNoTime) {
        // Restarted, or the partition's events were all late: its quiet time starts now.
        ps.last_event_processing_ms = now_ms;
        continue;
      }
      if (now_ms - ps.last_event_processing_ms >= options_.idle_flush_ms) CloseAll(&ps);
    }
    return CommitAndEmit(out);
  }

  absl::Status Drain(std::vector<RowCommand>* out) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    for (auto& [partition, ps] : partitions_) CloseAll(&ps);
    return CommitAndEmit(out);
  }

  absl::Status DrainPartition(int32_t partition, std::vector<RowCommand>* out) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    auto it = partitions_.find(partition);
    if (it != partitions_.end()) CloseAll(&it->second);
    return CommitAndEmit(out);
  }

  absl::Status Acknowledge(absl::Span<const EventPosition> applied) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    std::vector<uint64_t> acked;
    for (const EventPosition& p : applied) {
      auto found = position_index_.find({p.partition, p.offset});
      if (found == position_index_.end()) continue;
      const uint64_t seq = found->second;
      auto e = emitting_.find(seq);
      if (e != emitting_.end()) {
        for (const EventPosition& c : e->second.covers) {
          position_index_.erase({c.partition, c.offset});
          ReleaseHeld(c);
        }
        emitting_.erase(e);
        ++stats_.windows_acknowledged;
        acked.push_back(seq);
      }
    }
    // Windows are emitted with consecutive sequence numbers and mostly acknowledged in runs:
    // one range tombstone per run instead of one per window.
    std::sort(acked.begin(), acked.end());
    for (size_t i = 0; i < acked.size();) {
      size_t j = i + 1;
      while (j < acked.size() && acked[j] == acked[j - 1] + 1) ++j;
      const uint64_t first = acked[i], last = acked[j - 1];
      if (last == first) {
        batch_.Delete(BigEndianKey(kEmittingPrefix, first));
      } else {  // Every sequence number in [first, last] was acknowledged just now.
        batch_.DeleteRange(BigEndianKey(kEmittingPrefix, first),
                           BigEndianKey(kEmittingPrefix, last + 1));
      }
      i = j;
    }
    return CommitAndEmit(nullptr);
  }

  Stats stats() const override {
    absl::MutexLock lock(&mu_);
    Stats s = stats_;
    s.state_keys = static_cast<int64_t>(keys_.size());
    s.open_windows = open_windows_;
    s.emitting_windows = static_cast<int64_t>(emitting_.size());
    return s;
  }

 private:
  void Absorb(const ChangeEvent& event, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const SourcePartition& sp = event.position.partition;
    if (event.position.offset >= 0) {
      auto next = next_offsets_.find(sp);
      if (next != next_offsets_.end() && event.position.offset < next->second) {
        ++stats_.duplicates_skipped;  // Already absorbed before a restart or a rebalance.
        return;
      }
      next_offsets_[sp] = event.position.offset + 1;
      batch_.SetNextOffset(sp, event.position.offset + 1);
    }
    PartitionState& ps = partitions_[sp.partition];
    const int64_t t = event.event_time_ms;
    if (ps.stream_time != kNoTime &&
        t + options_.window_ms + options_.grace_ms < ps.stream_time) {
      if (options_.join_type != v1::OUTER) {
        ++stats_.late_drops;
        return;
      }
      // Table merging: a dropped change would be missing from the target for good (the two
      // topics are consumed at their own pace, so a whole partition can look late). The event
      // still takes effect in its key's order; it just cannot wait for partners any more.
      ++stats_.late_applied;
    }
    ps.last_event_processing_ms = now_ms;
    ++stats_.events_processed;

    const std::string encoded = EncodeKey(event.key);
    auto [it, created] = keys_.try_emplace(encoded);
    KeyEntry& entry = it->second;
    if (created) entry.partition = sp.partition;
    Window* window = entry.windows.empty() ? nullptr : &entry.windows.back();
    if (window == nullptr || std::max(window->max_ms, t) - std::min(window->min_ms, t) >
                                 options_.window_ms) {
      entry.windows.emplace_back();
      window = &entry.windows.back();
      window->min_ms = window->max_ms = t;
      ++stats_.windows_opened;
      ++open_windows_;
    } else {
      window->min_ms = std::min(window->min_ms, t);
      window->max_ms = std::max(window->max_ms, t);
    }
    window->sides |= static_cast<uint8_t>(1u << event.source);
    if (event.position.offset >= 0) {
      window->covers.push_back(event.position);
      held_[sp].insert(event.position.offset);
    }
    const SourcePlan& plan = plans_[event.source];
    if (event.op == ChangeOp::kUpsert) {
      Cmd cmd;
      cmd.kind = RowCommandKind::kUpsert;
      cmd.writes.reserve(plan.fields.size());
      for (const SourcePlan::Field& f : plan.fields) {
        cmd.writes.push_back(ColumnWrite{f.column, f.update_on_conflict, event.values[f.value_index]});
      }
      AppendReduced(&window->cmds, std::move(cmd));
    } else if (plan.on_delete == v1::CLEAR_COLUMNS) {
      AppendReduced(&window->cmds, Cmd{RowCommandKind::kClear, plan.clear_writes});
    } else if (plan.on_delete == v1::DELETE_ROW) {
      AppendReduced(&window->cmds, Cmd{RowCommandKind::kDelete, {}});
    }  // IGNORE (and unspecified): the event is in the window, but writes nothing.
    MarkDirty(it->first, &entry);
    Reindex(it->first, &entry);

    if (t > ps.stream_time) {
      ps.stream_time = t;
      ps.stream_time_dirty = true;
      CloseDue(&ps);
    }
  }

  // Emits the oldest windows of this partition's keys while stream time is past their close.
  void CloseDue(PartitionState* ps) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!ps->closes.empty() && ps->closes.begin()->first < ps->stream_time) {
      const std::string key = ps->closes.begin()->second;
      CloseOldest(key);
    }
  }

  void CloseAll(PartitionState* ps) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!ps->closes.empty()) {
      const std::string key = ps->closes.begin()->second;
      CloseOldest(key);
    }
  }

  int64_t CloseTime(const Window& window) const {
    return window.min_ms + options_.window_ms + options_.grace_ms;
  }

  // Keeps the close index in step with the entry's oldest window (or removes the key).
  void Reindex(const std::string& key, KeyEntry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    PartitionState& ps = partitions_[entry->partition];
    const int64_t close = entry->windows.empty() ? kNoTime : CloseTime(entry->windows.front());
    if (close == entry->indexed_close) return;
    if (entry->indexed_close != kNoTime) ps.closes.erase({entry->indexed_close, key});
    if (close != kNoTime) ps.closes.insert({close, key});
    entry->indexed_close = close;
  }

  void MarkDirty(const std::string& key, KeyEntry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!entry->dirty) {
      entry->dirty = true;
      dirty_.push_back(key);
    }
  }

  void ReleaseHeld(const EventPosition& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = held_.find(p.partition);
    if (it != held_.end()) it->second.erase(p.offset);
  }

  // Closes `key`'s oldest window: emits it (kept as an emitting record until acknowledged) or
  // discards it per the join type.
  void CloseOldest(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = keys_.find(key);
    KeyEntry& entry = it->second;
    Window window = std::move(entry.windows.front());
    entry.windows.erase(entry.windows.begin());
    --open_windows_;

    const bool both = (window.sides & 3) == 3;
    if (both) ++stats_.joined_pairs;
    bool wanted = true;
    if (options_.join_type == v1::INNER) wanted = both;
    if (options_.join_type == v1::LEFT) wanted = (window.sides & 1) != 0;
    if (wanted && !window.cmds.empty()) {
      const uint64_t seq = next_seq_++;
      Emitting e;
      e.key = key;
      e.cmds = std::move(window.cmds);
      e.covers = std::move(window.covers);
      for (const EventPosition& p : e.covers) position_index_[{p.partition, p.offset}] = seq;
      batch_.Put(BigEndianKey(kEmittingPrefix, seq), SerializeEmitting(e));
      AppendCommands(e, &pending_out_);
      ++stats_.windows_emitted;
      emitting_.emplace(seq, std::move(e));
    } else {
      for (const EventPosition& p : window.covers) ReleaseHeld(p);
      ++stats_.windows_discarded;
    }

    Reindex(key, &entry);
    if (entry.windows.empty()) {
      if (entry.persisted) batch_.Delete(std::string(1, kKeyPrefix) + key);
      keys_.erase(it);  // A dirty_ entry for it finds nothing and is skipped.
    } else {
      MarkDirty(key, &entry);
    }
  }

  void AppendCommands(const Emitting& e, std::vector<RowCommand>* out) const {
    Key key;
    DecodeKey(e.key, &key);
    for (size_t i = 0; i < e.cmds.size(); ++i) {
      RowCommand command;
      command.kind = e.cmds[i].kind;
      command.key = key;
      if (command.kind != RowCommandKind::kDelete) command.writes = e.cmds[i].writes;
      if (i + 1 == e.cmds.size()) command.covers = e.covers;
      out->push_back(std::move(command));
    }
  }

  // Writes everything this call changed in one batch; only then hands the commands out.
  absl::Status CommitAndEmit(std::vector<RowCommand>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const std::string& key : dirty_) {
      auto it = keys_.find(key);
      if (it == keys_.end() || !it->second.dirty) continue;
      it->second.dirty = false;
      it->second.persisted = true;
      batch_.Put(std::string(1, kKeyPrefix) + key, SerializeEntry(it->second));
    }
    dirty_.clear();
    for (auto& [partition, ps] : partitions_) {
      if (!ps.stream_time_dirty) continue;
      ps.stream_time_dirty = false;
      std::string value;
      Writer(&value).Signed(ps.stream_time);
      batch_.Put(BigEndianKey(kStreamTimePrefix, static_cast<uint32_t>(partition)),
                 std::move(value));
    }
    if (!batch_.empty()) {
      absl::Status status = store_->Commit(batch_);
      batch_.Clear();
      if (!status.ok()) {
        broken_ = absl::FailedPreconditionError(
            absl::StrCat("window store commit failed, reopen the joiner: ", status.message()));
        pending_out_.clear();
        return status;
      }
    }
    if (out != nullptr) {
      stats_.commands_emitted += static_cast<int64_t>(pending_out_.size());
      for (RowCommand& c : pending_out_) out->push_back(std::move(c));
    }
    pending_out_.clear();
    return absl::OkStatus();
  }

  const WindowedJoinerOptions options_;
  WindowStore* const store_;
  std::vector<SourcePlan> plans_;

  mutable absl::Mutex mu_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, KeyEntry> keys_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, PartitionState> partitions_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Emitting> emitting_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<SourcePartition, int64_t>, uint64_t, PositionHash>
      position_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SourcePartition, absl::btree_set<int64_t>> held_ ABSL_GUARDED_BY(mu_);
  std::map<SourcePartition, int64_t> next_offsets_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t open_windows_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // Per call: keys whose state changed, the batch being built, the commands it will release.
  std::vector<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  WindowStoreBatch batch_ ABSL_GUARDED_BY(mu_);
  std::vector<RowCommand> pending_out_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

WindowedJoinerOptions WindowedJoinerOptions::FromConfig(const v1::WindowConfig& config) {
  WindowedJoinerOptions options;
  if (config.join_type() != v1::JOIN_TYPE_UNSPECIFIED) options.join_type = config.join_type();
  // proto3 cannot tell 0 from unset, so 0 means "default" as the config comments say.
  if (config.window_ms() != 0) options.window_ms = config.window_ms();
  if (config.grace_ms() != 0) options.grace_ms = config.grace_ms();
  if (config.idle_flush_ms() != 0) options.idle_flush_ms = config.idle_flush_ms();
  return options;
}

absl::StatusOr<std::unique_ptr<WindowedJoiner>> WindowedJoiner::Open(
    const TableSchema& schema, const WindowedJoinerOptions& options, WindowStore* store) {
  if (store == nullptr) return absl::InvalidArgumentError("window store is null");
  if (schema.sources.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("the windowed joiner needs exactly two sources, got ", schema.sources.size()));
  }
  if (options.window_ms < 0) return absl::InvalidArgumentError("window_ms must be >= 0");
  if (options.grace_ms < 0) return absl::InvalidArgumentError("grace_ms must be >= 0");
  if (options.idle_flush_ms <= 0) return absl::InvalidArgumentError("idle_flush_ms must be > 0");
  if (options.join_type != v1::INNER && options.join_type != v1::LEFT &&
      options.join_type != v1::OUTER) {
    return absl::InvalidArgumentError("join_type must be INNER, LEFT or OUTER");
  }
  auto joiner = std::make_unique<WindowedJoinerImpl>(schema, options, store);
  absl::Status status = joiner->Load();
  if (!status.ok()) return status;
  return std::unique_ptr<WindowedJoiner>(std::move(joiner));
}

}  // namespace cdcjoin
