#include "service/avro_decoder.h"

#include <avro.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "join/table_schema.h"
#include "join/value.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/config.h"
#include "service/debezium_decoder.h"
#include "service/schema_registry.h"
#include "tests/support/avro_encoding.h"
#include "tests/support/avro_fixtures.h"
#include "tests/support/schema_registry_stub.h"

namespace cdcjoin {
namespace {

Value I(int64_t v) { return Value{v}; }
Value S(std::string v) { return Value{std::move(v)}; }
Value Null() { return Value{}; }

std::string Debug(const std::vector<Value>& values) { return KeyDebugString(values); }

v1::Config ConfigFrom(const std::string& text) {
  v1::Config config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  ApplyDefaults(&config);
  return config;
}

TableSchema SchemaOf(const v1::Config& config) {
  absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(config);
  EXPECT_TRUE(schema.ok()) << schema.status();
  return schema.ok() ? *std::move(schema) : TableSchema{};
}

EventPosition Pos(int source, int64_t offset) {
  EventPosition p;
  p.partition.source = source;
  p.offset = offset;
  return p;
}

// ---------------------------------------------------------------------------------------------
// The real Debezium records of tests/testdata/avro (see its README), through a registry that
// serves their writer schemas under the ids they were written with.

class FixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [id, schema] : fixtures_.schemas_by_id) registry_.Serve(id, schema);
  }

  // Source 0 reads the fixtures' table Typed; its key from the row or the Avro record key.
  std::string Config(bool with_note, const char* key_source = "ROW") const {
    return absl::StrCat(R"pb(
      target { table: "T" key_columns: "id" }
      schema_registry { url: ")pb", registry_.url(), R"pb(" }
      sources {
        name: "typed" topic: "avro.azar.Typed" key_fields: "id" value_format: AVRO
        key_format: AVRO database: "azar" table: "Typed" key_source: )pb", key_source, R"pb(
        columns { from: "amount" to: "amount" }
        columns { from: "happenedAt" to: "happenedAt" }
        columns { from: "createdAt" to: "createdAt" }
        columns { from: "stamped" to: "stamped" }
        columns { from: "day" to: "day" }
        columns { from: "big" to: "big" type: UINT64 }
        columns { from: "flag" to: "flag" })pb",
                        with_note ? R"pb(columns { from: "note" to: "note" })pb" : "", R"pb(
      }
      sources { name: "other" topic: "o" key_fields: "id" columns { from: "x" to: "x" } }
    )pb");
  }

  absl::StatusOr<Decoded> Decode(RecordDecoder& decoder, const std::string& name) {
    const AvroFixtureRecord& f = fixtures_.records.at(name);
    std::optional<std::string_view> value;
    if (f.value.has_value()) value = *f.value;
    return decoder.Decode(0, f.key, value, 7, Pos(0, 1));
  }

  std::unique_ptr<RecordDecoder> Decoder(const v1::Config& config, const TableSchema& schema) {
    absl::StatusOr<std::unique_ptr<RecordDecoder>> decoder = NewRecordDecoder(&schema, config);
    EXPECT_TRUE(decoder.ok()) << decoder.status();
    return decoder.ok() ? *std::move(decoder) : nullptr;
  }

  SchemaRegistryStub registry_;
  const AvroFixtures fixtures_ = LoadAvroFixtures();
};

