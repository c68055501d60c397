#include "service/debezium_decoder.h"

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "join/table_schema.h"
#include "proto/cdcjoin/v1/config.pb.h"

namespace cdcjoin {
namespace {

// The seed's example: User and UserExtData merged into Nickname.
constexpr char kSeedConfig[] = R"pb(
  target { table: "Nickname" key_columns: "userId" }
  sources {
    name: "user"
    topic: "cdc.User"
    key_fields: "id"
    columns { from: "simpleName" to: "maskingName" skip_event_if_null: true }
    columns { from: "dateCreated" to: "dateCreated" type: TIMESTAMP_MILLIS }
  }
  sources {
    name: "user_ext"
    topic: "cdc.UserExtData"
    key_fields: "userId"
    columns { from: "originalName" to: "currentNickname" }
    columns { from: "originalName" to: "maskingName" insert_only: true }
  }
)pb";

constexpr int kUser = 0;
constexpr int kUserExt = 1;

TableSchema SchemaFrom(const std::string& text) {
  v1::Config config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  absl::StatusOr<TableSchema> schema = TableSchema::FromConfig(config);
  EXPECT_TRUE(schema.ok()) << schema.status();
  return schema.ok() ? *std::move(schema) : TableSchema{};
}

DebeziumDecoder MakeDecoder(const TableSchema* schema, DecoderOptions options = {}) {
  absl::StatusOr<DebeziumDecoder> decoder = DebeziumDecoder::Create(schema, options);
  EXPECT_TRUE(decoder.ok()) << decoder.status();
  return *std::move(decoder);
}

EventPosition Pos(int source, int64_t offset) {
  EventPosition p;
  p.partition.source = source;
  p.partition.partition = 3;
  p.offset = offset;
  return p;
}

Value I(int64_t v) { return Value{v}; }
Value D(double v) { return Value{v}; }
Value S(std::string v) { return Value{std::move(v)}; }
Value Null() { return Value{}; }

std::string Debug(const std::vector<Value>& values) { return KeyDebugString(values); }

// A Debezium MySQL-style value schema whose row struct has `row_fields` (JSON array elements).
std::string EnvelopeSchema(absl::string_view row_fields) {
  return absl::StrCat(
      R"({"type":"struct","fields":[{"type":"struct","fields":[)", row_fields,
      R"(],"optional":true,"name":"cdc.Value","field":"before"},{"type":"struct","fields":[)",
      row_fields,
      R"(],"optional":true,"name":"cdc.Value","field":"after"},)",
      R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"connector"},)",
      R"({"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,)",
      R"("name":"io.debezium.connector.mysql.Source","field":"source"},)",
      R"({"type":"string","optional":false,"field":"op"},)",
      R"({"type":"int64","optional":true,"field":"ts_ms"}],"optional":false,)",
      R"("name":"cdc.Envelope"})");
}

std::string Wrap(absl::string_view schema, absl::string_view payload) {
  return absl::StrCat(R"({"schema":)", schema, R"(,"payload":)", payload, "}");
}

constexpr char kUserRowSchema[] =
    R"({"type":"int64","optional":false,"field":"id"},)"
    R"({"type":"string","optional":true,"field":"simpleName"},)"
    R"({"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","version":1,)"
    R"("field":"dateCreated"})";

constexpr char kUserCreate[] =
    R"({"before":null,"after":{"id":42,"simpleName":"al***","dateCreated":1700000000123},)"
    R"("source":{"connector":"mysql","ts_ms":1700000000500,"db":"app","table":"User"},)"
    R"("op":"c","ts_ms":1700000000999})";

class SeedDecoderTest : public ::testing::Test {
 protected:
  SeedDecoderTest() : schema_(SchemaFrom(kSeedConfig)), decoder_(MakeDecoder(&schema_)) {}

  absl::StatusOr<Decoded> Decode(int source, std::optional<std::string_view> value,
                                 int64_t record_ts = 111) {
    return decoder_.Decode(source, std::nullopt, value, record_ts, Pos(source, 17));
  }

  TableSchema schema_;
  DebeziumDecoder decoder_;
};

TEST_F(SeedDecoderTest, CreateFromBareEnvelope) {
  absl::StatusOr<Decoded> d = Decode(kUser, kUserCreate);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kEvent);
  EXPECT_EQ(d->event.source, kUser);
  EXPECT_EQ(d->event.op, ChangeOp::kUpsert);
  EXPECT_EQ(d->event.key, Key{I(42)}) << Debug(d->event.key);
  EXPECT_EQ(d->event.values, (std::vector<Value>{S("al***"), S("2023-11-14 22:13:20.123000")}))
      << Debug(d->event.values);
  EXPECT_EQ(d->event.event_time_ms, 1700000000500);
  EXPECT_EQ(d->event.position.partition.source, kUser);
  EXPECT_EQ(d->event.position.partition.partition, 3);
  EXPECT_EQ(d->event.position.offset, 17);
}

TEST_F(SeedDecoderTest, UpdateAndReadAreUpserts) {
  for (const char* op : {"u", "r"}) {
    const std::string value = absl::StrReplaceAll(kUserCreate, {{R"("op":"c")", absl::StrCat(
                                                                                 R"("op":")", op,
                                                                                 R"(")")}});
    absl::StatusOr<Decoded> d = Decode(kUser, value);
    ASSERT_TRUE(d.ok()) << op << ": " << d.status();
    EXPECT_EQ(d->outcome, DecodeOutcome::kEvent) << op;
    EXPECT_EQ(d->event.op, ChangeOp::kUpsert) << op;
    EXPECT_EQ(d->event.key, Key{I(42)}) << op;
    EXPECT_EQ(d->event.values.size(), 2u) << op;
  }
}

TEST_F(SeedDecoderTest, CarriesTheBinlogPositionForTheStaleWriteGuard) {
  absl::StatusOr<Decoded> d = Decode(kUser, kUserCreate);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->event.binlog.has_value()) << "no file/pos/row: the offset orders it";
  for (const char* op : {"c", "r"}) {
    const std::string value = absl::StrReplaceAll(
        kUserCreate, {{R"("table":"User")", R"("table":"User","file":"mysql-bin.000003",)"
                                            R"("pos":4711,"row":2)"},
                      {R"("op":"c")", absl::StrCat(R"("op":")", op, R"(")")}});
    d = Decode(kUser, value);
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(d->event.binlog.has_value()) << op;
    EXPECT_EQ(*d->event.binlog, (BinlogCoordinates{3, 4711, 2, std::string(op) == "r"})) << op;
  }
}

TEST_F(SeedDecoderTest, DeleteTakesKeyFromBeforeAndHasNoValues) {
  absl::StatusOr<Decoded> d =
      Decode(kUserExt,
             R"({"before":{"userId":9,"originalName":"neo"},"after":null,)"
             R"("source":{"ts_ms":1234},"op":"d","ts_ms":5678})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kEvent);
  EXPECT_EQ(d->event.op, ChangeOp::kDelete);
  EXPECT_EQ(d->event.key, Key{I(9)});
  EXPECT_TRUE(d->event.values.empty());
  EXPECT_EQ(d->event.event_time_ms, 1234);
}

TEST_F(SeedDecoderTest, TruncateAndMessageAreSkippedOps) {
  absl::StatusOr<Decoded> t = Decode(
      kUser, R"({"before":null,"after":null,"source":{"ts_ms":1},"op":"t","ts_ms":2})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->outcome, DecodeOutcome::kSkippedOp);
  EXPECT_EQ(t->skipped_op, "t");
  absl::StatusOr<Decoded> m = Decode(
      kUserExt,
      R"({"op":"m","ts_ms":2,"message":{"prefix":"audit","content":"aGVsbG8="}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->outcome, DecodeOutcome::kSkippedOp);
  EXPECT_EQ(m->skipped_op, "m");
  EXPECT_EQ(m->event.position.offset, 17);
}

TEST_F(SeedDecoderTest, Tombstones) {
  absl::StatusOr<Decoded> d = Decode(kUser, std::nullopt);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kTombstone);
  EXPECT_EQ(d->event.position.offset, 17);

  d = Decode(kUser, std::string_view(nullptr, 0));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kTombstone);

  d = Decode(kUser, "null");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kTombstone);

  d = Decode(kUser, R"({"schema":null,"payload":null})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kTombstone);
}

TEST_F(SeedDecoderTest, SchemaWrapperGivesTheSameEvent) {
  const std::string wrapped = Wrap(EnvelopeSchema(kUserRowSchema), kUserCreate);
  absl::StatusOr<Decoded> bare = Decode(kUser, kUserCreate);
  absl::StatusOr<Decoded> d = Decode(kUser, wrapped);
  ASSERT_TRUE(bare.ok()) << bare.status();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kEvent);
  EXPECT_EQ(d->event.key, bare->event.key);
  EXPECT_EQ(d->event.values, bare->event.values) << Debug(d->event.values);
  EXPECT_EQ(d->event.event_time_ms, 1700000000500);

  // A wrapper without a schema (schemas.enable with a null schema) decodes by JSON types.
  d = Decode(kUser, Wrap("null", kUserCreate));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.values, bare->event.values);
}

