// cdcjoind: joins two Debezium CDC streams from Kafka into one MySQL/MariaDB table.
//
//   cdcjoind --config=examples/nickname.textproto [--embedded_kafka]
//
// Flags live here only; everything else is configured by the one Config message.

#include <malloc.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/admin_server.h"
#include "service/config.h"
#include "service/embedded_kafka.h"
#include "service/logging.h"
#include "service/metrics_exporter.h"
#include "service/pipeline.h"
#include "service/version.h"
#include "storage/mysql_writer.h"
#include "storage/retry_classifier.h"
#include "storage/statement_sql.h"
#include "storage/target_table_check.h"

ABSL_FLAG(std::string, config, "", "Path of the text-format cdcjoin.v1.Config.");
ABSL_FLAG(bool, check_config, false, "Validate the configuration and exit.");
ABSL_FLAG(bool, connect, false,
          "With --check_config: also connect to the database and check the target table (and, in "
          "WINDOWED mode, that window.state_dir is writable). cdcjoind always does this at "
          "start-up.");
ABSL_FLAG(bool, version, false, "Print the version and exit.");
ABSL_FLAG(bool, print_ddl, false,
          "Print the ALTER TABLE statements that add the stale-write guard's version columns "
          "(target.stale_write_guard) to the target table, and exit.");
ABSL_FLAG(bool, embedded_kafka, false,
          "Host librdkafka's mock cluster in this process (demos and tests) instead of "
          "connecting to kafka.brokers.");
ABSL_FLAG(std::string, embedded_kafka_bootstrap_file, "",
          "With --embedded_kafka: write the cluster's bootstrap address to this file.");
ABSL_FLAG(int32_t, shutdown_timeout_ms, 30000,
          "On SIGTERM/SIGINT: how long to wait for consumed events to be applied; the process "
          "exits at most 5 s later whatever happens.");
ABSL_FLAG(std::string, admin_address, "",
          "Overrides admin.listen_address (host:port; port 0 picks a free one).");
ABSL_FLAG(std::string, admin_address_file, "",
          "Write the admin server's bound host:port to this file once it listens.");
ABSL_FLAG(std::string, metrics_address, "",
          "Overrides metrics.listen_address (host:port; port 0 picks a free one).");
ABSL_FLAG(std::string, metrics_address_file, "",
          "Write the /metrics listener's bound host:port to this file once it listens.");
ABSL_FLAG(int32_t, progress_interval_ms, 5000, "How often a progress line is logged; 0: never.");

namespace cdcjoin {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int signal) { g_stop_signal = signal; }

// Whether window.state_dir can hold the windowed joiner's state: created if missing, writable.
std::vector<std::string> StateDirProblems(const v1::Config& config) {
  const std::string& dir = config.window().state_dir();
  if (config.mode() != v1::WINDOWED || dir.empty()) return {};
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const std::string probe = dir + "/.cdcjoin-write-check";
  if (!error && std::ofstream(probe).good()) {
    std::filesystem::remove(probe, error);
    return {};
  }
  return {absl::StrCat("window.state_dir: '", dir, "' is not a writable directory",
                       error ? absl::StrCat(" (", error.message(), ")") : "")};
}

