#ifndef CDCJOIN_TESTS_SUPPORT_E2E_HARNESS_H_
#define CDCJOIN_TESTS_SUPPORT_E2E_HARNESS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "tests/support/seed_workload.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_mysql.h"

namespace cdcjoin::testing {

// (topic, partition) -> offset.
using PartitionOffsets = std::map<std::pair<std::string, int32_t>, int64_t>;

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

  // Writes the config (with text replacements applied; each must match) and starts cdcjoind
  // with its admin and metrics addresses written to files (see WaitForAddress). Each start logs
  // to a file of its own.
  void StartDaemon(const std::vector<std::pair<std::string, std::string>>& replacements = {},
                   const std::vector<std::string>& extra_flags = {});
  // SIGTERM and the exit code (-1 when still running after `limit`).
  int StopDaemon(absl::Duration limit = absl::Seconds(60));
  // The log of the last start.
  std::string DaemonLog() const { return absl::StrCat(dir_, "/cdcjoind.", starts_, ".log"); }
  // The address the last start listens on for `server` ("admin" or "metrics"); waits for it up
  // to 30 s.
  absl::StatusOr<std::string> WaitForAddress(const std::string& server) const;

  // A replacement for StartDaemon: `mode` with an OUTER window of `window_ms` whose state lives
  // under dir_ (in DB_UPSERT, for a later switch).
  std::pair<std::string, std::string> WindowedConfig(int64_t window_ms = 2000,
                                                     v1::JoinMode mode = v1::WINDOWED) const;

  void Produce(const std::vector<SeedRecord>& records, size_t begin, size_t end);

  // Waits up to `timeout` until the table holds more than `rows` rows; the last count seen.
  size_t WaitForRowsOver(size_t rows, absl::Duration timeout) const;
  // The offsets the group (of the running config) committed.
  absl::StatusOr<PartitionOffsets> Committed() const;

  // Waits until the group committed the end of every partition (every event took effect).
  void WaitUntilAllCommitted(absl::Duration timeout);
  // Waits until the group committed the end of every partition (every event took effect), then
  // compares the table with the reference model of `records` under the running config.
  void ExpectConverges(const std::vector<SeedRecord>& records, absl::Duration timeout);
  // Compares the table, as it is now, with the reference model of `records`, which must have
  // more than `more_rows_than` rows.
  void ExpectTableIsModelOf(const std::vector<SeedRecord>& records, size_t more_rows_than = 0);

  // Injects a fault into the mock cluster (a command of tests/support/mock_kafka.cc: "down",
  // "up", "rtt MS", "fail API_KEY COUNT ERROR_CODE", "clear API_KEY") and waits until it took
  // effect.
  bool KafkaFault(const std::string& command);

  // Waits until the log of the last start contains `text`; false on timeout.
  bool WaitForLog(const std::string& text, absl::Duration timeout) const;

  // The last value of `name=` in the progress lines of the last start, -1 when absent.
  int64_t LastLoggedCounter(const std::string& name) const;

  std::string KafkaControlFile() const;

  MySqlEndpoint mysql_;
  std::string database_;
  std::string dir_;
  std::string bootstrap_;
  std::string config_text_;
  v1::Config config_;  // As last started.
  int starts_ = 0;     // StartDaemon calls so far.
  std::optional<Subprocess> kafka_;
  std::optional<Subprocess> daemon_;
};

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_E2E_HARNESS_H_
