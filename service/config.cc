#include "service/config.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <vector>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace cdcjoin {
namespace {

// Keeps the first text-format parse error with its position (0-based, as the tokenizer gives it).
class ParseErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!message_.empty()) return;
    line_ = line;
    column_ = column;
    message_ = message;
  }

  // "line L, column C: message", 1-based, where the user sees the mistake. The parser reports
  // the token after an unknown field or enum value (for a value at the end of a line, that is
  // the next line): the named token's own position is the one to show.
  std::string Describe(const std::string& text) const {
    size_t offset = OffsetOf(text, line_, column_);
    static const char* const kNamed[] = {"no field named \"", "enumeration value of \"",
                                         "has no value named \""};
    for (const char* prefix : kNamed) {
      const size_t at = message_.find(prefix);
      if (at == std::string::npos) continue;
      const size_t begin = at + std::strlen(prefix);
      const std::string token = message_.substr(begin, message_.find('"', begin) - begin);
      const size_t found = text.rfind(token, offset);
      if (!token.empty() && found != std::string::npos) offset = found;
      break;
    }
    const size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
    const size_t line = static_cast<size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
    const size_t column = line_start == std::string::npos || offset == 0 ? offset
                                                                         : offset - line_start - 1;
    return absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message_);
  }

 private:
  static size_t OffsetOf(const std::string& text, int line, int column) {
    size_t offset = 0;
    for (int l = 0; l < line && offset != std::string::npos; ++l) {
      offset = text.find('\n', offset);
      if (offset != std::string::npos) ++offset;
    }
    if (offset == std::string::npos) return text.size();
    return std::min(text.size(), offset + static_cast<size_t>(column));
  }

  int line_ = 0;
  google::protobuf::io::ColumnNumber column_ = 0;
  std::string message_;
};

// Proto3 scalars have no presence: zero means "not set", so it takes the documented default.
template <typename Message, typename T>
void DefaultIfZero(Message* message, T (Message::*get)() const, void (Message::*set)(T),
                   T fallback) {
  if ((message->*get)() == 0) (message->*set)(fallback);
}