// The checks before the first event: the target table against the config, the state directory.
// Returns the exit code to stop with (2: the config does not fit, or the database refuses it; 1:
// with --check_config --connect, the database cannot be reached), or 0 to go on. An unreachable
// database at start-up is not fatal: the sink lanes retry until it answers.
int CheckBeforeFirstEvent(const v1::Config& config, const std::string& config_path,
                          const MySqlOptions& mysql, bool only_checking,
                          std::map<std::string, ColumnFacts>* columns) {
  std::vector<std::string> problems = StateDirProblems(config);
  absl::StatusOr<TargetTableReport> table = CheckTargetTable(mysql, config);
  if (table.ok()) {
    problems.insert(problems.end(), table->problems.begin(), table->problems.end());
    *columns = std::move(table->columns);
  } else if (!IsRetriable(table.status())) {
    // The server answered, and no retry changes its answer (access denied, no such database).
    problems.push_back(absl::StrCat("target.database: ", table.status().message()));
  } else if (only_checking) {
    std::fprintf(stderr, "cdcjoind: %s: cannot check the target table: %s\n",
                 config_path.c_str(), std::string(table.status().message()).c_str());
    return 1;
  } else {
    LogWarning("cannot check the target table now (", table.status().ToString(),
               "); the sink retries until the database answers, and values are checked "
               "against the configured types only, not the columns'");
  }
  for (const std::string& problem : problems) {
    std::fprintf(stderr, "cdcjoind: %s: %s\n", config_path.c_str(), problem.c_str());
  }
  return problems.empty() ? 0 : 2;
}

// glibc's malloc gives threads that allocate at once their own arenas, up to 8 per core. Two
// arenas (to let threads reuse what others freed: -5% RSS in WINDOWED) made the threads of the
// record path share them with librdkafka's fetchers and their decompression buffers: malloc took
// 30% of DB_UPSERT's samples instead of 20%, and 16-20 CPU-s per 1M events instead of 12-15
// (scripts/peer_bench.sh, docs/benchmarks.md). Eight is one per busy thread here (the poll
// thread, four sink lanes, the fetchers) and still bounds the arenas on large hosts;
// MALLOC_ARENA_MAX overrides.
void LimitMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 8);
}

// Debian's abseil is built without NDEBUG, so absl::Mutex checks every acquisition against a
// process-wide lock-order graph, under a global lock, to report deadlocks: a debugging aid that
// the peer benchmark's profile showed on every lock of the record path. Tests keep it.
void SkipMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// --print_ddl: what the stale-write guard needs added to the target table.
int PrintDdl(const v1::Config& config) {
  absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(config);
  if (!schema.ok()) {
    std::fprintf(stderr, "cdcjoind: %s\n", std::string(schema.status().message()).c_str());
    return 2;
  }
  if (!schema->stale_write_guard) {
    std::printf("-- target.stale_write_guard is off: no version columns to add.\n");
    return 0;
  }
  for (const std::string& statement : VersionColumnDdl(*schema)) {
    std::printf("%s\n", statement.c_str());
  }
  return 0;
}

std::string ProgressLine(const Pipeline& pipeline) {
  int64_t lag = 0;
  int64_t committed = 0;
  for (const PartitionStatus& partition : pipeline.Partitions()) {
    lag += partition.lag;
    committed += partition.committed > 0 ? partition.committed : 0;
  }
  const PipelineStats& stats = pipeline.stats();
  return absl::StrCat("progress: mode=", v1::JoinMode_Name(pipeline.mode()),
                      " state=", PipelineStateName(pipeline.state()),
                      " consumed=", stats.EventsConsumed(), " applied=", stats.rows_written.load(),
                      " batches=", stats.batches.load(), " dead_lettered=",
                      stats.dead_lettered.load(), " retries=", stats.retries.load(),
                      " deadlocks=", stats.deadlocks.load(),
                      " stale_writes_stopped=", stats.stale_writes_stopped.load(),
                      " windows_emitted=",
                      stats.windows_emitted.load(), " late_drops=", stats.late_drops.load(),
                      " committed_offsets=", committed,
                      " lag=", lag);
}

