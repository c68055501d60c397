#include "service/embedded_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace cdcjoin {

// The mock cluster lives inside a client handle; destroying the handle stops the brokers.
struct EmbeddedKafka::Handles {
  rd_kafka_t* client = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
  int brokers = 0;  // Their ids are 1..brokers.

  ~Handles() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    if (client != nullptr) rd_kafka_destroy(client);
  }
};

absl::StatusOr<std::unique_ptr<EmbeddedKafka>> EmbeddedKafka::Start(
    int brokers, const std::vector<TopicSpec>& topics) {
  auto handles = std::make_unique<Handles>();
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The hosting client never talks to the cluster itself; keep it quiet.
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error);
  handles->client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (handles->client == nullptr) {
    return absl::InternalError(absl::StrCat("embedded kafka: rd_kafka_new: ", error));
  }
  handles->cluster = rd_kafka_mock_cluster_new(handles->client, brokers);
  handles->brokers = brokers;
  if (handles->cluster == nullptr) {
    return absl::InternalError("embedded kafka: rd_kafka_mock_cluster_new failed");
  }
  for (const TopicSpec& topic : topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(handles->cluster, topic.name.c_str(),
                                                         topic.partitions, /*replication=*/1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(absl::StrCat("embedded kafka: creating topic ", topic.name, ": ",
                                              rd_kafka_err2str(err)));
    }
  }
  std::string bootstrap = rd_kafka_mock_cluster_bootstraps(handles->cluster);
  return std::unique_ptr<EmbeddedKafka>(new EmbeddedKafka(std::move(handles), bootstrap));
}

EmbeddedKafka::EmbeddedKafka(std::unique_ptr<Handles> handles, std::string bootstrap_servers)
    : handles_(std::move(handles)), bootstrap_servers_(std::move(bootstrap_servers)) {}

EmbeddedKafka::~EmbeddedKafka() = default;

void EmbeddedKafka::SetAllBrokersDown(bool down) {
  for (int id = 1; id <= handles_->brokers; ++id) {
    if (down) {
      rd_kafka_mock_broker_set_down(handles_->cluster, id);
    } else {
      rd_kafka_mock_broker_set_up(handles_->cluster, id);
    }
  }
}

void EmbeddedKafka::SetRtt(absl::Duration rtt) {
  for (int id = 1; id <= handles_->brokers; ++id) {
    rd_kafka_mock_broker_set_rtt(handles_->cluster, id,
                                 static_cast<int>(absl::ToInt64Milliseconds(rtt)));
  }
}

void EmbeddedKafka::FailRequests(int api_key, int count, int error) {
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count),
                                          static_cast<rd_kafka_resp_err_t>(error));
  rd_kafka_mock_push_request_errors_array(handles_->cluster, static_cast<int16_t>(api_key),
                                          errors.size(), errors.data());
}

void EmbeddedKafka::ClearFailures(int api_key) {
  rd_kafka_mock_clear_request_errors(handles_->cluster, static_cast<int16_t>(api_key));
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << contents;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace cdcjoin
