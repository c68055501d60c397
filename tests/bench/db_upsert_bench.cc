// Events/s from Kafka (librdkafka's mock cluster, in process) into MariaDB in DB_UPSERT mode,
// through the whole pipeline (consume, decode, column-masked command, sink lanes, multi-row
// upserts, offset commits), beside a one-row-per-statement baseline measured in the same run.
//
//   bazel run -c opt //tests/bench:db_upsert_bench [-- --events=100000 --baseline_events=20000]
//
// Uses the MariaDB named by CDCJOIN_MYSQL_HOST/PORT/USER, or starts a private one with
// scripts/mariadb.sh when they are not set. Ends with one line of JSON holding every figure.

#include <cstdio>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "join/table_schema.h"
#include "service/config.h"
#include "service/embedded_kafka.h"
#include "service/pipeline.h"
#include "storage/mysql_writer.h"
#include "tests/support/seed_workload.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

ABSL_FLAG(int32_t, events, 100000, "Records through the batched pipeline.");
ABSL_FLAG(int32_t, baseline_events, 20000, "Records through the one-row-per-statement baseline.");
ABSL_FLAG(int32_t, partitions, 16, "Partitions per topic.");
ABSL_FLAG(int32_t, lanes, 4, "Sink lanes of the batched run.");
ABSL_FLAG(int32_t, batch_rows, 500, "Rows per statement of the batched run.");

namespace cdcjoin::testing {
namespace {

struct RunResult {
  int64_t events = 0;
  int64_t rows = 0;
  double seconds = 0;
  double events_per_s() const { return events / seconds; }
  double rows_per_s() const { return rows / seconds; }
};

class PrivateMariaDb {
 public:
  ~PrivateMariaDb() {
    if (!dir_.empty()) {
      if (std::system(absl::StrCat(script_, " stop ", dir_, " >/dev/null 2>&1").c_str()) != 0) {
        std::fprintf(stderr, "could not stop the private MariaDB in %s\n", dir_.c_str());
      }
    }
  }
  // Starts one when the environment names none; returns the endpoint either way.
  absl::StatusOr<MySqlEndpoint> Ensure() {
    if (absl::StatusOr<MySqlEndpoint> endpoint = MySqlFromEnv(); endpoint.ok()) return endpoint;
    const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
    script_ = absl::StrCat(workspace != nullptr ? workspace : ".", "/scripts/mariadb.sh");
    dir_ = absl::StrCat("/tmp/cdcjoin-bench-mysql-", getpid());
    const std::string command = absl::StrCat(script_, " start ", dir_, " | sed -n 's/.*CDCJOIN_MYSQL_PORT=\\([0-9]*\\).*/\\1/p'");
    FILE* out = popen(command.c_str(), "r");
    char port[32] = {};
    if (out == nullptr || std::fgets(port, sizeof port, out) == nullptr) {
      if (out != nullptr) pclose(out);
      return absl::UnavailableError("could not start a private MariaDB with " + script_);
    }
    pclose(out);
    MySqlEndpoint endpoint{"127.0.0.1", std::atoi(port), "root"};
    return endpoint;
  }