int Run() {
  if (absl::GetFlag(FLAGS_version)) {
    std::printf("cdcjoind %s\n", kVersion);
    return 0;
  }
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    std::fprintf(stderr, "cdcjoind: --config is required\n");
    return 2;
  }
  const bool embedded = absl::GetFlag(FLAGS_embedded_kafka);
  absl::StatusOr<v1::Config> config = LoadConfigFile(config_path);
  if (config.ok()) {
    if (absl::Status s = ValidateConfig(*config, embedded); !s.ok()) {
      config = absl::Status(s.code(), absl::StrCat(config_path, ": ", s.message()));
    }
  }
  if (!config.ok()) {
    std::fprintf(stderr, "cdcjoind: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_print_ddl)) return PrintDdl(*config);
  absl::StatusOr<std::string> password = ResolveDatabasePassword(config->target().database());
  if (!password.ok()) {
    std::fprintf(stderr, "cdcjoind: %s: %s\n", config_path.c_str(),
                 std::string(password.status().message()).c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_admin_address).empty()) {
    config->mutable_admin()->set_listen_address(absl::GetFlag(FLAGS_admin_address));
  }
  if (!absl::GetFlag(FLAGS_metrics_address).empty()) {
    config->mutable_metrics()->set_listen_address(absl::GetFlag(FLAGS_metrics_address));
  }
  // Reads the admin token now, so a missing one fails the start; it is never logged.
  absl::StatusOr<AdminServerOptions> admin_options = AdminServerOptionsFromConfig(config->admin());
  if (!admin_options.ok()) {
    std::fprintf(stderr, "cdcjoind: %s\n", std::string(admin_options.status().message()).c_str());
    return 2;
  }
  const MySqlOptions mysql = MySqlOptions::FromConfig(*config, *std::move(password));
  const bool only_checking = absl::GetFlag(FLAGS_check_config);
  // What the database says about the target's columns: the decoder checks values against it.
  std::map<std::string, ColumnFacts> target_columns;
  if (!only_checking || absl::GetFlag(FLAGS_connect)) {
    if (int code = CheckBeforeFirstEvent(*config, config_path, mysql, only_checking,
                                         &target_columns);
        code != 0) {
      return code;
    }
  }
  if (only_checking) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  std::unique_ptr<EmbeddedKafka> embedded_kafka;
  std::string brokers = config->kafka().brokers();
  if (embedded) {
    const int partitions = config->kafka().embedded_partitions();
    std::vector<EmbeddedKafka::TopicSpec> topics = {{config->kafka().dead_letter_topic(), 1},
                                                    {config->kafka().control_topic(), 1}};
    for (const v1::SourceConfig& source : config->sources()) {
      topics.push_back({source.topic(), partitions});
    }
    absl::StatusOr<std::unique_ptr<EmbeddedKafka>> cluster = EmbeddedKafka::Start(3, topics);
    if (!cluster.ok()) {
      LogError(cluster.status().ToString());
      return 1;
    }
    embedded_kafka = *std::move(cluster);
    brokers = embedded_kafka->bootstrap_servers();
    LogInfo("embedded kafka (librdkafka mock cluster) listening at ", brokers);
    const std::string bootstrap_file = absl::GetFlag(FLAGS_embedded_kafka_bootstrap_file);
    if (!bootstrap_file.empty()) {
      if (absl::Status s = WriteFileAtomically(bootstrap_file, brokers + "\n"); !s.ok()) {
        LogError(s.ToString());
        return 1;
      }
    }
  }

  absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(*config);
  if (!schema.ok()) {
    LogError(schema.status().ToString());
    return 2;
  }
  Pipeline::Options options;
  options.config = *config;
  options.bootstrap_servers = brokers;
  options.target_columns = std::move(target_columns);
  options.connect_writer =
      MySqlWriter::Factory(mysql, &*schema);

  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);

  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Start(std::move(options));
  if (!pipeline.ok()) {
    LogError("cannot start: ", pipeline.status().ToString());
    return 1;
  }
  LogInfo("cdcjoind ", kVersion, " running in ", v1::JoinMode_Name(config->mode()), " mode");
  const std::vector<std::string> admin_options_warnings = admin_options->warnings;
  absl::StatusOr<std::unique_ptr<AdminServer>> admin =
      AdminServer::Start(*std::move(admin_options), pipeline->get());
  if (!admin.ok()) {
    LogError("cannot start the admin server: ", admin.status().ToString());
    (*pipeline)->Stop(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_timeout_ms))).IgnoreError();
    return 1;
  }
  for (const std::string& warning : admin_options_warnings) LogWarning("INSECURE: ", warning);
  if (!(*admin)->health_address().empty()) {
    LogInfo("grpc.health.v1 (plaintext, health only) on ", (*admin)->health_address());
  }
  LogInfo("admin gRPC listening on ", (*admin)->address(),
          config->admin().tls().cert_file().empty() ? " (plaintext)" : " (TLS)",
          config->admin().token_file().empty() && config->admin().token_env().empty()
              ? ", no token"
              : ", token required for mutating calls");
  const std::string admin_address_file = absl::GetFlag(FLAGS_admin_address_file);
  if (!admin_address_file.empty()) {
    if (absl::Status s = WriteFileAtomically(admin_address_file, (*admin)->address() + "\n");
        !s.ok()) {
      LogError(s.ToString());
    }
  }
  // Declared after the pipeline it reads, so it stops serving before the pipeline goes.
  std::unique_ptr<MetricsExporter> metrics;
  if (!config->metrics().disabled()) {
    absl::StatusOr<std::unique_ptr<MetricsExporter>> exporter = MetricsExporter::Start(
        MetricsExporterOptionsFromConfig(config->metrics()), pipeline->get());
    if (!exporter.ok()) {
      LogError("cannot start the metrics endpoint: ", exporter.status().ToString());
      (*admin)->Shutdown();
      (*pipeline)->Stop(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_timeout_ms))).IgnoreError();
      return 1;
    }
    metrics = *std::move(exporter);
    LogInfo("metrics at http://", metrics->address(), "/metrics");
    const std::string metrics_address_file = absl::GetFlag(FLAGS_metrics_address_file);
    if (!metrics_address_file.empty()) {
      if (absl::Status s = WriteFileAtomically(metrics_address_file, metrics->address() + "\n");
          !s.ok()) {
        LogError(s.ToString());
      }
    }
  }

  const absl::Duration progress_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_progress_interval_ms));
  absl::Time next_progress = absl::Now() + progress_interval;
  while (g_stop_signal == 0) {
    absl::SleepFor(absl::Milliseconds(100));
    if (progress_interval > absl::ZeroDuration() && absl::Now() >= next_progress) {
      LogInfo(ProgressLine(**pipeline));
      next_progress = absl::Now() + progress_interval;
    }
  }
  LogInfo("signal ", static_cast<int>(g_stop_signal), ": stopping gracefully");
  // Pipeline::Stop bounds its drain by the timeout, but a sink lane blocked inside a database
  // call (a lock wait: up to innodb_lock_wait_timeout) is joined only when the call returns. The
  // process must not outlive its timeout by that much (an orchestrator would SIGKILL it). Exiting
  // here is safe: only applied offsets are ever committed; the rest is consumed again.
  std::thread([limit = absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_timeout_ms)) +
                       absl::Seconds(5)] {
    absl::SleepFor(limit);
    LogError("stopping took longer than --shutdown_timeout_ms + 5s: exiting now; what was not "
             "committed is consumed again on restart");
    std::_Exit(1);
  }).detach();
  (*admin)->Shutdown();
  absl::Status stopped =
      (*pipeline)->Stop(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_timeout_ms)));
  LogInfo(ProgressLine(**pipeline));
  return stopped.ok() ? 0 : 1;
}

}  // namespace
}  // namespace cdcjoin

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "cdcjoind --config=FILE [--embedded_kafka]: joins two Debezium CDC streams from Kafka "
      "into one MySQL/MariaDB table.");
  // --help lists the flags of this file (absl's default looks for a file named after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "service/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  cdcjoin::LimitMallocArenas();  // Before any thread starts.
  cdcjoin::SkipMutexDeadlockDetection();
  absl::ParseCommandLine(argc, argv);
  return cdcjoin::Run();
}
