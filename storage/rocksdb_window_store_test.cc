#include "storage/rocksdb_window_store.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "join/reference_table.h"
#include "join/windowed_joiner.h"
#include "join/windowed_joiner_testing.h"

extern char** environ;

namespace cdcjoin {
namespace {

using ::testing::IsEmpty;

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

std::unique_ptr<RocksDbWindowStore> OpenStore(const std::string& dir) {
  RocksDbWindowStoreOptions options;
  options.block_cache_mb = 8;
  options.write_buffer_mb = 4;
  absl::StatusOr<std::unique_ptr<RocksDbWindowStore>> store = RocksDbWindowStore::Open(dir, options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

TEST(RocksDbWindowStoreTest, StateAndOffsetsCommitTogetherAndSurviveReopen) {
  const std::string dir = TempDir("basic");
  {
    auto store = OpenStore(dir);
    ASSERT_NE(store, nullptr);
    WindowStoreBatch batch;
    batch.Put("k1", "v1");
    batch.Put("k2", "v2");
    batch.Put("x", "other prefix");
    batch.SetNextOffset({0, 3}, 42);
    batch.SetNextOffset({1, 3}, 7);
    ASSERT_TRUE(store->Commit(batch).ok());
    batch.Clear();
    batch.Delete("k1");
    batch.SetNextOffset({0, 3}, 43);
    ASSERT_TRUE(store->Commit(batch).ok());
    // A second open of the same directory is refused while this one holds it.
    RocksDbWindowStoreOptions options;
    EXPECT_FALSE(RocksDbWindowStore::Open(dir, options).ok());
  }
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  std::vector<std::string> seen;
  ASSERT_TRUE(store
                  ->Scan("k",
                         [&](absl::string_view k, absl::string_view v) {
                           seen.push_back(absl::StrCat(k, "=", v));
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_EQ(seen, std::vector<std::string>{"k2=v2"});
  EXPECT_EQ(*store->Get("x"), "other prefix");
  EXPECT_EQ(store->Get("k1").status().code(), absl::StatusCode::kNotFound);
  const std::map<SourcePartition, int64_t> offsets = *store->StoredOffsets();
  EXPECT_EQ(offsets, (std::map<SourcePartition, int64_t>{{{0, 3}, 43}, {{1, 3}, 7}}));
}

// The crash scenario of join/windowed_joiner_test against RocksDB on disk: every "crash"
// destroys the joiner and closes the database; the next run reopens it from the directory.
TEST(RocksDbWindowStoreTest, CrashRestartScenarioConverges) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const TableSchema schema =
        testing::TwoSourceSchema(v1::DELETE_ROW, v1::CLEAR_COLUMNS, seed % 2 == 0);
    testing::RandomEventsOptions gen;
    gen.count = 3000;
    gen.keys = 50;
    gen.partitions = 3;
    gen.insert_only = seed % 2 == 0;
    gen.max_lag_ms = 5;
    WindowedJoinerOptions options;
    options.window_ms = 10;
    options.grace_ms = 3;
    options.idle_flush_ms = 40;
    const std::vector<ChangeEvent> events = testing::RandomEvents(seed, gen);
    const std::string dir = TempDir(absl::StrCat("crash", seed));
    std::unique_ptr<RocksDbWindowStore> store;
    testing::CrashScenarioResult result;
    absl::Status status = testing::RunCrashScenario(
        schema, options, events, seed, /*crash_every=*/5,
        [&]() -> WindowStore* {
          store.reset();  // Close before reopening: RocksDB locks the directory.
          store = OpenStore(dir);
          return store.get();
        },
        nullptr, &result);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_GT(result.crashes, 5);
    const testing::RowTable reference = testing::ReferenceTable(schema, events);
    ASSERT_EQ(result.table, reference) << "seed " << seed;
    EXPECT_THAT(result.doubly_covered, IsEmpty());
    EXPECT_THAT(result.uncovered, IsEmpty());
  }
}

// A real crash: a child process runs the joiner on the same directory and kills itself with
// SIGKILL mid-stream (no Drain, no close, commands never applied). The parent reopens the
// directory, re-sends the pending windows, resumes at the stored offsets, and ends with the
// reference table.
constexpr char kChildDirEnv[] = "CDCJOIN_WINDOW_STORE_CHILD_DIR";

TableSchema KillSchema() { return testing::TwoSourceSchema(v1::DELETE_ROW, v1::CLEAR_COLUMNS); }
std::vector<ChangeEvent> KillEvents() {
  testing::RandomEventsOptions gen;
  gen.count = 20000;
  gen.keys = 500;
  gen.partitions = 4;
  gen.max_lag_ms = 5;
  return testing::RandomEvents(77, gen);
}
WindowedJoinerOptions KillOptions() {
  WindowedJoinerOptions options;
  options.window_ms = 20;
  options.grace_ms = 5;
  return options;
}

TEST(RocksDbWindowStoreChild, DISABLED_RunUntilKilled) {
  const char* dir = std::getenv(kChildDirEnv);
  ASSERT_NE(dir, nullptr);
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  auto joiner = *WindowedJoiner::Open(KillSchema(), KillOptions(), store.get());
  const std::vector<ChangeEvent> events = KillEvents();
  std::vector<RowCommand> out;
  for (size_t next = 0; next < events.size(); next += 100) {
    ASSERT_TRUE(
        joiner->Process(absl::MakeConstSpan(events.data() + next, 100), 0, &out).ok());
    if (next >= events.size() / 2) raise(SIGKILL);  // Mid-stream, nothing applied.
  }
}

TEST(RocksDbWindowStoreTest, SigkillMidStreamThenRestartConverges) {
  const std::string dir = TempDir("sigkill");
  std::string filter = "--gtest_filter=RocksDbWindowStoreChild.DISABLED_RunUntilKilled";
  std::string also = "--gtest_also_run_disabled_tests";
  std::string self = std::filesystem::read_symlink("/proc/self/exe");
  std::vector<char*> argv = {self.data(), filter.data(), also.data(), nullptr};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.push_back(*e);
  env_strings.push_back(std::string(kChildDirEnv) + "=" + dir);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << "child status " << wstatus;

  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  auto joiner = *WindowedJoiner::Open(KillSchema(), KillOptions(), store.get());
  const std::vector<ChangeEvent> events = KillEvents();
  testing::RowTable table;
  std::vector<RowCommand> pending = joiner->PendingCommands();
  EXPECT_FALSE(pending.empty());
  table.ApplyAll(pending);
  const std::map<SourcePartition, int64_t> seek = joiner->StoredOffsets();
  std::vector<ChangeEvent> rest;
  for (const ChangeEvent& e : events) {
    auto it = seek.find(e.position.partition);
    if (it == seek.end() || e.position.offset >= it->second) rest.push_back(e);
  }
  EXPECT_GT(rest.size(), 0u);
  EXPECT_LT(rest.size(), events.size() / 2 + 1);  // The child's commits survived the kill.
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Process(rest, 0, &out).ok());
  ASSERT_TRUE(joiner->Drain(&out).ok());
  table.ApplyAll(out);
  for (const RowCommand& c : pending) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
  for (const RowCommand& c : out) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
  EXPECT_EQ(table, testing::ReferenceTable(KillSchema(), events));
  EXPECT_THAT(joiner->LowestHeldOffsets(), IsEmpty());
}

// Emitted and acknowledged windows leave nothing behind: after a long run the state family
// holds only the per-partition stream times, and compaction returns the disk space.
TEST(RocksDbWindowStoreTest, PurgeKeepsTheDatabaseSmall) {
  const std::string dir = TempDir("purge");
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const TableSchema schema = testing::TwoSourceSchema(v1::IGNORE, v1::IGNORE);
  WindowedJoinerOptions options;
  options.window_ms = 20;
  options.grace_ms = 5;
  auto joiner = *WindowedJoiner::Open(schema, options, store.get());
  testing::RandomEventsOptions gen;
  gen.count = 100000;
  gen.keys = 20000;
  gen.partitions = 4;
  gen.delete_fraction = 0;
  const std::vector<ChangeEvent> events = testing::RandomEvents(5, gen);
  int64_t max_state_keys = 0;
  for (size_t next = 0; next < events.size(); next += 500) {
    std::vector<RowCommand> out;
    ASSERT_TRUE(joiner->Process(absl::MakeConstSpan(events.data() + next, 500), 0, &out).ok());
    for (const RowCommand& c : out) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
    max_state_keys = std::max(max_state_keys, joiner->stats().state_keys);
  }
  // Live state is bounded by the keys of a window + grace of event time, not by all keys.
  EXPECT_LT(max_state_keys, 2000);
  std::vector<RowCommand> out;
  ASSERT_TRUE(joiner->Drain(&out).ok());
  for (const RowCommand& c : out) ASSERT_TRUE(joiner->Acknowledge(c.covers).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  int records = 0;
  ASSERT_TRUE(store
                  ->Scan("",
                         [&](absl::string_view, absl::string_view) {
                           ++records;
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_EQ(records, 4);  // One stream time per partition.
  EXPECT_LT(store->IntProperty("rocksdb.total-sst-files-size"), 16u * 1024);
  EXPECT_EQ(joiner->stats().state_keys, 0);
}

}  // namespace
}  // namespace cdcjoin