absl::Status FieldError(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status CheckIdentifier(const std::string& field, const std::string& name) {
  if (name.empty()) return FieldError(field, "required");
  if (!IsValidIdentifier(name)) {
    return FieldError(field, absl::StrCat("'", name, "' is not a valid identifier"));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(const std::string& field, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return FieldError(field, absl::StrCat("must be in [", min, ", ", max, "], got ", value));
  }
  return absl::OkStatus();
}

constexpr int64_t kHourMs = 3600 * 1000;
// The windowed joiner keeps a window's sources as bits of a byte.
constexpr int kMaxSources = 8;
constexpr int64_t kDayMs = 24 * kHourMs;

// The documented range of every number in the config (docs/configuration.md), checked after
// defaults are applied.
struct Range {
  const char* field;
  int64_t value;
  int64_t min;
  int64_t max;
};

std::vector<Range> Ranges(const v1::Config& config) {
  const v1::KafkaConfig& kafka = config.kafka();
  const v1::SinkConfig& sink = config.sink();
  const v1::WindowConfig& window = config.window();
  return {
      {"kafka.session_timeout_ms", kafka.session_timeout_ms(), 1000, kHourMs},
      {"kafka.commit_interval_ms", kafka.commit_interval_ms(), 1, kHourMs},
      {"kafka.embedded_partitions", kafka.embedded_partitions(), 1, 1024},
      {"target.database.port", config.target().database().port(), 1, 65535},
      {"target.database.connect_timeout_ms", config.target().database().connect_timeout_ms(), 1,
       kHourMs},
      {"target.database.read_write_timeout_ms",
       config.target().database().read_write_timeout_ms(), 1000, kHourMs},
      {"sink.lanes", sink.lanes(), 1, 256},
      {"sink.batch_rows", sink.batch_rows(), 1, 65535},
      {"sink.linger_ms", sink.linger_ms(), 0, 60 * 1000},
      {"sink.queue_capacity", sink.queue_capacity(), 1, 10000000},
      {"sink.max_value_bytes", sink.max_value_bytes(), 1, 16 << 20},
      {"sink.stall_after_ms", sink.stall_after_ms(), 100, kHourMs},
      {"sink.retry.max_attempts", sink.retry().max_attempts(), 1, 1000},
      {"sink.retry.initial_backoff_ms", sink.retry().initial_backoff_ms(), 1, kHourMs},
      {"sink.retry.max_backoff_ms", sink.retry().max_backoff_ms(), 1, kHourMs},
      {"window.window_ms", window.window_ms(), 1, 365 * kDayMs},
      {"window.grace_ms", window.grace_ms(), 0, 365 * kDayMs},
      {"window.idle_flush_ms", window.idle_flush_ms(), 1, kDayMs},
      {"window.block_cache_mb", window.block_cache_mb(), 1, 64 * 1024},
      {"window.write_buffer_mb", window.write_buffer_mb(), 1, 4 * 1024},
      {"schema_registry.timeout_ms", config.schema_registry().timeout_ms(), 100, 600 * 1000},
  };
}

// Each target column belongs to one source unless every mapping of it is marked shared.
absl::Status CheckColumnOwners(const v1::Config& config) {
  struct Owner {
    int source;
    int column;
    bool shared;
  };
  std::map<std::string, Owner> owners;
  for (int i = 0; i < config.sources_size(); ++i) {
    for (int c = 0; c < config.sources(i).columns_size(); ++c) {
      const v1::ColumnMapping& mapping = config.sources(i).columns(c);
      auto [it, first] = owners.emplace(mapping.to(), Owner{i, c, mapping.shared()});
      if (first || it->second.source == i || (it->second.shared && mapping.shared())) continue;
      return FieldError(
          absl::StrCat("sources[", i, "].columns[", c, "].to"),
          absl::StrCat("'", mapping.to(), "' is also written by sources[", it->second.source,
                       "].columns[", it->second.column,
                       "]; mark both mappings shared: true if both sources may write it"));
    }
  }
  return absl::OkStatus();
}

// The stale-write guard compares one source's version per column, so each column it updates on
// conflict must be one source's; version columns are columns of their own.
absl::Status CheckStaleWriteGuard(const v1::Config& config) {
  const bool guard = config.target().stale_write_guard();
  std::map<std::string, int> updated_by;  // Column -> the source that updates it on conflict.
  std::set<std::string> taken(config.target().key_columns().begin(),
                              config.target().key_columns().end());
  for (int i = 0; i < config.sources_size(); ++i) {
    const v1::SourceConfig& source = config.sources(i);
    const std::string prefix = absl::StrCat("sources[", i, "]");
    if (source.on_delete() == v1::DELETE_ROW_WHEN_ALL_DELETED && !guard) {
      return FieldError(prefix + ".on_delete",
                        "DELETE_ROW_WHEN_ALL_DELETED keeps who deleted what in the version "
                        "columns: it needs target.stale_write_guard: true");
    }
    for (int c = 0; c < source.columns_size(); ++c) {
      const v1::ColumnMapping& column = source.columns(c);
      taken.insert(column.to());
      if (!guard || column.insert_only()) continue;
      auto [it, first] = updated_by.emplace(column.to(), i);
      if (!first && it->second != i) {
        return FieldError(absl::StrCat(prefix, ".columns[", c, "].insert_only"),
                          absl::StrCat("'", column.to(), "' is also updated by sources[",
                                       it->second,
                                       "]: with target.stale_write_guard a column is guarded by "
                                       "one source's version, so all but one of its mappings "
                                       "must be insert_only"));
      }
    }
  }
  if (!guard) return absl::OkStatus();
  for (int i = 0; i < config.sources_size(); ++i) {
    const std::string field = absl::StrCat("sources[", i, "].version_column");
    const std::string& name = config.sources(i).version_column();
    if (absl::Status s = CheckIdentifier(field, name); !s.ok()) return s;
    if (!taken.insert(name).second) {
      return FieldError(field, absl::StrCat("'", name,
                                            "' is already a key, mapped or version column"));
    }
  }
  return absl::OkStatus();
}

// The registry is required only when a source reads Avro (the first Avro field says why); what
// is set of it is checked either way.
absl::Status ValidateSchemaRegistry(const v1::Config& config) {
  std::string needed_by;
  for (int i = 0; i < config.sources_size() && needed_by.empty(); ++i) {
    if (config.sources(i).value_format() == v1::AVRO) {
      needed_by = absl::StrCat("sources[", i, "].value_format");
    } else if (config.sources(i).key_format() == v1::AVRO) {
      needed_by = absl::StrCat("sources[", i, "].key_format");
    }
  }
  const v1::SchemaRegistryConfig& registry = config.schema_registry();
  if (registry.url().empty() && !needed_by.empty()) {
    return FieldError("schema_registry.url", absl::StrCat("required: ", needed_by, " is AVRO"));
  }
  if (!registry.url().empty() && !absl::StartsWith(registry.url(), "http://") &&
      !absl::StartsWith(registry.url(), "https://")) {
    return FieldError("schema_registry.url",
                      absl::StrCat("'", registry.url(), "' must start with http:// or https://"));
  }
  if (!registry.basic_auth_file().empty() && !registry.basic_auth_env().empty()) {
    return FieldError("schema_registry.basic_auth_file",
                      "set either basic_auth_file or basic_auth_env, not both");
  }
  return absl::OkStatus();
}

absl::Status ValidateSource(const v1::Config& config, int index) {
  const v1::SourceConfig& source = config.sources(index);
  const std::string prefix = absl::StrCat("sources[", index, "]");
  if (source.name().empty()) return FieldError(prefix + ".name", "required");
  if (source.topic().empty()) return FieldError(prefix + ".topic", "required");
  if (source.key_fields_size() != config.target().key_columns_size()) {
    return FieldError(prefix + ".key_fields",
                      absl::StrCat("has ", source.key_fields_size(),
                                   " fields but target.key_columns has ",
                                   config.target().key_columns_size()));
  }
  for (int k = 0; k < source.key_fields_size(); ++k) {
    if (source.key_fields(k).empty()) {
      return FieldError(absl::StrCat(prefix, ".key_fields[", k, "]"), "required");
    }
  }
  if (source.columns_size() == 0) return FieldError(prefix + ".columns", "at least one required");
  std::set<std::string> targets;
  for (int c = 0; c < source.columns_size(); ++c) {
    const v1::ColumnMapping& column = source.columns(c);
    const std::string column_prefix = absl::StrCat(prefix, ".columns[", c, "]");
    if (column.from().empty()) return FieldError(column_prefix + ".from", "required");
    if (absl::Status s = CheckIdentifier(column_prefix + ".to", column.to()); !s.ok()) return s;
    if (!targets.insert(column.to()).second) {
      return FieldError(column_prefix + ".to",
                        absl::StrCat("'", column.to(), "' is mapped twice by this source"));
    }
    for (const std::string& key : config.target().key_columns()) {
      if (key == column.to()) {
        return FieldError(column_prefix + ".to",
                          absl::StrCat("'", key, "' is a key column of the target"));
      }
    }
  }
  return absl::OkStatus();
}

// host:port or [v6]:port; the port may be 0 (pick a free one).
absl::Status CheckListenAddress(const std::string& field, const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return FieldError(field,
                      absl::StrCat("'", address, "' is not host:port with a port in [0, 65535]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAdmin(const v1::AdminConfig& admin) {
  const std::string& address = admin.listen_address();
  if (absl::Status s = CheckListenAddress("admin.listen_address", address); !s.ok()) return s;
  if (!admin.health_listen_address().empty()) {
    if (absl::Status s =
            CheckListenAddress("admin.health_listen_address", admin.health_listen_address());
        !s.ok()) {
      return s;
    }
  }
  if (!admin.token_file().empty() && !admin.token_env().empty()) {
    return FieldError("admin.token_file", "set either token_file or token_env, not both");
  }
  const v1::AdminTlsConfig& tls = admin.tls();
  const bool has_token = !admin.token_file().empty() || !admin.token_env().empty();
  if (!IsLoopbackListenAddress(address) && !admin.insecure() &&
      (tls.cert_file().empty() || !has_token)) {
    return FieldError(
        "admin.listen_address",
        absl::StrCat("'", address,
                     "' is not loopback: it needs admin.tls.cert_file and admin.token_file (or "
                     "token_env), or admin.insecure: true to accept ",
                     tls.cert_file().empty() ? "plaintext" : "no token"));
  }
  if (!tls.cert_file().empty() && tls.key_file().empty()) {
    return FieldError("admin.tls.key_file", "required with admin.tls.cert_file");
  }
  if (tls.cert_file().empty() && !tls.key_file().empty()) {
    return FieldError("admin.tls.cert_file", "required with admin.tls.key_file");
  }
  if (tls.cert_file().empty() && !tls.client_ca_file().empty()) {
    return FieldError("admin.tls.client_ca_file", "needs admin.tls.cert_file (TLS) too");
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackListenAddress(const std::string& address) {
  const std::string host = address.substr(0, address.rfind(':'));
  return host == "localhost" || host == "[::1]" || absl::StartsWith(host, "127.");
}

bool IsValidIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

absl::StatusOr<v1::Config> ParseConfig(const std::string& text) {
  v1::Config config;
  google::protobuf::TextFormat::Parser parser;
  ParseErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", errors.Describe(text)));
  }
  ApplyDefaults(&config);
  return config;
}

absl::StatusOr<v1::Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config file ", path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<v1::Config> config = ParseConfig(text.str());
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

void ApplyDefaults(v1::Config* config) {
  v1::KafkaConfig* kafka = config->mutable_kafka();
  DefaultIfZero(kafka, &v1::KafkaConfig::session_timeout_ms, &v1::KafkaConfig::set_session_timeout_ms, 10000);
  DefaultIfZero(kafka, &v1::KafkaConfig::commit_interval_ms, &v1::KafkaConfig::set_commit_interval_ms, 1000);
  DefaultIfZero(kafka, &v1::KafkaConfig::embedded_partitions, &v1::KafkaConfig::set_embedded_partitions, 8);
  if (kafka->start_from() == v1::START_POSITION_UNSPECIFIED) kafka->set_start_from(v1::EARLIEST);
  if (kafka->control_topic().empty() && !kafka->group_id().empty()) {
    kafka->set_control_topic(absl::StrCat("cdcjoin.control.", kafka->group_id()));
  }

  v1::DatabaseConfig* database = config->mutable_target()->mutable_database();
  if (database->host().empty()) database->set_host("127.0.0.1");
  DefaultIfZero(database, &v1::DatabaseConfig::port, &v1::DatabaseConfig::set_port, 3306);
  DefaultIfZero(database, &v1::DatabaseConfig::connect_timeout_ms, &v1::DatabaseConfig::set_connect_timeout_ms, 10000);
  DefaultIfZero(database, &v1::DatabaseConfig::read_write_timeout_ms, &v1::DatabaseConfig::set_read_write_timeout_ms, 30000);

  for (v1::SourceConfig& source : *config->mutable_sources()) {
    if (source.key_source() == v1::KEY_SOURCE_UNSPECIFIED) source.set_key_source(v1::ROW);
    if (source.on_delete() == v1::DELETE_POLICY_UNSPECIFIED) source.set_on_delete(v1::IGNORE);
    if (config->target().stale_write_guard() && source.version_column().empty()) {
      source.set_version_column(absl::StrCat("_cdc_", source.name(), "_ver"));
    }
  }

  v1::SinkConfig* sink = config->mutable_sink();
  DefaultIfZero(sink, &v1::SinkConfig::lanes, &v1::SinkConfig::set_lanes, 4);
  DefaultIfZero(sink, &v1::SinkConfig::batch_rows, &v1::SinkConfig::set_batch_rows, 500);
  DefaultIfZero(sink, &v1::SinkConfig::linger_ms, &v1::SinkConfig::set_linger_ms, 5);
  DefaultIfZero(sink, &v1::SinkConfig::queue_capacity, &v1::SinkConfig::set_queue_capacity, 20000);
  DefaultIfZero(sink, &v1::SinkConfig::max_value_bytes, &v1::SinkConfig::set_max_value_bytes, 65535);
  DefaultIfZero(sink, &v1::SinkConfig::stall_after_ms, &v1::SinkConfig::set_stall_after_ms, 10000);
  v1::RetryConfig* retry = sink->mutable_retry();
  DefaultIfZero(retry, &v1::RetryConfig::max_attempts, &v1::RetryConfig::set_max_attempts, 8);
  DefaultIfZero(retry, &v1::RetryConfig::initial_backoff_ms, &v1::RetryConfig::set_initial_backoff_ms, 20);
  DefaultIfZero(retry, &v1::RetryConfig::max_backoff_ms, &v1::RetryConfig::set_max_backoff_ms, 2000);

  if (config->mode() == v1::JOIN_MODE_UNSPECIFIED) config->set_mode(v1::DB_UPSERT);
  v1::WindowConfig* window = config->mutable_window();
  if (window->join_type() == v1::JOIN_TYPE_UNSPECIFIED) window->set_join_type(v1::OUTER);
  DefaultIfZero(window, &v1::WindowConfig::window_ms, &v1::WindowConfig::set_window_ms, int64_t{5000});
  DefaultIfZero(window, &v1::WindowConfig::grace_ms, &v1::WindowConfig::set_grace_ms, int64_t{1000});
  DefaultIfZero(window, &v1::WindowConfig::idle_flush_ms, &v1::WindowConfig::set_idle_flush_ms, int64_t{2000});
  if (window->event_time() == v1::EVENT_TIME_SOURCE_UNSPECIFIED) {
    window->set_event_time(v1::SOURCE_TS_MS);
  }
  DefaultIfZero(window, &v1::WindowConfig::block_cache_mb, &v1::WindowConfig::set_block_cache_mb, 64);
  DefaultIfZero(window, &v1::WindowConfig::write_buffer_mb, &v1::WindowConfig::set_write_buffer_mb, 32);

  v1::AdminConfig* admin = config->mutable_admin();
  if (admin->listen_address().empty()) admin->set_listen_address("127.0.0.1:50051");

  v1::MetricsConfig* metrics = config->mutable_metrics();
  if (metrics->listen_address().empty()) metrics->set_listen_address("127.0.0.1:9464");

  DefaultIfZero(config->mutable_schema_registry(), &v1::SchemaRegistryConfig::timeout_ms,
                &v1::SchemaRegistryConfig::set_timeout_ms, 5000);
}

absl::Status ValidateConfig(const v1::Config& config, bool embedded_kafka) {
  const v1::KafkaConfig& kafka = config.kafka();
  if (!embedded_kafka && kafka.brokers().empty()) return FieldError("kafka.brokers", "required");
  if (kafka.group_id().empty()) return FieldError("kafka.group_id", "required");
  if (!kafka.group_instance_id().empty() && !kafka.group_instance_id_env().empty()) {
    return FieldError("kafka.group_instance_id_env",
                      "set group_instance_id or group_instance_id_env, not both");
  }
  if (kafka.dead_letter_topic().empty()) return FieldError("kafka.dead_letter_topic", "required");
  for (const Range& range : Ranges(config)) {
    if (absl::Status s = CheckRange(range.field, range.value, range.min, range.max); !s.ok()) {
      return s;
    }
  }

  const v1::TargetConfig& target = config.target();
  if (absl::Status s = CheckIdentifier("target.table", target.table()); !s.ok()) return s;
  if (target.key_columns_size() == 0) return FieldError("target.key_columns", "at least one required");
  for (int k = 0; k < target.key_columns_size(); ++k) {
    if (absl::Status s =
            CheckIdentifier(absl::StrCat("target.key_columns[", k, "]"), target.key_columns(k));
        !s.ok()) {
      return s;
    }
  }
  const v1::DatabaseConfig& database = target.database();
  if (database.user().empty()) return FieldError("target.database.user", "required");
  if (absl::Status s = CheckIdentifier("target.database.database", database.database()); !s.ok()) {
    return s;
  }
  if (!database.password_file().empty() && !database.password_env().empty()) {
    return FieldError("target.database.password_file",
                      "set either password_file or password_env, not both");
  }

  if (config.sources_size() < 2 || config.sources_size() > kMaxSources) {
    return FieldError("sources", absl::StrCat("between 2 and ", kMaxSources,
                                              " sources required, got ", config.sources_size()));
  }
  const v1::JoinType join = config.window().join_type();
  if ((join == v1::INNER || join == v1::LEFT) && config.sources_size() != 2) {
    return FieldError("window.join_type",
                      absl::StrCat(v1::JoinType_Name(join), " joins exactly two sources (LEFT keeps "
                                   "sources[0]'s rows); ", config.sources_size(),
                                   " sources merge with OUTER"));
  }
  for (int i = 0; i < config.sources_size(); ++i) {
    if (absl::Status s = ValidateSource(config, i); !s.ok()) return s;
    for (int j = 0; j < i; ++j) {
      if (config.sources(i).name() == config.sources(j).name()) {
        return FieldError(absl::StrCat("sources[", i, "].name"),
                          absl::StrCat("must differ from sources[", j, "].name"));
      }
      if (config.sources(i).topic() == config.sources(j).topic()) {
        return FieldError(absl::StrCat("sources[", i, "].topic"),
                          absl::StrCat("must differ from sources[", j, "].topic"));
      }
    }
    if (kafka.dead_letter_topic() == config.sources(i).topic()) {
      return FieldError("kafka.dead_letter_topic", "must differ from the source topics");
    }
    if (kafka.control_topic() == config.sources(i).topic()) {
      return FieldError("kafka.control_topic", "must differ from the source topics");
    }
  }
  if (kafka.control_topic() == kafka.dead_letter_topic()) {
    return FieldError("kafka.control_topic", "must differ from the dead-letter topic");
  }

  if (absl::Status s = CheckColumnOwners(config); !s.ok()) return s;
  if (absl::Status s = CheckStaleWriteGuard(config); !s.ok()) return s;
  const v1::SinkConfig& sink = config.sink();
  const v1::RetryConfig& retry = sink.retry();
  if (retry.initial_backoff_ms() > retry.max_backoff_ms()) {
    return FieldError("sink.retry.initial_backoff_ms", "must not exceed max_backoff_ms");
  }

  const v1::WindowConfig& window = config.window();
  if (config.mode() == v1::WINDOWED && window.state_dir().empty()) {
    return FieldError("window.state_dir", "required in WINDOWED mode");
  }
  if (absl::Status s = ValidateAdmin(config.admin()); !s.ok()) return s;
  if (absl::Status s = ValidateSchemaRegistry(config); !s.ok()) return s;
  if (absl::Status s = CheckListenAddress("metrics.listen_address", config.metrics().listen_address());
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveSecret(const std::string& field_prefix,
                                          const std::string& file, const std::string& env) {
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      return absl::NotFoundError(absl::StrCat(field_prefix, "_file: cannot read ", file));
    }
    std::string secret;
    std::getline(in, secret);
    return secret;
  }
  if (!env.empty()) {
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) {
      return absl::NotFoundError(absl::StrCat(field_prefix, "_env: $", env, " is not set"));
    }
    return std::string(value);
  }
  return std::string();
}

absl::StatusOr<std::string> ResolveDatabasePassword(const v1::DatabaseConfig& database) {
  return ResolveSecret("target.database.password", database.password_file(),
                       database.password_env());
}

v1::Config RedactSecrets(const v1::Config& config) {
  v1::Config redacted = config;
  // Only references to secrets live in the config; the properties map may hold SASL passwords.
  for (auto& [name, value] : *redacted.mutable_kafka()->mutable_properties()) {
    if (absl::StrContains(absl::AsciiStrToLower(name), "password") ||
        absl::StrContains(absl::AsciiStrToLower(name), "secret")) {
      value = "<redacted>";
    }
  }
  return redacted;
}

}  // namespace cdcjoin