TEST_F(SeedDecoderTest, BothSourcesShareOneDecodePath) {
  const std::string ext_schema =
      EnvelopeSchema(R"({"type":"int64","optional":false,"field":"userId"},)"
                     R"({"type":"string","optional":true,"field":"originalName"})");
  absl::StatusOr<Decoded> d = Decode(
      kUserExt, Wrap(ext_schema, R"({"before":null,"after":{"userId":42,"originalName":"neo"},)"
                                 R"("source":{"connector":"mysql","ts_ms":77},"op":"u"})"));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.source, kUserExt);
  EXPECT_EQ(d->event.key, Key{I(42)});
  // originalName feeds two target columns (currentNickname, maskingName insert-only).
  EXPECT_EQ(d->event.values, (std::vector<Value>{S("neo"), S("neo")}));
  EXPECT_EQ(d->event.event_time_ms, 77);
}

TEST_F(SeedDecoderTest, SkipEventIfNull) {
  absl::StatusOr<Decoded> d = Decode(
      kUser, R"({"after":{"id":5,"simpleName":null,"dateCreated":0},"op":"c","ts_ms":1})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kSkippedNull);

  // Without skip_event_if_null a null is a NULL value.
  d = Decode(kUserExt, R"({"after":{"userId":5,"originalName":null},"op":"c"})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kEvent);
  EXPECT_EQ(d->event.values, (std::vector<Value>{Null(), Null()}));

  // A delete has no values, so skip_event_if_null does not apply to it.
  d = Decode(kUser, R"({"before":{"id":5,"simpleName":null,"dateCreated":0},"op":"d"})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->outcome, DecodeOutcome::kEvent);
  EXPECT_EQ(d->event.op, ChangeOp::kDelete);
}

TEST_F(SeedDecoderTest, EventTimeSources) {
  const std::string row = R"("after":{"userId":1,"originalName":"x"},"op":"c")";
  struct Case {
    std::string value;
    int64_t want;
  } cases[] = {
      {absl::StrCat("{", row, R"(,"source":{"ts_ms":100},"ts_ms":200})"), 100},
      {absl::StrCat("{", row, R"(,"source":{"ts_ms":null},"ts_ms":200})"), 200},
      {absl::StrCat("{", row, R"(,"source":{"db":"x"},"ts_ms":200})"), 200},
      {absl::StrCat("{", row, R"(,"ts_ms":200})"), 200},
      {absl::StrCat("{", row, "}"), 999},
      {absl::StrCat("{", row, R"(,"source":null})"), 999},
      {absl::StrCat("{", row, R"(,"source":{"ts_ms":-5}})"), -5},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Decoded> d = Decode(kUserExt, c.value, 999);
    ASSERT_TRUE(d.ok()) << c.value << ": " << d.status();
    EXPECT_EQ(d->event.event_time_ms, c.want) << c.value;
  }
  // Wrapped: payload.source.ts_ms.
  absl::StatusOr<Decoded> d = Decode(kUser, Wrap("null", kUserCreate), 999);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.event_time_ms, 1700000000500);

  // Configured to use the record timestamp: source.ts_ms is ignored.
  DecoderOptions options;
  options.event_time_from_record_timestamp = true;
  DebeziumDecoder by_record = MakeDecoder(&schema_, options);
  d = by_record.Decode(kUser, std::nullopt, kUserCreate, 4242, Pos(kUser, 1));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.event_time_ms, 4242);
}

TEST(DebeziumDecoderCreate, RejectsMismatchedKeyFields) {
  TableSchema schema = SchemaFrom(kSeedConfig);
  schema.sources[1].key_fields.push_back("extra");
  absl::StatusOr<DebeziumDecoder> decoder = DebeziumDecoder::Create(&schema, {});
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoder.status().message().find("sources[1].key_fields"), std::string::npos)
      << decoder.status();
  EXPECT_FALSE(DebeziumDecoder::Create(nullptr, {}).ok());
}

// ---------------------------------------------------------------------------------------------
// Keys from the record key, and composite keys.

constexpr char kRecordKeyConfig[] = R"pb(
  target { table: "Nickname" key_columns: "userId" }
  sources {
    name: "user"
    topic: "cdc.User"
    key_fields: "id"
    key_source: RECORD_KEY
    columns { from: "simpleName" to: "maskingName" }
  }
  sources {
    name: "user_ext"
    topic: "cdc.UserExtData"
    key_fields: "userId"
    columns { from: "originalName" to: "currentNickname" }
  }
)pb";

TEST(DebeziumDecoderKeys, FromRecordKeyBareAndWrapped) {
  TableSchema schema = SchemaFrom(kRecordKeyConfig);
  DebeziumDecoder decoder = MakeDecoder(&schema);
  // The row's own id is deliberately different: the key must come from the record key.
  const std::string value = R"({"after":{"id":1,"simpleName":"a"},"op":"c","ts_ms":3})";
  absl::StatusOr<Decoded> d = decoder.Decode(0, R"({"id":77})", value, 0, Pos(0, 1));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.key, Key{I(77)});
  EXPECT_EQ(d->event.values, (std::vector<Value>{S("a")}));

  const std::string wrapped_key =
      R"({"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],)"
      R"("optional":false,"name":"cdc.User.Key"},"payload":{"id":78}})";
  d = decoder.Decode(0, wrapped_key, value, 0, Pos(0, 2));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.key, Key{I(78)});

  // A delete keyed by the record key needs no `before`.
  d = decoder.Decode(0, wrapped_key, R"({"before":null,"after":null,"op":"d"})", 0, Pos(0, 3));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.op, ChangeOp::kDelete);
  EXPECT_EQ(d->event.key, Key{I(78)});

  // A key struct that merely has a field named "payload" is not a wrapper.
  TableSchema odd = SchemaFrom(absl::StrReplaceAll(kRecordKeyConfig,
                                                   {{R"(key_fields: "id")",
                                                     R"(key_fields: "payload")"}}));
  DebeziumDecoder odd_decoder = MakeDecoder(&odd);
  d = odd_decoder.Decode(0, R"({"payload":5,"other":1})", value, 0, Pos(0, 4));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.key, Key{I(5)});
}

