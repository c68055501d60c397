#ifndef CDCJOIN_SERVICE_EMBEDDED_KAFKA_H_
#define CDCJOIN_SERVICE_EMBEDDED_KAFKA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cdcjoin {

// librdkafka's mock cluster hosted in this process: brokers that speak the real Kafka protocol
// on 127.0.0.1 ephemeral ports, so the daemon, kcat and tests talk to it like to any cluster.
// It keeps only the last few MiB per partition (PLATFORM.md): for demos and tests, not for
// data that matters.
class EmbeddedKafka {
 public:
  struct TopicSpec {
    std::string name;
    int partitions = 1;
  };

  static absl::StatusOr<std::unique_ptr<EmbeddedKafka>> Start(int brokers,
                                                             const std::vector<TopicSpec>& topics);
  ~EmbeddedKafka();

  // "127.0.0.1:port,…", for bootstrap.servers.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }

  // Faults, for tests (librdkafka's mock cluster API).
  // Every broker stops answering (its connections are closed) or starts again.
  void SetAllBrokersDown(bool down);
  // Every broker answers each request this much later.
  void SetRtt(absl::Duration rtt);
  // The next `count` requests of Kafka API `api_key` (Fetch 1, OffsetCommit 8, JoinGroup 11, …)
  // fail with the Kafka error code `error`.
  void FailRequests(int api_key, int count, int error);
  // Forgets the failures FailRequests queued for `api_key` and not yet served.
  void ClearFailures(int api_key);

  EmbeddedKafka(const EmbeddedKafka&) = delete;
  EmbeddedKafka& operator=(const EmbeddedKafka&) = delete;

 private:
  struct Handles;
  EmbeddedKafka(std::unique_ptr<Handles> handles, std::string bootstrap_servers);
  std::unique_ptr<Handles> handles_;
  std::string bootstrap_servers_;
};

// Writes `contents` to `path` through a temporary file and a rename, so a reader polling for the
// file never sees it half written.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_EMBEDDED_KAFKA_H_