// The values written from the SQL that made each record (tests/testdata/avro/README.md), in
// the order Config() maps them: amount, happenedAt, createdAt, stamped, day, big, flag, note.
TEST_F(FixtureTest, RealDebeziumRecordsDecodeToTheirRows) {
  const v1::Config config = ConfigFrom(Config(/*with_note=*/true));
  const TableSchema schema = SchemaOf(config);
  std::unique_ptr<RecordDecoder> decoder = Decoder(config, schema);
  ASSERT_NE(decoder, nullptr);
  struct Case {
    const char* name;
    char op;
    int64_t key;
    std::vector<Value> values;
  };
  const std::vector<Case> cases = {
      {"snapshot_full_row", 'r', 1,
       {S("12.3400"), S("2024-03-01 10:00:00.123456"), S("2024-03-01 10:00:00.123000"),
        S("2024-03-01 10:00:00.500000"), S("2024-03-01"), S("18446744073709551615"), I(1),
        S("\xEB\x8B\x89\xEB\x84\xA4\xEC\x9E\x84 hello")}},
      {"snapshot_edges_and_nulls", 'r', 2,
       {S("-9999999999999999.9999"), S("1969-12-31 23:59:59.000001"),
        S("1000-01-01 00:00:00"), Null(), S("1000-01-01"), Null(), Null(), Null()}},
      {"snapshot_all_null", 'r', 3, {Null(), Null(), Null(), Null(), Null(), Null(), Null(), Null()}},
      {"insert_max_values", 'c', 4,
       {S("9999999999999999.9999"), S("2038-01-19 03:14:07.999999"),
        S("9999-12-31 23:59:59.999000"), S("2038-01-19 03:14:07.999000"), S("9999-12-31"),
        S("9223372036854775808"), I(0), S("")}},
      {"update_before_after", 'u', 1,
       {S("0.0001"), S("2024-03-01 10:00:00.123456"), S("2024-03-01 10:00:00.123000"), Null(),
        S("2024-03-01"), S("18446744073709551615"), I(1),
        S("\xEB\xB0\x94\xEB\x80\x90 \xEC\x9D\xB4\xEB\xA6\x84")}},
      {"insert_only_key", 'c', 5, {Null(), Null(), Null(), Null(), Null(), Null(), Null(), Null()}},
      // Schema id 3: after ADD COLUMN extra (not mapped) the row still decodes.
      {"after_add_column", 'c', 6,
       {S("6.5000"), Null(), Null(), Null(), Null(), Null(), Null(), S("with extra")}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Decoded> d = Decode(*decoder, c.name);
    ASSERT_TRUE(d.ok()) << c.name << ": " << d.status();
    EXPECT_EQ(d->outcome, DecodeOutcome::kEvent) << c.name;
    EXPECT_EQ(d->op, c.op) << c.name;
    EXPECT_EQ(d->event.op, ChangeOp::kUpsert) << c.name;
    EXPECT_EQ(d->event.key, (Key{I(c.key)})) << c.name;
    EXPECT_EQ(d->event.values, c.values)
        << c.name << ": got " << Debug(d->event.values) << ", want " << Debug(c.values);
    EXPECT_FALSE(d->key_disagreed) << c.name << ": the Avro record key says the same id";
    EXPECT_GT(d->event.event_time_ms, 1700000000000) << c.name << ": source.ts_ms";
  }

  absl::StatusOr<Decoded> deleted = Decode(*decoder, "delete");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->event.op, ChangeOp::kDelete);
  EXPECT_EQ(deleted->event.key, (Key{I(2)}));

  absl::StatusOr<Decoded> tombstone = Decode(*decoder, "tombstone");
  ASSERT_TRUE(tombstone.ok()) << tombstone.status();
  EXPECT_EQ(tombstone->outcome, DecodeOutcome::kTombstone);

  // Schema id 4: after DROP COLUMN note, a mapping of note is an error that names it.
  absl::StatusOr<Decoded> dropped = Decode(*decoder, "after_drop_column");
  EXPECT_EQ(dropped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dropped.status().message(), "after.note: missing field");
}

TEST_F(FixtureTest, WriterSchemaChangesMidStreamKeepDecodingAndEachIdIsFetchedOnce) {
  const v1::Config config = ConfigFrom(Config(/*with_note=*/false, "RECORD_KEY"));
  const TableSchema schema = SchemaOf(config);
  std::unique_ptr<RecordDecoder> decoder = Decoder(config, schema);
  ASSERT_NE(decoder, nullptr);
  // Old id, new ids, then the old id again: every id stays readable.
  for (const char* name : {"snapshot_full_row", "after_add_column", "after_drop_column",
                           "update_from_nulls", "after_drop_column", "snapshot_full_row"}) {
    absl::StatusOr<Decoded> d = Decode(*decoder, name);
    ASSERT_TRUE(d.ok()) << name << ": " << d.status();
    EXPECT_EQ(d->outcome, DecodeOutcome::kEvent) << name;
  }
  absl::StatusOr<Decoded> dropped = Decode(*decoder, "after_drop_column");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped->event.key, (Key{I(1)}));
  // Key id 1 and envelope ids 2, 3, 4: four fetches, whatever the number of records.
  EXPECT_EQ(registry_.requests(), 4);
}

TEST_F(FixtureTest, BadRecordsAreInvalidWithTheReason) {
  const v1::Config config = ConfigFrom(Config(/*with_note=*/true));
  const TableSchema schema = SchemaOf(config);
  std::unique_ptr<RecordDecoder> decoder = Decoder(config, schema);
  ASSERT_NE(decoder, nullptr);
  const AvroFixtureRecord& good = fixtures_.records.at("snapshot_full_row");
  const std::string value = *good.value;
  std::string wrong_magic = value;
  wrong_magic[0] = 0x7b;
  std::string unknown_id = value;
  unknown_id[4] = 99;
  struct Case {
    const char* name;
    std::string value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"wrong magic byte", wrong_magic, "value: magic byte 0x7b, not 0"},
      {"JSON on an Avro source", R"({"op":"c"})", "value: magic byte 0x7b, not 0"},
      {"shorter than the header", value.substr(0, 3),
       "value: 3 bytes, shorter than the Confluent wire format's 5-byte header"},
      {"unknown schema id", unknown_id, "value: schema id 99: schema registry: GET"},
      {"truncated body", value.substr(0, value.size() / 2),
       "does not decode with writer schema id 2"},
      {"header only", value.substr(0, 5), "does not decode with writer schema id 2"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Decoded> d = decoder->Decode(0, good.key, c.value, 7, Pos(0, 1));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << d.status();
    EXPECT_NE(d.status().message().find(c.expected), std::string_view::npos)
        << c.name << ": " << d.status();
  }
  // A key schema is no envelope.
  absl::StatusOr<Decoded> key_as_value = decoder->Decode(0, good.key, good.key, 7, Pos(0, 1));
  EXPECT_EQ(key_as_value.status().message(),
            "value: writer schema id 1 is no Debezium envelope (no before/after record)");
  // Random corruption of the body never crashes and never yields an event of another shape.
  std::mt19937 random(15);
  for (int i = 0; i < 2000; ++i) {
    std::string corrupt = value;
    for (int flips = 1 + static_cast<int>(random() % 4); flips > 0; --flips) {
      const size_t at = 5 + random() % (corrupt.size() - 5);
      corrupt[at] = static_cast<char>(random());
    }
    absl::StatusOr<Decoded> d = decoder->Decode(0, good.key, corrupt, 7, Pos(0, 1));
    if (d.ok() && d->outcome == DecodeOutcome::kEvent && d->event.op == ChangeOp::kUpsert) {
      EXPECT_EQ(d->event.values.size(), 8u);
    } else if (!d.ok()) {
      EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
    }
  }
}

