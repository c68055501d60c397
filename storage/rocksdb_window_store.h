#ifndef CDCJOIN_STORAGE_ROCKSDB_WINDOW_STORE_H_
#define CDCJOIN_STORAGE_ROCKSDB_WINDOW_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "join/window_store.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

struct RocksDbWindowStoreOptions {
  // LRU block cache for state reads (the joiner reads only when it opens). Default: 64.
  int block_cache_mb = 64;
  // Memtable size per column family; at most 2 memtables per family, and flushes start when
  // all families together pass this size. Default: 32.
  int write_buffer_mb = 32;
  // fsync the WAL on every Commit. Default: false: a commit is in the WAL (in the OS page
  // cache) before Commit returns, so it survives a crash of the process (SIGKILL included) but
  // a machine crash may lose the newest commits. Those are lost whole and in order (state and
  // offsets roll back together), so the consumers re-read from the older stored offsets and
  // the windows are rebuilt: at-least-once, still convergent in OUTER mode. true makes every
  // poll batch wait for an fsync.
  bool sync = false;
  // Default: true.
  bool create_if_missing = true;

  // block_cache_mb and write_buffer_mb of a WindowConfig (0 means the default).
  static RocksDbWindowStoreOptions FromConfig(const v1::WindowConfig& config);
};

// RocksDbWindowStore
//
// The windowed joiner's WindowStore on RocksDB. Two column families: "window_state" (the
// joiner's keys and values, as given) and "offsets" (SourcePartition -> next offset). Each
// Commit is one WriteBatch across both families, so state and the offsets it covers are
// written atomically. The WAL is always on.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<RocksDbWindowStore> store,
//                    RocksDbWindowStore::Open(config.window().state_dir(),
//                                             RocksDbWindowStoreOptions::FromConfig(...)));
//   ASSIGN_OR_RETURN(auto joiner, WindowedJoiner::Open(schema, joiner_options, store.get()));
//
// Thread-safe (RocksDB is).
class RocksDbWindowStore : public WindowStore {
 public:
  // Opens (creating when allowed) the database in `dir`. Unavailable when another process
  // holds it (RocksDB's LOCK file), InvalidArgument for bad options, Internal otherwise.
  static absl::StatusOr<std::unique_ptr<RocksDbWindowStore>> Open(
      const std::string& dir, const RocksDbWindowStoreOptions& options);

  ~RocksDbWindowStore() override = default;

  // A RocksDB integer property summed over both column families, e.g.
  // "rocksdb.estimate-num-keys", "rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables".
  virtual uint64_t IntProperty(const std::string& name) = 0;
  // Flushes memtables and compacts everything (tests and tools: shows purged state is gone).
  virtual absl::Status CompactAll() = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_ROCKSDB_WINDOW_STORE_H_