TEST(DebeziumDecoderKeys, CompositeKeysFromRowAndRecordKey) {
  const std::string config = R"pb(
    target { table: "T" key_columns: "tenant" key_columns: "id" }
    sources {
      name: "a"
      topic: "a"
      key_fields: "org"
      key_fields: "uid"
      columns { from: "v" to: "va" }
    }
    sources {
      name: "b"
      topic: "b"
      key_fields: "tenant"
      key_fields: "id"
      key_source: RECORD_KEY
      columns { from: "v" to: "vb" }
    }
  )pb";
  TableSchema schema = SchemaFrom(config);
  DebeziumDecoder decoder = MakeDecoder(&schema);
  absl::StatusOr<Decoded> a = decoder.Decode(
      0, std::nullopt, R"({"after":{"uid":7,"v":1.5,"org":"acme"},"op":"r"})", 0, Pos(0, 1));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->event.key, (Key{S("acme"), I(7)})) << Debug(a->event.key);
  EXPECT_EQ(a->event.values, (std::vector<Value>{D(1.5)}));

  absl::StatusOr<Decoded> b = decoder.Decode(1, R"({"id":7,"tenant":"acme"})",
                                             R"({"after":{"v":true},"op":"c"})", 0, Pos(1, 1));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->event.key, a->event.key) << Debug(b->event.key);
  EXPECT_EQ(b->event.values, (std::vector<Value>{I(1)}));

  absl::StatusOr<Decoded> missing =
      decoder.Decode(0, std::nullopt, R"({"after":{"uid":7,"v":1},"op":"c"})", 0, Pos(0, 2));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "after.org: missing key field");
}

// ---------------------------------------------------------------------------------------------
// Encodings: one mapped field "v" of a given type, decoded from a bare or wrapped envelope.

