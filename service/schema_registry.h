#ifndef CDCJOIN_SERVICE_SCHEMA_REGISTRY_H_
#define CDCJOIN_SERVICE_SCHEMA_REGISTRY_H_

// SchemaRegistry: writer schemas by id from a Confluent-compatible Schema Registry
// (GET {url}/schemas/ids/{id}), each fetched once and kept for the life of the process, so the
// registry's latency is paid on the first record of an id only. Thread-safe: one instance
// serves every source and decoder.
//
//   absl::StatusOr<std::shared_ptr<SchemaRegistry>> registry =
//       SchemaRegistry::ForConfig(config.schema_registry());
//   absl::StatusOr<std::shared_ptr<const RegisteredSchema>> schema = (*registry)->Get(42);
//
// Errors: NotFound when the registry answers 404 (no such id: the record cannot be read);
// InvalidArgument when it answers with something that is no schema; Unavailable for everything
// that is not the record's fault (connection refused, timeout, TLS, 5xx, 401/403, ...). After an
// Unavailable, further fetches of that id fail fast for a short while instead of hammering a
// registry that is down.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

struct RegisteredSchema {
  int32_t id = 0;
  std::string schema_type;  // "AVRO" when the registry leaves it out (Confluent's default).
  std::string text;         // The schema, e.g. Avro's JSON.
  bool has_references = false;
};

class SchemaRegistry {
 public:
  struct Options {
    std::string url;         // Without the trailing "/schemas/ids/{id}".
    std::string basic_auth;  // "user:password"; empty: none.
    std::string ca_file;     // Empty: the system's CAs.
    absl::Duration timeout = absl::Seconds(5);
    // How long a failed fetch of an id fails fast before the registry is asked again.
    absl::Duration retry_after = absl::Seconds(1);
  };

  // With the basic auth secret read from its file or environment variable.
  static absl::StatusOr<std::shared_ptr<SchemaRegistry>> ForConfig(
      const v1::SchemaRegistryConfig& config);

  explicit SchemaRegistry(Options options);

  absl::StatusOr<std::shared_ptr<const RegisteredSchema>> Get(int32_t id);

  // How many fetches reached the registry (cache misses), for tests and status.
  int64_t fetches() const;

 private:
  absl::StatusOr<std::shared_ptr<const RegisteredSchema>> Fetch(int32_t id);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int32_t, std::shared_ptr<const RegisteredSchema>> schemas_
      ABSL_GUARDED_BY(mu_);
  struct Failure {
    absl::Status status;
    absl::Time retry_at;
  };
  absl::flat_hash_map<int32_t, Failure> failures_ ABSL_GUARDED_BY(mu_);
  int64_t fetches_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_SCHEMA_REGISTRY_H_