// Every cut of every real record's body, value or key, is a dead letter naming the writer: the
// reader never yields a partial row, never reads past the body, and (Avro C 1.11.1 leaks what it
// allocated for a datum cut short) leaves nothing allocated behind (valgrind-clean).
TEST_F(FixtureTest, EveryTruncatedBodyIsInvalidAndNamesItsWriter) {
  const v1::Config config = ConfigFrom(Config(/*with_note=*/true, "RECORD_KEY"));
  const TableSchema schema = SchemaOf(config);
  std::unique_ptr<RecordDecoder> decoder = Decoder(config, schema);
  ASSERT_NE(decoder, nullptr);
  int cuts = 0;
  for (const auto& [name, record] : fixtures_.records) {
    if (!record.value.has_value()) continue;
    const absl::Status whole = decoder->Decode(0, record.key, *record.value, 7, Pos(0, 1)).status();
    for (size_t size = 5; size < record.value->size(); ++size) {
      absl::StatusOr<Decoded> d =
          decoder->Decode(0, record.key, record.value->substr(0, size), 7, Pos(0, 1));
      EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument)
          << name << " cut at " << size;
      EXPECT_NE(d.status().message().find("does not decode with writer schema id"),
                std::string_view::npos)
          << name << " cut at " << size << ": " << d.status();
      ++cuts;
    }
    for (size_t size = 5; size < record.key.size(); ++size) {
      absl::StatusOr<Decoded> d =
          decoder->Decode(0, record.key.substr(0, size), *record.value, 7, Pos(0, 1));
      EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument)
          << name << " key cut at " << size;
      EXPECT_NE(d.status().message().find("does not decode with writer schema id"),
                std::string_view::npos)
          << name << " key cut at " << size << ": " << d.status();
    }
    // And the whole record still decodes as it did before all those failures.
    EXPECT_EQ(decoder->Decode(0, record.key, *record.value, 7, Pos(0, 1)).status(), whole) << name;
  }
  EXPECT_GT(cuts, 100);
}

TEST_F(FixtureTest, AnUnreachableOrFailingRegistryIsUnavailableAndRecovers) {
  const v1::Config config = ConfigFrom(Config(/*with_note=*/true));
  const TableSchema schema = SchemaOf(config);
  std::unique_ptr<RecordDecoder> decoder = Decoder(config, schema);
  ASSERT_NE(decoder, nullptr);

  registry_.SetFailing(true);
  absl::StatusOr<Decoded> failing = Decode(*decoder, "snapshot_full_row");
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kUnavailable) << failing.status();
  EXPECT_NE(failing.status().message().find("HTTP 503"), std::string_view::npos)
      << failing.status();
  registry_.SetFailing(false);
  registry_.Stop();
  // Failures are remembered for a moment: wait until the registry is asked again.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<Decoded> refused = Decode(*decoder, "snapshot_full_row");
  while (refused.status().message().find("HTTP 503") != std::string_view::npos &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    refused = Decode(*decoder, "snapshot_full_row");
  }
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find("onnect"), std::string_view::npos)
      << refused.status();

  registry_.Restart();
  absl::StatusOr<Decoded> back = Decode(*decoder, "snapshot_full_row");
  while (!back.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    back = Decode(*decoder, "snapshot_full_row");
  }
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->event.key, (Key{I(1)}));
}

