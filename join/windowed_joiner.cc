#include "join/windowed_joiner.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "join/command_algebra.h"
#include "join/db_upsert_joiner.h"
#include "join/row_version.h"

namespace cdcjoin {
namespace {

// ---- Store layout ---------------------------------------------------------------------------
// The state is a log: every call that changes it writes at most one record of each kind, so a
// poll batch costs one put however many keys it touches (one put per key was the bottleneck).
//
// "l" + big-endian seq + 'b' -> the events call `seq` absorbed, each with its window's id
//                               (an events record); events of windows that already died within
//                               the same call are left out. With the stale-write guard
//                               each event's command carries its version (kCmdHasVersion);
//                               a guarded Open refuses a log written without it.
// "l" + big-endian seq + 'm' -> window markers of call `seq`, in order: "emitted W" (W closed
//                               and was sent; pending until acknowledged), "dead W" (W was
//                               acknowledged or discarded while a record with its events lives).
// "t" + big-endian partition -> that partition's stream time.
//
// Windows live only in memory; Open rebuilds them by replaying the surviving records in seq
// order ('b' sorts before 'm': a call's events come before its markers). Each record is deleted
// in the commit that removes the last thing that needs it: an events record when no live (open
// or emitting) window has events in it; a markers record when none of its "emitted" windows is
// still emitting and no record holding events of its "dead" windows survives. So the log holds
// the records of live windows only, and the time Open takes is bounded by the live state.
constexpr char kLogPrefix = 'l';
constexpr char kEventsRecord = 'b';
constexpr char kMarkersRecord = 'm';
constexpr char kStreamTimePrefix = 't';
// The layout before the log (one record per key and per emitted window). Open refuses it.
constexpr char kOldKeyPrefix = 'k';
constexpr char kOldEmittingPrefix = 'e';

constexpr uint8_t kMarkerEmitted = 'E';
constexpr uint8_t kMarkerDead = 'D';

// Flags of an event entry in an events record.
constexpr uint8_t kEntrySourceMask = 0x0f;
// Window::sides has a bit per source.
constexpr size_t kMaxSources = 8;
constexpr uint8_t kEntryHasCmd = 0x10;
constexpr uint8_t kEntryHasOffset = 0x20;
constexpr uint8_t kEntryOtherKeyPartition = 0x40;

constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();

// Event times are whatever the source wrote (any int64), and window_ms + grace_ms may be large:
// time arithmetic saturates instead of wrapping, so an event near either end of int64 is never
// taken for late, and a huge window never makes everything look late.
// REQUIRES: b >= 0.
int64_t AddSaturating(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<int64_t>::max() : sum;
}

// hi - lo, exact for any int64 pair. REQUIRES: lo <= hi.
uint64_t Span(int64_t lo, int64_t hi) {
  return static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
}

// The difference of two event times modulo 2^64, for the log's delta encoding (the reader adds
// it back the same way): wraps by definition instead of overflowing.
int64_t WrappingDelta(int64_t to, int64_t from) {
  return static_cast<int64_t>(static_cast<uint64_t>(to) - static_cast<uint64_t>(from));
}
int64_t WrappingAdd(int64_t a, int64_t delta) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(delta));
}

std::string BigEndianKey(char prefix, uint64_t n) {
  std::string out(9, '\0');
  out[0] = prefix;
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((n >> (56 - 8 * i)) & 0xff);
  return out;
}

std::string LogKey(uint64_t seq, char kind) {
  std::string out = BigEndianKey(kLogPrefix, seq);
  out.push_back(kind);
  return out;
}

uint64_t FromBigEndian(absl::string_view bytes) {
  uint64_t n = 0;
  for (char c : bytes) n = (n << 8) | static_cast<unsigned char>(c);
  return n;
}

// ---- Records: varints, zigzag and values in the encoding of join/value.h ---------------------
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void Varint(uint64_t v) { AppendVarint(v, out_); }
  void Signed(int64_t v) { Varint(ZigZag(v)); }
  void Byte(uint8_t b) { out_->push_back(static_cast<char>(b)); }

 private:
  std::string* out_;
};

// The same encoding written through a cursor into a reused buffer: the events record of a call
// has a few varints per event, and std::string::push_back per byte was a visible cost.
// Every write first makes room (Room) for its upper bound.
class BufferWriter {
 public:
  explicit BufferWriter(std::string* buffer) : buffer_(buffer) {
    if (buffer_->size() < 4096) buffer_->resize(4096);
    data_ = &(*buffer_)[0];
  }
  void Room(size_t n) {
    if (buffer_->size() - pos_ >= n) return;
    buffer_->resize(std::max(buffer_->size() * 2, pos_ + n));
    data_ = &(*buffer_)[0];
  }
  void Varint(uint64_t v) {  // REQUIRES: Room(kMaxVarintSize).
    pos_ = EncodeVarintTo(v, data_ + pos_) - data_;
  }
  void Signed(int64_t v) { Varint(ZigZag(v)); }  // REQUIRES: Room(kMaxVarintSize).
  void Byte(uint8_t b) { data_[pos_++] = static_cast<char>(b); }  // REQUIRES: Room(1).
  void Bytes(absl::string_view s) {
    Room(kMaxVarintSize + s.size());
    Varint(s.size());
    std::memcpy(data_ + pos_, s.data(), s.size());
    pos_ += s.size();
  }
  void Val(const Value& value) {
    Room(MaxEncodedValueSize(value));
    pos_ = EncodeValueTo(value, data_ + pos_) - data_;
  }
  // What was written, as a new string.
  std::string Take() const { return std::string(data_, pos_); }

