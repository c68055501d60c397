#ifndef CDCJOIN_TESTS_SUPPORT_E2E_HARNESS_H_
#define CDCJOIN_TESTS_SUPPORT_E2E_HARNESS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "tests/support/seed_workload.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin::testing {

// A fixture for end-to-end tests against the real parts: the standalone mock Kafka cluster in
// its own process, a fresh database in the private MariaDB (CDCJOIN_MYSQL_*), and cdcjoind as a
// process on the seed's configuration (SeedConfigText). The reference model judges the table.
class EndToEndTest : public ::testing::Test {
 protected:
  static constexpr int kPartitions = 8;
  static const std::vector<std::string>& Topics();
  static constexpr char kDeadLetterTopic[] = "cdcjoin.dlq";

  void SetUp() override;
  void TearDown() override;

  // Writes the config (with text replacements applied; each must match) and starts cdcjoind.
  void StartDaemon(const std::vector<std::pair<std::string, std::string>>& replacements = {},
                   const std::vector<std::string>& extra_flags = {});
  // SIGTERM and the exit code (-1 on timeout).
  int StopDaemon();
  std::string DaemonLog() const { return dir_ + "/cdcjoind.log"; }

  void Produce(const std::vector<SeedRecord>& records, size_t begin, size_t end);

  // Waits until the group committed the end of every partition (every event took effect), then
  // compares the table with the reference model of `records` under the running config.
  void ExpectConverges(const std::vector<SeedRecord>& records, absl::Duration timeout);

  // The last value of `name=` in the daemon's progress lines, -1 when absent.
  int64_t LastLoggedCounter(const std::string& name) const;

  MySqlEndpoint mysql_;
  std::string database_;
  std::string dir_;
  std::string bootstrap_;
  std::string config_text_;
  v1::Config config_;  // As last started.
  std::optional<Subprocess> kafka_;
  std::optional<Subprocess> daemon_;
};

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_E2E_HARNESS_H_