absl::StatusOr<Value> DecodeField(v1::ValueType type, absl::string_view json,
                                  absl::string_view field_schema = "") {
  const std::string config = absl::StrCat(
      R"pb(target { table: "T" key_columns: "id" }
           sources {
             name: "s"
             topic: "s"
             key_fields: "id"
             columns { from: "v" to: "v" type: )pb",
      v1::ValueType_Name(type), "}}");
  TableSchema schema = SchemaFrom(config);
  DebeziumDecoder decoder = MakeDecoder(&schema);
  std::string payload = absl::StrCat(R"({"after":{"id":1,"v":)", json, R"(},"op":"c"})");
  if (!field_schema.empty()) {
    payload = Wrap(EnvelopeSchema(absl::StrCat(R"({"type":"int64","field":"id"},)",
                                               field_schema)),
                   payload);
  }
  absl::StatusOr<Decoded> d = decoder.Decode(0, std::nullopt, payload, 0, Pos(0, 1));
  if (!d.ok()) return d.status();
  if (d->outcome != DecodeOutcome::kEvent || d->event.values.size() != 1) {
    return absl::InternalError("unexpected outcome");
  }
  return d->event.values[0];
}

struct EncodingCase {
  const char* name;
  v1::ValueType type;
  const char* json;
  const char* field_schema;  // "" for a bare envelope.
  Value want;
};

TEST(DebeziumDecoderEncodings, EveryEncoding) {
  const EncodingCase cases[] = {
      // AUTO without a schema: the JSON type.
      {"auto int", v1::VALUE_TYPE_AUTO, "-12", "", I(-12)},
      {"auto int max", v1::VALUE_TYPE_AUTO, "9223372036854775807", "",
       I(9223372036854775807LL)},
      {"auto double", v1::VALUE_TYPE_AUTO, "2.5", "", D(2.5)},
      {"auto true", v1::VALUE_TYPE_AUTO, "true", "", I(1)},
      {"auto false", v1::VALUE_TYPE_AUTO, "false", "", I(0)},
      {"auto string", v1::VALUE_TYPE_AUTO, R"("h\u00e9llo \"q\"")", "", S("h\xc3\xa9llo \"q\"")},
      {"auto empty string", v1::VALUE_TYPE_AUTO, R"("")", "", S("")},
      {"auto null", v1::VALUE_TYPE_AUTO, "null", "", Null()},
      // AUTO with a schema: Debezium's types and logical names.
      {"schema int32", v1::VALUE_TYPE_AUTO, "7", R"({"type":"int32","field":"v"})", I(7)},
      {"schema float64 from int", v1::VALUE_TYPE_AUTO, "7", R"({"type":"float64","field":"v"})",
       D(7.0)},
      {"schema boolean", v1::VALUE_TYPE_AUTO, "true", R"({"type":"boolean","field":"v"})", I(1)},
      {"schema string", v1::VALUE_TYPE_AUTO, R"("x")", R"({"type":"string","field":"v"})", S("x")},
      {"schema null", v1::VALUE_TYPE_AUTO, "null",
       R"({"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","field":"v"})",
       Null()},
      {"schema Timestamp", v1::VALUE_TYPE_AUTO, "1700000000123",
       R"({"type":"int64","name":"io.debezium.time.Timestamp","field":"v"})",
       S("2023-11-14 22:13:20.123000")},
      {"schema connect Timestamp", v1::VALUE_TYPE_AUTO, "1700000000000",
       R"({"type":"int64","name":"org.apache.kafka.connect.data.Timestamp","field":"v"})",
       S("2023-11-14 22:13:20")},
      {"schema MicroTimestamp", v1::VALUE_TYPE_AUTO, "1700000000123456",
       R"({"type":"int64","name":"io.debezium.time.MicroTimestamp","field":"v"})",
       S("2023-11-14 22:13:20.123456")},
      {"schema NanoTimestamp", v1::VALUE_TYPE_AUTO, "1700000000123456789",
       R"({"type":"int64","name":"io.debezium.time.NanoTimestamp","field":"v"})",
       S("2023-11-14 22:13:20.123456")},
      {"schema Date", v1::VALUE_TYPE_AUTO, "19675",
       R"({"type":"int32","name":"io.debezium.time.Date","field":"v"})", S("2023-11-14")},
      {"schema connect Date", v1::VALUE_TYPE_AUTO, "0",
       R"({"type":"int32","name":"org.apache.kafka.connect.data.Date","field":"v"})",
       S("1970-01-01")},
      {"schema ZonedTimestamp", v1::VALUE_TYPE_AUTO, R"("2024-03-01T09:00:00+09:00")",
       R"({"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"v"})",
       S("2024-03-01 00:00:00")},
      {"schema Decimal", v1::VALUE_TYPE_AUTO, R"("MDk=")",
       R"({"type":"bytes","name":"org.apache.kafka.connect.data.Decimal",)"
       R"("parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"v"})",
       S("123.45")},
      {"schema Decimal negative", v1::VALUE_TYPE_AUTO, R"("/w==")",
       R"({"type":"bytes","name":"org.apache.kafka.connect.data.Decimal",)"
       R"("parameters":{"scale":"2"},"field":"v"})",
       S("-0.01")},
      {"schema Decimal scale 0", v1::VALUE_TYPE_AUTO, R"("AQA=")",
       R"({"type":"bytes","name":"org.apache.kafka.connect.data.Decimal",)"
       R"("parameters":{"scale":"0"},"field":"v"})",
       S("256")},
      {"schema field not listed", v1::VALUE_TYPE_AUTO, "3", R"({"type":"string","field":"w"})",
       I(3)},
      // Field schemas and values as Debezium 3.5's MariaDB connector wrote them (captured from
      // real events: docs/realstack.md).
      {"real DECIMAL(20,4) beyond 64 bits", v1::VALUE_TYPE_AUTO, R"("AKtUqYzrHwrT")",
       R"({"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal",)"
       R"("version":1,"parameters":{"scale":"4","connect.decimal.precision":"20"},"field":"v"})",
       S("1234567890123456.7891")},
      {"real TIME(6) MicroTime", v1::VALUE_TYPE_AUTO, "86399999999",
       R"({"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","version":1,)"
       R"("field":"v"})",
       S("23:59:59.999999")},
      {"real TIME negative", v1::VALUE_TYPE_AUTO, "-3020399000000",
       R"({"type":"int64","name":"io.debezium.time.MicroTime","field":"v"})", S("-838:59:59")},
      {"connect Time millis", v1::VALUE_TYPE_AUTO, "3723004",
       R"({"type":"int32","name":"io.debezium.time.Time","field":"v"})", S("01:02:03.004000")},
      {"real VARBINARY bytes", v1::VALUE_TYPE_AUTO, R"("AP8Q")",
       R"({"type":"bytes","optional":true,"field":"v"})", S(std::string("\x00\xff\x10", 3))},
      {"real BIT(10) Bits", v1::VALUE_TYPE_AUTO, R"("qgI=")",
       R"({"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,)"
       R"("parameters":{"length":"10"},"field":"v"})",
       I(682)},
      {"real BIT(1) boolean", v1::VALUE_TYPE_AUTO, "true",
       R"({"type":"boolean","optional":true,"field":"v"})", I(1)},
      {"real BOOLEAN int16", v1::VALUE_TYPE_AUTO, "1",
       R"({"type":"int16","optional":true,"field":"v"})", I(1)},
      {"real ENUM", v1::VALUE_TYPE_AUTO, R"("green")",
       R"({"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,)"
       R"("parameters":{"allowed":"red,green,blue"},"field":"v"})",
       S("green")},
      {"real ZonedTimestamp of TIMESTAMP(3)", v1::VALUE_TYPE_AUTO,
       R"("2024-03-01T10:00:00.5Z")",
       R"({"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"v"})",
       S("2024-03-01 10:00:00.500000")},
      // Configured types (the configuration wins over the schema).
      {"STRING", v1::STRING, R"("abc")", "", S("abc")},
      {"INT64", v1::INT64, "-9223372036854775808", "", I(-9223372036854775807LL - 1)},
      {"DOUBLE from double", v1::DOUBLE, "-1e-3", "", D(-0.001)},
      {"DOUBLE from int", v1::DOUBLE, "4", "", D(4.0)},
      {"BOOL true", v1::BOOL, "true", "", I(1)},
      {"BOOL from 0", v1::BOOL, "0", "", I(0)},
      {"BOOL null", v1::BOOL, "null", "", Null()},
      {"MILLIS", v1::TIMESTAMP_MILLIS, "86400000", "", S("1970-01-02 00:00:00")},
      {"MILLIS negative", v1::TIMESTAMP_MILLIS, "-1", "", S("1969-12-31 23:59:59.999000")},
      {"MILLIS negative whole day", v1::TIMESTAMP_MILLIS, "-86400000", "",
       S("1969-12-31 00:00:00")},
      {"MILLIS 1900", v1::TIMESTAMP_MILLIS, "-2208988800000", "", S("1900-01-01 00:00:00")},
      {"MILLIS leap day", v1::TIMESTAMP_MILLIS, "951782400000", "", S("2000-02-29 00:00:00")},
      {"MILLIS max", v1::TIMESTAMP_MILLIS, "253402300799999", "", S("9999-12-31 23:59:59.999000")},
      {"MILLIS min", v1::TIMESTAMP_MILLIS, "-62135596800000", "", S("0001-01-01 00:00:00")},
      {"MILLIS overrides schema", v1::TIMESTAMP_MILLIS, "0", R"({"type":"string","field":"v"})",
       S("1970-01-01 00:00:00")},
      {"MICROS", v1::TIMESTAMP_MICROS, "1", "", S("1970-01-01 00:00:00.000001")},
      {"MICROS negative", v1::TIMESTAMP_MICROS, "-1500000", "", S("1969-12-31 23:59:58.500000")},
      {"NANOS", v1::TIMESTAMP_NANOS, "1500", "", S("1970-01-01 00:00:00.000001")},
      {"NANOS negative", v1::TIMESTAMP_NANOS, "-1", "", S("1969-12-31 23:59:59.999999")},
      {"DAYS", v1::DATE_DAYS, "11016", "", S("2000-02-29")},
      {"DAYS negative", v1::DATE_DAYS, "-1", "", S("1969-12-31")},
      {"DAYS min", v1::DATE_DAYS, "-719162", "", S("0001-01-01")},
      {"DAYS max", v1::DATE_DAYS, "2932896", "", S("9999-12-31")},
      {"ZONED Z", v1::ZONED_TIMESTAMP, R"("2024-03-01T12:34:56Z")", "", S("2024-03-01 12:34:56")},
      {"ZONED fraction and negative offset", v1::ZONED_TIMESTAMP,
       R"("2024-02-29T23:30:00.5-01:00")", "", S("2024-03-01 00:30:00.500000")},
      {"ZONED nanos truncated", v1::ZONED_TIMESTAMP, R"("1969-12-31T23:59:59.123456789Z")", "",
       S("1969-12-31 23:59:59.123456")},
      {"ZONED compact offset", v1::ZONED_TIMESTAMP, R"("2024-01-01T00:00:00+0530")", "",
       S("2023-12-31 18:30:00")},
      {"ZONED without seconds", v1::ZONED_TIMESTAMP, R"("2024-01-01T10:00+01")", "",
       S("2024-01-01 09:00:00")},
      {"ZONED null", v1::ZONED_TIMESTAMP, "null", "", Null()},
      {"TIME_MICROS", v1::TIME_MICROS, "45296000001", "", S("12:34:56.000001")},
      {"TIME_MICROS past a day", v1::TIME_MICROS, "3020399000000", "", S("838:59:59")},
      {"BYTES", v1::BYTES, R"("3q2+7w==")", "", S("\xde\xad\xbe\xef")},
      {"BYTES empty", v1::BYTES, R"("")", "", S("")},
      {"UINT64 2^64-1", v1::UINT64, "-1", "", S("18446744073709551615")},
      {"UINT64 small", v1::UINT64, "42", "", S("42")},
  };
  for (const EncodingCase& c : cases) {
    absl::StatusOr<Value> got = DecodeField(c.type, c.json, c.field_schema);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.name << ": got " << ValueDebugString(*got) << ", want "
                            << ValueDebugString(c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// Bad input: each kind is an InvalidArgument whose message names the place and the problem.

enum class Which { kSeed, kSeedSmallLimits, kRecordKey, kTyped };

constexpr char kTypedConfig[] = R"pb(
  target { table: "T" key_columns: "id" }
  sources {
    name: "typed"
    topic: "typed"
    key_fields: "id"
    columns { from: "i" to: "i" type: INT64 }
    columns { from: "z" to: "z" type: ZONED_TIMESTAMP }
    columns { from: "b" to: "b" type: BOOL }
    columns { from: "d" to: "d" type: DATE_DAYS }
    columns { from: "s" to: "s" type: STRING }
    columns { from: "n" to: "n" type: DOUBLE }
  }
  sources {
    name: "other"
    topic: "other"
    key_fields: "id"
    columns { from: "x" to: "x" }
  }
)pb";

constexpr char kTypedOk[] =
    R"({"id":1,"i":2,"z":"2024-01-01T00:00:00Z","b":false,"d":3,"s":"s","n":1.5})";

std::string TypedWith(absl::string_view field, absl::string_view json) {
  std::string row = kTypedOk;
  const std::string needle = absl::StrCat("\"", field, "\":");
  const size_t start = row.find(needle) + needle.size();
  const size_t end = row.find_first_of(",}", start);
  row.replace(start, end - start, std::string(json));
  return absl::StrCat(R"({"after":)", row, R"(,"op":"c"})");
}

struct BadCase {
  const char* name;
  Which which;
  int source;
  std::optional<std::string> key;
  std::string value;
  std::string want;  // The exact message, or a prefix of it when it ends with '*'.
};

TEST(DebeziumDecoderBadInput, EachKindIsAClearInvalidArgument) {
  const std::string user_ok = kUserCreate;
  const std::string seed_after = R"({"id":1,"simpleName":"a","dateCreated":0})";
  auto user_with_after = [](absl::string_view after) {
    return absl::StrCat(R"({"after":)", after, R"(,"op":"c"})");
  };
  const std::string huge_string = std::string(100, 'x');
  const BadCase cases[] = {
      {"malformed JSON", Which::kSeed, kUser, std::nullopt, R"({"op":"c",})",
       "value: malformed JSON: *"},
      {"truncated JSON", Which::kSeed, kUser, std::nullopt, user_ok.substr(0, 60),
       "value: malformed JSON: *"},
      {"empty value", Which::kSeed, kUser, std::nullopt, "", "value: malformed JSON: *"},
      {"trailing garbage", Which::kSeed, kUser, std::nullopt, user_ok + "}",
       "value: malformed JSON: *"},
      {"invalid UTF-8", Which::kSeed, kUser, std::nullopt,
       user_with_after("{\"id\":1,\"simpleName\":\"\xff\xfe\",\"dateCreated\":0}"),
       "value: malformed JSON: The input is not valid UTF-8"},
      {"number beyond any range", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1e400,"simpleName":"a","dateCreated":0})"),
       "value: malformed JSON: *"},
      {"value is an array", Which::kSeed, kUser, std::nullopt, "[1,2]",
       "value: expected a JSON object, got array"},
      {"value is a string", Which::kSeed, kUser, std::nullopt, R"("c")",
       "value: expected a JSON object, got string"},
      {"missing op", Which::kSeed, kUser, std::nullopt, absl::StrCat(R"({"after":)", seed_after,
                                                                     "}"),
       "op: missing field"},
      {"op not a string", Which::kSeed, kUser, std::nullopt, R"({"op":1})",
       "op: expected string, got integer"},
      {"unknown op", Which::kSeed, kUser, std::nullopt,
       absl::StrCat(R"({"after":)", seed_after, R"(,"op":"x"})"),
       "op: unknown op 'x' (expected one of c, u, r, d, t, m)"},
      {"missing after for c", Which::kSeed, kUser, std::nullopt, R"({"before":null,"op":"c"})",
       "after: missing or null for op 'c'"},
      {"null after for u", Which::kSeed, kUser, std::nullopt, R"({"after":null,"op":"u"})",
       "after: missing or null for op 'u'"},
      {"after not an object", Which::kSeed, kUser, std::nullopt, R"({"after":[1],"op":"r"})",
       "after: expected object, got array"},
      {"missing before for d", Which::kSeed, kUser, std::nullopt,
       absl::StrCat(R"({"after":)", seed_after, R"(,"op":"d"})"),
       "before: missing or null for op 'd'"},
      {"missing key field", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"simpleName":"a","dateCreated":0})"), "after.id: missing key field"},
      {"null key", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":null,"simpleName":"a","dateCreated":0})"), "after.id: null key"},
      {"key is an object", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":{"v":1},"simpleName":"a","dateCreated":0})"),
       "after.id: key field must be a scalar, got object"},
      {"key is an array", Which::kSeed, kUserExt, std::nullopt,
       R"({"before":{"userId":[1]},"op":"d"})",
       "before.userId: key field must be a scalar, got array"},
      {"key out of int64", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":9223372036854775808,"simpleName":"a","dateCreated":0})"),
       "after.id: integer 9223372036854775808 is out of int64 range"},
      {"mapped column is an array", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1,"simpleName":["a"],"dateCreated":0})"),
       "after.simpleName: expected a scalar, got array"},
      {"mapped column is an object", Which::kSeed, kUserExt, std::nullopt,
       R"({"after":{"userId":1,"originalName":{}},"op":"c"})",
       "after.originalName: expected a scalar, got object"},
      {"missing mapped field", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1,"simpleName":"a"})"), "after.dateCreated: missing field"},
      {"string for TIMESTAMP_MILLIS", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1,"simpleName":"a","dateCreated":"2024-01-01"})"),
       "after.dateCreated: expected integer epoch milliseconds, got string"},
      {"float for TIMESTAMP_MILLIS", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1,"simpleName":"a","dateCreated":1.5})"),
       "after.dateCreated: expected integer epoch milliseconds, got floating-point number"},
      {"timestamp out of range", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1,"simpleName":"a","dateCreated":253402300800000})"),
       "after.dateCreated: timestamp 253402300800000 (epoch milliseconds) is outside years "
       "0001..9999"},
      {"timestamp hugely negative", Which::kSeed, kUser, std::nullopt,
       user_with_after(R"({"id":1,"simpleName":"a","dateCreated":-9223372036854775808})"),
       "after.dateCreated: timestamp -9223372036854775808 (epoch milliseconds) is outside "
       "years 0001..9999"},
      {"string for INT64", Which::kTyped, 0, std::nullopt, TypedWith("i", R"("2")"),
       "after.i: expected integer, got string"},
      {"double for INT64", Which::kTyped, 0, std::nullopt, TypedWith("i", "2.0"),
       "after.i: expected integer, got floating-point number"},
      {"INT64 overflow", Which::kTyped, 0, std::nullopt, TypedWith("i", "18446744073709551615"),
       "after.i: integer 18446744073709551615 is out of int64 range"},
      {"bool out of 0/1", Which::kTyped, 0, std::nullopt, TypedWith("b", "2"),
       "after.b: expected boolean, got integer 2"},
      {"string for BOOL", Which::kTyped, 0, std::nullopt, TypedWith("b", R"("true")"),
       "after.b: expected boolean, got string"},
      {"date out of range", Which::kTyped, 0, std::nullopt, TypedWith("d", "3000000"),
       "after.d: date 3000000 (days since epoch) is outside years 0001..9999"},
      {"number for STRING", Which::kTyped, 0, std::nullopt, TypedWith("s", "5"),
       "after.s: expected string, got integer"},
      {"string for DOUBLE", Which::kTyped, 0, std::nullopt, TypedWith("n", R"("1.5")"),
       "after.n: expected number, got string"},
      {"zoned month 13", Which::kTyped, 0, std::nullopt,
       TypedWith("z", R"("2024-13-01T00:00:00Z")"),
       "after.z: invalid ISO-8601 zoned timestamp '2024-13-01T00:00:00Z'"},
      {"zoned Feb 30", Which::kTyped, 0, std::nullopt,
       TypedWith("z", R"("2023-02-29T00:00:00Z")"),
       "after.z: invalid ISO-8601 zoned timestamp '2023-02-29T00:00:00Z'"},
      {"zoned without zone", Which::kTyped, 0, std::nullopt,
       TypedWith("z", R"("2024-01-01T00:00:00")"),
       "after.z: invalid ISO-8601 zoned timestamp '2024-01-01T00:00:00'"},
      {"zoned garbage", Which::kTyped, 0, std::nullopt, TypedWith("z", R"("yesterday")"),
       "after.z: invalid ISO-8601 zoned timestamp 'yesterday'"},
      {"zoned trailing text", Which::kTyped, 0, std::nullopt,
       TypedWith("z", R"("2024-01-01T00:00:00Zz")"),
       "after.z: invalid ISO-8601 zoned timestamp '2024-01-01T00:00:00Zz'"},
      {"zoned as a number", Which::kTyped, 0, std::nullopt, TypedWith("z", "0"),
       "after.z: expected ISO-8601 timestamp string, got integer"},
      {"string value too long", Which::kSeedSmallLimits, kUser, std::nullopt,
       user_with_after(absl::StrCat(R"({"id":1,"simpleName":")", huge_string,
                                    R"(","dateCreated":0})")),
       "after.simpleName: string value of 100 bytes exceeds max_value_bytes (64)"},
      {"record too large", Which::kSeedSmallLimits, kUser, std::nullopt,
       absl::StrCat(user_ok, std::string(1000, ' ')),
       absl::StrCat("value: record of ", user_ok.size() + 1000,
                    " bytes exceeds the limit of 1024")},
      {"wrapper without payload", Which::kSeed, kUser, std::nullopt, R"({"schema":{}})",
       "payload: missing field (a schema wrapper must carry a payload)"},
      {"payload not an object", Which::kSeed, kUser, std::nullopt,
       R"({"schema":null,"payload":"x"})", "payload: expected object, got string"},
      {"schema not an object", Which::kSeed, kUser, std::nullopt,
       absl::StrCat(R"({"schema":"s","payload":)", user_ok, "}"),
       "schema: expected object, got string"},
      {"wrapped payload without op", Which::kSeed, kUser, std::nullopt,
       R"({"schema":null,"payload":{"after":{}}})", "op: missing field"},
      {"source.ts_ms not an integer", Which::kSeed, kUserExt, std::nullopt,
       R"({"after":{"userId":1,"originalName":"a"},"source":{"ts_ms":"1"},"op":"c"})",
       "source.ts_ms: expected integer, got string"},
      {"source not an object", Which::kSeed, kUserExt, std::nullopt,
       R"({"after":{"userId":1,"originalName":"a"},"source":7,"op":"c"})",
       "source: expected object, got integer"},
      {"source index out of range", Which::kSeed, 2, std::nullopt, user_ok,
       "source index 2 out of range"},
      {"record key missing", Which::kRecordKey, 0, std::nullopt,
       R"({"after":{"simpleName":"a"},"op":"c"})",
       "key: the record has no key, but key_source is RECORD_KEY"},
      {"record key malformed", Which::kRecordKey, 0, std::string(R"({"id":)"),
       R"({"after":{"simpleName":"a"},"op":"c"})", "key: malformed JSON: *"},
      {"record key not an object", Which::kRecordKey, 0, std::string("42"),
       R"({"after":{"simpleName":"a"},"op":"c"})", "key: expected a JSON object, got integer"},
      {"record key field missing", Which::kRecordKey, 0, std::string(R"({"ID":1})"),
       R"({"after":{"simpleName":"a"},"op":"c"})", "key.id: missing key field"},
      {"record key wrapped payload not an object", Which::kRecordKey, 0,
       std::string(R"({"schema":{},"payload":[1]})"), R"({"after":{"simpleName":"a"},"op":"c"})",
       "key.payload: expected object, got array"},
      {"record key null field", Which::kRecordKey, 0, std::string(R"({"id":null})"),
       R"({"after":{"simpleName":"a"},"op":"c"})", "key.id: null key"},
  };
  ASSERT_GE(sizeof(cases) / sizeof(cases[0]), 15u);

  TableSchema seed = SchemaFrom(kSeedConfig);
  TableSchema record_key = SchemaFrom(kRecordKeyConfig);
  TableSchema typed = SchemaFrom(kTypedConfig);
  DecoderOptions small;
  small.max_value_bytes = 64;
  small.max_record_bytes = 1024;
  DebeziumDecoder seed_decoder = MakeDecoder(&seed);
  DebeziumDecoder small_decoder = MakeDecoder(&seed, small);
  DebeziumDecoder record_key_decoder = MakeDecoder(&record_key);
  DebeziumDecoder typed_decoder = MakeDecoder(&typed);

  // The typed baseline decodes, so each typed case fails only for its one bad field.
  absl::StatusOr<Decoded> baseline =
      typed_decoder.Decode(0, std::nullopt, TypedWith("i", "2"), 0, Pos(0, 0));
  ASSERT_TRUE(baseline.ok()) << baseline.status();

  for (const BadCase& c : cases) {
    DebeziumDecoder* decoder = c.which == Which::kSeed            ? &seed_decoder
                               : c.which == Which::kSeedSmallLimits ? &small_decoder
                               : c.which == Which::kRecordKey       ? &record_key_decoder
                                                                    : &typed_decoder;
    std::optional<std::string_view> key;
    if (c.key.has_value()) key = *c.key;
    absl::StatusOr<Decoded> d = decoder->Decode(c.source, key, c.value, 0, Pos(c.source, 9));
    ASSERT_FALSE(d.ok()) << c.name << ": decoded with outcome " << static_cast<int>(d->outcome);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    const std::string& want = c.want;
    const std::string got(d.status().message());
    if (!want.empty() && want.back() == '*') {
      EXPECT_EQ(got.substr(0, want.size() - 1), want.substr(0, want.size() - 1))
          << c.name << ": " << got;
      EXPECT_GT(got.size(), want.size()) << c.name << ": the message should say more: " << got;
    } else {
      EXPECT_EQ(got, want) << c.name;
    }
  }

  // The decoder is still usable after every failure.
  absl::StatusOr<Decoded> after = seed_decoder.Decode(kUser, std::nullopt, user_ok, 0, Pos(0, 1));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->event.key, Key{I(42)});
}

