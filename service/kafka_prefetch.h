#ifndef CDCJOIN_SERVICE_KAFKA_PREFETCH_H_
#define CDCJOIN_SERVICE_KAFKA_PREFETCH_H_

// How far the consumer reads ahead of the pipeline: the librdkafka settings that bound its
// prefetch, and the FetchWaker that keeps that bound from also bounding its rate with
// librdkafka 2.0.2 (kafka_prefetch.cc says why).
//
//   std::map<std::string, std::string> settings = BaseKafkaSettings(kafka, brokers);
//   AddConsumerPrefetchDefaults(settings);   // kafka.properties entries keep their values
//   ... create the consumer from settings ...
//   FetchWaker waker(consumer.get(), settings);
//   ... after each batch of consume() calls: waker.AfterConsume(records, key_and_value_bytes);

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace RdKafka {
class KafkaConsumer;
}

namespace cdcjoin {

// Adds cdcjoind's prefetch bounds to a consumer's librdkafka settings, leaving every property
// already set (from kafka.properties) as it is.
void AddConsumerPrefetchDefaults(std::map<std::string, std::string>& settings);

// librdkafka 2.0.2's fetchers stop once the consumer's queue is full and look again only when
// something wakes their broker threads, at the latest after a second. A FetchWaker wakes them
// as soon as the application has consumed the queue down to half of its bound, so the bound
// decides how much is read ahead, and no longer how much per second.
class FetchWaker {
 public:
  // `consumer` must outlive the waker; `settings` are the ones it was created with.
  FetchWaker(RdKafka::KafkaConsumer* consumer,
             const std::map<std::string, std::string>& settings);
  ~FetchWaker();

  // The consuming thread, after it took `records` records holding `bytes` of keys and values.
  void AfterConsume(int64_t records, int64_t bytes);

  // How often the broker threads were woken.
  int64_t wakes() const { return wakes_.load(); }

  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;

 private:
  struct Signal;
  void WakeFetchers();

  RdKafka::KafkaConsumer* const consumer_;
  const int64_t queue_max_bytes_;
  const int64_t queue_max_records_;
  // The consuming thread's view of the queue.
  int64_t records_consumed_ = 0;
  int64_t bytes_consumed_ = 0;
  bool filled_since_wake_ = false;
  std::atomic<int64_t> wakes_{0};
  std::unique_ptr<Signal> signal_;
  std::thread thread_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_KAFKA_PREFETCH_H_
