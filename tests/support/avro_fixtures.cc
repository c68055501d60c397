#include "tests/support/avro_fixtures.h"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"

namespace cdcjoin {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "avro fixtures: %s\n", what);
  std::abort();
}

}  // namespace

AvroFixtures LoadAvroFixtures() {
  std::ifstream in("tests/testdata/avro/debezium_mariadb_records.json");
  if (!in) Fail("cannot read tests/testdata/avro/debezium_mariadb_records.json");
  std::stringstream text;
  text << in.rdbuf();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text.str()).get(root) != simdjson::SUCCESS) Fail("not JSON");
  AvroFixtures fixtures;
  simdjson::dom::object schemas;
  simdjson::dom::array records;
  if (root["schemas_by_id"].get_object().get(schemas) != simdjson::SUCCESS ||
      root["records"].get_array().get(records) != simdjson::SUCCESS) {
    Fail("no schemas_by_id or records");
  }
  for (auto [id, schema] : schemas) {
    std::string_view schema_text;
    if (schema["schema"].get_string().get(schema_text) != simdjson::SUCCESS) Fail("schema");
    fixtures.schemas_by_id[std::atoi(std::string(id).c_str())] = std::string(schema_text);
  }
  for (simdjson::dom::element record : records) {
    std::string_view name, key_hex, value_hex;
    if (record["name"].get_string().get(name) != simdjson::SUCCESS ||
        record["key_hex"].get_string().get(key_hex) != simdjson::SUCCESS) {
      Fail("record without name or key_hex");
    }
    AvroFixtureRecord fixture;
    fixture.key = absl::HexStringToBytes(std::string(key_hex));
    if (record["value_hex"].get_string().get(value_hex) == simdjson::SUCCESS) {
      fixture.value = absl::HexStringToBytes(std::string(value_hex));
    }
    fixtures.records[std::string(name)] = std::move(fixture);
  }
  return fixtures;
}

}  // namespace cdcjoin
