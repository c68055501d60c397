// Keyed ordered executor benchmark: the seed's "CDC Migration Producer" test, re-run here.
//
//   bazel run -c opt //tests/bench:keyed_executor_bench [-- --skip_sequential]
//
// Setup copied from the seed: every I/O is a 10 ms timed wait; 1,000 and 10,000 records whose
// keys repeat every fifth record (1,2,3,4,5,5,6,7,8,9,10,10,11,...), so the deepest key holds 2
// commands. Measured in the same run: one at a time; the seed's round-by-round algorithm
// (ComplexCommandProducer, flush trigger 100) re-implemented in C++; KeyedExecutor with one
// command per I/O at in-flight 100; KeyedExecutor with bulk I/O (one 10 ms wait per batch). The
// seed's published figures are printed beside them. Then the executor's own cost: commands/s
// through a sink that does nothing, and resident memory per million pending commands. The last
// line of output is one JSON object holding every figure printed.

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "join/keyed_executor.h"

ABSL_FLAG(bool, skip_sequential, false,
          "Do not measure the one-at-a-time run (it takes 110 s); print N x io_ms instead, marked "
          "as not measured.");
ABSL_FLAG(int, io_ms, 10, "Duration of one I/O (a timed wait in the sink), as in the seed.");
ABSL_FLAG(int64_t, overhead_commands, 2000000, "Commands pushed through the no-op sink.");
ABSL_FLAG(int64_t, memory_commands, 1000000, "Pending commands held for the memory figure.");

namespace cdcjoin {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// VmRSS / VmHWM from /proc/self/status, in kB.
int64_t ProcStatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

struct BenchCmd {
  uint64_t key;
  int64_t index;
};

// The seed's salt: 1,2,3,4,5,5,6,7,8,9,10,10,11,... (every fifth key appears twice in a row).
std::vector<BenchCmd> SeedRecords(int64_t n) {
  std::vector<BenchCmd> records;
  records.reserve(n);
  uint64_t key = 1;
  while (static_cast<int64_t>(records.size()) < n) {
    records.push_back({key, static_cast<int64_t>(records.size())});
    if (key % 5 == 0 && static_cast<int64_t>(records.size()) < n) {
      records.push_back({key, static_cast<int64_t>(records.size())});
    }
    ++key;
  }
  return records;
}

int MaxDepth(const std::vector<BenchCmd>& records) {
  std::unordered_map<uint64_t, int> depth;
  int max_depth = 0;
  for (const BenchCmd& r : records) max_depth = std::max(max_depth, ++depth[r.key]);
  return max_depth;
}

// Per-key order and exactly-once, checked on every run so a fast figure is never a wrong one.
class OrderCheck {
 public:
  explicit OrderCheck(const std::vector<BenchCmd>& records) {
    for (const BenchCmd& r : records) expected_[r.key].push_back(r.index);
  }
  void Ran(const BenchCmd& c) {
    absl::MutexLock lock(&mu_);
    seen_[c.key].push_back(c.index);
  }
  bool Ok() {
    absl::MutexLock lock(&mu_);
    return seen_ == expected_;
  }

 private:
  std::unordered_map<uint64_t, std::vector<int64_t>> expected_;
  absl::Mutex mu_;
  std::unordered_map<uint64_t, std::vector<int64_t>> seen_ ABSL_GUARDED_BY(mu_);
};

void Io(absl::Duration io) { absl::SleepFor(io); }

// ---- One at a time --------------------------------------------------------------------------

double RunSequential(const std::vector<BenchCmd>& records, absl::Duration io) {
  OrderCheck check(records);
  const auto start = Clock::now();
  for (const BenchCmd& r : records) {
    Io(io);
    check.Ran(r);
  }
  const double ms = MsSince(start);
  if (!check.Ok()) {
    std::fprintf(stderr, "sequential run broke per-key order\n");
    std::exit(1);
  }
  return ms;
}

// ---- The seed's round-by-round producer -------------------------------------------------------

// A fixed pool that runs a group of tasks concurrently and waits for all of them: the seed's
// `commands.map { async { it.execute() } }.awaitAll()` on Dispatchers.IO. Threads are started
// once, so thread creation is not charged to the rounds.
class RoundPool {
 public:
  explicit RoundPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~RoundPool() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }
  void RunAll(std::vector<std::function<void()>> tasks) {
    absl::MutexLock lock(&mu_);
    remaining_ += static_cast<int>(tasks.size());
    for (auto& t : tasks) queue_.push_back(std::move(t));
    mu_.Await(absl::Condition(
        +[](int* remaining) { return *remaining == 0; }, &remaining_));
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &RoundPool::HasWorkOrStop));
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
      absl::MutexLock lock(&mu_);
      --remaining_;
    }
  }
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || !queue_.empty();
  }

  absl::Mutex mu_;
  std::list<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  int remaining_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// ComplexCommandProducer, from the seed's Kotlin: per-key queues in insertion order
