// Events/s from Kafka (librdkafka's mock cluster, in process) into MariaDB in DB_UPSERT mode,
// through the whole pipeline (consume, decode, column-masked command, sink lanes, multi-row
// upserts, offset commits), beside a one-row-per-statement baseline measured in the same run.
//
// Then hot keys, through the sink lanes alone, with key coalescing off and on in the same run
// (statements, round trips and rows per event, events/s, the ratios): the seed's salted
// snapshot (keys 1,2,3,4,5,5,6,..., each key's User and UserExtData rows one after the other),
// and one user changed over and over.
//
//   bazel run -c opt //tests/bench:db_upsert_bench [-- --events=100000 --baseline_events=20000]
//
// Uses the MariaDB named by CDCJOIN_MYSQL_HOST/PORT/USER, or starts a private one with
// scripts/mariadb.sh when they are not set. Each part ends with one line of JSON of its figures.

#include <cstdio>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "join/db_upsert_joiner.h"
#include "join/table_schema.h"
#include "service/config.h"
#include "service/debezium_decoder.h"
#include "service/embedded_kafka.h"
#include "service/pipeline.h"
#include "service/sink_lanes.h"
#include "storage/mysql_writer.h"
#include "tests/support/reference_model.h"
#include "tests/support/seed_workload.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

ABSL_FLAG(int32_t, events, 100000, "Records through the batched pipeline.");
ABSL_FLAG(int32_t, baseline_events, 20000, "Records through the one-row-per-statement baseline.");
ABSL_FLAG(int32_t, partitions, 16, "Partitions per topic.");
ABSL_FLAG(int32_t, lanes, 4, "Sink lanes of the batched run.");
ABSL_FLAG(int32_t, batch_rows, 500, "Rows per statement of the batched run.");
ABSL_FLAG(bool, hot_keys_only, false, "Skip the pipeline runs; only the hot-key comparison.");
ABSL_FLAG(int32_t, one_key_events, 3000, "Records of the one-hot-key runs.");
ABSL_FLAG(int32_t, salted_users, 20000,
          "Users of the seed's salted snapshot for the hot-key runs (2.4 records per user).");

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

// What the writers of all lanes did, summed.
struct WriterCounts {
  std::atomic<int64_t> statements{0};
  std::atomic<int64_t> transactions{0};
  std::atomic<int64_t> rows{0};
};

// A MySqlWriter that adds what it did to counters shared by all lanes.
class CountingWriter : public RowWriter {
 public:
  CountingWriter(std::unique_ptr<MySqlWriter> writer, WriterCounts* counts)
      : writer_(std::move(writer)), counts_(counts) {}

  absl::Status Apply(const std::vector<RowCommand>& commands) override {
    absl::Status status = writer_->Apply(commands);
    const MySqlWriterStats stats = writer_->Stats();
    counts_->statements.fetch_add(static_cast<int64_t>(stats.statements - seen_.statements));
    counts_->transactions.fetch_add(
        static_cast<int64_t>(stats.transactions - seen_.transactions));
    counts_->rows.fetch_add(static_cast<int64_t>(stats.rows - seen_.rows));
    seen_ = stats;
    return status;
  }

 private:
  std::unique_ptr<MySqlWriter> writer_;
  WriterCounts* counts_;
  MySqlWriterStats seen_;
};

struct HotKeyResult {
  int64_t events = 0;
  int64_t commands = 0;
  int64_t statements = 0;
  int64_t transactions = 0;
  int64_t rows = 0;
  double seconds = 0;
  double statements_per_event() const { return static_cast<double>(statements) / events; }
  // A statement and a commit are one round trip each.
  double round_trips_per_event() const {
    return static_cast<double>(statements + transactions) / events;
  }
  double rows_per_event() const { return static_cast<double>(rows) / events; }
  double events_per_s() const { return events / seconds; }
};