// ---------------------------------------------------------------------------------------------
// Robustness: random mutations of valid records never crash the decoder, and every result is
// either a decoded record or an InvalidArgument.

TEST(DebeziumDecoderFuzz, MutationsNeverCrash) {
  TableSchema seed = SchemaFrom(kSeedConfig);
  TableSchema record_key = SchemaFrom(kRecordKeyConfig);
  DecoderOptions options;
  options.max_value_bytes = 256;
  DebeziumDecoder seed_decoder = MakeDecoder(&seed, options);
  DebeziumDecoder record_key_decoder = MakeDecoder(&record_key, options);

  const std::string wrapped_key =
      R"({"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}]},)"
      R"("payload":{"id":78}})";
  struct Seed {
    DebeziumDecoder* decoder;
    int source;
    std::string key;
    std::string value;
  };
  const std::vector<Seed> seeds = {
      {&seed_decoder, kUser, "", kUserCreate},
      {&seed_decoder, kUser, "", Wrap(EnvelopeSchema(kUserRowSchema), kUserCreate)},
      {&seed_decoder, kUserExt, "",
       R"({"before":{"userId":9,"originalName":"neo"},"after":null,"source":{"ts_ms":1},)"
       R"("op":"d","ts_ms":2})"},
      {&seed_decoder, kUserExt, "",
       R"({"before":null,"after":{"userId":-9,"originalName":"n\u00e9o \"x\""},"op":"u"})"},
      {&record_key_decoder, 0, R"({"id":5})",
       R"({"after":{"id":1,"simpleName":"a"},"op":"c","ts_ms":3})"},
      {&record_key_decoder, 0, wrapped_key, R"({"before":null,"after":null,"op":"d"})"},
  };
  const char kSpecial[] = "{}[]\":,\\ 0123456789-+.eEtfnul\x80\xc3\xff";
  std::mt19937 rng(20240611);
  int decoded = 0, rejected = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    const Seed& s = seeds[rng() % seeds.size()];
    std::string value = s.value;
    std::string key = s.key;
    std::string* target = (!key.empty() && rng() % 4 == 0) ? &key : &value;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !target->empty(); ++m) {
      const size_t at = rng() % target->size();
      switch (rng() % 6) {
        case 0:  // Flip a bit.
          (*target)[at] = static_cast<char>((*target)[at] ^ (1 << (rng() % 8)));
          break;
        case 1:  // Overwrite with a JSON-significant or non-ASCII byte.
          (*target)[at] = kSpecial[rng() % (sizeof(kSpecial) - 1)];
          break;
        case 2:  // Truncate.
          target->resize(at);
          break;
        case 3:  // Delete a run.
          target->erase(at, 1 + rng() % 8);
          break;
        case 4:  // Insert a byte, NUL included.
          target->insert(target->begin() + static_cast<std::ptrdiff_t>(at),
                         static_cast<char>(rng() % 256));
          break;
        case 5: {  // Duplicate a slice (repeats fields, nests brackets).
          const size_t len = 1 + rng() % 16;
          target->insert(at, target->substr(at, len));
          break;
        }
      }
    }
    std::optional<std::string_view> key_view;
    if (!s.key.empty()) key_view = key;
    absl::StatusOr<Decoded> d = s.decoder->Decode(s.source, key_view, value, 7, Pos(s.source, 1));
    if (d.ok()) {
      ++decoded;
      if (d->outcome == DecodeOutcome::kEvent) {
        EXPECT_EQ(d->event.key.size(), 1u);
        if (d->event.op == ChangeOp::kUpsert) {
          EXPECT_EQ(d->event.values.size(),
                    (s.decoder == &seed_decoder ? seed : record_key)
                        .sources[static_cast<size_t>(s.source)]
                        .fields.size());
        } else {
          EXPECT_TRUE(d->event.values.empty());
        }
      }
    } else {
      ++rejected;
      ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument)
          << d.status() << " for " << value;
      ASSERT_FALSE(d.status().message().empty());
    }
  }
  // Both paths were exercised: the mutations are neither all harmless nor all fatal.
  EXPECT_GT(decoded, 300);
  EXPECT_GT(rejected, 3000);
}