// A registry that demands HTTP basic auth gets the secret of basic_auth_file or basic_auth_env;
// without it, or with a wrong password, its 401 is Unavailable (the partition holds, nothing is
// dead-lettered) and says which. (tests/realstack_e2e_test.py does this against Apicurio.)
TEST_F(FixtureTest, ARegistryDemandingBasicAuthGetsTheSecretOfAFileOrTheEnvironment) {
  registry_.RequireBasicAuth("reader:pa55-word");
  const int32_t id = fixtures_.schemas_by_id.begin()->first;
  auto fetch = [&](const std::string& auth_fields) {
    v1::SchemaRegistryConfig config;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
        absl::StrCat("url: \"", registry_.url(), "\" ", auth_fields), &config));
    absl::StatusOr<std::shared_ptr<SchemaRegistry>> registry = SchemaRegistry::ForConfig(config);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? (*registry)->Get(id).status() : registry.status();
  };
  const std::string file = absl::StrCat(::testing::TempDir(), "/registry_secret");
  {
    std::ofstream out(file);
    out << "reader:pa55-word\n";
  }
  EXPECT_TRUE(fetch(absl::StrCat("basic_auth_file: \"", file, "\"")).ok());
  ASSERT_EQ(setenv("CDCJOIN_TEST_REGISTRY_AUTH", "reader:pa55-word", 1), 0);
  EXPECT_TRUE(fetch("basic_auth_env: \"CDCJOIN_TEST_REGISTRY_AUTH\"").ok());

  ASSERT_EQ(setenv("CDCJOIN_TEST_REGISTRY_AUTH", "reader:wrong", 1), 0);
  const absl::Status wrong = fetch("basic_auth_env: \"CDCJOIN_TEST_REGISTRY_AUTH\"");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnavailable) << wrong;
  EXPECT_NE(wrong.message().find("HTTP 401, the registry refused the user of "
                                 "schema_registry.basic_auth_file/basic_auth_env"),
            std::string_view::npos)
      << wrong;
  const absl::Status none = fetch("");
  EXPECT_EQ(none.code(), absl::StatusCode::kUnavailable) << none;
  EXPECT_NE(none.message().find("HTTP 401, the registry wants credentials"),
            std::string_view::npos)
      << none;
  unsetenv("CDCJOIN_TEST_REGISTRY_AUTH");
}

// ---------------------------------------------------------------------------------------------
// Shapes the MariaDB fixtures do not have: a VariableScaleDecimal record, an enum, a fixed, and
// arrays, maps and records where a column or the source block has them (read past, or refused
// by name when mapped); a source block with the binlog position among fields nobody reads.

constexpr char kShapesEnvelope[] = R"({"type":"record","name":"Envelope","namespace":"s",
  "fields":[
  {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
    {"name":"id","type":"long"},
    {"name":"amount","type":["null",{"type":"record","name":"VariableScaleDecimal",
      "namespace":"io.debezium.data","fields":[{"name":"scale","type":"int"},
      {"name":"value","type":"bytes"}],"connect.name":"io.debezium.data.VariableScaleDecimal"}]},
    {"name":"mood","type":["null",{"type":"enum","name":"Mood","symbols":["sad","happy"]}]},
    {"name":"hash","type":["null",{"type":"fixed","name":"Hash","size":4}]},
    {"name":"tags","type":["null",{"type":"array","items":"string"}]},
    {"name":"attrs","type":{"type":"map","values":"long"}},
    {"name":"point","type":{"type":"record","name":"Point",
      "fields":[{"name":"x","type":"double"}]}},
    {"name":"note","type":"string"}]}],"default":null},
  {"name":"after","type":["null","Value"],"default":null},
  {"name":"source","type":{"type":"record","name":"Source","fields":[
    {"name":"version","type":"string"},
    {"name":"extra","type":{"type":"record","name":"Extra","fields":[
      {"name":"a","type":{"type":"array","items":"long"}}]}},
    {"name":"ts_ms","type":"long"},
    {"name":"file","type":"string"},{"name":"pos","type":"long"},{"name":"row","type":"int"}]}},
  {"name":"op","type":"string"},
  {"name":"transaction","type":["null",{"type":"record","name":"Tx","fields":[
    {"name":"id","type":"string"}]}],"default":null}]})";

std::string ShapesRecord(AvroRecordEncoder& encoder) {
  avro_value_t* root = encoder.Reset();
  avro_value_t before = AvroField(root, "before");
  AvroBranch(&before, 0);
  avro_value_t after_field = AvroField(root, "after");
  avro_value_t row = AvroBranch(&after_field, 1);
  avro_value_t id = AvroField(&row, "id");
  avro_value_set_long(&id, 42);
  avro_value_t amount_field = AvroField(&row, "amount");
  avro_value_t amount = AvroBranch(&amount_field, 1);
  avro_value_t scale = AvroField(&amount, "scale"), digits = AvroField(&amount, "value");
  avro_value_set_int(&scale, 3);
  char unscaled[] = {0x30, 0x39};  // 12345
  avro_value_set_bytes(&digits, unscaled, sizeof(unscaled));
  avro_value_t mood_field = AvroField(&row, "mood");
  avro_value_t mood = AvroBranch(&mood_field, 1);
  avro_value_set_enum(&mood, 1);
  avro_value_t hash_field = AvroField(&row, "hash");
  avro_value_t hash = AvroBranch(&hash_field, 1);
  char hash_bytes[] = {1, 2, 3, 4};
  avro_value_set_fixed(&hash, hash_bytes, sizeof(hash_bytes));
  avro_value_t tags_field = AvroField(&row, "tags");
  avro_value_t tags = AvroBranch(&tags_field, 1);
  for (const char* tag : {"x", "yy"}) {
    avro_value_t element;
    avro_value_append(&tags, &element, nullptr);
    avro_value_set_string(&element, tag);
  }
  avro_value_t attrs = AvroField(&row, "attrs"), entry;
  avro_value_add(&attrs, "k", &entry, nullptr, nullptr);
  avro_value_set_long(&entry, 7);
  avro_value_t point = AvroField(&row, "point");
  avro_value_t x = AvroField(&point, "x");
  avro_value_set_double(&x, 1.5);
  avro_value_t note = AvroField(&row, "note");
  avro_value_set_string(&note, "after the composites");
  avro_value_t source = AvroField(root, "source");
  avro_value_t version = AvroField(&source, "version");
  avro_value_set_string(&version, "2.7.0.Final");
  avro_value_t extra = AvroField(&source, "extra");
  avro_value_t list = AvroField(&extra, "a"), item;
  avro_value_append(&list, &item, nullptr);
  avro_value_set_long(&item, 5);
  avro_value_t ts = AvroField(&source, "ts_ms"), file = AvroField(&source, "file");
  avro_value_t pos = AvroField(&source, "pos"), row_in_event = AvroField(&source, "row");
  avro_value_set_long(&ts, 1700000000123);
  avro_value_set_string(&file, "mysql-bin.000003");
  avro_value_set_long(&pos, 4567);
  avro_value_set_int(&row_in_event, 2);
  avro_value_t op = AvroField(root, "op");
  avro_value_set_string(&op, "u");
  avro_value_t transaction_field = AvroField(root, "transaction");
  avro_value_t transaction = AvroBranch(&transaction_field, 1);
  avro_value_t transaction_id = AvroField(&transaction, "id");
  avro_value_set_string(&transaction_id, "tx-1");
  return encoder.Encoded();
}

