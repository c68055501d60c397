#include "service/config.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"

namespace cdcjoin {
namespace {

using ::testing::HasSubstr;

constexpr char kValid[] = R"pb(
  kafka { group_id: "g" dead_letter_topic: "dlq" }
  target {
    table: "Nickname"
    key_columns: "userId"
    database { user: "root" database: "demo" }
  }
  sources {
    name: "user"
    topic: "t.user"
    key_fields: "id"
    columns { from: "simpleName" to: "maskingName" }
  }
  sources {
    name: "ext"
    topic: "t.ext"
    key_fields: "userId"
    columns { from: "originalName" to: "currentNickname" }
  }
)pb";

absl::Status Validate(const std::string& text) {
  absl::StatusOr<v1::Config> config = ParseConfig(text);
  if (!config.ok()) return config.status();
  return ValidateConfig(*config, /*embedded_kafka=*/true);
}

TEST(ConfigTest, ValidConfigGetsDefaults) {
  absl::StatusOr<v1::Config> config = ParseConfig(kValid);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(ValidateConfig(*config, true).ok());
  EXPECT_EQ(config->sink().lanes(), 4);
  EXPECT_EQ(config->sink().batch_rows(), 500);
  EXPECT_EQ(config->sink().retry().max_attempts(), 8);
  EXPECT_EQ(config->mode(), v1::DB_UPSERT);
  EXPECT_EQ(config->window().join_type(), v1::OUTER);
  EXPECT_EQ(config->sources(0).on_delete(), v1::IGNORE);
  EXPECT_EQ(config->target().database().port(), 3306);
}

TEST(ConfigTest, BrokersRequiredWithoutEmbeddedKafka) {
  absl::StatusOr<v1::Config> config = ParseConfig(kValid);
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(ValidateConfig(*config, false).message(), HasSubstr("kafka.brokers: required"));
}

struct BadCase {
  std::string from;
  std::string to;
  std::string expected;
};

class ConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrorTest, NamesTheField) {
  const BadCase& bad = GetParam();
  const std::string text = absl::StrReplaceAll(kValid, {{bad.from, bad.to}});
  ASSERT_NE(text, kValid) << "the case does not change the config";
  absl::Status status = Validate(text);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(bad.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ConfigErrorTest,
    ::testing::Values(
        BadCase{"to: \"currentNickname\"", "to: \"current nickname\"",
                "sources[1].columns[0].to: 'current nickname' is not a valid identifier"},
        BadCase{"table: \"Nickname\"", "table: \"Nick;DROP\"", "target.table: 'Nick;DROP'"},
        BadCase{"group_id: \"g\"", "group_id: \"\"", "kafka.group_id: required"},
        BadCase{"dead_letter_topic: \"dlq\"", "dead_letter_topic: \"t.user\"",
                "kafka.dead_letter_topic: must differ"},
        BadCase{"topic: \"t.ext\"", "topic: \"t.user\"", "sources[1].topic: must differ"},
        BadCase{"key_fields: \"userId\"", "", "sources[1].key_fields: has 0 fields"},
        BadCase{"to: \"maskingName\"", "to: \"userId\"",
                "sources[0].columns[0].to: 'userId' is a key column"},
        BadCase{"user: \"root\"", "", "target.database.user: required"},
        BadCase{"kafka {", "sink { lanes: -1 } kafka {", "sink.lanes: must be in [1, 256]"},
        BadCase{"kafka {", "mode: WINDOWED kafka {", "window.state_dir: required"},
        BadCase{"kafka {", "sink { batch_rows: -5 } kafka {",
                "sink.batch_rows: must be in [1, 65535], got -5"},
        // The values a new user tried, each accepted before it had a range.
        BadCase{"kafka {", "sink { retry { initial_backoff_ms: -20 } } kafka {",
                "sink.retry.initial_backoff_ms: must be in [1, 3600000], got -20"},
        BadCase{"kafka {", "sink { batch_rows: 2000000000 } kafka {",
                "sink.batch_rows: must be in [1, 65535], got 2000000000"},
        BadCase{"kafka {", "sink { linger_ms: 2147483647 } kafka {",
                "sink.linger_ms: must be in [0, 60000], got 2147483647"},
        BadCase{"group_id: \"g\"", "group_id: \"g\" embedded_partitions: 1000000",
                "kafka.embedded_partitions: must be in [1, 1024], got 1000000"},
        BadCase{"group_id: \"g\"",
                "group_id: \"g\" group_instance_id: \"a\" group_instance_id_env: \"POD_NAME\"",
                "kafka.group_instance_id_env: set group_instance_id or group_instance_id_env"},
        BadCase{"group_id: \"g\"", "group_id: \"g\" session_timeout_ms: 999",
                "kafka.session_timeout_ms: must be in [1000, 3600000], got 999"},
        BadCase{"kafka {", "window { window_ms: 9000000000000000000 } kafka {",
                "window.window_ms: must be in [1, 31536000000]"},
        BadCase{"kafka {", "window { grace_ms: 31536000001 } kafka {",
                "window.grace_ms: must be in [0, 31536000000]"},
        // A second source writing another's column is a typo unless both say shared.
        BadCase{"to: \"currentNickname\"", "to: \"maskingName\"",
                "sources[1].columns[0].to: 'maskingName' is also written by "
                "sources[0].columns[0]; mark both mappings shared: true"},
        BadCase{"to: \"currentNickname\"", "to: \"maskingName\" shared: true",
                "sources[1].columns[0].to: 'maskingName' is also written by"},
        BadCase{"kafka {", "nonsense: 1 kafka {", "config: line"},
        BadCase{"name: \"ext\"", "name: \"user\"", "sources[1].name: must differ"},
        // More than two sources: OUTER and DB_UPSERT merge them, INNER and LEFT refuse.
        BadCase{"kafka {",
                "window { join_type: LEFT } sources { name: \"third\" topic: \"t.third\" "
                "key_fields: \"id\" columns { from: \"x\" to: \"x\" } } kafka {",
                "window.join_type: LEFT joins exactly two sources"},
        BadCase{"to: \"currentNickname\" }\n  }",
                "to: \"currentNickname\" }\n  } sources { name: \"third\" topic: \"t.user\" "
                "key_fields: \"id\" columns { from: \"x\" to: \"x\" } }",
                "sources[2].topic: must differ from sources[0].topic"},
        // The stale-write guard.
        BadCase{"topic: \"t.ext\"", "topic: \"t.ext\" on_delete: DELETE_ROW_WHEN_ALL_DELETED",
                "sources[1].on_delete: DELETE_ROW_WHEN_ALL_DELETED keeps who deleted what in "
                "the version columns: it needs target.stale_write_guard: true"},
        // Avro needs a registry to fetch writer schemas from.
        BadCase{"name: \"ext\"", "name: \"ext\" key_format: AVRO",
                "schema_registry.url: required: sources[1].key_format is AVRO"},
        BadCase{"name: \"user\"", "name: \"user\" value_format: AVRO",
                "schema_registry.url: required: sources[0].value_format is AVRO"},
        BadCase{"kafka {",
                "schema_registry { url: \"registry:8081\" } kafka {",
                "schema_registry.url: 'registry:8081' must start with http:// or https://"},
        BadCase{"kafka {",
                "schema_registry { url: \"http://r\" timeout_ms: 10 } kafka {",
                "schema_registry.timeout_ms: must be in [100, 600000], got 10"},
        BadCase{"kafka {",
                "schema_registry { url: \"http://r\" basic_auth_file: \"f\" "
                "basic_auth_env: \"E\" } kafka {",
                "schema_registry.basic_auth_file: set either"}));

TEST(ConfigTest, StaleWriteGuardNamesVersionColumnsAndRefusesTwoUpdatersOfAColumn) {
  const std::string guarded = absl::StrReplaceAll(
      kValid, {{"key_columns: \"userId\"", "key_columns: \"userId\" stale_write_guard: true"}});
  absl::StatusOr<v1::Config> config = ParseConfig(guarded);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sources(0).version_column(), "_cdc_user_ver");
  EXPECT_EQ(config->sources(1).version_column(), "_cdc_ext_ver");
  EXPECT_TRUE(ValidateConfig(*config, true).ok());
  EXPECT_TRUE(ParseConfig(kValid)->sources(0).version_column().empty()) << "only with the guard";
  EXPECT_THAT(std::string(Validate(absl::StrReplaceAll(
                                       guarded, {{"topic: \"t.ext\"",
                                                  "topic: \"t.ext\" version_column: "
                                                  "\"currentNickname\""}}))
                              .message()),
              HasSubstr("sources[1].version_column: 'currentNickname' is already a key, mapped "
                        "or version column"));

