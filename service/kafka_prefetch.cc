#include "service/kafka_prefetch.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cdcjoin {
namespace {

// What librdkafka 2.0.2 (Debian 12) does with these settings, from its source:
//
// queued.max.messages.kbytes bounds the high-level consumer's one queue, all assigned
// partitions together, in decompressed key and value bytes (and queued.min.messages, in
// records). Once the queue holds that much, the broker threads stop fetching and look again
// only when they next wake up: on a request or response of theirs, at the latest after one
// second (fetch.queue.backoff.ms, which shortens this, came in 2.2). Alone, the bound would
// have to hold a second of what the pipeline consumes: librdkafka's own 64 MB let only ~45,000
// of Debezium's ~2 KB JSON records with schemas through per second in the peer benchmark
// (docs/benchmarks.md). The FetchWaker below wakes the fetchers when half the queue is
// consumed, so the bound sets the memory, not the rate: with it, DB_UPSERT did 84,000 events/s
// there with 32 MB (108% of MariaDB's one-client rate) at 204 MB RSS, 96,000 with 64 MB at 270.
constexpr int64_t kQueuedKbytes = 32768;
//
// fetch.max.bytes bounds one Fetch response, compressed, and a response is decompressed into
// the queue whole, on top of the bound. Left alone it is min(50 MB, the queue bound); Debezium's
// JSON with schemas compresses ~13x with lz4, so responses of up to 16 partitions x 1 MB
// (fetch.message.max.bytes) put ~200 MB more in the queue: 620 MB RSS in DB_UPSERT. One
// response of 1 MiB adds ~13 MB; the next is fetched as soon as the queue is below its bound.
constexpr int64_t kFetchMaxBytes = 1 << 20;
// librdkafka refuses a fetch.max.bytes below message.max.bytes (whose default is 1000000).
constexpr char kMessageMaxBytes[] = "message.max.bytes";

// librdkafka's default for queued.min.messages.
constexpr int64_t kDefaultQueuedMinMessages = 100000;
// A wake is a ListOffsets request per partition leader: a short wait, on the waker's thread.
constexpr int kWakeTimeoutMs = 500;
constexpr absl::Duration kMinWakeInterval = absl::Milliseconds(20);

int64_t IntSetting(const std::map<std::string, std::string>& settings, const std::string& name,
                   int64_t otherwise) {
  auto it = settings.find(name);
  int64_t value = 0;
  if (it == settings.end() || !absl::SimpleAtoi(it->second, &value) || value <= 0) {
    return otherwise;
  }
  return value;
}

}  // namespace

void AddConsumerPrefetchDefaults(std::map<std::string, std::string>& settings) {
  settings.emplace("queued.max.messages.kbytes", absl::StrCat(kQueuedKbytes));
  const int64_t message_max_bytes = IntSetting(settings, kMessageMaxBytes, 0);
  settings.emplace("fetch.max.bytes", absl::StrCat(std::max(kFetchMaxBytes, message_max_bytes)));
}

struct FetchWaker::Signal {
  rd_kafka_queue_t* queue = nullptr;  // The consumer's queue, where fetched records wait.
  absl::Mutex mu;
  bool wake ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
};

FetchWaker::FetchWaker(RdKafka::KafkaConsumer* consumer,
                       const std::map<std::string, std::string>& settings)
    : consumer_(consumer),
      queue_max_bytes_(IntSetting(settings, "queued.max.messages.kbytes", kQueuedKbytes) * 1024),
      queue_max_records_(
          IntSetting(settings, "queued.min.messages", kDefaultQueuedMinMessages)),
      signal_(std::make_unique<Signal>()) {
  signal_->queue = rd_kafka_queue_get_consumer(consumer_->c_ptr());
  thread_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&signal_->mu);
        signal_->mu.Await(absl::Condition(
            +[](Signal* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->wake || s->stop; },
            signal_.get()));
        if (signal_->stop) return;
        signal_->wake = false;
      }
      WakeFetchers();
      // Wakes that follow each other closer than this would only load the brokers: half a
      // queue lasts longer.
      absl::SleepFor(kMinWakeInterval);
    }
  });
}

FetchWaker::~FetchWaker() {
  {
    absl::MutexLock lock(&signal_->mu);
    signal_->stop = true;
  }
  thread_.join();
  if (signal_->queue != nullptr) rd_kafka_queue_destroy(signal_->queue);
}

void FetchWaker::AfterConsume(int64_t records, int64_t bytes) {
  records_consumed_ += records;
  bytes_consumed_ += bytes;
  if (records_consumed_ == 0 || signal_->queue == nullptr) return;
  const int64_t mean_record_bytes = std::max<int64_t>(1, bytes_consumed_ / records_consumed_);
  const int64_t bound =
      std::max<int64_t>(1, std::min(queue_max_records_, queue_max_bytes_ / mean_record_bytes));
  const int64_t queued = static_cast<int64_t>(rd_kafka_queue_length(signal_->queue));
  // Only a queue that filled up can have stopped the fetchers; one that stays below half its
  // bound is being fetched into, and a wake would be a request for nothing.
  if (2 * (queued + records) >= bound) filled_since_wake_ = true;
  if (2 * queued >= bound || !filled_since_wake_) return;
  filled_since_wake_ = false;
  absl::MutexLock lock(&signal_->mu);
  signal_->wake = true;
}

// Any request to a broker wakes its thread, which then decides again whether to fetch: a
// ListOffsets of the assigned partitions reaches each of their leaders, and changes nothing.
void FetchWaker::WakeFetchers() {
  rd_kafka_t* kafka = consumer_->c_ptr();
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(kafka, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (assigned->cnt > 0) {
    for (int i = 0; i < assigned->cnt; ++i) assigned->elems[i].offset = RD_KAFKA_OFFSET_END;
    rd_kafka_offsets_for_times(kafka, assigned, kWakeTimeoutMs);
    wakes_.fetch_add(1);
  }
  rd_kafka_topic_partition_list_destroy(assigned);
}

}  // namespace cdcjoin
