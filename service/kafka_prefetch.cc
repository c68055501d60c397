#include "service/kafka_prefetch.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cdcjoin {
namespace {

// What librdkafka 2.0.2 (Debian 12) does with these settings, from its source:
//
// queued.max.messages.kbytes bounds the high-level consumer's one queue, all assigned
// partitions together, in decompressed key and value bytes. Once the queue holds that much,
// the broker threads stop fetching and look again only when they next wake up: on a request or
// response of theirs, at the latest after one second (fetch.queue.backoff.ms, which shortens
// this, came in 2.2). So the bound must hold about a second of what the pipeline consumes, or
// the pipeline waits for fetches: a 2 MB bound halved DB_UPSERT's rate in the peer benchmark
// (docs/benchmarks.md). librdkafka's own 64 MB lets ~45,000 of Debezium's ~2 KB JSON records
// with schemas through per second there (128 MB: ~86,000, at ~110 MB more RSS).
constexpr int64_t kQueuedKbytes = 65536;
//
// fetch.max.bytes bounds one Fetch response, compressed, and a response is decompressed into
// the queue whole, on top of the bound. Left alone it is min(50 MB, the queue bound); Debezium's
// JSON with schemas compresses ~13x with lz4, so responses of up to 16 partitions x 1 MB
// (fetch.message.max.bytes) put ~200 MB more in the queue: 620 MB RSS in DB_UPSERT. One
// response of 1 MiB adds ~13 MB; the next is fetched as soon as the queue is below its bound.
constexpr int64_t kFetchMaxBytes = 1 << 20;
// librdkafka refuses a fetch.max.bytes below message.max.bytes (whose default is 1000000).
constexpr char kMessageMaxBytes[] = "message.max.bytes";

}  // namespace

void AddConsumerPrefetchDefaults(std::map<std::string, std::string>& settings) {
  settings.emplace("queued.max.messages.kbytes", absl::StrCat(kQueuedKbytes));
  int64_t fetch_max_bytes = kFetchMaxBytes;
  auto message_max = settings.find(kMessageMaxBytes);
  int64_t message_max_bytes = 0;
  if (message_max != settings.end() && absl::SimpleAtoi(message_max->second, &message_max_bytes)) {
    fetch_max_bytes = std::max(fetch_max_bytes, message_max_bytes);
  }
  settings.emplace("fetch.max.bytes", absl::StrCat(fetch_max_bytes));
}

}  // namespace cdcjoin