 private:
  std::string* buffer_;
  char* data_;
  size_t pos_ = 0;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }
  uint64_t Varint() {
    uint64_t v = 0;
    if (!ConsumeVarint(&in_, &v)) return Fail();
    return v;
  }
  int64_t Signed() { return UnZigZag(Varint()); }
  uint8_t Byte() {
    if (in_.empty()) return static_cast<uint8_t>(Fail());
    const uint8_t b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }
  std::string Bytes() {
    const uint64_t n = Varint();
    if (!ok_ || in_.size() < n) {
      Fail();
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  Value Val() {
    Value value;
    if (!ConsumeValue(&in_, &value)) Fail();
    return value;
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
    in_ = absl::string_view();
    return 0;
  }
  absl::string_view in_;
  bool ok_ = true;
};

// ---- Commands ---------------------------------------------------------------------------------
// A window's commands are RowCommands without key and covers (AppendCommands adds them), reduced
// by the command algebra as events arrive.
// The kind byte of an event's command has this bit set when the command's version (stale-write
// guard) follows its writes. A build before the guard reads such a byte, like kRelease, as a
// kind beyond its enum and refuses the record as corrupt: it never misreads one.
constexpr uint8_t kCmdHasVersion = 0x80;

// An event's command of `source`, as SerializeEntries wrote it. `guarded`: keep its version
// (without the guard a version stored by an earlier guarded run is dropped, since the table
// may not have the version columns).
RowCommand ReadCmd(Reader* r, int source, bool guarded) {
  RowCommand cmd;
  const uint8_t byte = r->Byte();
  const uint8_t kind = byte & static_cast<uint8_t>(~kCmdHasVersion);
  if (kind > static_cast<uint8_t>(RowCommandKind::kRelease)) {
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
  if (byte & kCmdHasVersion) {
    std::string version = r->Bytes();
    if (guarded) cmd.versions.push_back(SourceVersion{source, std::move(version)});
  }
  return cmd;
}

// ---- State ------------------------------------------------------------------------------------
struct Window {
  uint64_t id = 0;  // Unique among live windows and the records that mention them.
  int64_t min_ms = 0;
  int64_t max_ms = 0;
  uint8_t sides = 0;  // Bit s: an event of sources[s] is in the window.
  std::vector<RowCommand> cmds;  // Reduced (join/command_algebra.h); no key, no covers.
  absl::InlinedVector<EventPosition, 2> covers;
  // The events records holding this window's events (ascending seq; usually one or two).
  absl::InlinedVector<uint64_t, 2> records;
};

struct KeyEntry {
  const std::string* key = nullptr;  // Its key in the map (EncodeKey bytes; nodes are stable).
  int32_t partition = 0;           // Of the event that created the entry: its stream time rules.
  absl::InlinedVector<Window, 1> windows;  // Oldest first; only the newest takes events.
  int64_t indexed_close = kNoTime; // The close time under which the entry sits in the index,
  uint64_t indexed_window = 0;     // and the window it was indexed for.
};

// An entry of a partition's close index: the key whose oldest window closes at `close`. Ties go
// to the window opened first.
struct CloseRef {
  int64_t close;
  uint64_t window;
  KeyEntry* entry;
  bool operator<(const CloseRef& other) const {
    return close != other.close ? close < other.close : window < other.window;
  }
};

// A window closed and sent, kept until the sink acknowledges it: only what the acknowledgement
// needs (a slow sink keeps ~100K windows in flight, so every byte here counts).
struct Emitting {
  absl::InlinedVector<EventPosition, 2> covers;  // Window::covers.
  absl::InlinedVector<uint64_t, 2> records;      // Window::records.
  uint64_t emission = 0;    // Emission order (PendingCommands).
  uint64_t marker_seq = 0;  // The markers record holding its "emitted" marker.
};

// An emitting window Open restored: the commands PendingCommands sends again.
struct Restored {
  std::string key;  // EncodeKey bytes.
  std::vector<RowCommand> cmds;
};

struct PartitionState {
  int64_t stream_time = kNoTime;
  bool stream_time_dirty = false;
  int64_t last_event_processing_ms = kNoTime;
  // The keys of this partition by the close time of their oldest window, soonest first.
  absl::btree_set<CloseRef> closes;
};

// The offsets of one SourcePartition held in windows (open or emitting), with their window.
// Offsets are absorbed in increasing order, and mostly one after the other, so this is a sorted
// vector with a moving head: append; find by the distance from the head (binary search when
// offsets have gaps); release in place; drop released entries from the head, and compact when
// they pile up behind a long-held one.
class HeldOffsets {
 public:
  struct Entry {  // 16 bytes: a slow sink keeps hundreds of thousands of them.
    int64_t offset;
    uint64_t window : 63;  // Window ids count up from 0: 63 bits never run out.
    uint64_t released : 1;
  };

  void Add(int64_t offset, uint64_t window) {
    Entry entry;
    entry.offset = offset;
    entry.window = window;
    entry.released = 0;
    entries_.push_back(entry);
    ++live_;
  }
  // The held entry of `offset`, or nullptr.
  const Entry* Find(int64_t offset) const {
    const size_t i = Search(offset);
    return i < entries_.size() && entries_[i].offset == offset && !entries_[i].released
               ? &entries_[i]
               : nullptr;
  }
  void Release(int64_t offset) {
    const size_t i = Search(offset);
    if (i >= entries_.size() || entries_[i].offset != offset || entries_[i].released) return;
    entries_[i].released = true;
    --live_;
    while (head_ < entries_.size() && entries_[head_].released) ++head_;
    const size_t dead = entries_.size() - live_;
    if (head_ == entries_.size()) {
      entries_.clear();
      head_ = 0;
    } else if (dead > 1024 && dead > live_) {
      entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                    [](const Entry& e) { return e.released; }),
                     entries_.end());
      head_ = 0;
    }
  }
  bool empty() const { return live_ == 0; }
  int64_t lowest() const { return entries_[head_].offset; }  // REQUIRES: !empty().
  // Load: entries may arrive out of order; call Sort once after the last Add.
  void Sort() {
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry& a, const Entry& b) { return a.offset < b.offset; });
  }

 private:
  // The index of the first entry at or after `offset` (entries before head_ are released).
  size_t Search(int64_t offset) const {
    if (head_ >= entries_.size() || offset < entries_[head_].offset) return entries_.size();
    const uint64_t guess = static_cast<uint64_t>(offset - entries_[head_].offset) + head_;
    if (guess < entries_.size() && entries_[guess].offset == offset) return guess;
    return static_cast<size_t>(
        std::lower_bound(entries_.begin() + static_cast<std::ptrdiff_t>(head_), entries_.end(),
                         offset, [](const Entry& e, int64_t o) { return e.offset < o; }) -
        entries_.begin());
  }

  std::vector<Entry> entries_;
  size_t head_ = 0;  // Entries before it are released.
  size_t live_ = 0;
};

