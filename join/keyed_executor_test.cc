#include "join/keyed_executor.h"

#include <atomic>
#include <cstdio>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

// A test command: which key, its place in that key's submission order, and what the sink should
// do with it. `payload` shows whether a refused command was left untouched.
struct Cmd {
  uint64_t key = 0;
  int seq = 0;
  int64_t id = 0;
  bool fail = false;
  int latency_us = 0;
  std::string payload;
};

using Executor = KeyedExecutor<Cmd>;

// What the sink and the completion callback observed.
class Recorder {
 public:
  explicit Recorder(const KeyedExecutorOptions& options) : options_(options) {}

  absl::Status Sink(int worker, absl::Span<Cmd> batch) {
    const int calls = ++calls_in_sink_;
    const int cmds = cmds_in_sink_ += static_cast<int>(batch.size());
    UpdateMax(&max_calls_in_sink_, calls);
    UpdateMax(&max_cmds_in_sink_, cmds);
    bool fail = false;
    int latency_us = 0;
    {
      absl::MutexLock lock(&mu_);
      if (worker < 0 || worker >= options_.num_workers) ++violations_;
      if (batch.empty() || static_cast<int>(batch.size()) > options_.max_batch_size) ++violations_;
      absl::flat_hash_set<uint64_t> keys;
      int run = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        const Cmd& c = batch[i];
        if (i > 0 && batch[i - 1].key == c.key) {
          ++run;
        } else {
          run = 1;
          if (!keys.insert(c.key).second) ++violations_;  // a key's commands are not adjacent
        }
        if (run > options_.max_per_key) ++violations_;
        ran_[c.key].push_back(c.seq);
        ++run_count_[c.id];
        fail |= c.fail;
        latency_us = std::max(latency_us, c.latency_us);
      }
      batch_sizes_.push_back(static_cast<int>(batch.size()));
    }
    if (latency_us > 0) absl::SleepFor(absl::Microseconds(latency_us));
    cmds_in_sink_ -= static_cast<int>(batch.size());
    --calls_in_sink_;
    if (fail) return absl::InternalError(absl::StrCat("injected failure, batch of ", batch.size()));
    return absl::OkStatus();
  }

  void Complete(uint64_t key, const Cmd& c, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (c.key != key) ++violations_;
    outcomes_[c.id].push_back(status.code());
    ++completions_;
  }

  Executor::Sink sink() {
    return [this](int worker, absl::Span<Cmd> batch) { return Sink(worker, batch); };
  }
  Executor::Completion completion() {
    return [this](uint64_t key, const Cmd& c, const absl::Status& s) { Complete(key, c, s); };
  }

  int completions() {
    absl::MutexLock lock(&mu_);
    return completions_;
  }
  std::vector<int> ran(uint64_t key) {
    absl::MutexLock lock(&mu_);
    return ran_[key];
  }
  std::vector<absl::StatusCode> outcomes(int64_t id) {
    absl::MutexLock lock(&mu_);
    return outcomes_[id];
  }
  int run_count(int64_t id) {
    absl::MutexLock lock(&mu_);
    auto it = run_count_.find(id);
    return it == run_count_.end() ? 0 : it->second;
  }
  std::vector<int> batch_sizes() {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }
  int violations() {
    absl::MutexLock lock(&mu_);
    return violations_;
  }
  int max_cmds_in_sink() const { return max_cmds_in_sink_.load(); }
  int max_calls_in_sink() const { return max_calls_in_sink_.load(); }

 private:
  static void UpdateMax(std::atomic<int>* max, int value) {
    int seen = max->load();
    while (value > seen && !max->compare_exchange_weak(seen, value)) {
    }
  }

  const KeyedExecutorOptions options_;
  std::atomic<int> calls_in_sink_{0};
  std::atomic<int> cmds_in_sink_{0};
  std::atomic<int> max_calls_in_sink_{0};
  std::atomic<int> max_cmds_in_sink_{0};
  absl::Mutex mu_;
  std::map<uint64_t, std::vector<int>> ran_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int> run_count_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::vector<absl::StatusCode>> outcomes_ ABSL_GUARDED_BY(mu_);
  std::vector<int> batch_sizes_ ABSL_GUARDED_BY(mu_);
  int completions_ ABSL_GUARDED_BY(mu_) = 0;
  int violations_ ABSL_GUARDED_BY(mu_) = 0;
};

