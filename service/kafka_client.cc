#include "service/kafka_client.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "service/logging.h"

namespace cdcjoin {

absl::StatusOr<std::string> GroupInstanceId(const v1::KafkaConfig& kafka) {
  if (!kafka.group_instance_id().empty() || kafka.group_instance_id_env().empty()) {
    return kafka.group_instance_id();
  }
  const char* value = std::getenv(kafka.group_instance_id_env().c_str());
  if (value == nullptr || *value == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(
        "kafka.group_instance_id_env: $", kafka.group_instance_id_env(), " is not set or empty"));
  }
  return std::string(value);
}

std::map<std::string, std::string> BaseKafkaSettings(const v1::KafkaConfig& kafka,
                                                     const std::string& bootstrap_servers) {
  std::map<std::string, std::string> settings(kafka.properties().begin(),
                                              kafka.properties().end());
  settings["bootstrap.servers"] = bootstrap_servers;
  return settings;
}

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeKafkaConf(
    const std::map<std::string, std::string>& settings) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  for (const auto& [name, value] : settings) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", name, ": ", error));
    }
  }
  return conf;
}

void KafkaEventLogger::event_cb(RdKafka::Event& event) {
  switch (event.type()) {
    case RdKafka::Event::EVENT_ERROR:
      if (event.fatal()) {
        LogError("kafka fatal error: ", event.str());
        stats_->RecordError(absl::StrCat("kafka fatal: ", event.str()));
      } else {
        LogWarning("kafka: ", RdKafka::err2str(event.err()), ": ", event.str());
      }
      break;
    case RdKafka::Event::EVENT_LOG:
      if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
        LogWarning("kafka ", event.fac(), ": ", event.str());
      }
      break;
    default:
      break;
  }
}

}  // namespace cdcjoin
