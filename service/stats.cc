#include "service/stats.h"

#include <algorithm>

namespace cdcjoin {

void LatencyHistogram::Record(absl::Duration latency) {
  const int64_t micros = std::max<int64_t>(0, absl::ToInt64Microseconds(latency));
  int bucket = 0;
  while (bucket < kBuckets - 1 && (int64_t{1} << bucket) <= micros) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(micros, std::memory_order_relaxed);
}

int64_t LatencyHistogram::SumMicros() const { return sum_micros_.load(std::memory_order_relaxed); }

int64_t LatencyHistogram::Count() const {
  int64_t total = 0;
  for (const auto& bucket : buckets_) total += bucket.load(std::memory_order_relaxed);
  return total;
}

std::array<int64_t, LatencyHistogram::kBuckets> LatencyHistogram::Buckets() const {
  std::array<int64_t, kBuckets> counts;
  for (int i = 0; i < kBuckets; ++i) counts[i] = buckets_[i].load(std::memory_order_relaxed);
  return counts;
}

absl::Duration LatencyHistogram::Quantile(double q) const {
  const std::array<int64_t, kBuckets> counts = Buckets();
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (total == 0) return absl::ZeroDuration();
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(q * total + 0.5));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen >= rank) return absl::Microseconds(int64_t{1} << i);
  }
  return absl::Microseconds(int64_t{1} << (kBuckets - 1));
}

int64_t PipelineStats::EventsConsumed() const {
  return events_create.load() + events_update.load() + events_read.load() +
         events_delete.load() + tombstones.load() + skipped_ops.load() + skipped_nulls.load() +
         dead_lettered_undecoded.load();
}

void PipelineStats::RecordError(const std::string& message) {
  absl::MutexLock lock(&error_mu_);
  last_error_ = message;
  last_error_time_ = absl::Now();
}

std::string PipelineStats::LastError(absl::Time* when) const {
  absl::MutexLock lock(&error_mu_);
  if (when != nullptr) *when = last_error_time_;
  return last_error_;
}

void PipelineStats::CountDecoded(DecodeOutcome outcome, char op) {
  std::atomic<int64_t>* counter = &events_update;
  switch (outcome) {
    case DecodeOutcome::kTombstone:
      counter = &tombstones;
      break;
    case DecodeOutcome::kSkippedOp:
      counter = &skipped_ops;
      break;
    case DecodeOutcome::kSkippedNull:
      counter = &skipped_nulls;
      break;
    case DecodeOutcome::kEvent:
      if (op == 'c') counter = &events_create;
      if (op == 'r') counter = &events_read;
      if (op == 'd') counter = &events_delete;
      break;
  }
  counter->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace cdcjoin