TEST(AvroShapes, DecimalRecordEnumFixedReadAndCompositesAreReadPastOrRefusedByName) {
  SchemaRegistryStub registry;
  registry.Serve(31, kShapesEnvelope);
  AvroRecordEncoder encoder(kShapesEnvelope, 31);
  const std::string record = ShapesRecord(encoder);
  auto config_with = [&](const std::string& extra_column) {
    return ConfigFrom(absl::StrCat(R"pb(
      target { table: "T" key_columns: "id" }
      schema_registry { url: ")pb", registry.url(), R"pb(" }
      sources {
        name: "s" topic: "s" key_fields: "id" value_format: AVRO
        columns { from: "amount" to: "amount" }
        columns { from: "mood" to: "mood" }
        columns { from: "hash" to: "hash" }
        columns { from: "note" to: "note" })pb",
                                   extra_column, "}"));
  };

  const v1::Config config = config_with("");
  const TableSchema schema = SchemaOf(config);
  absl::StatusOr<std::unique_ptr<RecordDecoder>> decoder = NewRecordDecoder(&schema, config);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  for (int twice = 0; twice < 2; ++twice) {  // The second read reuses the slots and the arena.
    absl::StatusOr<Decoded> d = (*decoder)->Decode(0, std::nullopt, record, 7, Pos(0, 1));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->event.op, ChangeOp::kUpsert);
    EXPECT_EQ(Debug(d->event.key), Debug({I(42)}));
    EXPECT_EQ(Debug(d->event.values),
              Debug({S("12.345"), S("happy"), S(std::string("\x01\x02\x03\x04")),
                     S("after the composites")}));
    EXPECT_EQ(d->event.event_time_ms, 1700000000123);
    ASSERT_TRUE(d->event.binlog.has_value());
    EXPECT_EQ(d->event.binlog->file_number, 3u);
    EXPECT_EQ(d->event.binlog->position, 4567u);
    EXPECT_EQ(d->event.binlog->row, 2u);
  }

  for (const auto& [column, type] : std::vector<std::pair<std::string, std::string>>{
           {"tags", "array"}, {"attrs", "map"}, {"point", "record"}}) {
    const v1::Config mapped =
        config_with(absl::StrCat("columns { from: \"", column, "\" to: \"", column, "\" }"));
    const TableSchema mapped_schema = SchemaOf(mapped);
    absl::StatusOr<std::unique_ptr<RecordDecoder>> refusing =
        NewRecordDecoder(&mapped_schema, mapped);
    ASSERT_TRUE(refusing.ok()) << refusing.status();
    absl::StatusOr<Decoded> d = (*refusing)->Decode(0, std::nullopt, record, 7, Pos(0, 1));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << column;
    EXPECT_NE(d.status().message().find(
                  absl::StrCat("after.", column, ": expected a scalar, got ", type)),
              std::string_view::npos)
        << d.status();
  }

  // An enum symbol index past the symbols, and a union branch past the branches: dead letters.
  std::string bad_enum = record, bad_branch = record;
  const size_t mood_at = record.find(std::string("\x02\x02", 2), 5);  // mood: branch 1, symbol 1
  ASSERT_NE(mood_at, std::string::npos);
  bad_enum[mood_at + 1] = 0x08;  // Symbol 4 of 2.
  bad_branch[5] = 0x08;          // `before`: branch 4 of 2.
  for (const std::string& bad : {bad_enum, bad_branch}) {
    absl::StatusOr<Decoded> d = (*decoder)->Decode(0, std::nullopt, bad, 7, Pos(0, 1));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
    EXPECT_NE(d.status().message().find("does not decode with writer schema id 31"),
              std::string_view::npos)
        << d.status();
  }
}

