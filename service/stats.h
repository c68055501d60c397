#ifndef CDCJOIN_SERVICE_STATS_H_
#define CDCJOIN_SERVICE_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/dead_letter_sink.h"
#include "service/record_decoder.h"

namespace cdcjoin {

// A latency histogram with power-of-two microsecond buckets: lock-free to record from every
// lane, good enough for p50/p99 in status and metrics.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 32;

  void Record(absl::Duration latency);
  // The upper bound of the bucket holding the q-quantile (0 < q <= 1); zero when empty.
  absl::Duration Quantile(double q) const;
  int64_t Count() const;
  // Bucket i counts latencies below 2^i µs (and at least 2^(i-1) µs).
  std::array<int64_t, kBuckets> Buckets() const;
  // The sum of every recorded latency, in µs (a Prometheus histogram's _sum).
  int64_t SumMicros() const;

 private:
  std::array<std::atomic<int64_t>, kBuckets> buckets_{};
  std::atomic<int64_t> sum_micros_{0};
};

// Counters every component bumps; the admin API and the logs read them. Relaxed atomics: they
// are statistics, not synchronisation.
struct PipelineStats {
  std::atomic<int64_t> events_create{0};
  std::atomic<int64_t> events_update{0};
  std::atomic<int64_t> events_read{0};
  std::atomic<int64_t> events_delete{0};
  std::atomic<int64_t> tombstones{0};
  std::atomic<int64_t> skipped_ops{0};    // Debezium t (truncate) and m (message).
  std::atomic<int64_t> skipped_nulls{0};  // skip_event_if_null.
  std::atomic<int64_t> dead_lettered{0};  // Every reason; the reasons below add up to it.
  // Indexed by DeadLetterReason (service/dead_letter_sink.h).
  std::array<std::atomic<int64_t>, kDeadLetterReasonCount> dead_lettered_by_reason{};
  // Records dead-lettered before they became events (the rest were counted as events already).
  std::atomic<int64_t> dead_lettered_undecoded{0};
  // Events whose record key and row image carried different key values (key_source wins).
  std::atomic<int64_t> key_disagreements{0};
  std::atomic<int64_t> ignored_by_policy{0};        // Deletes of a source whose on_delete: IGNORE.
  std::atomic<int64_t> commands{0};
  std::atomic<int64_t> rows_written{0};
  std::atomic<int64_t> batches{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> deadlocks{0};
  // Writes the stale-write guard refused (RowWriter::TakeStaleWritesStopped).
  std::atomic<int64_t> stale_writes_stopped{0};
  std::atomic<int64_t> late_drops{0};
  std::atomic<int64_t> windows_opened{0};
  std::atomic<int64_t> windows_emitted{0};
  std::atomic<int64_t> offset_commits{0};
  std::atomic<int64_t> data_loss_partitions{0};
  LatencyHistogram sink_latency;

  // Counts a decoded record by what it turned into (and, for an event, its Debezium op).
  void CountDecoded(DecodeOutcome outcome, char op);

  // Every record consumed from the source topics, whatever became of it.
  int64_t EventsConsumed() const;

  void RecordError(const std::string& message);
  // The last error and when it happened; empty when none.
  std::string LastError(absl::Time* when) const;

 private:
  mutable absl::Mutex error_mu_;
  std::string last_error_ ABSL_GUARDED_BY(error_mu_);
  absl::Time last_error_time_ ABSL_GUARDED_BY(error_mu_);
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_STATS_H_