 private:
  std::string script_;
  std::string dir_;
};

absl::StatusOr<RunResult> RunPipeline(const MySqlEndpoint& mysql, const std::string& bootstrap,
                                      const std::string& name, int64_t expected_records,
                                      int lanes, int batch_rows) {
  const std::string database = absl::StrCat("bench_", name);
  if (absl::Status s = CreateSeedDatabase(mysql, database); !s.ok()) return s;
  absl::StatusOr<v1::Config> config = ParseConfig(SeedConfigText(
      bootstrap, mysql.host, mysql.port, mysql.user, database, "bench-" + name));
  if (!config.ok()) return config.status();
  config->mutable_sink()->set_lanes(lanes);
  config->mutable_sink()->set_batch_rows(batch_rows);
  config->mutable_sink()->set_linger_ms(batch_rows > 1 ? 5 : 0);
  // Frequent commits: the clock stops on the committed offsets, so their lag would count as time.
  config->mutable_kafka()->set_commit_interval_ms(50);
  if (absl::Status s = ValidateConfig(*config, false); !s.ok()) return s;
  absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(*config);
  if (!schema.ok()) return schema.status();

  Pipeline::Options pipeline_options;
  pipeline_options.config = *config;
  pipeline_options.bootstrap_servers = bootstrap;
  pipeline_options.connect_writer =
      MySqlWriter::Factory(MySqlOptions::FromConfig(*config, /*password=*/""), &*schema);
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Start(pipeline_options);
  if (!pipeline.ok()) return pipeline.status();
  // The clock starts with the first consumed record: the group join (~3 s on the mock
  // cluster) is not throughput.
  while ((*pipeline)->stats().EventsConsumed() == 0) absl::SleepFor(absl::Milliseconds(1));
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Minutes(10);
  int64_t committed = 0;
  while (absl::Now() < deadline) {
    committed = 0;
    for (const PartitionStatus& partition : (*pipeline)->Partitions()) {
      committed += std::max<int64_t>(0, partition.committed);
    }
    if (committed >= expected_records) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  RunResult result;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  // Committed offsets count records that took effect (consumed-but-pending ones do not).
  result.events = committed;
  // Rows applied by the time the clock stopped (the stop below still applies what is queued).
  result.rows = (*pipeline)->stats().rows_written.load();
  if (absl::Status s = (*pipeline)->Stop(absl::Seconds(30)); !s.ok()) return s;
  ExecuteSql(mysql, "", {absl::StrCat("DROP DATABASE `", database, "`")}).IgnoreError();
  if (result.events < expected_records) {
    return absl::DeadlineExceededError(absl::StrCat(name, ": only ", result.events, " of ",
                                                    expected_records, " records consumed"));
  }
  return result;
}

int Run() {
  PrivateMariaDb private_db;
  absl::StatusOr<MySqlEndpoint> mysql = private_db.Ensure();
  if (!mysql.ok()) {
    std::fprintf(stderr, "%s\n", mysql.status().ToString().c_str());
    return 1;
  }
  const int partitions = absl::GetFlag(FLAGS_partitions);
  const std::vector<std::string> topics = {"cdc.azar.User", "cdc.azar.UserExtData"};
  auto kafka = EmbeddedKafka::Start(
      3, {{topics[0], partitions}, {topics[1], partitions}, {"cdcjoin.dlq", 1}});
  if (!kafka.ok()) {
    std::fprintf(stderr, "%s\n", kafka.status().ToString().c_str());
    return 1;
  }
  const std::string bootstrap = (*kafka)->bootstrap_servers();

  // Both runs read the same topics from the start under their own group; the baseline reads a
  // prefix of them only, so its table and figures stay comparable.
  SeedWorkloadOptions workload;
  workload.records = absl::GetFlag(FLAGS_events);
  workload.users = workload.records / 5;
  workload.partitions = partitions;
  workload.mix_schema_envelopes = false;  // Keeps 100k records within the mock's retention.
  const std::vector<SeedRecord> records = GenerateSeedWorkload(workload);
  if (absl::Status s = ProduceSeedRecords(bootstrap, topics, records, 0, records.size()); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }

  absl::StatusOr<RunResult> batched =
      RunPipeline(*mysql, bootstrap, "batched", static_cast<int64_t>(records.size()),
                  absl::GetFlag(FLAGS_lanes), absl::GetFlag(FLAGS_batch_rows));
  if (!batched.ok()) {
    std::fprintf(stderr, "batched: %s\n", batched.status().ToString().c_str());
    return 1;
  }
  // The baseline stops once it has committed baseline_events records: it reads all topics,
  // so "records" counts committed offsets across partitions.
  absl::StatusOr<RunResult> baseline = RunPipeline(
      *mysql, bootstrap, "baseline", absl::GetFlag(FLAGS_baseline_events), 1, 1);
  if (!baseline.ok()) {
    std::fprintf(stderr, "baseline: %s\n", baseline.status().ToString().c_str());
    return 1;
  }
  const double ratio = batched->events_per_s() / baseline->events_per_s();
  std::printf("\nDB_UPSERT pipeline, mock Kafka (%d partitions) -> MariaDB 127.0.0.1:%d\n",
              partitions, mysql->port);
  std::printf("%-44s %10s %10s %9s %12s %12s\n", "run", "events", "rows", "seconds", "events/s",
              "rows/s");
  std::printf("%-44s %10lld %10lld %9.2f %12.0f %12.0f\n",
              absl::StrFormat("batched (%d lanes, %d rows/statement)", absl::GetFlag(FLAGS_lanes),
                              absl::GetFlag(FLAGS_batch_rows))
                  .c_str(),
              static_cast<long long>(batched->events), static_cast<long long>(batched->rows),
              batched->seconds, batched->events_per_s(), batched->rows_per_s());
  std::printf("%-44s %10lld %10lld %9.2f %12.0f %12.0f\n",
              "baseline (1 lane, 1 row/statement)", static_cast<long long>(baseline->events),
              static_cast<long long>(baseline->rows), baseline->seconds,
              baseline->events_per_s(), baseline->rows_per_s());
  std::printf("ratio: %.1fx   (targets: >= 20x and >= 30,000 rows/s)\n\n", ratio);
  std::printf(
      "{\"events_per_s\": %.0f, \"rows_per_s\": %.0f, \"baseline_events_per_s\": %.0f, "
      "\"baseline_rows_per_s\": %.0f, \"ratio\": %.2f, \"events\": %lld, \"baseline_events\": "
      "%lld, \"lanes\": %d, \"batch_rows\": %d, \"partitions\": %d}\n",
      batched->events_per_s(), batched->rows_per_s(), baseline->events_per_s(),
      baseline->rows_per_s(), ratio, static_cast<long long>(batched->events),
      static_cast<long long>(baseline->events), absl::GetFlag(FLAGS_lanes),
      absl::GetFlag(FLAGS_batch_rows), partitions);
  return 0;
}

}  // namespace
}  // namespace cdcjoin::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return cdcjoin::testing::Run();
}
