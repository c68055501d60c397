#ifndef CDCJOIN_TESTS_SUPPORT_SEED_WORKLOAD_H_
#define CDCJOIN_TESTS_SUPPORT_SEED_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cdcjoin::testing {

// The seed's two source tables as Debezium would publish them:
//   User(id, simpleName, dateCreated)      -> topic of sources[0]
//   UserExtData(userId, originalName)      -> topic of sources[1]
// Every record carries its meaning beside its bytes, so the reference model never has to
// decode what the service decodes.
struct SeedRecord {
  int source = 0;          // 0: User, 1: UserExtData.
  int32_t partition = 0;   // userId % partitions on both topics: co-partitioned.
  std::string key;         // Debezium key JSON.
  std::optional<std::string> value;  // Debezium envelope JSON; nullopt is a tombstone.
  // Meaning: 'r','c','u','d' ops, 'T' tombstone, 'P' poison (must be dead-lettered).
  char op = 'r';
  int64_t user_id = 0;
  // Row image fields as SQL text (nullopt: NULL), by source field name.
  std::map<std::string, std::optional<std::string>> fields;
  int64_t ts_ms = 0;
};

struct SeedWorkloadOptions {
  // Target number of records across both topics (the snapshot plus live changes).
  int records = 20000;
  // Distinct users in the snapshot.
  int users = 3000;
  int partitions = 8;
  uint64_t seed = 1;
  // Share of live changes that are deletes (each followed by a tombstone).
  double delete_share = 0.05;
  // Share of User rows whose simpleName is null (skipped, as in the seed).
  double null_name_share = 0.05;
  // One poison record every this many records (0: none).
  int poison_every = 0;
  // Wrap every other record in Kafka Connect's {schema, payload} envelope.
  bool mix_schema_envelopes = true;
  int64_t start_ts_ms = 1624233600000;  // 2021-06-21, the seed's date.
  // Event time step between consecutive records.
  int64_t ts_step_ms = 1;
};

// The seed's example: a snapshot (op r) of both tables with the seed's key "salt" (every fifth
// key repeated: 1,2,3,4,5,5,6,...), then live creates, updates and deletes of random users.
std::vector<SeedRecord> GenerateSeedWorkload(const SeedWorkloadOptions& options);

// The configuration the workload is meant for (text format), pointing at `database` on the given
// MariaDB and at `brokers`; sources[1] clears its columns on delete, sources[0] ignores deletes
// (the seed's choice).
std::string SeedConfigText(const std::string& brokers, const std::string& mysql_host,
                           int mysql_port, const std::string& mysql_user,
                           const std::string& database, const std::string& group_id);

// DDL of the seed's target table.
std::string SeedTargetTableDdl();

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_SEED_WORKLOAD_H_
