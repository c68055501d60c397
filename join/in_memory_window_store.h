#ifndef CDCJOIN_JOIN_IN_MEMORY_WINDOW_STORE_H_
#define CDCJOIN_JOIN_IN_MEMORY_WINDOW_STORE_H_

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "join/window_store.h"

namespace cdcjoin {

// InMemoryWindowStore
//
// A WindowStore kept in a std::map, for tests: it survives the joiner that uses it, so a test
// can "crash" a joiner (destroy it without Drain) and open a new one on the same store. It can
// also be told to fail commits, to test that a failed commit emits nothing.
class InMemoryWindowStore : public WindowStore {
 public:
  absl::Status Commit(const WindowStoreBatch& batch) override {
    absl::MutexLock lock(&mu_);
    if (fail_commits_) return absl::UnavailableError("InMemoryWindowStore: commit failure injected");
    for (const WindowStoreBatch::Op& op : batch.ops()) {
      switch (op.kind) {
        case WindowStoreBatch::OpKind::kPut:
          data_[op.key] = op.value;
          break;
        case WindowStoreBatch::OpKind::kDelete:
          data_.erase(op.key);
          break;
        case WindowStoreBatch::OpKind::kDeleteRange:
          data_.erase(data_.lower_bound(op.key), data_.lower_bound(op.value));
          break;
      }
    }
    for (const auto& [partition, offset] : batch.offsets()) offsets_[partition] = offset;
    ++commits_;
    return absl::OkStatus();
  }

  absl::Status Scan(absl::string_view prefix,
                    const std::function<absl::Status(absl::string_view, absl::string_view)>& fn)
      override {
    std::map<std::string, std::string> copy;
    {
      absl::MutexLock lock(&mu_);
      copy = data_;
    }
    for (auto it = copy.lower_bound(std::string(prefix));
         it != copy.end() && absl::string_view(it->first).substr(0, prefix.size()) == prefix;
         ++it) {
      absl::Status status = fn(it->first, it->second);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(absl::string_view key) override {
    absl::MutexLock lock(&mu_);
    auto it = data_.find(std::string(key));
    if (it == data_.end()) return absl::NotFoundError("no such key");
    return it->second;
  }

  absl::StatusOr<std::map<SourcePartition, int64_t>> StoredOffsets() override {
    absl::MutexLock lock(&mu_);
    return offsets_;
  }

  // Test hooks.
  void set_fail_commits(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_commits_ = fail;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return data_.size();
  }
  int commits() const {
    absl::MutexLock lock(&mu_);
    return commits_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
  std::map<SourcePartition, int64_t> offsets_ ABSL_GUARDED_BY(mu_);
  bool fail_commits_ ABSL_GUARDED_BY(mu_) = false;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_IN_MEMORY_WINDOW_STORE_H_