// Adds one event (already reduced to its command, if any) to `window`.
void AddToWindow(Window* window, int source, int64_t t, const EventPosition& position,
                 uint64_t seq) {
  window->min_ms = std::min(window->min_ms, t);
  window->max_ms = std::max(window->max_ms, t);
  window->sides |= static_cast<uint8_t>(1u << source);
  if (position.offset >= 0) window->covers.push_back(position);
  if (window->records.empty() || window->records.back() != seq) window->records.push_back(seq);
}

class WindowedJoinerImpl : public WindowedJoiner {
 public:
  WindowedJoinerImpl(const TableSchema& schema, const WindowedJoinerOptions& options,
                     WindowStore* store)
      : options_(options), store_(store), guarded_(schema.stale_write_guard) {
    for (size_t s = 0; s < schema.sources.size(); ++s) {
      plans_.emplace_back(schema.sources[s], static_cast<int>(s), guarded_);
    }
  }

  absl::Status Load() {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::map<SourcePartition, int64_t>> offsets = store_->StoredOffsets();
    if (!offsets.ok()) return offsets.status();
    for (const auto& [partition, next] : *offsets) {
      if (next >= 0) next_offsets_[partition] = next;  // -1: forgotten (Forget).
    }

    for (const char old : {kOldKeyPrefix, kOldEmittingPrefix}) {
      bool found = false;
      absl::Status status = store_->Scan(std::string(1, old), [&](absl::string_view,
                                                                  absl::string_view) {
        found = true;
        return absl::CancelledError();  // One is enough.
      });
      if (found) {
        return absl::FailedPreconditionError(
            "window state_dir holds the per-key layout of an older cdcjoind: drain it with that "
            "version (switch to DB_UPSERT or stop cleanly) or remove the directory");
      }
      if (!status.ok()) return status;
    }

    absl::Status status = store_->Scan(
        std::string(1, kStreamTimePrefix), [&](absl::string_view key, absl::string_view value) {
          Reader r(value);
          const int64_t t = r.Signed();
          if (key.size() != 9 || !r.ok()) return absl::DataLossError("bad stream time record");
          partitions_[static_cast<int32_t>(FromBigEndian(key.substr(1)))].stream_time = t;
          return absl::OkStatus();
        });
    if (!status.ok()) return status;

    // Replay the log into windows by id.
    struct Replayed {
      std::string key;
      int32_t key_partition = 0;
      Window window;
      bool emitting = false;
      uint64_t emission = 0;
      uint64_t marker_seq = 0;
    };
    absl::flat_hash_map<uint64_t, Replayed> windows;
    std::vector<uint64_t> event_seqs, marker_seqs;
    // (markers record, events records it waits for): a "dead" marker whose window had events.
    std::vector<std::pair<uint64_t, absl::InlinedVector<uint64_t, 2>>> dead_waits;
    uint64_t max_seq = 0, max_id = 0, emissions = 0;
    bool any = false;
    status = store_->Scan(std::string(1, kLogPrefix), [&](absl::string_view key,
                                                          absl::string_view value) {
      if (key.size() != 10) return absl::DataLossError("bad window log key");
      const uint64_t seq = FromBigEndian(key.substr(1, 8));
      max_seq = std::max(max_seq, seq);
      any = true;
      Reader r(value);
      if (key[9] == kEventsRecord) {
        event_seqs.push_back(seq);
        uint64_t id = 0;
        int64_t t = 0;
        while (!r.done() && r.ok()) {
          id += static_cast<uint64_t>(r.Signed());
          const uint8_t flags = r.Byte();
          EventPosition position;
          position.partition.source = flags & kEntrySourceMask;
          position.partition.partition = static_cast<int32_t>(r.Signed());
          if (flags & kEntryHasOffset) position.offset = static_cast<int64_t>(r.Varint());
          const int32_t key_partition = (flags & kEntryOtherKeyPartition)
                                            ? static_cast<int32_t>(r.Signed())
                                            : position.partition.partition;
          t = WrappingAdd(t, r.Signed());
          std::string k = r.Bytes();
          if (!r.ok()) break;
          if (position.partition.source >= static_cast<int>(plans_.size())) {
            return absl::DataLossError("window log: an event of an unknown source");
          }
          auto [it, created] = windows.try_emplace(id);
          Replayed& w = it->second;
          if (created) {
            // Keys are EncodeKey bytes, which AppendCommands decodes; a key in another
            // encoding (a state directory of a build before join/value.h's) must stop here.
            Key decoded;
            if (!DecodeKey(k, &decoded)) return absl::DataLossError("window log: undecodable key");
            w.key = std::move(k);
            w.key_partition = key_partition;
            w.window.id = id;
            w.window.min_ms = w.window.max_ms = t;
            max_id = std::max(max_id, id);
          } else if (w.emitting) {
            return absl::DataLossError("window log: an event after its window was emitted");
          }
          AddToWindow(&w.window, position.partition.source, t, position, seq);
          if (flags & kEntryHasCmd) {
            RowCommand cmd = ReadCmd(&r, position.partition.source, guarded_);
            if (guarded_ && cmd.versions.empty() && r.ok()) {
              return absl::FailedPreconditionError(
                  "window state_dir holds windows written without target.stale_write_guard: "
                  "drain them with the guard off first (switch to DB_UPSERT or stop cleanly), "
                  "then turn the guard on");
            }
            if (!r.ok()) break;
            AppendReduced(&w.window.cmds, std::move(cmd));
          }
        }
      } else if (key[9] == kMarkersRecord) {
        marker_seqs.push_back(seq);
        uint64_t id = 0;
        while (!r.done() && r.ok()) {
          const uint8_t kind = r.Byte();
          id += static_cast<uint64_t>(r.Signed());
          if (!r.ok()) break;
          max_id = std::max(max_id, id);
          auto it = windows.find(id);
          if (kind == kMarkerEmitted) {
            // A window acknowledged since, whose events records are all gone, is unknown here:
            // its marker lives on only because the record holds other emitting windows.
            if (it == windows.end()) continue;
            if (it->second.emitting) {
              return absl::DataLossError("window log: a window emitted twice");
            }
            it->second.emitting = true;
            it->second.emission = emissions++;
            it->second.marker_seq = seq;
          } else if (kind == kMarkerDead) {
            if (it != windows.end()) {
              dead_waits.emplace_back(seq, it->second.window.records);
              windows.erase(it);
            }
          } else {
            return absl::DataLossError("window log: unknown marker");
          }
        }
      } else {
        return absl::DataLossError("window log: unknown record kind");
      }
      if (!r.ok()) {
        return absl::DataLossError(absl::StrCat("undecodable window log record ", seq));
      }
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    if (any) {
      cur_seq_ = max_seq + 1;
      next_window_id_ = max_id + 1;
    }
    next_emission_ = emissions;

    // Reference counts, as the commits that wrote the log left them.
    std::vector<std::pair<std::string, Window>> open;
    for (auto& [id, w] : windows) {
      for (uint64_t r : w.window.records) ++event_records_[r].live;
      for (const EventPosition& p : w.window.covers) held_[p.partition].Add(p.offset, id);
      if (w.emitting) {
        ++marker_records_[w.marker_seq];
        Emitting& e = emitting_[id];
        e.covers = std::move(w.window.covers);
        e.records = std::move(w.window.records);
        e.emission = w.emission;
        e.marker_seq = w.marker_seq;
        restored_[id] = Restored{std::move(w.key), std::move(w.window.cmds)};
      } else {
        auto [kit, created] = keys_.try_emplace(w.key);
        if (created) {
          kit->second.key = &kit->first;
          kit->second.partition = w.key_partition;
        }
        kit->second.windows.push_back(std::move(w.window));
        ++open_windows_;
      }
    }
    for (auto& [partition, held] : held_) held.Sort();
    for (const auto& [m, records] : dead_waits) {
      for (uint64_t r : records) {
        auto it = event_records_.find(r);
        if (it == event_records_.end()) continue;
        if (!it->second.waiting.empty() && it->second.waiting.back().first == m) {
          ++it->second.waiting.back().second;
        } else {
          it->second.waiting.emplace_back(m, 1);
        }
        ++marker_records_[m];
      }
    }
    // Records nothing needs (none in a log this joiner wrote; cheap to make sure).
    for (uint64_t seq : event_seqs) {
      if (event_records_.find(seq) == event_records_.end()) {
        batch_.Delete(LogKey(seq, kEventsRecord));
      }
    }
    for (uint64_t seq : marker_seqs) {
      if (marker_records_.find(seq) == marker_records_.end()) {
        batch_.Delete(LogKey(seq, kMarkersRecord));
      }
    }
    for (auto& [key, entry] : keys_) {
      std::sort(entry.windows.begin(), entry.windows.end(),
                [](const Window& a, const Window& b) { return a.id < b.id; });
      Reindex(&entry);
    }
    return CommitAndEmit(nullptr);
  }

  std::vector<RowCommand> PendingCommands() const override {
    absl::MutexLock lock(&mu_);
    // Windows emitted since Open were handed out when they closed; only restored ones repeat.
    std::vector<std::pair<const Emitting*, const Restored*>> order;
    order.reserve(restored_.size());
    for (const auto& [id, r] : restored_) order.emplace_back(&emitting_.at(id), &r);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.first->emission < b.first->emission;
    });
    std::vector<RowCommand> out;
    for (const auto& [e, r] : order) AppendCommands(r->key, r->cmds, e->covers, &out);
    return out;
  }