// ---------------------------------------------------------------------------------------------
// The same rows in Debezium's JSON (JsonConverter with schemas) and Avro (encoded here by Avro
// C) decode to identical change events.

struct Row {
  int64_t id = 0;
  std::optional<std::string> note;
  std::optional<int64_t> happened_micros;
  std::optional<int32_t> day;
  std::optional<std::string> amount_unscaled;  // Big-endian two's complement, scale 4.
  std::optional<bool> flag;
  std::optional<double> ratio;
  std::optional<float> level;
  std::optional<std::string> bits;  // Little-endian BitSet bytes.
  std::optional<std::string> zoned;
};

constexpr char kRowConnectFields[] = R"([
  {"type":"int64","optional":false,"field":"id"},
  {"type":"string","optional":true,"field":"note"},
  {"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","field":"happenedAt"},
  {"type":"int32","optional":true,"name":"io.debezium.time.Date","field":"day"},
  {"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal",
   "parameters":{"scale":"4","connect.decimal.precision":"20"},"field":"amount"},
  {"type":"boolean","optional":true,"field":"flag"},
  {"type":"double","optional":true,"field":"ratio"},
  {"type":"float","optional":true,"field":"level"},
  {"type":"bytes","optional":true,"name":"io.debezium.data.Bits","field":"bits"},
  {"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","field":"zoned"}])";

constexpr char kAvroEnvelope[] = R"({"type":"record","name":"Envelope","namespace":"p.t",
  "fields":[
  {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
    {"name":"id","type":"long"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"happenedAt","type":["null",{"type":"long","connect.name":"io.debezium.time.MicroTimestamp"}],"default":null},
    {"name":"day","type":["null",{"type":"int","connect.name":"io.debezium.time.Date"}],"default":null},
    {"name":"amount","type":["null",{"type":"bytes","scale":4,"precision":20,
      "connect.parameters":{"scale":"4"},"connect.name":"org.apache.kafka.connect.data.Decimal",
      "logicalType":"decimal"}],"default":null},
    {"name":"flag","type":["null","boolean"],"default":null},
    {"name":"ratio","type":["null","double"],"default":null},
    {"name":"level","type":["null","float"],"default":null},
    {"name":"bits","type":["null",{"type":"bytes","connect.name":"io.debezium.data.Bits"}],"default":null},
    {"name":"zoned","type":["null",{"type":"string","connect.name":"io.debezium.time.ZonedTimestamp"}],"default":null}
  ],"connect.name":"p.t.Value"}],"default":null},
  {"name":"after","type":["null","Value"],"default":null},
  {"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.mariadb",
    "fields":[{"name":"db","type":"string"},{"name":"table","type":["null","string"],"default":null},
              {"name":"ts_ms","type":"long"}]}},
  {"name":"op","type":"string"},
  {"name":"ts_ms","type":["null","long"],"default":null}]})";

constexpr char kAvroKey[] =
    R"({"type":"record","name":"Key","namespace":"p.t","fields":[{"name":"id","type":"long"}]})";

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

std::string JsonRow(const Row& row) {
  auto opt = [](const auto& v, auto render) -> std::string {
    return v.has_value() ? render(*v) : std::string("null");
  };
  auto base64 = [](const std::string& b) { return JsonString(absl::Base64Escape(b)); };
  return absl::StrCat(
      R"({"id":)", row.id, R"(,"note":)", opt(row.note, JsonString), R"(,"happenedAt":)",
      opt(row.happened_micros, [](int64_t v) { return absl::StrCat(v); }), R"(,"day":)",
      opt(row.day, [](int32_t v) { return absl::StrCat(v); }), R"(,"amount":)",
      opt(row.amount_unscaled, base64), R"(,"flag":)",
      opt(row.flag, [](bool v) { return std::string(v ? "true" : "false"); }), R"(,"ratio":)",
      opt(row.ratio, [](double v) { return absl::StrFormat("%.17g", v); }), R"(,"level":)",
      // Jackson writes a float in its shortest form, as Float.toString.
      opt(row.level,
          [](float v) {
            char buffer[32] = {0};
            std::to_chars(buffer, buffer + sizeof(buffer) - 1, v);
            return std::string(buffer);
          }),
      R"(,"bits":)",
      opt(row.bits, base64), R"(,"zoned":)", opt(row.zoned, JsonString), "}");
}

std::string JsonEnvelope(char op, const Row& row) {
  const std::string fields = kRowConnectFields;
  const std::string image = JsonRow(row);
  return absl::StrCat(
      R"({"schema":{"type":"struct","name":"p.t.Envelope","fields":[)",
      R"({"type":"struct","optional":true,"name":"p.t.Value","field":"before","fields":)", fields,
      R"(},{"type":"struct","optional":true,"name":"p.t.Value","field":"after","fields":)", fields,
      R"(},{"type":"struct","field":"source","fields":[{"type":"string","field":"db"},)",
      R"({"type":"string","optional":true,"field":"table"},{"type":"int64","field":"ts_ms"}]},)",
      R"({"type":"string","field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}]},)",
      R"("payload":{"before":)", op == 'c' ? "null" : image, R"(,"after":)",
      op == 'd' ? "null" : image, R"(,"source":{"db":"d","table":"t","ts_ms":)",
      1700000000000 + row.id, R"(},"op":")", std::string(1, op), R"(","ts_ms":1}})");
}