std::unique_ptr<Executor> MustCreate(const KeyedExecutorOptions& options, Recorder* recorder) {
  auto executor = Executor::Create(options, recorder->sink(), recorder->completion());
  EXPECT_TRUE(executor.ok()) << executor.status();
  return std::move(executor).value();
}

Cmd MakeCmd(uint64_t key, int seq, int64_t id, bool fail = false, int latency_us = 0) {
  Cmd c;
  c.key = key;
  c.seq = seq;
  c.id = id;
  c.fail = fail;
  c.latency_us = latency_us;
  c.payload = absl::StrCat("payload-", id);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Property test over random workloads.

// One accepted command, as its submitter saw it.
struct Accepted {
  int64_t id;
  int seq;
};

// Per key, what its (only) submitter did: accepted commands in order, and the positions in that
// list where it called ResumeKey() (the next accepted command comes after the resume).
struct KeyLog {
  std::vector<Accepted> accepted;
  std::vector<size_t> resumes;
  int rejected_stopped = 0;
  int rejected_full = 0;
};

struct WorkloadParams {
  uint32_t seed;
  KeyedExecutorOptions options;
  int submitters;
  int commands_per_submitter;
  int key_space;
  double fail_probability;
  bool end_with_shutdown;
};

WorkloadParams RandomParams(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  WorkloadParams p;
  p.seed = seed;
  p.options.num_workers = pick(1, 8);
  p.options.max_in_flight = pick(1, 16);
  p.options.max_batch_size = pick(0, 1) ? 1 : pick(2, 8);
  p.options.max_batch_delay = pick(0, 2) == 0 ? absl::Microseconds(pick(50, 400)) : absl::ZeroDuration();
  p.options.max_pending = pick(0, 1) ? pick(1, 8) : pick(16, 256);
  p.submitters = pick(1, 3);
  p.commands_per_submitter = 1500 / p.submitters;
  p.key_space = pick(0, 1) ? pick(2, 12) : pick(50, 400);
  p.fail_probability = std::uniform_real_distribution<double>(0.0, 0.05)(rng);
  p.end_with_shutdown = pick(0, 1) == 1;
  p.options.max_per_key = pick(0, 1) ? 1 : pick(2, 6);
  return p;
}

std::string Describe(const WorkloadParams& p) {
  return absl::StrCat("seed=", p.seed, " workers=", p.options.num_workers,
                      " in_flight=", p.options.max_in_flight, " batch=", p.options.max_batch_size,
                      " per_key=", p.options.max_per_key,
                      " delay=", absl::FormatDuration(p.options.max_batch_delay),
                      " max_pending=", p.options.max_pending, " submitters=", p.submitters,
                      " keys=", p.key_space, " p_fail=", p.fail_probability,
                      " shutdown=", p.end_with_shutdown);
}

class KeyedExecutorPropertyTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(KeyedExecutorPropertyTest, RandomWorkloadKeepsEveryGuarantee) {
  const WorkloadParams p = RandomParams(GetParam());
  SCOPED_TRACE(Describe(p));
  Recorder recorder(p.options);
  std::unique_ptr<Executor> executor = MustCreate(p.options, &recorder);

  // Submitter t owns the keys k with k % submitters == t, so each key has one submission order.
  std::vector<std::map<uint64_t, KeyLog>> logs(p.submitters);
  std::atomic<int> flush_violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < p.submitters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(p.seed * 7919u + t);
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      std::map<uint64_t, KeyLog>& log = logs[t];
      std::map<uint64_t, int> next_seq;
      std::vector<int64_t> accepted_ids;
      for (int i = 0; i < p.commands_per_submitter; ++i) {
        const int slot = std::uniform_int_distribution<int>(0, p.key_space - 1)(rng);
        const uint64_t key = static_cast<uint64_t>(slot) * p.submitters + t;
        const double r = unit(rng);
        const int latency_us = r < 0.7 ? 0 : r < 0.97 ? static_cast<int>(unit(rng) * 200)
                                                     : static_cast<int>(unit(rng) * 2000);
        const int64_t id = static_cast<int64_t>(t) * 1000000 + i;
        Cmd c = MakeCmd(key, next_seq[key], id, unit(rng) < p.fail_probability, latency_us);
        const bool try_submit = unit(rng) < 0.3;
        absl::Status s;
        for (;;) {
          s = try_submit ? executor->TrySubmit(key, std::move(c)) : executor->Submit(key, std::move(c));
          if (s.code() != absl::StatusCode::kResourceExhausted) break;
          EXPECT_EQ(c.payload, absl::StrCat("payload-", id));  // refused: untouched
          ++log[key].rejected_full;
          std::this_thread::yield();
        }
        if (s.ok()) {
          log[key].accepted.push_back({id, next_seq[key]++});
          accepted_ids.push_back(id);
        } else {
          EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
          EXPECT_EQ(c.payload, absl::StrCat("payload-", id));  // refused: untouched
          ++log[key].rejected_stopped;
          if (unit(rng) < 0.5) {
            EXPECT_TRUE(executor->ResumeKey(key));
            log[key].resumes.push_back(log[key].accepted.size());
          }
        }
        if (unit(rng) < 0.004) {
          // Everything this thread had accepted must be finished when Flush() returns.
          executor->Flush().IgnoreError();  // which thread sees an error is a race
          for (int64_t done : accepted_ids) {
            if (recorder.outcomes(done).size() != 1) ++flush_violations;
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  if (p.end_with_shutdown) {
    executor->Shutdown().IgnoreError();
  } else {
    executor->Flush().IgnoreError();
  }
  const KeyedExecutorStats stats = executor->GetStats();
  executor.reset();
  EXPECT_EQ(flush_violations.load(), 0);

  // Bounds observed by the sink itself.
  EXPECT_EQ(recorder.violations(), 0) << "bad worker index, batch size or key run in batch";
  EXPECT_LE(recorder.max_cmds_in_sink(), p.options.max_in_flight);
  EXPECT_LE(recorder.max_calls_in_sink(), p.options.num_workers);
  EXPECT_LE(stats.max_in_flight_seen, p.options.max_in_flight);

  int64_t accepted = 0, ok = 0, failed = 0, cancelled = 0, rejected = 0, resumes = 0;
  for (const auto& log : logs) {
    for (const auto& [key, k] : log) {
      SCOPED_TRACE(absl::StrCat("key ", key));
      rejected += k.rejected_stopped + k.rejected_full;
      resumes += static_cast<int64_t>(k.resumes.size());
      // The sink saw exactly the commands that ran, in submission order.
      std::vector<int> expected_run;
      // Within each stretch between resumes: OK* then optionally one failed run (the key's
      // commands in the failed sink call, at most max_per_key) followed only by cancellations.
      // Nothing after a failure ran until the submitter resumed the key.
      size_t next_resume = 0;
      bool stopped = false;
      int failed_run = 0;  // Commands of the failed sink call seen so far; 0: past it.
      for (size_t i = 0; i < k.accepted.size(); ++i) {
        while (next_resume < k.resumes.size() && k.resumes[next_resume] <= i) {
          EXPECT_TRUE(stopped) << "resumed a key that was not stopped";
          stopped = false;
          ++next_resume;
        }
        const Accepted& a = k.accepted[i];
        const std::vector<absl::StatusCode> outcome = recorder.outcomes(a.id);
        ASSERT_EQ(outcome.size(), 1u) << "command " << a.id << " reported " << outcome.size()
                                      << " times";
        ++accepted;
        const int runs = recorder.run_count(a.id);
        if (stopped && failed_run > 0 && failed_run < p.options.max_per_key &&
            outcome[0] == absl::StatusCode::kInternal) {
          EXPECT_EQ(runs, 1) << "command " << a.id;
          expected_run.push_back(a.seq);
          ++failed;
          ++failed_run;
          continue;
        }
        failed_run = 0;
        if (stopped) {
          EXPECT_EQ(outcome[0], absl::StatusCode::kCancelled) << "command " << a.id;
          EXPECT_EQ(runs, 0) << "command " << a.id << " ran after its key failed";
          ++cancelled;
          continue;
        }
        EXPECT_EQ(runs, 1) << "command " << a.id;
        expected_run.push_back(a.seq);
        if (outcome[0] == absl::StatusCode::kOk) {
          ++ok;
        } else {
          EXPECT_EQ(outcome[0], absl::StatusCode::kInternal);
          ++failed;
          stopped = true;
          failed_run = 1;
        }
      }
      EXPECT_EQ(recorder.ran(key), expected_run);
      // A refusal only happens while the key is stopped, so each resume follows a refusal.
      EXPECT_LE(k.resumes.size(), static_cast<size_t>(k.rejected_stopped));
    }
  }
  EXPECT_EQ(stats.submitted, accepted);
  EXPECT_EQ(stats.succeeded, ok);
  EXPECT_EQ(stats.failed, failed);
  EXPECT_EQ(stats.cancelled, cancelled);
  EXPECT_EQ(stats.rejected, rejected);
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.in_flight, 0);
  EXPECT_EQ(recorder.completions(), accepted);
  // Which paths this workload exercised, for whoever reads the log.
  std::printf("%s: accepted=%lld ok=%lld failed=%lld cancelled=%lld rejected=%lld resumes=%lld "
              "batches=%lld max_in_flight_seen=%lld\n",
              Describe(p).c_str(), static_cast<long long>(accepted), static_cast<long long>(ok),
              static_cast<long long>(failed), static_cast<long long>(cancelled),
              static_cast<long long>(rejected), static_cast<long long>(resumes),
              static_cast<long long>(stats.batches),
              static_cast<long long>(stats.max_in_flight_seen));
}

INSTANTIATE_TEST_SUITE_P(Seeds, KeyedExecutorPropertyTest, ::testing::Range(1u, 25u));

// ---------------------------------------------------------------------------------------------
// Targeted behaviour.

KeyedExecutorOptions Options(int workers, int in_flight, int batch = 1, int64_t max_pending = 1024) {
  KeyedExecutorOptions o;
  o.num_workers = workers;
  o.max_in_flight = in_flight;
  o.max_batch_size = batch;
  o.max_pending = max_pending;
  return o;
}

// Polls until `done` (bounded by the test timeout); no timing is asserted.
template <typename F>
void WaitUntil(F done) {
  while (!done()) absl::SleepFor(absl::Milliseconds(1));
}

TEST(KeyedExecutorTest, CreateRejectsBadOptions) {
  Recorder recorder(KeyedExecutorOptions{});
  for (auto mutate : std::vector<std::function<void(KeyedExecutorOptions*)>>{
           [](KeyedExecutorOptions* o) { o->num_workers = 0; },
           [](KeyedExecutorOptions* o) { o->max_in_flight = 0; },
           [](KeyedExecutorOptions* o) { o->max_batch_size = 0; },
           [](KeyedExecutorOptions* o) { o->max_per_key = 0; },
           [](KeyedExecutorOptions* o) { o->max_pending = 0; },
           [](KeyedExecutorOptions* o) { o->max_batch_delay = absl::Milliseconds(-1); }}) {
    KeyedExecutorOptions o;
    mutate(&o);
    EXPECT_EQ(Executor::Create(o, recorder.sink()).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Executor::Create(KeyedExecutorOptions{}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyedExecutorTest, FlushReturnsFirstErrorOnceAndOtherKeysGoOn) {
  const KeyedExecutorOptions o = Options(2, 4);
  Recorder recorder(o);
  auto executor = MustCreate(o, &recorder);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(executor->Submit(i, MakeCmd(i, 0, i, /*fail=*/i == 3)).ok());
  }
  const absl::Status first = executor->Flush();
  EXPECT_EQ(first.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(recorder.completions(), 10);  // Flush() waited for every command
  EXPECT_TRUE(executor->Flush().ok());    // the error is reported once
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(recorder.outcomes(i),
              std::vector<absl::StatusCode>{i == 3 ? absl::StatusCode::kInternal
                                                   : absl::StatusCode::kOk});
  }
  EXPECT_TRUE(executor->IsKeyStopped(3));
  EXPECT_FALSE(executor->IsKeyStopped(4));
  EXPECT_TRUE(executor->Submit(4, MakeCmd(4, 1, 100)).ok());
  EXPECT_TRUE(executor->Flush().ok());
  EXPECT_EQ(recorder.ran(4), (std::vector<int>{0, 1}));
}

TEST(KeyedExecutorTest, FailureStopsKeyCancelsQueuedAndRefusesUntilResume) {
  const KeyedExecutorOptions o = Options(2, 2);
  absl::Notification gate;
  Recorder recorder(o);
  auto executor =
      Executor::Create(
          o,
          [&](int worker, absl::Span<Cmd> batch) {
            if (batch[0].key == 1 && batch[0].seq == 0) gate.WaitForNotification();
            return recorder.Sink(worker, batch);
          },
          recorder.completion())
          .value();
  ASSERT_TRUE(executor->Submit(1, MakeCmd(1, 0, 10, /*fail=*/true)).ok());
  ASSERT_TRUE(executor->Submit(1, MakeCmd(1, 1, 11)).ok());
  ASSERT_TRUE(executor->Submit(1, MakeCmd(1, 2, 12)).ok());
  ASSERT_TRUE(executor->Submit(2, MakeCmd(2, 0, 20)).ok());
  gate.Notify();
  const absl::Status error = executor->Flush();
  EXPECT_EQ(error.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(recorder.ran(1), std::vector<int>{0});
  EXPECT_EQ(recorder.outcomes(10), std::vector<absl::StatusCode>{absl::StatusCode::kInternal});
  EXPECT_EQ(recorder.outcomes(11), std::vector<absl::StatusCode>{absl::StatusCode::kCancelled});
  EXPECT_EQ(recorder.outcomes(12), std::vector<absl::StatusCode>{absl::StatusCode::kCancelled});
  EXPECT_EQ(recorder.outcomes(20), std::vector<absl::StatusCode>{absl::StatusCode::kOk});

  Cmd refused = MakeCmd(1, 3, 13);
  const absl::Status s = executor->Submit(1, std::move(refused));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.payload, "payload-13");  // left untouched for the caller to retry
  EXPECT_TRUE(executor->ResumeKey(1));
  EXPECT_FALSE(executor->ResumeKey(1));
  EXPECT_TRUE(executor->Submit(1, std::move(refused)).ok());
  EXPECT_TRUE(executor->Flush().ok());
  EXPECT_EQ(recorder.ran(1), (std::vector<int>{0, 3}));
  const KeyedExecutorStats stats = executor->GetStats();
  EXPECT_EQ(stats.submitted, 5);
  EXPECT_EQ(stats.succeeded, 2);
  EXPECT_EQ(stats.failed, 1);
  EXPECT_EQ(stats.cancelled, 2);
  EXPECT_EQ(stats.rejected, 1);
}

TEST(KeyedExecutorTest, FreedSlotIsReusedWithoutWaitingForSlowCommand) {
  // Two slots; one is held by a blocked command. The seed's round-by-round flush would stall
  // every other command behind it; a pipelined executor keeps the free slot busy.
  const KeyedExecutorOptions o = Options(2, 2);
  absl::Notification gate;
  Recorder recorder(o);
  auto executor = Executor::Create(
                      o,
                      [&](int worker, absl::Span<Cmd> batch) {
                        if (batch[0].key == 0) gate.WaitForNotification();
                        return recorder.Sink(worker, batch);
                      },
                      recorder.completion())
                      .value();
  ASSERT_TRUE(executor->Submit(0, MakeCmd(0, 0, 0)).ok());
  for (int i = 1; i <= 50; ++i) ASSERT_TRUE(executor->Submit(i, MakeCmd(i, 0, i)).ok());
  WaitUntil([&] { return recorder.completions() == 50; });
  EXPECT_TRUE(recorder.outcomes(0).empty());  // still blocked, yet the other 50 are done
  gate.Notify();
  EXPECT_TRUE(executor->Flush().ok());
  EXPECT_EQ(recorder.completions(), 51);
}

TEST(KeyedExecutorTest, TrySubmitReportsFullAndSubmitBlocksUntilSpace) {
  const KeyedExecutorOptions o = Options(1, 1, 1, /*max_pending=*/3);
  absl::Notification gate;
  Recorder recorder(o);
  auto executor = Executor::Create(
                      o,
                      [&](int worker, absl::Span<Cmd> batch) {
                        gate.WaitForNotification();
                        return recorder.Sink(worker, batch);
                      },
                      recorder.completion())
                      .value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(executor->TrySubmit(i, MakeCmd(i, 0, i)).ok());
  Cmd extra = MakeCmd(3, 0, 3);
  EXPECT_EQ(executor->TrySubmit(3, std::move(extra)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(extra.payload, "payload-3");
  EXPECT_EQ(executor->GetStats().pending, 3);

  std::atomic<bool> returned{false};
  absl::Status blocked_status;
  std::thread submitter([&] {
    blocked_status = executor->Submit(3, std::move(extra));
    returned = true;
  });
  absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(returned.load());  // nothing finished, so there is no room yet
  gate.Notify();
  submitter.join();
  EXPECT_TRUE(blocked_status.ok()) << blocked_status;
  EXPECT_TRUE(executor->Flush().ok());
  EXPECT_EQ(recorder.completions(), 4);
  EXPECT_EQ(executor->GetStats().rejected, 1);
}

TEST(KeyedExecutorTest, DestructorDrainsEverythingAccepted) {
  const KeyedExecutorOptions o = Options(2, 2);
  Recorder recorder(o);
  {
    auto executor = MustCreate(o, &recorder);
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(executor->Submit(i % 4, MakeCmd(i % 4, i / 4, i, false, 300)).ok());
    }
  }  // ~KeyedExecutor drains
  EXPECT_EQ(recorder.completions(), 40);
  for (uint64_t k = 0; k < 4; ++k) {
    EXPECT_EQ(recorder.ran(k), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
}

TEST(KeyedExecutorTest, ShutdownCancelPendingReportsQueuedAndLetsInFlightFinish) {
  const KeyedExecutorOptions o = Options(1, 1);
  absl::Notification gate;
  Recorder recorder(o);
  auto executor = Executor::Create(
                      o,
                      [&](int worker, absl::Span<Cmd> batch) {
                        gate.WaitForNotification();
                        return recorder.Sink(worker, batch);
                      },
                      recorder.completion())
                      .value();
  ASSERT_TRUE(executor->Submit(1, MakeCmd(1, 0, 10)).ok());
  WaitUntil([&] { return executor->GetStats().in_flight == 1; });
  ASSERT_TRUE(executor->Submit(1, MakeCmd(1, 1, 11)).ok());
  ASSERT_TRUE(executor->Submit(2, MakeCmd(2, 0, 20)).ok());
  absl::Status shutdown_status;
  std::thread closer([&] { shutdown_status = executor->Shutdown(KeyedExecutorShutdown::kCancelPending); });
  WaitUntil([&] { return recorder.completions() == 2; });  // the two queued ones, cancelled
  EXPECT_EQ(recorder.outcomes(11), std::vector<absl::StatusCode>{absl::StatusCode::kCancelled});
  EXPECT_EQ(recorder.outcomes(20), std::vector<absl::StatusCode>{absl::StatusCode::kCancelled});
  gate.Notify();
  closer.join();
  EXPECT_TRUE(shutdown_status.ok());
  EXPECT_EQ(recorder.outcomes(10), std::vector<absl::StatusCode>{absl::StatusCode::kOk});
  EXPECT_EQ(recorder.ran(1), std::vector<int>{0});
  EXPECT_TRUE(recorder.ran(2).empty());
  EXPECT_EQ(executor->Submit(3, MakeCmd(3, 0, 30)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(executor->Shutdown().ok());  // idempotent
}

TEST(KeyedExecutorTest, ShutdownWakesBlockedSubmitter) {
  const KeyedExecutorOptions o = Options(1, 1, 1, /*max_pending=*/1);
  absl::Notification gate;
  Recorder recorder(o);
  auto executor = Executor::Create(
                      o,
                      [&](int worker, absl::Span<Cmd> batch) {
                        gate.WaitForNotification();
                        return recorder.Sink(worker, batch);
                      },
                      recorder.completion())
                      .value();
  ASSERT_TRUE(executor->Submit(1, MakeCmd(1, 0, 10)).ok());
  absl::Status blocked_status;
  std::thread submitter([&] { blocked_status = executor->Submit(2, MakeCmd(2, 0, 20)); });
  std::thread closer([&] { executor->Shutdown().IgnoreError(); });
  submitter.join();  // returns although no space was freed
  EXPECT_EQ(blocked_status.code(), absl::StatusCode::kFailedPrecondition);
  gate.Notify();
  closer.join();
  EXPECT_EQ(recorder.completions(), 1);
}

TEST(KeyedExecutorTest, BulkBatchesHoldDistinctKeysAndFillUpToMaxBatchSize) {
  KeyedExecutorOptions o = Options(1, 100, /*batch=*/10);
  o.max_batch_delay = absl::Seconds(30);  // only a full batch or Flush() dispatches
  Recorder recorder(o);
  auto executor = MustCreate(o, &recorder);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(executor->Submit(i, MakeCmd(i, 0, i)).ok());
  WaitUntil([&] { return recorder.completions() == 10; });  // a full batch goes at once
  // Same key twice: its second command must wait for the first, so it lands in a later batch.
  ASSERT_TRUE(executor->Submit(100, MakeCmd(100, 0, 100)).ok());
  ASSERT_TRUE(executor->Submit(100, MakeCmd(100, 1, 101)).ok());
  ASSERT_TRUE(executor->Submit(200, MakeCmd(200, 0, 200)).ok());
  EXPECT_TRUE(executor->Flush().ok());  // ends the wait for a full batch
  EXPECT_EQ(recorder.batch_sizes(), (std::vector<int>{10, 2, 1}));
  EXPECT_EQ(recorder.ran(100), (std::vector<int>{0, 1}));
  EXPECT_EQ(recorder.violations(), 0);
}

// One worker taking up to 100 commands, `max_per_key` of one key.
KeyedExecutorOptions RunOptions(int max_per_key) {
  KeyedExecutorOptions o = Options(1, 100, /*batch=*/100);
  o.max_per_key = max_per_key;
  return o;
}

// Key 7's first command (id 0) holds the only worker for 100 ms, so what is submitted next
// queues up behind it.
void HoldTheWorkerWithKey7(Executor* executor) {
  ASSERT_TRUE(executor->Submit(7, MakeCmd(7, 0, 0, false, 100000)).ok());
  WaitUntil([&] { return executor->GetStats().in_flight == 1; });
}

TEST(KeyedExecutorTest, HotKeyRunGoesInOneBatchInOrder) {
  const KeyedExecutorOptions o = RunOptions(4);
  Recorder recorder(o);
  auto executor = MustCreate(o, &recorder);
  HoldTheWorkerWithKey7(executor.get());
  for (int seq = 1; seq <= 5; ++seq) ASSERT_TRUE(executor->Submit(7, MakeCmd(7, seq, seq)).ok());
  ASSERT_TRUE(executor->Submit(8, MakeCmd(8, 0, 100)).ok());
  EXPECT_TRUE(executor->Flush().ok());
  // Key 7's run of five is split at max_per_key; key 8 rides along with the first part.
  EXPECT_EQ(recorder.batch_sizes(), (std::vector<int>{1, 5, 1}));
  EXPECT_EQ(recorder.ran(7), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(recorder.violations(), 0);
  for (int id : {0, 1, 2, 3, 4, 5, 100}) {
    EXPECT_EQ(recorder.outcomes(id), std::vector<absl::StatusCode>{absl::StatusCode::kOk});
  }
  EXPECT_EQ(executor->GetStats().succeeded, 7);
}

TEST(KeyedExecutorTest, FailedRunFailsEachCommandAndCancelsTheRest) {
  const KeyedExecutorOptions o = RunOptions(2);
  Recorder recorder(o);
  auto executor = MustCreate(o, &recorder);
  HoldTheWorkerWithKey7(executor.get());
  ASSERT_TRUE(executor->Submit(7, MakeCmd(7, 1, 1)).ok());
  ASSERT_TRUE(executor->Submit(7, MakeCmd(7, 2, 2, /*fail=*/true)).ok());
  ASSERT_TRUE(executor->Submit(7, MakeCmd(7, 3, 3)).ok());
  EXPECT_EQ(executor->Flush().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(recorder.ran(7), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(recorder.outcomes(1), std::vector<absl::StatusCode>{absl::StatusCode::kInternal});
  EXPECT_EQ(recorder.outcomes(2), std::vector<absl::StatusCode>{absl::StatusCode::kInternal});
  EXPECT_EQ(recorder.outcomes(3), std::vector<absl::StatusCode>{absl::StatusCode::kCancelled});
  EXPECT_TRUE(executor->IsKeyStopped(7));
  const KeyedExecutorStats stats = executor->GetStats();
  EXPECT_EQ(stats.succeeded, 1);
  EXPECT_EQ(stats.failed, 2);
  EXPECT_EQ(stats.cancelled, 1);
  EXPECT_EQ(stats.pending, 0);
}

TEST(KeyedExecutorTest, FailedBatchStopsEveryKeyInIt) {
  KeyedExecutorOptions o = Options(1, 100, /*batch=*/4);
  o.max_batch_delay = absl::Seconds(30);
  Recorder recorder(o);
  auto executor = MustCreate(o, &recorder);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(executor->Submit(i, MakeCmd(i, 0, i, i == 2)).ok());
  EXPECT_EQ(executor->Flush().code(), absl::StatusCode::kInternal);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(recorder.outcomes(i), std::vector<absl::StatusCode>{absl::StatusCode::kInternal});
    EXPECT_TRUE(executor->IsKeyStopped(i));
  }
  executor->ResumeAllKeys();
  EXPECT_EQ(executor->GetStats().stopped_keys, 0);
}

}  // namespace
}  // namespace cdcjoin