// The salted records, decoded and turned into their DB_UPSERT commands (not timed), through
// fresh sink lanes into a fresh database; the clock runs from the first enqueue to the drain.
// The table must equal the reference model's.
absl::StatusOr<HotKeyResult> RunHotKeys(const MySqlEndpoint& mysql,
                                        const std::vector<SeedRecord>& records, bool coalesce,
                                        const std::string& name) {
  const std::string database = absl::StrCat("bench_", name, coalesce ? "_on" : "_off");
  if (absl::Status s = CreateSeedDatabase(mysql, database); !s.ok()) return s;
  absl::StatusOr<v1::Config> config = ParseConfig(
      SeedConfigText("unused:9092", mysql.host, mysql.port, mysql.user, database, "unused"));
  if (!config.ok()) return config.status();
  if (absl::Status s = ValidateConfig(*config, false); !s.ok()) return s;
  absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(*config);
  if (!schema.ok()) return schema.status();
  absl::StatusOr<DebeziumDecoder> decoder = DebeziumDecoder::Create(&*schema, {});
  if (!decoder.ok()) return decoder.status();
  std::vector<RowCommand> commands;
  for (size_t i = 0; i < records.size(); ++i) {
    const SeedRecord& record = records[i];
    EventPosition position;
    position.partition = {record.source, record.partition};
    position.offset = static_cast<int64_t>(i);
    absl::StatusOr<Decoded> decoded =
        decoder->Decode(record.source, record.key, record.value, record.ts_ms, position);
    if (!decoded.ok()) return decoded.status();
    if (decoded->outcome != DecodeOutcome::kEvent) continue;
    std::optional<RowCommand> command = BuildDbUpsertCommand(*schema, decoded->event);
    if (command.has_value()) commands.push_back(*std::move(command));
  }

  WriterCounts counts;
  const MySqlOptions writer_options = MySqlOptions::FromConfig(*config, /*password=*/"");
  SinkLanesOptions options;
  options.lanes = absl::GetFlag(FLAGS_lanes);
  options.batch_rows = absl::GetFlag(FLAGS_batch_rows);
  options.coalesce_keys = coalesce;
  PipelineStats stats;
  absl::StatusOr<std::unique_ptr<SinkLanes>> lanes = SinkLanes::Start(
      options,
      [&]() -> absl::StatusOr<std::unique_ptr<RowWriter>> {
        absl::StatusOr<std::unique_ptr<MySqlWriter>> writer =
            MySqlWriter::Connect(writer_options, &*schema);
        if (!writer.ok()) return writer.status();
        return std::unique_ptr<RowWriter>(
            std::make_unique<CountingWriter>(*std::move(writer), &counts));
      },
      [](absl::Span<const RowCommand>) {},
      [](RowCommand, const absl::Status& why) {
        std::fprintf(stderr, "the database refused a row: %s\n", std::string(why.message()).c_str());
      },
      &stats);
  if (!lanes.ok()) return lanes.status();
  HotKeyResult result;
  result.events = static_cast<int64_t>(records.size());
  result.commands = static_cast<int64_t>(commands.size());
  const absl::Time start = absl::Now();
  for (RowCommand& command : commands) {
    while (!(*lanes)->TryEnqueue(command)) (*lanes)->WaitForRoom(absl::Milliseconds(100));
  }
  if (!(*lanes)->Drain(absl::Minutes(5))) {
    return absl::DeadlineExceededError(absl::StrCat(database, ": lanes did not drain"));
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  (*lanes)->Stop();
  result.statements = counts.statements.load();
  result.transactions = counts.transactions.load();
  result.rows = counts.rows.load();

  absl::StatusOr<ModelTable> table = DumpSeedTable(mysql, database);
  if (!table.ok()) return table.status();
  const std::vector<std::string> diffs =
      DiffTables(ComputeExpectedTable(*config, records), *table);
  ExecuteSql(mysql, "", {absl::StrCat("DROP DATABASE `", database, "`")}).IgnoreError();
  if (!diffs.empty()) {
    return absl::InternalError(absl::StrCat(database, " differs from the reference model: ",
                                            diffs.front()));
  }
  return result;
}

// Runs `records` with coalescing off, on, off, on (the second pair on a warm server; both
// printed) and prints the figures under `title`, then a JSON line whose keys start with `tag`.
int CompareCoalescing(const MySqlEndpoint& mysql, const std::string& title,
                      const std::string& tag, const std::vector<SeedRecord>& records) {
  std::vector<HotKeyResult> off, on;
  for (int run = 0; run < 2; ++run) {
    for (bool coalesce : {false, true}) {
      absl::StatusOr<HotKeyResult> result =
          RunHotKeys(mysql, records, coalesce, absl::StrCat(tag, run));
      if (!result.ok()) {
        std::fprintf(stderr, "%s: %s\n", tag.c_str(), result.status().ToString().c_str());
        return 1;
      }
      (coalesce ? on : off).push_back(*result);
    }
  }
  std::printf("%s (%zu records), sink lanes only (%d lanes, %d rows/statement), tables checked "
              "against the reference model\n",
              title.c_str(), records.size(), absl::GetFlag(FLAGS_lanes),
              absl::GetFlag(FLAGS_batch_rows));
  std::printf("%-24s %8s %6s %6s %7s %10s %10s %9s %10s\n", "run", "commands", "stmts",
              "txns", "rows", "stmts/ev", "trips/ev", "rows/ev", "events/s");
  for (int run = 0; run < 2; ++run) {
    for (const HotKeyResult* r : {&off[run], &on[run]}) {
      std::printf("%-24s %8lld %6lld %6lld %7lld %10.4f %10.4f %9.3f %10.0f\n",
                  absl::StrCat(r == &off[run] ? "coalescing off" : "coalescing on", " (pair ",
                               run + 1, ")")
                      .c_str(),
                  static_cast<long long>(r->commands), static_cast<long long>(r->statements),
                  static_cast<long long>(r->transactions), static_cast<long long>(r->rows),
                  r->statements_per_event(), r->round_trips_per_event(), r->rows_per_event(),
                  r->events_per_s());
    }
  }
  std::printf("(trips: statements + commits; rows: statement rows after the lanes' reduction)\n");
  const char* t = tag.c_str();
  const HotKeyResult& a = off[1];
  const HotKeyResult& b = on[1];
  std::printf("ratio (pair 2, on / off): statements/event %.3g, round trips/event %.3g, "
              "rows/event %.3g, events/s %.3g\n",
              b.statements_per_event() / a.statements_per_event(),
              b.round_trips_per_event() / a.round_trips_per_event(),
              b.rows_per_event() / a.rows_per_event(), b.events_per_s() / a.events_per_s());
  std::printf(
      "{\"%s_events\": %lld, \"%s_off_statements_per_event\": %.4f, "
      "\"%s_on_statements_per_event\": %.4f, \"%s_off_round_trips_per_event\": %.4f, "
      "\"%s_on_round_trips_per_event\": %.4f, \"%s_off_rows_per_event\": %.3f, "
      "\"%s_on_rows_per_event\": %.3f, \"%s_off_events_per_s\": %.0f, "
      "\"%s_on_events_per_s\": %.0f, \"%s_events_per_s_ratio\": %.2f}\n\n",
      t, static_cast<long long>(a.events), t, a.statements_per_event(), t, b.statements_per_event(), t,
      a.round_trips_per_event(), t, b.round_trips_per_event(), t, a.rows_per_event(), t,
      b.rows_per_event(), t, a.events_per_s(), t, b.events_per_s(), t,
      b.events_per_s() / a.events_per_s());
  return 0;
}

int RunHotKeyComparison(const MySqlEndpoint& mysql) {
  // Only the snapshot: the seed's salted key sequence, both tables' rows of a key adjacent.
  SeedWorkloadOptions salted;
  salted.records = 0;
  salted.users = absl::GetFlag(FLAGS_salted_users);
  salted.mix_schema_envelopes = false;
  if (int rc = CompareCoalescing(mysql, "Hot keys: the seed's salted snapshot", "salted",
                                 GenerateSeedWorkload(salted));
      rc != 0) {
    return rc;
  }
  // One user changed over and over (its snapshot, then creates, updates and deletes of it).
  SeedWorkloadOptions one_key;
  one_key.records = absl::GetFlag(FLAGS_one_key_events);
  one_key.users = 1;
  one_key.mix_schema_envelopes = false;
  return CompareCoalescing(mysql, "Hot keys: one user changed over and over", "one_key",
                           GenerateSeedWorkload(one_key));
}


int Run() {
  PrivateMariaDb private_db;
  absl::StatusOr<MySqlEndpoint> mysql = private_db.Ensure();
  if (!mysql.ok()) {
    std::fprintf(stderr, "%s\n", mysql.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_hot_keys_only)) return RunHotKeyComparison(*mysql);
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
  return RunHotKeyComparison(*mysql);
}

}  // namespace
}  // namespace cdcjoin::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return cdcjoin::testing::Run();
}