  std::map<SourcePartition, int64_t> StoredOffsets() const override {
    absl::MutexLock lock(&mu_);
    return next_offsets_;
  }

  std::map<SourcePartition, int64_t> LowestHeldOffsets() const override {
    absl::MutexLock lock(&mu_);
    std::map<SourcePartition, int64_t> out;
    for (const auto& [partition, held] : held_) {
      if (!held.empty()) out[partition] = held.lowest();
    }
    return out;
  }

  std::map<SourcePartition, int64_t> CommittableOffsets() const override {
    absl::MutexLock lock(&mu_);
    std::map<SourcePartition, int64_t> out = next_offsets_;
    for (const auto& [partition, held] : held_) {
      if (!held.empty()) out[partition] = held.lowest();
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
                                                       " is not one of the ", plans_.size()));
      }
      if (event.op == ChangeOp::kUpsert &&
          event.values.size() != plans_[event.source].value_count()) {
        return absl::InvalidArgumentError(
            absl::StrCat("upsert of source ", event.source, " has ", event.values.size(),
                         " values, the mapping has ", plans_[event.source].value_count()));
      }
    }
    entries_.reserve(events.size());
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

  absl::Status Acknowledge(absl::Span<const EventPosition> applied) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    for (const EventPosition& p : applied) {
      auto held = held_.find(p.partition);
      if (held == held_.end()) continue;
      const HeldOffsets::Entry* entry = held->second.Find(p.offset);
      if (entry == nullptr) continue;
      auto e = emitting_.find(entry->window);
      if (e == emitting_.end()) continue;  // Still open: nothing of it was sent.
      Release(e);
      ++stats_.windows_acknowledged;
    }
    return CommitAndEmit(nullptr);
  }

  absl::Status Forget(const std::set<SourcePartition>& partitions) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    auto only_forgotten = [&partitions](const Emitting& window) {
      return std::all_of(window.covers.begin(), window.covers.end(),
                         [&](const EventPosition& p) { return partitions.count(p.partition) > 0; });
    };
    for (auto e = emitting_.begin(); e != emitting_.end();) {
      auto next = std::next(e);
      if (only_forgotten(e->second)) Release(e);
      e = next;
    }
    for (const SourcePartition& partition : partitions) {
      if (next_offsets_.erase(partition) > 0) offsets_dirty_.push_back(partition);
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
  // Reference counts of a live events record.
  struct EventsRecord {
    int64_t live = 0;               // Live windows with events in it.
    // Markers records holding "dead" markers for its events: (seq, how many).
    std::vector<std::pair<uint64_t, int64_t>> waiting;
  };

  // One event of the current call, for its events record.
  struct Entry {
    const ChangeEvent* event;
    std::string key;  // EncodeKey bytes.
    uint64_t window;
    int32_t key_partition;
    bool has_cmd;
  };

  void Absorb(const ChangeEvent& event, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const SourcePartition& sp = event.position.partition;
    if (event.position.offset >= 0) {
      auto [next, inserted] = next_offsets_.try_emplace(sp, event.position.offset + 1);
      if (!inserted) {
        if (event.position.offset < next->second) {
          ++stats_.duplicates_skipped;  // Already absorbed before a restart or a rebalance.
          return;
        }
        next->second = event.position.offset + 1;
      }
      if (std::find(offsets_dirty_.begin(), offsets_dirty_.end(), sp) == offsets_dirty_.end()) {
        offsets_dirty_.push_back(sp);
      }
    }
    PartitionState& ps = partitions_[sp.partition];
    const int64_t t = event.event_time_ms;
    if (ps.stream_time != kNoTime &&
        AddSaturating(AddSaturating(t, options_.window_ms), options_.grace_ms) <
            ps.stream_time) {
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

    std::string encoded = EncodeKey(event.key);
    auto [it, created] = keys_.try_emplace(encoded);
    KeyEntry& entry = it->second;
    if (created) {
      entry.key = &it->first;
      entry.partition = sp.partition;
    }
    Window* window = entry.windows.empty() ? nullptr : &entry.windows.back();
    if (window == nullptr || Span(std::min(window->min_ms, t), std::max(window->max_ms, t)) >
                                 static_cast<uint64_t>(options_.window_ms)) {
      entry.windows.emplace_back();
      window = &entry.windows.back();
      window->id = next_window_id_++;
      window->min_ms = window->max_ms = t;
      ++stats_.windows_opened;
      ++open_windows_;
    }
    if (window->records.empty() || window->records.back() != cur_seq_) {
      ++event_records_[cur_seq_].live;
    }
    AddToWindow(window, event.source, t, event.position, cur_seq_);
    if (event.position.offset >= 0) held_[sp].Add(event.position.offset, window->id);
    const SourceCommands& plan = plans_[event.source];
    bool has_cmd = true;
    if (!guarded_ && event.op == ChangeOp::kUpsert && !window->cmds.empty() &&
        window->cmds.back().kind == RowCommandKind::kUpsert) {
      // U1;U2 without building U2: a key changed twice in one window is common.
      std::vector<ColumnWrite>* last = &window->cmds.back().writes;
      for (const SourceCommands::Field& f : plan.fields()) {
        MergeLaterUpsertWrite(last, f.column, f.update_on_conflict, event.values[f.value_index]);
      }
    } else if (std::optional<RowCommand> cmd = plan.Command(event); cmd.has_value()) {
      AppendReduced(&window->cmds, *std::move(cmd));
    } else {
      has_cmd = false;  // IGNORE (and unspecified): the event is in the window, but writes nothing.
    }
    entries_.push_back(Entry{&event, std::move(encoded), window->id, entry.partition, has_cmd});
    Reindex(&entry);

    if (t > ps.stream_time) {
      ps.stream_time = t;
      ps.stream_time_dirty = true;
      CloseDue(&ps);
    }
  }

  // Emits the oldest windows of this partition's keys while stream time is past their close.
  void CloseDue(PartitionState* ps) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!ps->closes.empty() && ps->closes.begin()->close < ps->stream_time) {
      CloseOldest(ps->closes.begin()->entry);
    }
  }

  void CloseAll(PartitionState* ps) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!ps->closes.empty()) CloseOldest(ps->closes.begin()->entry);
  }

  int64_t CloseTime(const Window& window) const {
    // Never kNoTime (the index's "none"), even for a window at INT64_MIN with no span.
    return std::max(kNoTime + 1, AddSaturating(AddSaturating(window.min_ms, options_.window_ms),
                                               options_.grace_ms));
  }

  // Keeps the close index in step with the entry's oldest window (or removes the key).
  void Reindex(KeyEntry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t close = entry->windows.empty() ? kNoTime : CloseTime(entry->windows.front());
    const uint64_t window = entry->windows.empty() ? 0 : entry->windows.front().id;
    if (close == entry->indexed_close && window == entry->indexed_window) return;
    PartitionState& ps = partitions_[entry->partition];
    if (entry->indexed_close != kNoTime) {
      ps.closes.erase(CloseRef{entry->indexed_close, entry->indexed_window, entry});
    }
    if (close != kNoTime) ps.closes.insert(CloseRef{close, window, entry});
    entry->indexed_close = close;
    entry->indexed_window = window;
  }

  // An emitted window is done with: applied, or left to the partitions' new owner.
  void Release(absl::flat_hash_map<uint64_t, Emitting>::iterator e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const EventPosition& c : e->second.covers) ReleaseHeld(c);
    ReleaseMarkers(e->second.marker_seq);
    WindowDied(e->first, e->second.records);
    if (!restored_.empty()) restored_.erase(e->first);
    emitting_.erase(e);
  }

  void ReleaseHeld(const EventPosition& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (p.offset < 0) return;
    auto it = held_.find(p.partition);
    if (it != held_.end()) it->second.Release(p.offset);
  }

  // A markers record needs one thing fewer; deleted when nothing needs it.
  void ReleaseMarkers(uint64_t seq, int64_t n = 1) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = marker_records_.find(seq);
    if (it == marker_records_.end() || (it->second -= n) > 0) return;
    marker_records_.erase(it);
    if (seq != cur_seq_) batch_.Delete(LogKey(seq, kMarkersRecord));
  }

  // Window `id` (acknowledged or discarded) is gone: its events records need it no more, and
  // where one of them survives, a "dead" marker keeps Open from bringing the window back.
  void WindowDied(uint64_t id, absl::Span<const uint64_t> records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::InlinedVector<uint64_t, 2> surviving;
    for (uint64_t seq : records) {
      // The current call's record is not written yet: it simply leaves the window out.
      if (seq == cur_seq_) died_now_.insert(id);
      auto it = event_records_.find(seq);
      if (--it->second.live > 0) {
        if (seq != cur_seq_) surviving.push_back(seq);
        continue;
      }
      std::vector<std::pair<uint64_t, int64_t>> waiting = std::move(it->second.waiting);
      event_records_.erase(it);
      if (seq != cur_seq_) batch_.Delete(LogKey(seq, kEventsRecord));
      for (const auto& [m, n] : waiting) ReleaseMarkers(m, n);
    }
    if (surviving.empty()) return;
    AddMarker(kMarkerDead, id);
    for (uint64_t seq : surviving) {
      std::vector<std::pair<uint64_t, int64_t>>& waiting = event_records_[seq].waiting;
      if (!waiting.empty() && waiting.back().first == cur_seq_) {
        ++waiting.back().second;
      } else {
        waiting.emplace_back(cur_seq_, 1);
      }
    }
    marker_records_[cur_seq_] += static_cast<int64_t>(surviving.size());
  }

  void AddMarker(uint8_t kind, uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Writer w(&markers_);
    w.Byte(kind);
    w.Signed(static_cast<int64_t>(id - last_marker_id_));
    last_marker_id_ = id;
  }

  // Closes `key`'s oldest window: emits it (kept as emitting until acknowledged) or discards
  // it per the join type.
  void CloseOldest(KeyEntry* entry_ptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    KeyEntry& entry = *entry_ptr;
    const std::string& key = *entry.key;
    Window window = std::move(entry.windows.front());
    entry.windows.erase(entry.windows.begin());
    --open_windows_;

    // More than one source met in the window.
    const bool joined = (window.sides & (window.sides - 1)) != 0;
    if (joined) ++stats_.joined_pairs;
    bool wanted = true;
    if (options_.join_type == v1::INNER) wanted = joined;
    if (options_.join_type == v1::LEFT) wanted = (window.sides & 1) != 0;
    if (wanted && !window.cmds.empty()) {
      const uint64_t id = window.id;
      AddMarker(kMarkerEmitted, id);
      ++marker_records_[cur_seq_];
      AppendCommands(key, std::move(window.cmds), window.covers, &pending_out_);
      ++stats_.windows_emitted;
      Emitting& e = emitting_[id];
      e.covers = std::move(window.covers);
      e.records = std::move(window.records);
      e.emission = next_emission_++;
      e.marker_seq = cur_seq_;
    } else {
      for (const EventPosition& p : window.covers) ReleaseHeld(p);
      WindowDied(window.id, window.records);
      ++stats_.windows_discarded;
    }

    Reindex(&entry);
    if (entry.windows.empty()) keys_.erase(keys_.find(key));
  }

  // `cmds` (a window's reduced commands) as RowCommands of the key, the last one carrying the
  // window's covers. A window closing now hands its commands over (moved: it is emitted once);
  // PendingCommands copies those of windows restored by Open.
  static void AppendCommands(const std::string& encoded_key, std::vector<RowCommand> cmds,
                             absl::Span<const EventPosition> covers,
                             std::vector<RowCommand>* out) {
    if (cmds.empty()) return;
    Key key;
    DecodeKey(encoded_key, &key);
    for (size_t i = 0; i < cmds.size(); ++i) {
      RowCommand& command = cmds[i];
      if (command.kind == RowCommandKind::kDelete) command.writes.clear();
      if (i + 1 == cmds.size()) {
        command.key = std::move(key);
        command.covers.assign(covers.begin(), covers.end());
      } else {
        command.key = key;
      }
      out->push_back(std::move(command));
    }
  }

  // The events record of this call: its events of windows still alive.
  std::string SerializeEntries() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    BufferWriter w(&serialize_buffer_);
    uint64_t id = 0;
    int64_t t = 0;
    for (const Entry& entry : entries_) {
      if (!died_now_.empty() && died_now_.contains(entry.window)) continue;
      const ChangeEvent& event = *entry.event;
      const SourcePartition& sp = event.position.partition;
      uint8_t flags = static_cast<uint8_t>(event.source) & kEntrySourceMask;
      if (entry.has_cmd) flags |= kEntryHasCmd;
      if (event.position.offset >= 0) flags |= kEntryHasOffset;
      if (entry.key_partition != sp.partition) flags |= kEntryOtherKeyPartition;
      w.Room(64);
      w.Signed(static_cast<int64_t>(entry.window - id));
      id = entry.window;
      w.Byte(flags);
      w.Signed(sp.partition);
      if (event.position.offset >= 0) w.Varint(static_cast<uint64_t>(event.position.offset));
      if (entry.key_partition != sp.partition) w.Signed(entry.key_partition);
      w.Signed(WrappingDelta(event.event_time_ms, t));
      t = event.event_time_ms;
      w.Bytes(entry.key);
      if (!entry.has_cmd) continue;
      // The event's command, in the form ReadCmd reads (without building the Cmd again).
      const SourceCommands& plan = plans_[event.source];
      const std::vector<ColumnWrite>* clears = nullptr;
      RowCommandKind kind = RowCommandKind::kDelete;
      if (event.op == ChangeOp::kUpsert) {
        kind = RowCommandKind::kUpsert;
      } else if (plan.on_delete() == v1::CLEAR_COLUMNS) {
        kind = RowCommandKind::kClear;
        clears = &plan.clear_writes();
      } else if (plan.on_delete() == v1::DELETE_ROW_WHEN_ALL_DELETED) {
        kind = RowCommandKind::kRelease;
        clears = &plan.clear_writes();
      }
      w.Room(11);
      w.Byte(static_cast<uint8_t>(kind) | (guarded_ ? kCmdHasVersion : 0));
      if (kind == RowCommandKind::kUpsert) {
        w.Varint(plan.fields().size());
        for (const SourceCommands::Field& f : plan.fields()) {
          w.Room(11);
          w.Varint(static_cast<uint64_t>(f.column));
          w.Byte(f.update_on_conflict ? 1 : 0);
          w.Val(event.values[f.value_index]);
        }
      } else if (clears != nullptr) {
        w.Varint(clears->size());
        for (const ColumnWrite& cw : *clears) {
          w.Room(11);
          w.Varint(static_cast<uint64_t>(cw.column));
          w.Byte(cw.update_on_conflict ? 1 : 0);
        }
      } else {
        w.Varint(0);
      }
      if (guarded_) {
        w.Bytes(RowVersionOf(event));
      }
    }
    return w.Take();
  }

  // Writes everything this call changed in one batch; only then hands the commands out.
  absl::Status CommitAndEmit(std::vector<RowCommand>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto events_record = event_records_.find(cur_seq_);
    if (events_record != event_records_.end()) {
      if (events_record->second.live > 0) {
        batch_.Put(LogKey(cur_seq_, kEventsRecord), SerializeEntries());
      } else {
        event_records_.erase(events_record);
      }
    }
    auto markers_record = marker_records_.find(cur_seq_);
    if (markers_record != marker_records_.end()) {
      batch_.Put(LogKey(cur_seq_, kMarkersRecord), markers_);
    }
    entries_.clear();
    died_now_.clear();
    markers_.clear();
    last_marker_id_ = 0;
    ++cur_seq_;
    for (auto& [partition, ps] : partitions_) {
      if (!ps.stream_time_dirty) continue;
      ps.stream_time_dirty = false;
      std::string value;
      Writer(&value).Signed(ps.stream_time);
      batch_.Put(BigEndianKey(kStreamTimePrefix, static_cast<uint32_t>(partition)),
                 std::move(value));
    }
    for (const SourcePartition& partition : offsets_dirty_) {
      auto next = next_offsets_.find(partition);
      batch_.SetNextOffset(partition, next != next_offsets_.end() ? next->second : -1);
    }
    offsets_dirty_.clear();
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
      if (out->empty()) {
        out->swap(pending_out_);  // A flush can emit every open window: no second copy.
      } else {
        for (RowCommand& c : pending_out_) out->push_back(std::move(c));
      }
    }
    pending_out_.clear();
    return absl::OkStatus();
  }

  const WindowedJoinerOptions options_;
  WindowStore* const store_;
  const bool guarded_;                 // TableSchema::stale_write_guard.
  std::vector<SourceCommands> plans_;  // By source.

  mutable absl::Mutex mu_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  // Nodes, not flat: the close index and KeyEntry::key point into them.
  absl::node_hash_map<std::string, KeyEntry> keys_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, PartitionState> partitions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Emitting> emitting_ ABSL_GUARDED_BY(mu_);  // By window id.
  absl::flat_hash_map<uint64_t, Restored> restored_ ABSL_GUARDED_BY(mu_);  // Subset of emitting_.
  absl::flat_hash_map<SourcePartition, HeldOffsets> held_ ABSL_GUARDED_BY(mu_);
  std::map<SourcePartition, int64_t> next_offsets_ ABSL_GUARDED_BY(mu_);
  // Live log records: events records by seq, markers records by seq -> how many things need it.
  absl::flat_hash_map<uint64_t, EventsRecord> event_records_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, int64_t> marker_records_ ABSL_GUARDED_BY(mu_);
  uint64_t cur_seq_ ABSL_GUARDED_BY(mu_) = 0;  // The seq the current call's records get.
  uint64_t next_window_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_emission_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t open_windows_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // Per call: the events absorbed, windows that died in it, its markers, the batch being
  // built, the commands it will release.
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> died_now_ ABSL_GUARDED_BY(mu_);
  std::string markers_ ABSL_GUARDED_BY(mu_);
  std::string serialize_buffer_ ABSL_GUARDED_BY(mu_);  // Reused by SerializeEntries.
  uint64_t last_marker_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<SourcePartition> offsets_dirty_ ABSL_GUARDED_BY(mu_);  // Consumed from.
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
  if (schema.sources.size() < 2 || schema.sources.size() > kMaxSources) {
    return absl::InvalidArgumentError(absl::StrCat("the windowed joiner joins 2 to ", kMaxSources,
                                                   " sources, got ", schema.sources.size()));
  }
  if (options.join_type != v1::OUTER && schema.sources.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        v1::JoinType_Name(options.join_type), " joins exactly two sources, got ",
        schema.sources.size(), " (OUTER merges any number)"));
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
