#ifndef CDCJOIN_TESTS_SUPPORT_SCHEMA_REGISTRY_STUB_H_
#define CDCJOIN_TESTS_SUPPORT_SCHEMA_REGISTRY_STUB_H_

// A Confluent-compatible Schema Registry's GET /schemas/ids/{id}, over real HTTP on a free
// 127.0.0.1 port, serving the schemas it is given (404 for others). It can answer 503 to
// everything or stop listening, to show what the decoder does when the registry fails, and
// demand HTTP basic auth (401 without the right credentials).
//
//   SchemaRegistryStub registry;
//   registry.Serve(2, R"({"type":"record",...})");
//   ... SchemaRegistry::Options{.url = registry.url()} ...

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace cdcjoin {

class SchemaRegistryStub {
 public:
  SchemaRegistryStub();  // Listens at once.
  ~SchemaRegistryStub();

  std::string url() const;
  // Serves `schema` (the schema text) for `id`.
  void Serve(int32_t id, const std::string& schema);
  // true: every request gets 503 Service Unavailable.
  void SetFailing(bool failing);
  // Requests without HTTP basic auth "user:password" get 401 Unauthorized; empty: none needed.
  void RequireBasicAuth(const std::string& user_colon_password);
  // How many requests arrived.
  int requests() const;
  // Closes the listening socket (connections are refused), or opens it again on the same port.
  void Stop();
  void Restart();

 private:
  void Listen();
  void AcceptLoop(int listener);
  void Answer(int connection);

  int port_ = 0;
  std::atomic<int> listener_{-1};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::map<int32_t, std::string> schemas_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  std::string required_authorization_ ABSL_GUARDED_BY(mu_);  // The header line; empty: none.
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_TESTS_SUPPORT_SCHEMA_REGISTRY_STUB_H_