// ---------------------------------------------------------------------------------------------
// Typed decoding against the target's columns (the facts the start-up check reads from
// information_schema): what a column cannot hold exactly is refused at decode time with reason
// "type-mismatch", never left to MySQL's implicit conversion.

ColumnFacts Integer(const char* column_type, int64_t min, uint64_t max, bool nullable = true) {
  ColumnFacts f;
  f.kind = ColumnFacts::Kind::kInteger;
  f.column_type = column_type;
  f.min_integer = min;
  f.max_integer = max;
  f.is_unsigned = min == 0;
  f.nullable = nullable;
  return f;
}

ColumnFacts Facts(ColumnFacts::Kind kind, const char* column_type, int precision = 0,
                  int scale = 0, int64_t max_chars = -1, int64_t max_bytes = -1) {
  ColumnFacts f;
  f.kind = kind;
  f.column_type = column_type;
  f.precision = precision;
  f.scale = scale;
  f.max_chars = max_chars;
  f.max_bytes = max_bytes;
  return f;
}

constexpr char kColumnCheckConfig[] = R"pb(
  target { table: "T" key_columns: "k" }
  sources {
    name: "s"
    topic: "s"
    key_fields: "id"
    columns { from: "tiny" to: "tiny" }
    columns { from: "utiny" to: "utiny" }
    columns { from: "ubig" to: "ubig" type: UINT64 }
    columns { from: "dec" to: "dec" }
    columns { from: "flt" to: "flt" }
    columns { from: "txt" to: "txt" }
    columns { from: "bin" to: "bin" type: BYTES }
    columns { from: "dt" to: "dt" }
    columns { from: "ms" to: "ms" type: TIMESTAMP_MILLIS }
    columns { from: "nn" to: "nn" }
    columns { from: "bits" to: "bits" }
  }
)pb";

