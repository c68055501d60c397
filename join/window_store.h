#ifndef CDCJOIN_JOIN_WINDOW_STORE_H_
#define CDCJOIN_JOIN_WINDOW_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "join/change_event.h"

namespace cdcjoin {

// WindowStoreBatch
//
// A set of state changes and the source offsets they cover, applied atomically by
// WindowStore::Commit: after a crash the store holds either all of a batch or none of it, so
// the stored offsets always describe exactly the events whose effect is in the stored state.
//
//   WindowStoreBatch batch;
//   batch.Put("k/...", serialized_state);
//   batch.Delete("e/...");
//   batch.SetNextOffset({/*source=*/0, /*partition=*/3}, 1042);
//   absl::Status status = store->Commit(batch);
//
// Operations apply in the order they were added (a Put after a Delete of the same key wins).
class WindowStoreBatch {
 public:
  enum class OpKind { kPut, kDelete, kDeleteRange };
  struct Op {
    OpKind kind = OpKind::kPut;
    std::string key;    // kDeleteRange: the first key deleted.
    std::string value;  // kPut: the value. kDeleteRange: the end (excluded). kDelete: empty.
  };

  void Put(std::string key, std::string value) {
    ops_.push_back(Op{OpKind::kPut, std::move(key), std::move(value)});
  }
  void Delete(std::string key) { ops_.push_back(Op{OpKind::kDelete, std::move(key), {}}); }
  // Deletes every key in [begin, end): one range tombstone instead of one per key.
  void DeleteRange(std::string begin, std::string end) {
    ops_.push_back(Op{OpKind::kDeleteRange, std::move(begin), std::move(end)});
  }
  // The next offset to consume on `partition` once this batch is durable (last offset + 1).
  void SetNextOffset(const SourcePartition& partition, int64_t next_offset) {
    offsets_[partition] = next_offset;
  }

  const std::vector<Op>& ops() const { return ops_; }
  const std::map<SourcePartition, int64_t>& offsets() const { return offsets_; }
  bool empty() const { return ops_.empty() && offsets_.empty(); }
  void Clear() {
    ops_.clear();
    offsets_.clear();
  }

 private:
  std::vector<Op> ops_;
  std::map<SourcePartition, int64_t> offsets_;
};

// WindowStore
//
// The durable home of the windowed joiner's state: an ordered byte-string key/value map plus
// the per-SourcePartition next offsets, changed only through atomic Commit. The joiner keeps its
// working set in memory and reads the store only when it opens (Scan, StoredOffsets), so an
// implementation only needs fast batched writes and an ordered scan.
//
// storage/rocksdb_window_store.h implements it on RocksDB (one WriteBatch per Commit);
// join/in_memory_window_store.h is a map for tests.
//
// Thread safety: implementations must allow Commit, Scan and StoredOffsets from any thread, but
// the joiner serialises its own calls.
class WindowStore {
 public:
  virtual ~WindowStore() = default;

  // Applies every op of `batch` and its offsets atomically. On error nothing was applied.
  virtual absl::Status Commit(const WindowStoreBatch& batch) = 0;

  // Calls `fn` for every key starting with `prefix`, in ascending byte order. Stops at (and
  // returns) the first non-OK status `fn` returns.
  virtual absl::Status Scan(
      absl::string_view prefix,
      const std::function<absl::Status(absl::string_view key, absl::string_view value)>& fn) = 0;

  // The value of `key`, or NotFound.
  virtual absl::StatusOr<std::string> Get(absl::string_view key) = 0;

  // The next offsets of every SourcePartition any committed batch mentioned.
  virtual absl::StatusOr<std::map<SourcePartition, int64_t>> StoredOffsets() = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_WINDOW_STORE_H_
