#ifndef CDCJOIN_SERVICE_KAFKA_CLIENT_H_
#define CDCJOIN_SERVICE_KAFKA_CLIENT_H_

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/stats.h"

namespace cdcjoin {

// What every librdkafka client of the process starts from: the configured extra properties
// (security.protocol, sasl.*, …) and the bootstrap servers. Callers add their own settings.
std::map<std::string, std::string> BaseKafkaSettings(const v1::KafkaConfig& kafka,
                                                     const std::string& bootstrap_servers);

// KafkaConfig's static membership id (group.instance.id), from the config or the environment;
// "" for none. InvalidArgument naming the field when its environment variable is unset or empty.
absl::StatusOr<std::string> GroupInstanceId(const v1::KafkaConfig& kafka);

// A librdkafka configuration holding `settings`; InvalidArgument naming the property librdkafka
// refused.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeKafkaConf(
    const std::map<std::string, std::string>& settings);

// Client errors and warnings into the log. librdkafka recovers from most errors by itself, so
// only fatal ones count as the process's last error.
class KafkaEventLogger : public RdKafka::EventCb {
 public:
  explicit KafkaEventLogger(PipelineStats* stats) : stats_(stats) {}
  void event_cb(RdKafka::Event& event) override;

 private:
  PipelineStats* const stats_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_KAFKA_CLIENT_H_
