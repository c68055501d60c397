#ifndef CDCJOIN_SERVICE_KAFKA_PREFETCH_H_
#define CDCJOIN_SERVICE_KAFKA_PREFETCH_H_

// How far the consumer reads ahead of the pipeline: the librdkafka settings that bound its
// prefetch, which with librdkafka 2.0.2 also bound its rate (kafka_prefetch.cc says why).
//
//   std::map<std::string, std::string> settings = BaseKafkaSettings(kafka, brokers);
//   AddConsumerPrefetchDefaults(settings);   // kafka.properties entries keep their values

#include <map>
#include <string>

namespace cdcjoin {

// Adds cdcjoind's prefetch bounds to a consumer's librdkafka settings, leaving every property
// already set (from kafka.properties) as it is.
void AddConsumerPrefetchDefaults(std::map<std::string, std::string>& settings);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_KAFKA_PREFETCH_H_
