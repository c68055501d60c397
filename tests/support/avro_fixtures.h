#ifndef CDCJOIN_TESTS_SUPPORT_AVRO_FIXTURES_H_
#define CDCJOIN_TESTS_SUPPORT_AVRO_FIXTURES_H_

// The real Debezium Avro records of tests/testdata/avro (see its README), loaded for tests:
//
//   AvroFixtures fixtures = LoadAvroFixtures();
//   registry.Serve(id, fixtures.schemas_by_id[id]) ...;
//   fixtures.records.at("snapshot_full_row").value   // magic byte, schema id, Avro body

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace cdcjoin {

struct AvroFixtureRecord {
  std::string key;                   // The whole Kafka key (Confluent wire format).
  std::optional<std::string> value;  // nullopt: the tombstone.
};

struct AvroFixtures {
  std::map<int32_t, std::string> schemas_by_id;  // The writer schemas' text.
  std::map<std::string, AvroFixtureRecord> records;
};

// Reads tests/testdata/avro/debezium_mariadb_records.json (a data dependency of the test);
// aborts with a message when it cannot.
AvroFixtures LoadAvroFixtures();

}  // namespace cdcjoin

#endif  // CDCJOIN_TESTS_SUPPORT_AVRO_FIXTURES_H_
