// Feeds the seed's example into a running cdcjoind and watches the target table converge to the
// reference model: the demo's driver.
//
//   seed_feeder --config=demo.textproto --create_database     # fresh database + Nickname
//   seed_feeder --config=demo.textproto --bootstrap_file=F    # snapshot, live changes, watch

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "service/config.h"
#include "tests/support/reference_model.h"
#include "tests/support/seed_workload.h"
#include "tests/support/test_kafka.h"
#include "tests/support/test_mysql.h"

ABSL_FLAG(std::string, config, "", "The cdcjoind configuration (target database, topics).");
ABSL_FLAG(bool, create_database, false, "Create a fresh database with the Nickname table; exit.");
ABSL_FLAG(std::string, bootstrap_file, "", "File holding the Kafka bootstrap address.");
ABSL_FLAG(int32_t, records, 20000, "Records to produce across both topics.");
ABSL_FLAG(int32_t, live_batches, 10, "Live changes arrive in this many bursts.");
ABSL_FLAG(int32_t, timeout_s, 300, "Give up waiting for convergence after this long.");

namespace cdcjoin::testing {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "seed_feeder: %s\n", message.c_str());
  return 1;
}

int Run() {
  absl::StatusOr<v1::Config> config = LoadConfigFile(absl::GetFlag(FLAGS_config));
  if (!config.ok()) return Fail(config.status().ToString());
  const v1::DatabaseConfig& database = config->target().database();
  const MySqlEndpoint mysql{database.host(), database.port(), database.user()};
  if (absl::GetFlag(FLAGS_create_database)) {
    absl::Status created = CreateSeedDatabase(mysql, database.database());
    if (!created.ok()) return Fail(created.ToString());
    std::printf("created database %s with table Nickname\n", database.database().c_str());
    return 0;
  }
  absl::StatusOr<std::string> bootstrap =
      WaitForFirstLine(absl::GetFlag(FLAGS_bootstrap_file), absl::Seconds(60));
  if (!bootstrap.ok()) return Fail(bootstrap.status().ToString());

  SeedWorkloadOptions options;
  options.records = absl::GetFlag(FLAGS_records);
  options.partitions = config->kafka().embedded_partitions();
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  const std::vector<std::string> topics = {config->sources(0).topic(), config->sources(1).topic()};
  size_t snapshot = 0;
  while (snapshot < records.size() && records[snapshot].op == 'r') ++snapshot;
  const ModelTable expected = ComputeExpectedTable(*config, records);

  auto report = [&](const char* phase) -> bool {
    absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql, database.database());
    if (!actual.ok()) {
      std::printf("[%s] target not readable yet: %s\n", phase, actual.status().ToString().c_str());
      return false;
    }
    size_t matching = 0;
    for (const auto& [key, row] : expected) {
      auto it = actual->find(key);
      if (it != actual->end() && it->second == row) ++matching;
    }
    const int width = 40;
    const int filled = static_cast<int>(width * matching / std::max<size_t>(1, expected.size()));
    std::printf("[%s] Nickname rows=%zu  converged %zu/%zu [%s%s]\n", phase, actual->size(),
                matching, expected.size(), std::string(filled, '#').c_str(),
                std::string(width - filled, '.').c_str());
    std::fflush(stdout);
    return matching == expected.size() && actual->size() == expected.size();
  };

  std::printf("producing the snapshot: %zu records (op r) of User and UserExtData\n", snapshot);
  if (absl::Status s = ProduceSeedRecords(*bootstrap, topics, records, 0, snapshot); !s.ok()) {
    return Fail(s.ToString());
  }
  report("snapshot");
  const int bursts = std::max(1, absl::GetFlag(FLAGS_live_batches));
  const size_t live = records.size() - snapshot;
  for (int b = 0; b < bursts; ++b) {
    const size_t begin = snapshot + live * b / bursts;
    const size_t end = snapshot + live * (b + 1) / bursts;
    if (absl::Status s = ProduceSeedRecords(*bootstrap, topics, records, begin, end); !s.ok()) {
      return Fail(s.ToString());
    }
    absl::SleepFor(absl::Milliseconds(700));
    report(absl::StrCat("live ", b + 1, "/", bursts).c_str());
  }
  std::printf("all %zu records produced; waiting for the target to equal the reference model\n",
              records.size());
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
  bool converged = false;
  while (!converged && absl::Now() < deadline) {
    converged = report("converging");
    if (!converged) absl::SleepFor(absl::Milliseconds(500));
  }
  absl::StatusOr<ModelTable> actual = DumpSeedTable(mysql, database.database());
  if (!actual.ok()) return Fail(actual.status().ToString());
  std::printf("\nA few rows of Nickname:\n  %-8s %-28s %-28s %s\n", "userId", "maskingName",
              "currentNickname", "dateCreated");
  int shown = 0;
  for (const auto& [key, row] : *actual) {
    if (shown++ >= 8) break;
    auto text = [&row](const char* column) {
      const auto& value = row.at(column);
      return value.has_value() ? *value : std::string("NULL");
    };
    std::printf("  %-8lld %-28s %-28s %s\n", static_cast<long long>(key),
                text("maskingName").c_str(), text("currentNickname").c_str(),
                text("dateCreated").c_str());
  }
  size_t ops[256] = {};
  for (const SeedRecord& record : records) ++ops[static_cast<unsigned char>(record.op)];
  std::printf(
      "\nrecords produced: %zu (snapshot r=%zu, c=%zu, u=%zu, d=%zu, tombstones=%zu)\n"
      "rows in Nickname: %zu, expected by the reference model: %zu\n",
      records.size(), ops['r'], ops['c'], ops['u'], ops['d'], ops['T'], actual->size(),
      expected.size());
  if (!converged) {
    for (const std::string& diff : DiffTables(expected, *actual)) std::printf("  %s\n", diff.c_str());
    return Fail("the target table did not converge in time");
  }
  std::printf("CONVERGED: the target table equals the reference model.\n");
  return 0;
}

}  // namespace
}  // namespace cdcjoin::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return cdcjoin::testing::Run();
}
