#ifndef CDCJOIN_TESTS_SUPPORT_TEST_KAFKA_H_
#define CDCJOIN_TESTS_SUPPORT_TEST_KAFKA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/seed_workload.h"

namespace cdcjoin::testing {

// Produces records[begin, end) to topics[record.source], partition record.partition, and waits
// until every one is acknowledged.
absl::Status ProduceSeedRecords(const std::string& bootstrap,
                                const std::vector<std::string>& topics,
                                const std::vector<SeedRecord>& records, size_t begin, size_t end);

struct ConsumedRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::map<std::string, std::string> headers;
};

// Every record of `topic` from the beginning (read without a group).
absl::StatusOr<std::vector<ConsumedRecord>> ReadTopic(const std::string& bootstrap,
                                                      const std::string& topic,
                                                      absl::Duration timeout);

// The group's committed offset per (topic, partition); -1 where none.
absl::StatusOr<std::map<std::pair<std::string, int32_t>, int64_t>> CommittedOffsets(
    const std::string& bootstrap, const std::string& group, const std::vector<std::string>& topics,
    int partitions);

// High watermark per (topic, partition).
absl::StatusOr<std::map<std::pair<std::string, int32_t>, int64_t>> HighWatermarks(
    const std::string& bootstrap, const std::vector<std::string>& topics, int partitions);

// Waits for a file to exist and returns its first line (a bootstrap address).
absl::StatusOr<std::string> WaitForFirstLine(const std::string& path, absl::Duration timeout);

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_TEST_KAFKA_H_