  // A column both sources update on conflict cannot be guarded by one source's version.
  const std::string both = absl::StrReplaceAll(
      guarded, {{"to: \"maskingName\"", "to: \"maskingName\" shared: true"},
                {"to: \"currentNickname\"", "to: \"maskingName\" shared: true"}});
  absl::Status status = Validate(both);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("sources[1].columns[0].insert_only: 'maskingName' is also updated by "
                        "sources[0]"));
  EXPECT_TRUE(Validate(absl::StrReplaceAll(
                           both, {{"from: \"originalName\" to: \"maskingName\" shared: true",
                                   "from: \"originalName\" to: \"maskingName\" shared: true "
                                   "insert_only: true"}}))
                  .ok());
}

TEST(ConfigTest, ThreeSourcesMergeInDbUpsertAndOuter) {
  const std::string third =
      "sources { name: \"third\" topic: \"t.third\" key_fields: \"id\" "
      "columns { from: \"x\" to: \"x\" } } kafka {";
  EXPECT_TRUE(Validate(absl::StrReplaceAll(kValid, {{"kafka {", third}})).ok());
  EXPECT_TRUE(Validate(absl::StrReplaceAll(
                           kValid, {{"kafka {", "window { join_type: OUTER } " + third}}))
                  .ok());
}