std::map<std::string, ColumnFacts> TypedColumns() {
  using K = ColumnFacts::Kind;
  std::map<std::string, ColumnFacts> columns = {
      {"k", Integer("bigint(20)", INT64_MIN, INT64_MAX, /*nullable=*/false)},
      {"tiny", Integer("tinyint(4)", -128, 127)},
      {"utiny", Integer("tinyint(3) unsigned", 0, 255)},
      {"ubig", Integer("bigint(20) unsigned", 0, UINT64_MAX)},
      {"dec", Facts(K::kDecimal, "decimal(5,2)", 5, 2)},
      {"flt", Facts(K::kFloat, "float")},
      {"txt", Facts(K::kText, "varchar(5)", 0, 0, 5, 20)},
      {"bin", Facts(K::kBinary, "varbinary(4)", 0, 0, 4, 4)},
      {"dt", Facts(K::kTemporal, "datetime(6)")},
      {"ms", Facts(K::kTemporal, "datetime(3)")},
      {"nn", Facts(K::kText, "varchar(10)", 0, 0, 10, 40)},
      {"bits", Facts(K::kBit, "bit(3)", 3)},
  };
  columns["nn"].nullable = false;
  return columns;
}

// A create whose row holds a good value for every field, except `field`, which is `json`.
std::string TypedCreate(const std::string& field, const std::string& json) {
  std::map<std::string, std::string> row = {
      {"id", "1"},       {"tiny", "1"},     {"utiny", "1"},      {"ubig", "1"},
      {"dec", "1.5"},    {"flt", "1.5"},    {"txt", "\"ab\""},   {"bin", "\"AQID\""},
      {"dt", "\"2021-06-21 00:00:00\""},    {"ms", "1700000000123"},
      {"nn", "\"x\""},   {"bits", "5"}};
  row[field] = json;
  std::string after;
  for (const auto& [name, value] : row) {
    absl::StrAppend(&after, after.empty() ? "" : ",", "\"", name, "\":", value);
  }
  return absl::StrCat(R"({"after":{)", after, R"(},"source":{"ts_ms":5},"op":"c"})");
}

struct TypedCase {
  const char* name;
  std::string field;
  std::string json;
  // Empty: decodes. Else the error message must contain every one of these.
  std::vector<std::string> error;
  std::optional<Value> expected;  // For a decoded case: the field's value (the key for "id").
};

TEST(DebeziumDecoderTyped, ValuesTheColumnCannotHoldAreTypeMismatches) {
  TableSchema schema = SchemaFrom(kColumnCheckConfig);
  schema.SetColumnFacts(TypedColumns());
  DebeziumDecoder decoder = MakeDecoder(&schema);
  const std::string too_long(60000, 'x');
  const std::vector<TypedCase> cases = {
      // The key: the issue's string key and float key.
      {"string key", "id", R"("abc")",
       {"after.id: JSON string 'abc'", "column k bigint(20)", "integers"}, {}},
      {"numeric string key", "id", R"("12")", {"after.id: JSON string '12'", "column k"}, {}},
      {"float key", "id", "1.5",
       {"after.id: JSON floating-point number 1.5", "column k", "not an integral number"}, {}},
      {"integral float key", "id", "2.0", {}, I(2)},
      {"huge float key", "id", "1e300", {"after.id", "column k", "range"}, {}},
      {"int64 max key", "id", "9223372036854775807", {}, I(INT64_MAX)},
      {"null key", "id", "null", {"after.id: null key"}, {}},
      // Integers: the column's range, not int64's.
      {"tinyint max", "tiny", "127", {}, I(127)},
      {"tinyint min", "tiny", "-128", {}, I(-128)},
      {"tinyint over", "tiny", "128",
       {"after.tiny: JSON integer 128", "column tiny tinyint(4)", "range [-128, 127]"}, {}},
      {"tinyint under", "tiny", "-129", {"after.tiny", "range"}, {}},
      {"tinyint float", "tiny", "3.25", {"after.tiny", "not an integral number"}, {}},
      {"tinyint string", "tiny", R"("7")", {"after.tiny: JSON string '7'", "not text"}, {}},
      {"tinyint boolean", "tiny", "true", {}, I(1)},
      {"unsigned negative", "utiny", "-1", {"after.utiny", "tinyint(3) unsigned", "range"}, {}},
      {"unsigned max", "utiny", "255", {}, I(255)},
      {"unsigned over", "utiny", "256", {"after.utiny", "range [0, 255]"}, {}},
      {"wrapped bigint unsigned", "ubig", "-1", {}, S("18446744073709551615")},
      {"bigint unsigned zero", "ubig", "0", {}, S("0")},
      // Decimals: digits before the point; text only when it is a number.
      {"decimal fits", "dec", "999.99", {}, D(999.99)},
      {"decimal over", "dec", "1000", {"after.dec: JSON integer 1000", "decimal(5,2)", "3 digits"},
       {}},
      {"decimal float over", "dec", "1e10", {"after.dec", "range"}, {}},
      {"decimal as text", "dec", R"("-12.50")", {}, S("-12.50")},
      {"decimal zero as text", "dec", R"("0.00")", {}, S("0.00")},
      {"decimal text over", "dec", R"("12345.1")", {"after.dec", "range"}, {}},
      {"decimal not a number", "dec", R"("abc")", {"after.dec: JSON string 'abc'", "decimal"},
       {}},
      // Floating point.
      {"float over", "flt", "1e39", {"after.flt", "column flt float", "range"}, {}},
      {"float as text", "flt", R"("1.5")", {"after.flt: JSON string", "not text"}, {}},
      {"float from integer", "flt", "3", {}, I(3)},
      // Text: characters and bytes.
      {"text fits", "txt", R"("hello")", {}, S("hello")},
      {"text of multibyte characters", "txt", R"("héllo")", {}, S("héllo")},
      {"text too long", "txt", R"("toolong")",
       {"after.txt: JSON string 'toolong'", "column txt varchar(5)", "7 characters"}, {}},
      {"60 KB text", "txt", absl::StrCat("\"", too_long, "\""),
       {"after.txt: JSON string of 60000 bytes", "varchar(5)", "60000 characters"}, {}},
      {"integer into text", "txt", "12345", {}, I(12345)},
      {"long integer into text", "txt", "123456", {"after.txt", "6 characters"}, {}},
      {"float into text", "txt", "1.5", {"after.txt: JSON floating-point number", "text"}, {}},
      // Bytes.
      {"bytes fit", "bin", R"("AQIDBA==")", {}, S(std::string("\x01\x02\x03\x04"))},
      {"bytes too long", "bin", R"("AQIDBAU=")", {"after.bin", "varbinary(4)", "5 bytes"}, {}},
      // Dates and times: a bare number would be converted by the database.
      {"number into datetime", "dt", "1700000000",
       {"after.dt: JSON integer 1700000000", "datetime(6)", "TIMESTAMP_MILLIS"}, {}},
      {"typed timestamp", "ms", "1700000000123", {}, S("2023-11-14 22:13:20.123000")},
      // NOT NULL.
      {"null for NOT NULL", "nn", "null", {"after.nn: JSON null", "varchar(10)", "NOT NULL"}, {}},
      {"null for nullable", "txt", "null", {}, Null()},
      // Bits.
      {"bits fit", "bits", "7", {}, I(7)},
      {"bits over", "bits", "8", {"after.bits", "bit(3)", "range"}, {}},
  };
  for (const TypedCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Decoded> d =
        decoder.Decode(0, std::nullopt, TypedCreate(c.field, c.json), 0, Pos(0, 1));
    if (c.error.empty()) {
      ASSERT_TRUE(d.ok()) << d.status();
      ASSERT_EQ(d->outcome, DecodeOutcome::kEvent);
      if (c.field == "id") {
        EXPECT_EQ(d->event.key, Key{*c.expected});
        continue;
      }
      for (const FieldMapping& field : schema.sources[0].fields) {
        if (field.from != c.field) continue;
        EXPECT_EQ(Debug({d->event.values[static_cast<size_t>(field.column)]}),
                  Debug({*c.expected}));
      }
      continue;
    }
    ASSERT_FALSE(d.ok()) << "decoded " << Debug(d->event.values);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
    for (const std::string& part : c.error) {
      EXPECT_NE(d.status().message().find(part), absl::string_view::npos)
          << "'" << part << "' not in: " << d.status().message().substr(0, 300);
    }
    if (c.json != "null" || c.field != "id") {
      EXPECT_EQ(d.status().GetPayload(kDecodeReasonPayload).value_or(absl::Cord("none")),
                "type-mismatch")
          << d.status();
    }
  }
}

