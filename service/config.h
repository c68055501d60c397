#ifndef CDCJOIN_SERVICE_CONFIG_H_
#define CDCJOIN_SERVICE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {

// Reads a text-format Config, fills in the documented defaults and validates it. Errors name the
// field, e.g. "sources[1].columns[0].to: 'a b' is not a valid identifier".
absl::StatusOr<v1::Config> LoadConfigFile(const std::string& path);
absl::StatusOr<v1::Config> ParseConfig(const std::string& text);

// Replaces every unset (zero) option by its documented default, so the rest of the process never
// interprets 0 as "default".
void ApplyDefaults(v1::Config* config);

// Checks a config that has its defaults applied. `embedded_kafka`: brokers may be empty.
absl::Status ValidateConfig(const v1::Config& config, bool embedded_kafka);

// The database password, from password_file or password_env; empty when neither is set.
absl::StatusOr<std::string> ResolveDatabasePassword(const v1::DatabaseConfig& database);

// A secret named by a *_file / *_env pair of fields: the first line of the file, or the
// environment variable; empty when neither is set. Errors name `field_prefix`_file or _env,
// e.g. ResolveSecret("schema_registry.basic_auth", ...).
absl::StatusOr<std::string> ResolveSecret(const std::string& field_prefix,
                                          const std::string& file, const std::string& env);

// The configuration with secrets removed, for logs and the admin API.
v1::Config RedactSecrets(const v1::Config& config);

// Whether a host:port binds loopback only (127.0.0.0/8, [::1], localhost).
bool IsLoopbackListenAddress(const std::string& address);

// True for a plain SQL identifier: [A-Za-z_][A-Za-z0-9_]{0,63}.
bool IsValidIdentifier(const std::string& name);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_CONFIG_H_