// (LinkedHashMap); once `trigger` keys are stored, take the head command of the first `trigger`
// keys, run them concurrently, wait for all (one round), repeat; flushAll at the end.
class SeedRoundProducer {
 public:
  SeedRoundProducer(int trigger, RoundPool* pool, std::function<void(const BenchCmd&)> execute)
      : trigger_(trigger), pool_(pool), execute_(std::move(execute)) {}

  void Send(const BenchCmd& record) {
    Add(record);
    if (static_cast<int>(storage_.size()) >= trigger_) FlushLine();
  }

  void Flush() {  // flushAll()
    for (;;) {
      std::vector<BenchCmd> commands = GetCommands();
      if (commands.empty()) break;
      DoSend(commands);
    }
  }

  int rounds() const { return rounds_; }

 private:
  struct Entry {
    std::list<BenchCmd> queue;
    std::list<uint64_t>::iterator order;
  };

  void Add(const BenchCmd& record) {
    auto it = storage_.find(record.key);
    if (it == storage_.end()) {  // getOrPut: a new key goes to the end of the insertion order
      order_.push_back(record.key);
      it = storage_.emplace(record.key, Entry{{}, std::prev(order_.end())}).first;
    }
    it->second.queue.push_back(record);
  }

  void FlushLine() { DoSend(GetCommands()); }

  // storage.entries.take(trigger): the head of each of the first `trigger` keys; a key whose queue
  // empties is removed (and would be re-appended at the end if it came back).
  std::vector<BenchCmd> GetCommands() {
    std::vector<BenchCmd> commands;
    auto key_it = order_.begin();
    while (key_it != order_.end() && static_cast<int>(commands.size()) < trigger_) {
      auto entry = storage_.find(*key_it);
      commands.push_back(entry->second.queue.front());
      entry->second.queue.pop_front();
      if (entry->second.queue.empty()) {
        storage_.erase(entry);
        key_it = order_.erase(key_it);
      } else {
        ++key_it;
      }
    }
    return commands;
  }

  void DoSend(const std::vector<BenchCmd>& commands) {
    if (commands.empty()) return;
    for (size_t begin = 0; begin < commands.size(); begin += trigger_) {  // chunked(trigger)
      std::vector<std::function<void()>> tasks;
      for (size_t i = begin; i < std::min(commands.size(), begin + trigger_); ++i) {
        const BenchCmd c = commands[i];
        tasks.push_back([this, c] { execute_(c); });
      }
      pool_->RunAll(std::move(tasks));  // awaitAll: the round ends with its slowest command
      ++rounds_;
    }
  }

  const int trigger_;
  RoundPool* const pool_;
  const std::function<void(const BenchCmd&)> execute_;
  std::unordered_map<uint64_t, Entry> storage_;
  std::list<uint64_t> order_;
  int rounds_ = 0;
};

double RunSeedRound(const std::vector<BenchCmd>& records, absl::Duration io, RoundPool* pool,
                    int* rounds) {
  OrderCheck check(records);
  SeedRoundProducer producer(/*trigger=*/100, pool, [&](const BenchCmd& c) {
    Io(io);
    check.Ran(c);
  });
  const auto start = Clock::now();
  for (const BenchCmd& r : records) producer.Send(r);
  producer.Flush();
  const double ms = MsSince(start);
  *rounds = producer.rounds();
  if (!check.Ok()) {
    std::fprintf(stderr, "seed round-by-round run broke per-key order\n");
    std::exit(1);
  }
  return ms;
}