TEST(DebeziumDecoderTyped, KeyFromTheRecordKeyIsCheckedToo) {
  TableSchema schema = SchemaFrom(kRecordKeyConfig);
  schema.SetColumnFacts({{"userId", Integer("bigint(20)", INT64_MIN, INT64_MAX, false)}});
  DebeziumDecoder decoder = MakeDecoder(&schema);
  const std::string value = R"({"after":{"id":1,"simpleName":"a"},"op":"c","ts_ms":3})";
  absl::StatusOr<Decoded> d = decoder.Decode(0, R"({"id":"abc"})", value, 0, Pos(0, 1));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("key.id: JSON string 'abc' does not fit column userId"),
            absl::string_view::npos)
      << d.status();
  d = decoder.Decode(0, R"({"id":1.5})", value, 0, Pos(0, 2));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not an integral number"), absl::string_view::npos)
      << d.status();
}

TEST(DebeziumDecoderTyped, WithoutColumnFactsOnlyTheConfiguredTypesApply) {
  // The start-up check could not read the table: values are decoded as before.
  TableSchema schema = SchemaFrom(kColumnCheckConfig);
  DebeziumDecoder decoder = MakeDecoder(&schema);
  absl::StatusOr<Decoded> d = decoder.Decode(0, std::nullopt, TypedCreate("tiny", "300"), 0,
                                             Pos(0, 1));
  ASSERT_TRUE(d.ok()) << d.status();
  // An envelope schema still types the key: int64 refuses a string (reason malformed).
  const std::string wrapped = Wrap(EnvelopeSchema(kUserRowSchema),
                                   R"({"after":{"id":"abc","simpleName":"a","dateCreated":1},)"
                                   R"("op":"c"})");
  TableSchema seed = SchemaFrom(kSeedConfig);
  DebeziumDecoder seed_decoder = MakeDecoder(&seed);
  d = seed_decoder.Decode(kUser, std::nullopt, wrapped, 0, Pos(0, 2));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("after.id: expected integer, got string"),
            absl::string_view::npos)
      << d.status();
}

// ---------------------------------------------------------------------------------------------
// Source checks.

TEST(DebeziumDecoderSourceChecks, AnEventOfAnotherTableIsAForeignTable) {
  TableSchema schema = SchemaFrom(absl::StrReplaceAll(
      kSeedConfig, {{R"(key_fields: "id")", R"(key_fields: "id" database: "app" table: "User")"}}));
  DebeziumDecoder decoder = MakeDecoder(&schema);
  absl::StatusOr<Decoded> d = decoder.Decode(kUser, std::nullopt, kUserCreate, 0, Pos(kUser, 1));
  ASSERT_TRUE(d.ok()) << d.status();

  struct Case {
    std::string value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {absl::StrReplaceAll(kUserCreate, {{R"("table":"User")", R"("table":"Orders")"}}),
       "source.table: 'Orders' but sources[0].table (user) is 'User'"},
      {absl::StrReplaceAll(kUserCreate, {{R"("db":"app")", R"("db":"billing")"}}),
       "source.db: 'billing' but sources[0].database (user) is 'app'"},
      {absl::StrReplaceAll(kUserCreate, {{R"(,"db":"app","table":"User")", ""}}),
       "source.db: missing but sources[0].database (user) is 'app'"},
  };
  for (const Case& c : cases) {
    d = decoder.Decode(kUser, std::nullopt, c.value, 0, Pos(kUser, 2));
    ASSERT_FALSE(d.ok()) << c.value;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find(c.message), absl::string_view::npos) << d.status();
    EXPECT_EQ(d.status().GetPayload(kDecodeReasonPayload).value_or(absl::Cord("none")),
              "foreign-table");
  }
  // The other source names no table: not checked.
  const std::string ext =
      R"({"after":{"userId":5,"originalName":"o"},"source":{"db":"x","table":"y"},"op":"c"})";
  d = decoder.Decode(kUserExt, std::nullopt, ext, 0, Pos(kUserExt, 3));
  ASSERT_TRUE(d.ok()) << d.status();
}

TEST(DebeziumDecoderSourceChecks, KeySourceWinsAndDisagreementsAreReported) {
  TableSchema seed = SchemaFrom(kSeedConfig);
  DebeziumDecoder row_keyed = MakeDecoder(&seed);
  // ROW: the row's id wins over the record key's.
  absl::StatusOr<Decoded> d = row_keyed.Decode(kUser, R"({"id":43})", kUserCreate, 0, Pos(0, 1));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.key, Key{I(42)});
  EXPECT_TRUE(d->key_disagreed);
  d = row_keyed.Decode(kUser, R"({"id":42})", kUserCreate, 0, Pos(0, 2));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->key_disagreed);
  // A record key without the key fields (or none, or not JSON) cannot disagree.
  for (std::optional<std::string_view> key :
       {std::optional<std::string_view>(R"({"pk":7})"), std::optional<std::string_view>(),
        std::optional<std::string_view>("not json")}) {
    d = row_keyed.Decode(kUser, key, kUserCreate, 0, Pos(0, 3));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_FALSE(d->key_disagreed);
  }

  // RECORD_KEY: the record key wins over the row's id.
  TableSchema record = SchemaFrom(kRecordKeyConfig);
  DebeziumDecoder record_keyed = MakeDecoder(&record);
  const std::string value = R"({"after":{"id":1,"simpleName":"a"},"op":"c","ts_ms":3})";
  d = record_keyed.Decode(0, R"({"id":77})", value, 0, Pos(0, 4));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.key, Key{I(77)});
  EXPECT_TRUE(d->key_disagreed);
  d = record_keyed.Decode(0, R"({"id":1})", value, 0, Pos(0, 5));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->key_disagreed);
}

}  // namespace
}  // namespace cdcjoin