TEST(ConfigTest, LoadsTheShippedExample) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  absl::StatusOr<v1::Config> config =
      LoadConfigFile(std::string(srcdir) + "/cdcjoin/examples/nickname.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(ValidateConfig(*config, true).ok()) << ValidateConfig(*config, true);
  EXPECT_EQ(config->sources(1).columns(1).insert_only(), true);
}

TEST(ConfigTest, SharedColumnsAreAcceptedWhenBothMappingsSaySo) {
  std::string text = absl::StrReplaceAll(
      kValid, {{"to: \"maskingName\" }", "to: \"maskingName\" shared: true }"},
               {"to: \"currentNickname\" }", "to: \"maskingName\" shared: true }"}});
  EXPECT_TRUE(Validate(text).ok()) << Validate(text) << "\n" << text;
}

TEST(ConfigTest, ParseErrorsNameTheLineAndColumnTheUserSees) {
  // The error is the third line's unknown field, at its first character.
  absl::StatusOr<v1::Config> config =
      ParseConfig("kafka { group_id: \"g\" }\nmode: DB_UPSERT\n  nonsense: 1\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("line 3, column 3"))
      << config.status();
  // An unknown enum value at the end of line 2 is on line 2, not where the next token starts.
  config = ParseConfig("kafka { group_id: \"g\" }\nmode: DB_UPSER\nsink { lanes: 2 }\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("line 2, column 7"))
      << config.status();
  config = ParseConfig("kafka { group_id: \"g\" }\nsink { lanes: \"x\" }\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("line 2, column 15"))
      << config.status();
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadConfigFile("/nonexistent/cdcjoin.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ConfigTest, PasswordFromFileAndEnvironment) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/password";
  std::ofstream(path) << "s3cret\n";
  v1::DatabaseConfig database;
  database.set_password_file(path);
  EXPECT_EQ(*ResolveDatabasePassword(database), "s3cret");
  database.clear_password_file();
  setenv("CDCJOIN_TEST_PASSWORD", "from-env", 1);
  database.set_password_env("CDCJOIN_TEST_PASSWORD");
  EXPECT_EQ(*ResolveDatabasePassword(database), "from-env");
  database.set_password_env("CDCJOIN_TEST_PASSWORD_UNSET");
  EXPECT_THAT(std::string(ResolveDatabasePassword(database).status().message()),
              HasSubstr("password_env"));
}

TEST(ConfigTest, RedactsSecretProperties) {
  v1::Config config;
  (*config.mutable_kafka()->mutable_properties())["sasl.password"] = "hunter2";
  (*config.mutable_kafka()->mutable_properties())["security.protocol"] = "SASL_SSL";
  v1::Config redacted = RedactSecrets(config);
  EXPECT_EQ(redacted.kafka().properties().at("sasl.password"), "<redacted>");
  EXPECT_EQ(redacted.kafka().properties().at("security.protocol"), "SASL_SSL");
}

TEST(ConfigTest, AdminDefaults) {
  absl::StatusOr<v1::Config> config = ParseConfig(kValid);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin().listen_address(), "127.0.0.1:50051");
  EXPECT_FALSE(config->admin().require_token_for_reads());
  EXPECT_TRUE(config->admin().token_file().empty());
  config = ParseConfig(std::string(kValid) + "admin { require_token_for_reads: true }");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->admin().require_token_for_reads());
}

TEST(ConfigTest, AdminErrorsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"admin { listen_address: \"localhost\" }", "admin.listen_address: 'localhost'"},
      {"admin { listen_address: \"127.0.0.1:70000\" }", "admin.listen_address"},
      {"admin { token_file: \"/t\" token_env: \"T\" }", "admin.token_file: set either"},
      {"admin { tls { cert_file: \"c.pem\" } }", "admin.tls.key_file: required"},
      {"admin { tls { key_file: \"k.pem\" } }", "admin.tls.cert_file: required"},
      {"admin { tls { client_ca_file: \"ca.pem\" } }", "admin.tls.client_ca_file"},
  };
  for (const auto& [extra, expected] : cases) {
    absl::Status status = Validate(std::string(kValid) + extra);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << extra;
    EXPECT_THAT(std::string(status.message()), HasSubstr(expected)) << extra;
  }
  EXPECT_TRUE(Validate(std::string(kValid) + "admin { listen_address: \"127.0.0.1:0\" }").ok());
  // Off loopback: TLS and a token, or an explicit insecure.
  const std::vector<std::pair<std::string, std::string>> exposed = {
      {"admin { listen_address: \"0.0.0.0:50051\" }", "to accept plaintext"},
      {"admin { listen_address: \"0.0.0.0:50051\" token_env: \"T\" }", "to accept plaintext"},
      {"admin { listen_address: \"0.0.0.0:50051\" tls { cert_file: \"c\" key_file: \"k\" } }",
       "to accept no token"},
  };
  for (const auto& [extra, expected] : exposed) {
    absl::Status status = Validate(std::string(kValid) + extra);
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("admin.listen_address: '0.0.0.0:50051' is not loopback"))
        << extra;
    EXPECT_THAT(std::string(status.message()), HasSubstr(expected)) << extra;
  }
  EXPECT_TRUE(Validate(std::string(kValid) +
                       "admin { listen_address: \"0.0.0.0:50051\" token_env: \"T\" "
                       "tls { cert_file: \"c\" key_file: \"k\" } }")
                  .ok());
  EXPECT_TRUE(
      Validate(std::string(kValid) + "admin { listen_address: \"0.0.0.0:50051\" insecure: true }")
          .ok());
  EXPECT_THAT(std::string(Validate(std::string(kValid) +
                                   "admin { health_listen_address: \"50052\" }")
                              .message()),
              HasSubstr("admin.health_listen_address: '50052' is not host:port"));
  EXPECT_TRUE(Validate(std::string(kValid) + "admin { listen_address: \"[::1]:50051\" }").ok());
}

}  // namespace
}  // namespace cdcjoin