std::string JsonKey(int64_t id) {
  return absl::StrCat(R"({"schema":{"type":"struct","fields":[{"type":"int64","field":"id"}]},)",
                      R"("payload":{"id":)", id, "}}");
}

// Sets a ["null", T] union field: null, or the branch `set` fills.
template <typename T, typename Set>
void SetNullable(avro_value_t* record, const char* name, const std::optional<T>& v, Set set) {
  avro_value_t field = AvroField(record, name);
  avro_value_t branch = AvroBranch(&field, v.has_value() ? 1 : 0);
  if (v.has_value()) set(&branch, *v);
}

void FillAvroRow(avro_value_t* record, const Row& row) {
  avro_value_t id = AvroField(record, "id");
  avro_value_set_long(&id, row.id);
  auto string = [](avro_value_t* v, const std::string& s) {
    avro_value_set_string_len(v, s.c_str(), s.size() + 1);
  };
  auto bytes = [](avro_value_t* v, const std::string& s) {
    avro_value_set_bytes(v, const_cast<char*>(s.data()), s.size());
  };
  SetNullable(record, "note", row.note, string);
  SetNullable(record, "happenedAt", row.happened_micros,
              [](avro_value_t* v, int64_t x) { avro_value_set_long(v, x); });
  SetNullable(record, "day", row.day, [](avro_value_t* v, int32_t x) { avro_value_set_int(v, x); });
  SetNullable(record, "amount", row.amount_unscaled, bytes);
  SetNullable(record, "flag", row.flag,
              [](avro_value_t* v, bool x) { avro_value_set_boolean(v, x ? 1 : 0); });
  SetNullable(record, "ratio", row.ratio,
              [](avro_value_t* v, double x) { avro_value_set_double(v, x); });
  SetNullable(record, "level", row.level,
              [](avro_value_t* v, float x) { avro_value_set_float(v, x); });
  SetNullable(record, "bits", row.bits, bytes);
  SetNullable(record, "zoned", row.zoned, string);
}

std::string AvroEnvelopeOf(AvroRecordEncoder& encoder, char op, const Row& row) {
  avro_value_t* root = encoder.Reset();
  for (const char* image : {"before", "after"}) {
    avro_value_t field = AvroField(root, image);
    const bool present = std::string(image) == "before" ? op != 'c' : op != 'd';
    avro_value_t branch = AvroBranch(&field, present ? 1 : 0);
    if (present) FillAvroRow(&branch, row);
  }
  avro_value_t source = AvroField(root, "source");
  avro_value_t db = AvroField(&source, "db"), table = AvroField(&source, "table");
  avro_value_t ts = AvroField(&source, "ts_ms");
  avro_value_set_string(&db, "d");
  avro_value_t table_branch = AvroBranch(&table, 1);
  avro_value_set_string(&table_branch, "t");
  avro_value_set_long(&ts, 1700000000000 + row.id);
  avro_value_t op_field = AvroField(root, "op");
  const std::string op_text(1, op);
  avro_value_set_string(&op_field, op_text.c_str());
  avro_value_t envelope_ts = AvroField(root, "ts_ms");
  avro_value_t ts_branch = AvroBranch(&envelope_ts, 1);
  avro_value_set_long(&ts_branch, 1);
  return encoder.Encoded();
}

std::string AvroKeyOf(AvroRecordEncoder& encoder, int64_t id) {
  avro_value_t* root = encoder.Reset();
  avro_value_t field = AvroField(root, "id");
  avro_value_set_long(&field, id);
  return encoder.Encoded();
}

Row RandomRow(std::mt19937_64& random) {
  auto maybe = [&]() { return random() % 5 != 0; };
  Row row;
  row.id = static_cast<int64_t>(random() % 1000) - 100;
  if (maybe()) {
    static const char* kPieces[] = {"a", "Z", " ", "\"", "\\", "\xEB\x8B\x89", "\xF0\x9F\x98\x80",
                                    "\xC3\xA9", "\t", "0"};
    std::string note;
    for (int n = static_cast<int>(random() % 12); n > 0; --n) note += kPieces[random() % 10];
    row.note = note;
  }
  if (maybe()) row.happened_micros = static_cast<int64_t>(random() % 400000000000000000) - 100000000000000000;
  if (maybe()) row.day = static_cast<int32_t>(random() % 2000000) - 700000;
  if (maybe()) {
    std::string unscaled(1 + random() % 9, '\0');
    for (char& c : unscaled) c = static_cast<char>(random());
    row.amount_unscaled = unscaled;
  }
  if (maybe()) row.flag = random() % 2 == 0;
  if (maybe()) {
    row.ratio = std::ldexp(static_cast<double>(static_cast<int64_t>(random())),
                           static_cast<int>(random() % 120) - 90);
  }
  if (maybe()) {
    row.level = static_cast<float>(static_cast<int64_t>(random() % 2000001) - 1000000) /
                static_cast<float>(1 + random() % 1000);
  }
  if (maybe()) {
    std::string bits(1 + random() % 7, '\0');
    for (char& c : bits) c = static_cast<char>(random());
    row.bits = bits;
  }
  if (maybe()) {
    row.zoned = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                1970 + static_cast<int>(random() % 60), 1 + static_cast<int>(random() % 12),
                                1 + static_cast<int>(random() % 28), static_cast<int>(random() % 24),
                                static_cast<int>(random() % 60), static_cast<int>(random() % 60),
                                static_cast<int>(random() % 1000));
  }
  return row;
}

