#include "storage/rocksdb_window_store.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace cdcjoin {
namespace {

constexpr char kStateFamily[] = "window_state";
constexpr char kOffsetsFamily[] = "offsets";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::UnavailableError(message);
  }
  if (s.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

// Offsets keys: big-endian source and partition, so the family iterates in SourcePartition order.
std::string OffsetKey(const SourcePartition& p) {
  std::string key(8, '\0');
  const uint32_t s = static_cast<uint32_t>(p.source);
  const uint32_t n = static_cast<uint32_t>(p.partition);
  for (int i = 0; i < 4; ++i) {
    key[i] = static_cast<char>(s >> (24 - 8 * i));
    key[4 + i] = static_cast<char>(n >> (24 - 8 * i));
  }
  return key;
}

uint32_t ReadBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string OffsetValue(int64_t offset) {
  std::string value(8, '\0');
  const uint64_t v = static_cast<uint64_t>(offset);
  for (int i = 0; i < 8; ++i) value[i] = static_cast<char>(v >> (56 - 8 * i));
  return value;
}

class RocksDbWindowStoreImpl : public RocksDbWindowStore {
 public:
  RocksDbWindowStoreImpl(std::unique_ptr<rocksdb::DB> db,
                         std::vector<rocksdb::ColumnFamilyHandle*> handles, bool sync)
      : db_(std::move(db)), handles_(std::move(handles)) {
    write_options_.sync = sync;
    write_options_.disableWAL = false;
  }

  ~RocksDbWindowStoreImpl() override {
    for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  absl::Status Commit(const WindowStoreBatch& batch) override {
    size_t bytes = 64 + 32 * batch.offsets().size();
    for (const WindowStoreBatch::Op& op : batch.ops()) bytes += 32 + op.key.size() + op.value.size();
    rocksdb::WriteBatch wb(bytes);  // One allocation for the joiner's large log records.
    for (const WindowStoreBatch::Op& op : batch.ops()) {
      rocksdb::Status s;
      switch (op.kind) {
        case WindowStoreBatch::OpKind::kPut:
          s = wb.Put(state(), op.key, op.value);
          break;
        case WindowStoreBatch::OpKind::kDelete:
          s = wb.Delete(state(), op.key);
          break;
        case WindowStoreBatch::OpKind::kDeleteRange:
          s = wb.DeleteRange(state(), op.key, op.value);
          break;
      }
      if (!s.ok()) return FromRocks(s, "window store batch");
    }
    for (const auto& [partition, offset] : batch.offsets()) {
      rocksdb::Status s = wb.Put(offsets(), OffsetKey(partition), OffsetValue(offset));
      if (!s.ok()) return FromRocks(s, "window store batch");
    }
    return FromRocks(db_->Write(write_options_, &wb), "window store commit");
  }

  absl::Status Scan(absl::string_view prefix,
                    const std::function<absl::Status(absl::string_view, absl::string_view)>& fn)
      override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), state()));
    const rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      absl::Status status = fn(absl::string_view(it->key().data(), it->key().size()),
                               absl::string_view(it->value().data(), it->value().size()));
      if (!status.ok()) return status;
    }
    return FromRocks(it->status(), "window store scan");
  }

  absl::StatusOr<std::string> Get(absl::string_view key) override {
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), state(), rocksdb::Slice(key.data(), key.size()), &value);
    if (!s.ok()) return FromRocks(s, "window store get");
    return value;
  }

  absl::StatusOr<std::map<SourcePartition, int64_t>> StoredOffsets() override {
    std::map<SourcePartition, int64_t> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), offsets()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8 || it->value().size() != 8) {
        return absl::DataLossError("malformed offsets record");
      }
      SourcePartition p;
      p.source = static_cast<int>(ReadBigEndian32(it->key().data()));
      p.partition = static_cast<int32_t>(ReadBigEndian32(it->key().data() + 4));
      const uint64_t v = (static_cast<uint64_t>(ReadBigEndian32(it->value().data())) << 32) |
                         ReadBigEndian32(it->value().data() + 4);
      out[p] = static_cast<int64_t>(v);
    }
    absl::Status status = FromRocks(it->status(), "offsets scan");
    if (!status.ok()) return status;
    return out;
  }

  uint64_t IntProperty(const std::string& name) override {
    uint64_t total = 0;
    for (rocksdb::ColumnFamilyHandle* h : {state(), offsets()}) {
      uint64_t v = 0;
      if (db_->GetIntProperty(h, name, &v)) total += v;
    }
    return total;
  }

  absl::Status CompactAll() override {
    for (rocksdb::ColumnFamilyHandle* h : {state(), offsets()}) {
      absl::Status s = FromRocks(db_->Flush(rocksdb::FlushOptions(), h), "flush");
      if (!s.ok()) return s;
      rocksdb::CompactRangeOptions options;
      options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      s = FromRocks(db_->CompactRange(options, h, nullptr, nullptr), "compact");
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  rocksdb::ColumnFamilyHandle* state() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* offsets() const { return handles_[2]; }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, state, offsets
  rocksdb::WriteOptions write_options_;
};

}  // namespace

RocksDbWindowStoreOptions RocksDbWindowStoreOptions::FromConfig(const v1::WindowConfig& config) {
  RocksDbWindowStoreOptions options;
  if (config.block_cache_mb() != 0) options.block_cache_mb = config.block_cache_mb();
  if (config.write_buffer_mb() != 0) options.write_buffer_mb = config.write_buffer_mb();
  return options;
}

absl::StatusOr<std::unique_ptr<RocksDbWindowStore>> RocksDbWindowStore::Open(
    const std::string& dir, const RocksDbWindowStoreOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("window state_dir is empty");
  if (options.block_cache_mb <= 0 || options.write_buffer_mb <= 0) {
    return absl::InvalidArgumentError("block_cache_mb and write_buffer_mb must be > 0");
  }
  const size_t write_buffer = static_cast<size_t>(options.write_buffer_mb) << 20;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(options.block_cache_mb) << 20);
  table.cache_index_and_filter_blocks = true;  // Keeps index memory inside the budget.
  // No bloom filter: the joiner never does point reads on its hot path (it reads the state by
  // prefix scans when it opens, which filters do not help), so building one is wasted work.

  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = write_buffer;
  cf.max_write_buffer_number = 2;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // The joiner's log records are short-lived (most are deleted before their memtable is
  // flushed) and what survives is small: compressing it is CPU spent for nothing.
  cf.compression = rocksdb::kNoCompression;
  // Offsets and the joiner's per-partition records are rewritten on every commit with values of
  // the same size: updating them in place keeps the memtable (and each insert into it) small.
  // Its price, reads not consistent with concurrent writes, is not paid: the joiner reads only
  // when it opens.
  cf.inplace_update_support = true;

  rocksdb::DBOptions db;
  db.create_if_missing = options.create_if_missing;
  db.create_missing_column_families = true;
  db.allow_concurrent_memtable_write = false;  // Required by inplace_update_support.
  db.db_write_buffer_size = write_buffer;  // All memtables together.
  db.max_background_jobs = 2;
  db.keep_log_file_num = 4;
  db.max_total_wal_size = 4 * write_buffer;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf},
      {kStateFamily, cf},
      {kOffsetsFamily, cf},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db, dir, families, &handles, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open window store ", dir));
  return std::unique_ptr<RocksDbWindowStore>(new RocksDbWindowStoreImpl(
      std::unique_ptr<rocksdb::DB>(raw), std::move(handles), options.sync));
}

}  // namespace cdcjoin