// ---- KeyedExecutor ----------------------------------------------------------------------------

struct ExecutorRun {
  double ms = 0;
  int64_t batches = 0;
  int64_t max_in_flight_seen = 0;
};

// The sink does one timed wait per call, whatever the batch size: one I/O per batch.
ExecutorRun RunExecutor(const std::vector<BenchCmd>& records, absl::Duration io,
                        const KeyedExecutorOptions& options) {
  OrderCheck check(records);
  auto created = KeyedExecutor<BenchCmd>::Create(
      options, [&](int, absl::Span<BenchCmd> batch) {
        Io(io);
        for (const BenchCmd& c : batch) check.Ran(c);
        return absl::OkStatus();
      });
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<KeyedExecutor<BenchCmd>> executor = std::move(created).value();
  const auto start = Clock::now();  // workers already started, as the seed's dispatcher was
  for (const BenchCmd& r : records) {
    BenchCmd c = r;
    if (absl::Status s = executor->Submit(c.key, std::move(c)); !s.ok()) {
      std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  if (absl::Status s = executor->Flush(); !s.ok()) {
    std::fprintf(stderr, "flush: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  ExecutorRun run;
  run.ms = MsSince(start);
  const KeyedExecutorStats stats = executor->GetStats();
  run.batches = stats.batches;
  run.max_in_flight_seen = stats.max_in_flight_seen;
  if (!check.Ok() || stats.succeeded != static_cast<int64_t>(records.size())) {
    std::fprintf(stderr, "executor run broke per-key order or lost commands\n");
    std::exit(1);
  }
  return run;
}

// ---- Overhead ---------------------------------------------------------------------------------

struct OverheadRun {
  double commands_per_s = 0;      // wall clock, submitter + one worker
  double commands_per_cpu_s = 0;  // per second of CPU used by the whole process
  double cpu_cores_used = 0;
};

OverheadRun RunOverheadOnce(int64_t n, int batch) {
  KeyedExecutorOptions options;
  options.num_workers = 1;
  options.max_batch_size = batch;
  options.max_in_flight = std::max(100, batch);
  std::atomic<int64_t> ran{0};
  auto executor = KeyedExecutor<BenchCmd>::Create(options, [&](int, absl::Span<BenchCmd> b) {
                    ran.fetch_add(static_cast<int64_t>(b.size()), std::memory_order_relaxed);
                    return absl::OkStatus();
                  }).value();
  const std::vector<BenchCmd> records = SeedRecords(n);
  const double cpu0 = ProcessCpuSeconds();
  const auto start = Clock::now();
  for (const BenchCmd& r : records) {
    BenchCmd c = r;
    executor->Submit(c.key, std::move(c)).IgnoreError();
  }
  executor->Flush().IgnoreError();
  const double seconds = MsSince(start) / 1000.0;
  const double cpu = ProcessCpuSeconds() - cpu0;
  if (ran.load() != n) {
    std::fprintf(stderr, "overhead run lost commands\n");
    std::exit(1);
  }
  OverheadRun run;
  run.commands_per_s = n / seconds;
  run.commands_per_cpu_s = n / cpu;
  run.cpu_cores_used = cpu / seconds;
  return run;
}

// With `one_core`, the submitting thread is pinned to the CPU it is on before the executor starts,
// so the worker inherits the pin and both share one core: commands/s is then the rate one core
// sustains. Without it the two threads may use both cores.
OverheadRun RunOverhead(int64_t n, int batch, bool one_core) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  sched_getaffinity(0, sizeof(saved), &saved);
  if (one_core) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) std::perror("sched_setaffinity");
  }
  OverheadRun run = RunOverheadOnce(n, batch);
  sched_setaffinity(0, sizeof(saved), &saved);
  return run;
}

// ---- Memory -----------------------------------------------------------------------------------

struct MemoryRun {
  int64_t commands = 0;
  double rss_growth_mb = 0;
  double hwm_growth_mb = 0;
  double mb_per_million = 0;
  double bytes_per_command = 0;
};

// Holds `n` commands pending (the sink blocks until all are submitted) and measures how much the
// resident set grew. Run first, before other runs leave freed memory in the allocator.
MemoryRun RunMemory(int64_t n) {
  const std::vector<BenchCmd> records = SeedRecords(n);  // allocated before the baseline
  KeyedExecutorOptions options;
  options.num_workers = 1;
  options.max_in_flight = 1;
  options.max_pending = n + 1;
  absl::Notification gate;
  auto executor = KeyedExecutor<BenchCmd>::Create(options, [&](int, absl::Span<BenchCmd>) {
                    gate.WaitForNotification();
                    return absl::OkStatus();
                  }).value();
  const int64_t rss0 = ProcStatusKb("VmRSS");
  const int64_t hwm0 = ProcStatusKb("VmHWM");
  for (const BenchCmd& r : records) {
    BenchCmd c = r;
    executor->Submit(c.key, std::move(c)).IgnoreError();
  }
  const int64_t rss1 = ProcStatusKb("VmRSS");
  const int64_t hwm1 = ProcStatusKb("VmHWM");
  gate.Notify();
  executor->Flush().IgnoreError();
  MemoryRun run;
  run.commands = n;
  run.rss_growth_mb = (rss1 - rss0) / 1024.0;
  run.hwm_growth_mb = (hwm1 - hwm0) / 1024.0;
  run.mb_per_million = run.rss_growth_mb * 1e6 / n;
  run.bytes_per_command = (rss1 - rss0) * 1024.0 / n;
  return run;
}

// ---- Report -----------------------------------------------------------------------------------

struct SizeResult {
  int64_t records = 0;
  int64_t distinct_keys = 0;
  int depth = 0;
  double bound_ms = 0;
  double sequential_ms = 0;
  bool sequential_measured = true;
  double seed_round_ms = 0;
  int seed_rounds = 0;
  ExecutorRun pipelined;
  ExecutorRun bulk;
  ExecutorRun bulk_no_delay;
  double published_sequential_ms = 0;
  double published_simple_ms = 0;
  double published_complex_ms = 0;
};

std::string Ms(double ms) { return absl::StrFormat("%.0f ms", ms); }

int Main() {
  const absl::Duration io = absl::Milliseconds(absl::GetFlag(FLAGS_io_ms));
  const double io_ms = absl::GetFlag(FLAGS_io_ms);

  const MemoryRun memory = RunMemory(absl::GetFlag(FLAGS_memory_commands));

  KeyedExecutorOptions pipelined_options;
  pipelined_options.num_workers = 100;
  pipelined_options.max_in_flight = 100;
  pipelined_options.max_batch_size = 1;

  KeyedExecutorOptions bulk_options;
  bulk_options.num_workers = 16;
  bulk_options.max_batch_size = 1000;
  bulk_options.max_in_flight = 16000;
  bulk_options.max_batch_delay = absl::Milliseconds(1);
  KeyedExecutorOptions bulk_no_delay_options = bulk_options;
  bulk_no_delay_options.max_batch_delay = absl::ZeroDuration();

  RoundPool pool(100);
  std::vector<SizeResult> results;
  for (int64_t n : {int64_t{1000}, int64_t{10000}}) {
    SizeResult r;
    const std::vector<BenchCmd> records = SeedRecords(n);
    r.records = n;
    r.depth = MaxDepth(records);
    r.distinct_keys = records.back().key;
    r.bound_ms = std::max<double>(r.depth, std::ceil(n / 100.0)) * io_ms;
    r.published_sequential_ms = n == 1000 ? 10000 : 100000;
    r.published_simple_ms = n == 1000 ? 2009 : 20083;
    r.published_complex_ms = n == 1000 ? 151 : 1353;
    if (absl::GetFlag(FLAGS_skip_sequential)) {
      r.sequential_ms = n * io_ms;
      r.sequential_measured = false;
    } else {
      r.sequential_ms = RunSequential(records, io);
    }
    r.seed_round_ms = RunSeedRound(records, io, &pool, &r.seed_rounds);
    r.pipelined = RunExecutor(records, io, pipelined_options);
    r.bulk = RunExecutor(records, io, bulk_options);
    r.bulk_no_delay = RunExecutor(records, io, bulk_no_delay_options);
    results.push_back(r);
  }
  const int64_t overhead_n = absl::GetFlag(FLAGS_overhead_commands);
  const OverheadRun overhead = RunOverhead(overhead_n, 1, /*one_core=*/true);
  const OverheadRun overhead_bulk = RunOverhead(overhead_n, 64, /*one_core=*/true);
  const OverheadRun overhead_free = RunOverhead(overhead_n, 1, /*one_core=*/false);
  const OverheadRun overhead_bulk_free = RunOverhead(overhead_n, 64, /*one_core=*/false);

  const SizeResult& a = results[0];
  const SizeResult& b = results[1];
  std::printf("Keyed ordered executor vs the seed's CDC Migration Producer\n");
  std::printf("I/O = %.0f ms timed wait per sink call; keys 1,2,3,4,5,5,6,... (every fifth twice); "
              "%lld / %lld distinct keys, deepest key %d commands.\n\n",
              io_ms, static_cast<long long>(a.distinct_keys),
              static_cast<long long>(b.distinct_keys), a.depth);
  std::printf("| producer | 1,000 records | 10,000 records | seed's published (1,000 / 10,000) |\n");
  std::printf("| --- | ---: | ---: | --- |\n");
  auto seq = [](const SizeResult& r) {
    return r.sequential_measured ? Ms(r.sequential_ms)
                                 : absl::StrCat(Ms(r.sequential_ms), " (N x I/O, not measured)");
  };
  std::printf("| one at a time | %s | %s | ~10,000 / ~100,000 ms |\n", seq(a).c_str(),
              seq(b).c_str());
  std::printf("| seed's simple version | not re-implemented | not re-implemented | 2,009 / 20,083 ms |\n");
  std::printf("| seed's round-by-round (ComplexCommandProducer, trigger 100), in C++ | %s (%d rounds) "
              "| %s (%d rounds) | 151 / 1,353 ms |\n",
              Ms(a.seed_round_ms).c_str(), a.seed_rounds, Ms(b.seed_round_ms).c_str(),
              b.seed_rounds);
  std::printf("| KeyedExecutor, 1 command per I/O, in-flight 100 (100 workers) | %s | %s | "
              "bound max(depth, ceil(N/100)) x %.0f ms = %.0f / %.0f ms; target <= %.0f / %.0f ms |\n",
              Ms(a.pipelined.ms).c_str(), Ms(b.pipelined.ms).c_str(), io_ms, a.bound_ms,
              b.bound_ms, a.bound_ms * 1.1, b.bound_ms * 1.1);
  std::printf("| KeyedExecutor, bulk: batches <= 1,000 distinct keys, 16 workers, batch delay 1 ms | "
              "%s (%lld I/Os) | %s (%lld I/Os) | target <= 30 / 60 ms; floor depth x I/O = %.0f ms |\n",
              Ms(a.bulk.ms).c_str(), static_cast<long long>(a.bulk.batches),
              Ms(b.bulk.ms).c_str(), static_cast<long long>(b.bulk.batches), a.depth * io_ms);
  std::printf("| KeyedExecutor, bulk as above, batch delay 0 | %s (%lld I/Os) | %s (%lld I/Os) | |\n",
              Ms(a.bulk_no_delay.ms).c_str(), static_cast<long long>(a.bulk_no_delay.batches),
              Ms(b.bulk_no_delay.ms).c_str(), static_cast<long long>(b.bulk_no_delay.batches));
  std::printf("\nExecutor overhead (sink does nothing; 1 worker thread + the submitting thread; "
              "%lld commands, seed key pattern, default max_pending 65,536):\n",
              static_cast<long long>(overhead_n));
  std::printf("| sink call | threads on | commands/s (wall) | commands per CPU-second | CPU cores used | target |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | --- |\n");
  std::printf("| 1 command per call | one core (pinned) | %.0f | %.0f | %.2f | >= 1,000,000 /s |\n",
              overhead.commands_per_s, overhead.commands_per_cpu_s, overhead.cpu_cores_used);
  std::printf("| batches of <= 64 | one core (pinned) | %.0f | %.0f | %.2f | |\n",
              overhead_bulk.commands_per_s, overhead_bulk.commands_per_cpu_s,
              overhead_bulk.cpu_cores_used);
  std::printf("| 1 command per call | any core | %.0f | %.0f | %.2f | |\n",
              overhead_free.commands_per_s, overhead_free.commands_per_cpu_s,
              overhead_free.cpu_cores_used);
  std::printf("| batches of <= 64 | any core | %.0f | %.0f | %.2f | |\n",
              overhead_bulk_free.commands_per_s, overhead_bulk_free.commands_per_cpu_s,
              overhead_bulk_free.cpu_cores_used);
  std::printf("\nMemory: %lld pending commands (16-byte payload, seed key pattern) grew VmRSS by "
              "%.1f MB (VmHWM by %.1f MB): %.1f MB per million pending, %.0f bytes per command.\n\n",
              static_cast<long long>(memory.commands), memory.rss_growth_mb, memory.hwm_growth_mb,
              memory.mb_per_million, memory.bytes_per_command);

  auto size_json = [&](const SizeResult& r) {
    return absl::StrFormat(
        "{\"sequential_ms\": %.1f, \"sequential_measured\": %s, \"seed_round_ms\": %.1f, "
        "\"seed_rounds\": %d, \"pipelined_ms\": %.1f, \"pipelined_io_calls\": %d, "
        "\"pipelined_max_in_flight\": %d, \"bulk_ms\": %.1f, \"bulk_io_calls\": %d, "
        "\"bulk_no_delay_ms\": %.1f, \"bulk_no_delay_io_calls\": %d, \"bound_ms\": %.0f, "
        "\"depth\": %d, \"distinct_keys\": %d, \"published_sequential_ms\": %.0f, "
        "\"published_simple_ms\": %.0f, \"published_complex_ms\": %.0f}",
        r.sequential_ms, r.sequential_measured ? "true" : "false", r.seed_round_ms, r.seed_rounds,
        r.pipelined.ms, r.pipelined.batches, r.pipelined.max_in_flight_seen, r.bulk.ms,
        r.bulk.batches, r.bulk_no_delay.ms, r.bulk_no_delay.batches, r.bound_ms, r.depth,
        r.distinct_keys, r.published_sequential_ms, r.published_simple_ms, r.published_complex_ms);
  };
  std::printf(
      "%s\n",
      absl::StrFormat(
      "{\"io_ms\": %.0f, \"records_1000\": %s, \"records_10000\": %s, "
      "\"overhead_commands_per_s\": %.0f, \"overhead_commands_per_cpu_s\": %.0f, "
      "\"overhead_cpu_cores\": %.2f, \"overhead_bulk64_commands_per_s\": %.0f, "
      "\"overhead_bulk64_commands_per_cpu_s\": %.0f, \"overhead_bulk64_cpu_cores\": %.2f, "
      "\"overhead_any_core_commands_per_s\": %.0f, \"overhead_any_core_cpu_cores\": %.2f, "
      "\"overhead_any_core_bulk64_commands_per_s\": %.0f, "
      "\"memory_pending_commands\": %d, \"memory_rss_growth_mb\": %.1f, "
      "\"memory_hwm_growth_mb\": %.1f, \"memory_mb_per_million_pending\": %.1f, "
      "\"memory_bytes_per_pending_command\": %.0f}",
      io_ms, size_json(a), size_json(b), overhead.commands_per_s, overhead.commands_per_cpu_s,
      overhead.cpu_cores_used, overhead_bulk.commands_per_s, overhead_bulk.commands_per_cpu_s,
      overhead_bulk.cpu_cores_used, overhead_free.commands_per_s, overhead_free.cpu_cores_used,
      overhead_bulk_free.commands_per_s, memory.commands, memory.rss_growth_mb, memory.hwm_growth_mb,
      memory.mb_per_million, memory.bytes_per_command).c_str());
  return 0;
}

}  // namespace
}  // namespace cdcjoin

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return cdcjoin::Main();
}