std::string SourceConfig(const char* name, const char* prefix, const char* key_source,
                         const char* format) {
  std::string columns;
  for (const char* field : {"note", "happenedAt", "day", "amount", "flag", "ratio", "level", "bits",
                            "zoned"}) {
    absl::StrAppend(&columns, "columns { from: \"", field, "\" to: \"", prefix, field, "\" } ");
  }
  return absl::StrCat("sources { name: \"", name, "\" topic: \"", name, "\" key_fields: \"id\" ",
                      "key_source: ", key_source, " value_format: ", format, " key_format: ",
                      format, " database: \"d\" table: \"t\" ", columns, "}");
}

TEST(AvroJsonEquivalence, SameRowsGiveIdenticalChangeEvents) {
  SchemaRegistryStub registry;
  registry.Serve(10, kAvroEnvelope);
  registry.Serve(11, kAvroKey);
  auto config_for = [&](const char* format) {
    return ConfigFrom(absl::StrCat(
        R"pb(target { table: "T" key_columns: "id" } schema_registry { url: ")pb", registry.url(),
        "\" } ", SourceConfig("a", "a_", "ROW", format),
        SourceConfig("b", "b_", "RECORD_KEY", format)));
  };
  const v1::Config json_config = config_for("JSON");
  const v1::Config avro_config = config_for("AVRO");
  const TableSchema json_schema = SchemaOf(json_config);
  const TableSchema avro_schema = SchemaOf(avro_config);
  absl::StatusOr<std::unique_ptr<RecordDecoder>> json = NewRecordDecoder(&json_schema, json_config);
  absl::StatusOr<std::unique_ptr<RecordDecoder>> avro = NewRecordDecoder(&avro_schema, avro_config);
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_TRUE(avro.ok()) << avro.status();
  AvroRecordEncoder envelope_encoder(kAvroEnvelope, 10);
  AvroRecordEncoder key_encoder(kAvroKey, 11);

  std::mt19937_64 random(20261202);
  int events = 0, errors = 0;
  for (int i = 0; i < 3000; ++i) {
    const Row row = RandomRow(random);
    const char op = "cudr"[random() % 4];
    const int source = static_cast<int>(random() % 2);
    const std::string json_value = JsonEnvelope(op, row);
    const std::string avro_value = AvroEnvelopeOf(envelope_encoder, op, row);
    const std::string json_key = JsonKey(row.id);
    const std::string avro_key = AvroKeyOf(key_encoder, row.id);
    absl::StatusOr<Decoded> from_json =
        (*json)->Decode(source, json_key, json_value, 5, Pos(source, i));
    absl::StatusOr<Decoded> from_avro =
        (*avro)->Decode(source, avro_key, avro_value, 5, Pos(source, i));
    const std::string context = absl::StrCat("row ", i, " op ", std::string(1, op), ": ",
                                             json_value);
    ASSERT_EQ(from_json.ok(), from_avro.ok())
        << context << "\njson: " << from_json.status() << "\navro: " << from_avro.status();
    if (!from_json.ok()) {
      // Out-of-range calendar values: the same refusal, field named the same way.
      EXPECT_EQ(from_json.status().code(), from_avro.status().code()) << context;
      EXPECT_EQ(from_json.status().message(), from_avro.status().message()) << context;
      ++errors;
      continue;
    }
    ++events;
    EXPECT_EQ(from_json->outcome, from_avro->outcome) << context;
    EXPECT_EQ(from_json->op, from_avro->op) << context;
    EXPECT_EQ(from_json->key_disagreed, from_avro->key_disagreed) << context;
    const ChangeEvent& a = from_json->event;
    const ChangeEvent& b = from_avro->event;
    EXPECT_EQ(a.source, b.source) << context;
    EXPECT_EQ(a.op, b.op) << context;
    EXPECT_EQ(a.key, b.key) << context << ": " << Debug(a.key) << " vs " << Debug(b.key);
    EXPECT_EQ(a.values, b.values) << context << "\njson: " << Debug(a.values)
                                  << "\navro: " << Debug(b.values);
    EXPECT_EQ(a.event_time_ms, b.event_time_ms) << context;
    EXPECT_TRUE(a.position == b.position) << context;
  }
  // Most rows are events; some carry calendar values outside 0001..9999 and are refused alike.
  EXPECT_GT(events, 2000);
  std::printf("equivalence: %d events identical, %d refusals identical\n", events, errors);
}

}  // namespace
}  // namespace cdcjoin
