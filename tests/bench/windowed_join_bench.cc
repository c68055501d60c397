// Windowed joiner throughput on one core: ChangeEvents -> WindowedJoiner -> RocksDB state ->
// emitted commands (to a sink that only counts and acknowledges), with 1M events over 100K keys.
// Also decode -> join (Debezium JSON through service/debezium_decoder). Baselines measured in the
// same run: the same events as plain RocksDB puts (one WriteBatch per poll batch, same options),
// and the database-side command building with no I/O. Also the time a restart takes: reopen
// after a crash mid-stream (the joiner rebuilds its windows from the live log records).
//
//   bazel run -c opt //tests/bench:windowed_join_bench [-- --events=N --keys=N --decode_only]
//
// --decode_only runs only the JSON-beside-Avro decode section (for profiling the decoders); it
// also decodes the same JSON in Kafka Connect's {schema, payload} wrapper, on a line of its own.
//
// Event generation is outside the timed sections: each poll batch is generated, then timed.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "join/db_upsert_joiner.h"
#include "join/windowed_joiner.h"
#include "service/avro_decoder.h"
#include "service/debezium_decoder.h"
#include "storage/rocksdb_window_store.h"
#include "tests/support/avro_encoding.h"
#include "tests/support/schema_registry_stub.h"

namespace cdcjoin {
namespace {

constexpr size_t kBatch = 1000;  // Events per poll batch.

struct Args {
  int64_t events = 1000000;
  int64_t keys = 100000;
  bool decode_only = false;
};

TableSchema BenchSchema() {
  TableSchema schema;
  schema.table = "Nickname";
  schema.key_columns = {"id"};
  schema.columns = {"simpleName", "age", "maskingName"};
  SourceMapping user;
  user.name = user.topic = "user";
  user.key_fields = {"id"};
  user.on_delete = v1::IGNORE;
  user.fields = {FieldMapping{"simpleName", 0, true, false, v1::VALUE_TYPE_AUTO},
                 FieldMapping{"age", 1, true, false, v1::VALUE_TYPE_AUTO}};
  SourceMapping ext;
  ext.name = ext.topic = "ext";
  ext.key_fields = {"id"};
  ext.on_delete = v1::CLEAR_COLUMNS;
  ext.fields = {FieldMapping{"maskingName", 2, true, false, v1::VALUE_TYPE_AUTO}};
  schema.sources = {user, ext};
  return schema;
}

// Deterministic workload: event i has event time 1e12 + i/10 ms (10 events per ms: a 5 s window
// spans 50K events), a uniform key, a random source, 3% deletes.
class Workload {
 public:
  explicit Workload(const Args& args) : args_(args), rng_(42) {}

  void Next(size_t n, std::vector<ChangeEvent>* out) {
    out->clear();
    for (size_t j = 0; j < n; ++j, ++i_) {
      ChangeEvent e;
      e.source = static_cast<int>(rng_() & 1);
      const int64_t key = static_cast<int64_t>(rng_() % static_cast<uint64_t>(args_.keys));
      e.key = {Value(key)};
      e.event_time_ms = 1000000000000 + i_ / 10;
      const int32_t partition = static_cast<int32_t>(key % 8);
      e.position = {SourcePartition{e.source, partition}, offsets_[e.source][partition]++};
      if (rng_() % 100 < 3) {
        e.op = ChangeOp::kDelete;
      } else if (e.source == 0) {
        e.values = {Value(absl::StrCat("user-", key, "-", i_)), Value(int64_t(i_ % 90))};
      } else {
        e.values = {Value(absl::StrCat("m***", i_ % 1000))};
      }
      out->push_back(std::move(e));
    }
  }

  // The same event as a Debezium JSON envelope (no schema wrapper).
  static std::string Json(const ChangeEvent& e) {
    const int64_t id = std::get<int64_t>(e.key[0]);
    std::string image;
    if (e.op == ChangeOp::kDelete) {
      image = absl::StrCat("{\"id\":", id, "}");
    } else if (e.source == 0) {
      image = absl::StrCat("{\"id\":", id, ",\"simpleName\":\"", std::get<std::string>(e.values[0]),
                           "\",\"age\":", std::get<int64_t>(e.values[1]), "}");
    } else {
      image = absl::StrCat("{\"id\":", id, ",\"maskingName\":\"",
                           std::get<std::string>(e.values[0]), "\"}");
    }
    const bool del = e.op == ChangeOp::kDelete;
    return absl::StrCat("{\"before\":", del ? image : "null", ",\"after\":", del ? "null" : image,
                        ",\"source\":{\"ts_ms\":", e.event_time_ms, ",\"db\":\"app\"},\"op\":\"",
                        del ? "d" : "u", "\",\"ts_ms\":", e.event_time_ms + 3, "}");
  }

  // The same envelope in Kafka Connect's {schema, payload} wrapper, as Debezium's JSON reaches
  // Kafka with the JsonConverter's default (schemas.enable=true): the schema of exactly these
  // fields (Debezium's real source block has ~15 more, so real records are larger).
  static std::string JsonWithSchema(const ChangeEvent& e) {
    const std::string columns =
        e.source == 0 ? R"({"type":"string","optional":true,"field":"simpleName"},)"
                        R"({"type":"int64","optional":true,"field":"age"})"
                      : R"({"type":"string","optional":true,"field":"maskingName"})";
    const std::string space = absl::StrCat("app.s", e.source);
    auto image = [&](const char* field) {
      return absl::StrCat(R"({"type":"struct","fields":[{"type":"int64","optional":false,)",
                          R"("field":"id"},)", columns, R"(],"optional":true,"name":")", space,
                          R"(.Value","field":")", field, R"("})");
    };
    return absl::StrCat(
        R"({"schema":{"type":"struct","fields":[)", image("before"), ",", image("after"),
        R"(,{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"},)",
        R"({"type":"string","optional":false,"field":"db"}],"optional":false,)",
        R"("name":"io.debezium.connector.mysql.Source","field":"source"},)",
        R"({"type":"string","optional":false,"field":"op"},)",
        R"({"type":"int64","optional":true,"field":"ts_ms"}],"optional":false,"name":")", space,
        R"(.Envelope","version":1},"payload":)", Json(e), "}");
  }

 private:
  Args args_;
  std::mt19937_64 rng_;
  int64_t i_ = 0;
  int64_t offsets_[2][8] = {};
};

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int64_t StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atoll(line.c_str() + std::strlen(field));
  }
  return -1;
}

std::string BenchDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/cdcjoin_windowed_bench_" +
                    std::to_string(getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

RocksDbWindowStoreOptions StoreOptions() { return RocksDbWindowStoreOptions(); }  // 64 / 32 MB

// A store that only counts: the joiner's own CPU cost, without RocksDB.
class CountingStore : public WindowStore {
 public:
  absl::Status Commit(const WindowStoreBatch& batch) override {
    ops += static_cast<int64_t>(batch.ops().size());
    return absl::OkStatus();
  }
  absl::Status Scan(absl::string_view,
                    const std::function<absl::Status(absl::string_view, absl::string_view)>&)
      override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Get(absl::string_view) override {
    return absl::NotFoundError("counting store");
  }
  absl::StatusOr<std::map<SourcePartition, int64_t>> StoredOffsets() override {
    return std::map<SourcePartition, int64_t>();
  }
  int64_t ops = 0;
};

struct JoinResult {
  double seconds = 0;
  int64_t commands = 0;
  WindowedJoiner::Stats stats;
  int64_t rss_kb_after = 0;
  int64_t store_ops = 0;  // Puts and deletes committed.
};

// ---------------------------------------------------------------------------------------------
// Decode alone, the same rows as Debezium JSON and as Avro (Confluent wire format; the writer
// schemas come once from a registry on loopback): events/s on one core, and whether both
// formats gave the same events.

// Debezium's Avro envelope of source `source`'s rows (what Apicurio's converter registers).
std::string BenchAvroSchema(int source) {
  const std::string columns =
      source == 0 ? R"({"name":"simpleName","type":["null","string"],"default":null},
                      {"name":"age","type":["null","long"],"default":null})"
                  : R"({"name":"maskingName","type":["null","string"],"default":null})";
  return absl::StrCat(
      R"({"type":"record","name":"Envelope","namespace":"app.s)", source, R"(","fields":[
        {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
          {"name":"id","type":"long"},)", columns, R"(]}],"default":null},
        {"name":"after","type":["null","Value"],"default":null},
        {"name":"source","type":{"type":"record","name":"Source","fields":[
          {"name":"ts_ms","type":"long"},{"name":"db","type":"string"}]}},
        {"name":"op","type":"string"},
        {"name":"ts_ms","type":["null","long"],"default":null}]})");
}

std::string BenchAvro(AvroRecordEncoder& encoder, const ChangeEvent& e) {
  avro_value_t* root = encoder.Reset();
  const bool del = e.op == ChangeOp::kDelete;
  for (const char* image : {"before", "after"}) {
    avro_value_t field = AvroField(root, image);
    const bool present = (std::strcmp(image, "before") == 0) == del;
    avro_value_t row = AvroBranch(&field, present ? 1 : 0);
    if (!present) continue;
    avro_value_t id = AvroField(&row, "id");
    avro_value_set_long(&id, std::get<int64_t>(e.key[0]));
    const std::vector<const char*> names =
        e.source == 0 ? std::vector<const char*>{"simpleName", "age"}
                      : std::vector<const char*>{"maskingName"};
    for (size_t f = 0; f < names.size(); ++f) {
      avro_value_t column = AvroField(&row, names[f]);
      avro_value_t value = AvroBranch(&column, del ? 0 : 1);
      if (del) continue;
      if (const auto* text = std::get_if<std::string>(&e.values[f])) {
        avro_value_set_string_len(&value, text->c_str(), text->size() + 1);
      } else {
        avro_value_set_long(&value, std::get<int64_t>(e.values[f]));
      }
    }
  }
  avro_value_t source = AvroField(root, "source");
  avro_value_t ts = AvroField(&source, "ts_ms"), db = AvroField(&source, "db");
  avro_value_set_long(&ts, e.event_time_ms);
  avro_value_set_string(&db, "app");
  avro_value_t op = AvroField(root, "op");
  avro_value_set_string(&op, del ? "d" : "u");
  avro_value_t envelope_ts = AvroField(root, "ts_ms");
  avro_value_t envelope_ts_value = AvroBranch(&envelope_ts, 1);
  avro_value_set_long(&envelope_ts_value, e.event_time_ms + 3);
  return encoder.Encoded();
}

// Avro C's generic reader, avro_value_read of a record into a generic value, on the same bodies:
// what the decoder read with before it used Avro C's consumer API; the decoder's whole decode
// (envelope rules, type mapping, events built) is shown beside it.
class AvroReadBaseline {
 public:
  explicit AvroReadBaseline(const std::string& schema_json) {
    if (avro_schema_from_json_length(schema_json.data(), schema_json.size(), &schema_) != 0) {
      std::exit(1);
    }
    iface_ = avro_generic_class_from_schema(schema_);
    avro_generic_value_new(iface_, &value_);
    reader_ = avro_reader_memory(nullptr, 0);
  }
  ~AvroReadBaseline() {
    avro_reader_free(reader_);
    avro_value_decref(&value_);
    avro_value_iface_decref(iface_);
    avro_schema_decref(schema_);
  }
  void Read(const std::string& record) {  // Past the 5-byte Confluent header.
    avro_reader_memory_set_source(reader_, record.data() + 5, static_cast<int64_t>(record.size() - 5));
    if (avro_value_read(reader_, &value_) != 0) std::exit(1);
  }

 private:
  avro_schema_t schema_ = nullptr;
  avro_value_iface_t* iface_ = nullptr;
  avro_value_t value_;
  avro_reader_t reader_ = nullptr;
};

struct DecodeResult {
  double json_seconds = 0;
  double json_wrapped_seconds = 0;  // The same JSON in the {schema, payload} wrapper.
  int64_t json_wrapped_bytes = 0;
  double avro_seconds = 0;
  double avro_read_seconds = 0;  // AvroReadBaseline.
  int64_t events = 0;
  int64_t different = 0;  // Events the two formats decoded differently (must be 0).
  int64_t wrapped_different = 0;  // Wrapped JSON's events unlike bare JSON's (must be 0).
};

DecodeResult RunDecodeOnly(const Args& args) {
  const TableSchema schema = BenchSchema();
  SchemaRegistryStub registry;
  registry.Serve(1, BenchAvroSchema(0));
  registry.Serve(2, BenchAvroSchema(1));
  SchemaRegistry::Options registry_options;
  registry_options.url = registry.url();
  auto json_decoder = DebeziumDecoder::Create(&schema, DecoderOptions());
  auto avro_decoder = AvroDecoder::Create(&schema, DecoderOptions(),
                                          std::make_shared<SchemaRegistry>(registry_options), {});
  if (!json_decoder.ok() || !avro_decoder.ok()) std::exit(1);
  AvroRecordEncoder encoders[2] = {{BenchAvroSchema(0), 1}, {BenchAvroSchema(1), 2}};
  AvroReadBaseline baselines[2] = {AvroReadBaseline(BenchAvroSchema(0)),
                                   AvroReadBaseline(BenchAvroSchema(1))};
  Workload workload(args);
  std::vector<ChangeEvent> generated;
  std::vector<std::string> json, json_wrapped, avro;
  DecodeResult result;
  std::vector<ChangeEvent> from_json, from_wrapped, from_avro;
  for (int64_t done = 0; done < args.events; done += kBatch) {
    workload.Next(kBatch, &generated);
    json.clear();
    json_wrapped.clear();
    avro.clear();
    for (const ChangeEvent& e : generated) {
      json.push_back(Workload::Json(e));
      json_wrapped.push_back(Workload::JsonWithSchema(e));
      result.json_wrapped_bytes += static_cast<int64_t>(json_wrapped.back().size());
      avro.push_back(BenchAvro(encoders[e.source], e));
    }
    from_json.clear();
    from_wrapped.clear();
    from_avro.clear();
    // Each timed loop decodes and keeps the events, nothing else: the formats are compared after.
    auto begin = std::chrono::steady_clock::now();
    for (size_t j = 0; j < generated.size(); ++j) {
      absl::StatusOr<Decoded> d = json_decoder->Decode(generated[j].source, std::nullopt, json[j],
                                                       0, generated[j].position);
      if (!d.ok()) std::exit(1);
      from_json.push_back(std::move(d->event));
    }
    result.json_seconds += Seconds(std::chrono::steady_clock::now() - begin);
    begin = std::chrono::steady_clock::now();
    for (size_t j = 0; j < generated.size(); ++j) {
      absl::StatusOr<Decoded> d = (*avro_decoder)->Decode(generated[j].source, std::nullopt,
                                                          avro[j], 0, generated[j].position);
      if (!d.ok()) {
        std::fprintf(stderr, "avro decode: %s\n", std::string(d.status().message()).c_str());
        std::exit(1);
      }
      from_avro.push_back(std::move(d->event));
    }
    result.avro_seconds += Seconds(std::chrono::steady_clock::now() - begin);
    begin = std::chrono::steady_clock::now();
    for (size_t j = 0; j < generated.size(); ++j) {
      absl::StatusOr<Decoded> d = json_decoder->Decode(generated[j].source, std::nullopt,
                                                       json_wrapped[j], 0, generated[j].position);
      if (!d.ok()) {
        std::fprintf(stderr, "wrapped json decode: %s\n",
                     std::string(d.status().message()).c_str());
        std::exit(1);
      }
      from_wrapped.push_back(std::move(d->event));
    }
    result.json_wrapped_seconds += Seconds(std::chrono::steady_clock::now() - begin);
    auto same = [](const ChangeEvent& a, const ChangeEvent& b) {
      return a.key == b.key && a.values == b.values && a.op == b.op &&
             a.event_time_ms == b.event_time_ms;
    };
    for (size_t j = 0; j < generated.size(); ++j) {
      result.different += !same(from_json[j], from_avro[j]);
      result.wrapped_different += !same(from_json[j], from_wrapped[j]);
    }
    begin = std::chrono::steady_clock::now();
    for (size_t j = 0; j < generated.size(); ++j) baselines[generated[j].source].Read(avro[j]);
    result.avro_read_seconds += Seconds(std::chrono::steady_clock::now() - begin);
    result.events += static_cast<int64_t>(generated.size());
  }
  return result;
}

void PrintDecodeOnly(const DecodeResult& decode_only) {
  const double json_decode_eps = decode_only.events / decode_only.json_seconds;
  const double avro_decode_eps = decode_only.events / decode_only.avro_seconds;
  const double avro_read_eps = decode_only.events / decode_only.avro_read_seconds;
  std::printf("decode    alone, Debezium JSON: %10.0f events/s; Avro (Confluent wire format): "
              "%10.0f events/s, %.2fx JSON; %lld of %lld events differ\n",
              json_decode_eps, avro_decode_eps, avro_decode_eps / json_decode_eps,
              static_cast<long long>(decode_only.different),
              static_cast<long long>(decode_only.events));
  std::printf("baseline  Avro C's generic avro_value_read alone (same bodies): %10.0f events/s, "
              "%.2fx JSON's whole decode; target Avro >= JSON: %s\n",
              avro_read_eps, avro_read_eps / json_decode_eps,
              avro_decode_eps >= json_decode_eps ? "met" : "NOT met");
  const double wrapped_eps = decode_only.events / decode_only.json_wrapped_seconds;
  std::printf("beside    Debezium JSON in Kafka Connect's {schema, payload} wrapper "
              "(schemas.enable=true, %.0f bytes/record): %10.0f events/s, %.2fx bare JSON; Avro "
              "is %.2fx it (the target is judged against bare JSON); %lld events differ\n",
              static_cast<double>(decode_only.json_wrapped_bytes) / decode_only.events,
              wrapped_eps, wrapped_eps / json_decode_eps, avro_decode_eps / wrapped_eps,
              static_cast<long long>(decode_only.wrapped_different));
}

// decode: feed JSON through the decoder inside the timed section.
// no_io: a CountingStore instead of RocksDB.
JoinResult RunJoin(const Args& args, bool decode, bool no_io = false) {
  const TableSchema schema = BenchSchema();
  const std::string dir = BenchDir(decode ? "decode_join" : "join");
  absl::StatusOr<std::unique_ptr<RocksDbWindowStore>> store =
      std::unique_ptr<RocksDbWindowStore>();
  CountingStore counting;
  if (!no_io) store = RocksDbWindowStore::Open(dir, StoreOptions());
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    std::exit(1);
  }
  WindowStore* window_store = no_io ? static_cast<WindowStore*>(&counting) : store->get();
  auto joiner = WindowedJoiner::Open(schema, WindowedJoinerOptions(), window_store);
  if (!joiner.ok()) std::exit(1);
  auto decoder = DebeziumDecoder::Create(&schema, DecoderOptions());
  if (!decoder.ok()) std::exit(1);

  Workload workload(args);
  std::vector<ChangeEvent> generated, events;
  std::vector<std::string> json;
  std::vector<RowCommand> out;
  JoinResult result;
  std::chrono::steady_clock::duration timed{};
  int64_t now_ms = 0;
  // The sink counts, then acknowledges the whole poll batch's commands at once, as a lane
  // acknowledges a statement batch.
  std::vector<EventPosition> applied;
  auto sink = [&] {
    applied.clear();
    for (const RowCommand& c : out) {
      ++result.commands;
      applied.insert(applied.end(), c.covers.begin(), c.covers.end());
    }
    if (!(*joiner)->Acknowledge(applied).ok()) std::exit(1);
    out.clear();
  };
  for (int64_t done = 0; done < args.events; done += kBatch) {
    workload.Next(kBatch, &generated);
    if (decode) {
      json.clear();
      for (const ChangeEvent& e : generated) json.push_back(Workload::Json(e));
    }
    const auto start = std::chrono::steady_clock::now();
    if (decode) {
      events.clear();
      for (size_t j = 0; j < generated.size(); ++j) {
        absl::StatusOr<Decoded> d = decoder->Decode(generated[j].source, std::nullopt, json[j], 0,
                                                    generated[j].position);
        if (!d.ok() || d->outcome != DecodeOutcome::kEvent) {
          std::fprintf(stderr, "decode: %s\n", std::string(d.status().message()).c_str());
          std::exit(1);
        }
        events.push_back(std::move(d->event));
      }
    }
    now_ms += 1;
    if (!(*joiner)->Process(decode ? events : generated, now_ms, &out).ok()) std::exit(1);
    if (done % (10 * kBatch) == 0 && !(*joiner)->Advance(now_ms, &out).ok()) std::exit(1);
    sink();
    timed += std::chrono::steady_clock::now() - start;
  }
  const auto start = std::chrono::steady_clock::now();
  if (!(*joiner)->Drain(&out).ok()) std::exit(1);
  sink();
  timed += std::chrono::steady_clock::now() - start;
  result.seconds = Seconds(timed);
  result.stats = (*joiner)->stats();
  result.rss_kb_after = StatusKb("VmRSS:");
  result.store_ops = counting.ops;
  joiner->reset();
  store->reset();
  std::filesystem::remove_all(dir);
  return result;
}

// Restart: half the events through the joiner on RocksDB (each poll batch acknowledged except
// the last), then a crash (the joiner is destroyed without Drain, the database closed), then
// the time to reopen the database and the joiner (replaying the live log records) and to get
// the pending commands.
struct ReopenResult {
  double seconds = 0;
  double store_open_seconds = 0;  // RocksDB alone (WAL replay into the memtables).
  int64_t open_windows = 0;
  int64_t pending_commands = 0;
};

ReopenResult RunReopen(const Args& args) {
  const TableSchema schema = BenchSchema();
  const std::string dir = BenchDir("reopen");
  Workload workload(args);
  std::vector<ChangeEvent> generated;
  std::vector<RowCommand> out;
  {
    auto store = RocksDbWindowStore::Open(dir, StoreOptions());
    if (!store.ok()) std::exit(1);
    auto joiner = WindowedJoiner::Open(schema, WindowedJoinerOptions(), store->get());
    if (!joiner.ok()) std::exit(1);
    for (int64_t done = 0; done < args.events / 2; done += kBatch) {
      workload.Next(kBatch, &generated);
      out.clear();
      if (!(*joiner)->Process(generated, done / kBatch, &out).ok()) std::exit(1);
      if (done + static_cast<int64_t>(kBatch) >= args.events / 2) break;  // Never acknowledged.
      std::vector<EventPosition> applied;  // One acknowledgement per poll batch, as in RunJoin.
      for (const RowCommand& c : out) applied.insert(applied.end(), c.covers.begin(), c.covers.end());
      if (!(*joiner)->Acknowledge(applied).ok()) std::exit(1);
    }
  }
  ReopenResult result;
  const auto start = std::chrono::steady_clock::now();
  auto store = RocksDbWindowStore::Open(dir, StoreOptions());
  if (!store.ok()) std::exit(1);
  result.store_open_seconds = Seconds(std::chrono::steady_clock::now() - start);
  auto joiner = WindowedJoiner::Open(schema, WindowedJoinerOptions(), store->get());
  if (!joiner.ok()) {
    std::fprintf(stderr, "reopen: %s\n", std::string(joiner.status().message()).c_str());
    std::exit(1);
  }
  result.pending_commands = static_cast<int64_t>((*joiner)->PendingCommands().size());
  result.seconds = Seconds(std::chrono::steady_clock::now() - start);
  result.open_windows = (*joiner)->stats().open_windows;
  joiner->reset();
  store->reset();
  std::filesystem::remove_all(dir);
  return result;
}

// Baseline 1: the same events as RocksDB puts alone (key -> values), one WriteBatch per batch.
double RunRocksDbPuts(const Args& args) {
  const std::string dir = BenchDir("puts");
  auto store = RocksDbWindowStore::Open(dir, StoreOptions());
  if (!store.ok()) std::exit(1);
  Workload workload(args);
  std::vector<ChangeEvent> generated;
  std::chrono::steady_clock::duration timed{};
  WindowStoreBatch batch;
  for (int64_t done = 0; done < args.events; done += kBatch) {
    workload.Next(kBatch, &generated);
    const auto start = std::chrono::steady_clock::now();
    batch.Clear();
    for (const ChangeEvent& e : generated) {
      std::string value;
      for (const Value& v : e.values) absl::StrAppend(&value, ValueDebugString(v), "|");
      batch.Put(EncodeKey(e.key), std::move(value));
      batch.SetNextOffset(e.position.partition, e.position.offset + 1);
    }
    if (!(*store)->Commit(batch).ok()) std::exit(1);
    timed += std::chrono::steady_clock::now() - start;
  }
  store->reset();
  std::filesystem::remove_all(dir);
  return Seconds(timed);
}

// Baseline 2: the database-side joiner's command building, no I/O.
double RunDbUpsertBuild(const Args& args, int64_t* commands) {
  const TableSchema schema = BenchSchema();
  Workload workload(args);
  std::vector<ChangeEvent> generated;
  std::chrono::steady_clock::duration timed{};
  for (int64_t done = 0; done < args.events; done += kBatch) {
    workload.Next(kBatch, &generated);
    const auto start = std::chrono::steady_clock::now();
    for (const ChangeEvent& e : generated) {
      if (BuildDbUpsertCommand(schema, e).has_value()) ++*commands;
    }
    timed += std::chrono::steady_clock::now() - start;
  }
  return Seconds(timed);
}

int Main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--events=", 0) == 0) args.events = std::atoll(a.c_str() + 9);
    if (a.rfind("--keys=", 0) == 0) args.keys = std::atoll(a.c_str() + 7);
    if (a == "--decode_only") args.decode_only = true;
  }
  if (args.decode_only) {
    PrintDecodeOnly(RunDecodeOnly(args));
    return 0;
  }
  const RocksDbWindowStoreOptions store_options = StoreOptions();
  const WindowedJoinerOptions join_options;
  const int64_t budget_mb = store_options.block_cache_mb + 2 * store_options.write_buffer_mb;
  std::printf("windowed_join_bench: %lld events over %lld keys, poll batch %zu, OUTER, "
              "window %lld ms, grace %lld ms, 10 events per ms of event time\n",
              static_cast<long long>(args.events), static_cast<long long>(args.keys), kBatch,
              static_cast<long long>(join_options.window_ms),
              static_cast<long long>(join_options.grace_ms));
  const int64_t rss_start_kb = StatusKb("VmRSS:");

  const double puts_s = RunRocksDbPuts(args);
  const double puts_eps = args.events / puts_s;
  std::printf("baseline  rocksdb puts alone (same events, same options): %10.0f events/s (%.2f s)\n",
              puts_eps, puts_s);
  int64_t db_commands = 0;
  const double build_s = RunDbUpsertBuild(args, &db_commands);
  const double build_eps = args.events / build_s;
  std::printf("baseline  db-upsert command building, no I/O:             %10.0f events/s (%.2f s), "
              "%lld commands\n",
              build_eps, build_s, static_cast<long long>(db_commands));

  const JoinResult join = RunJoin(args, /*decode=*/false);
  const double join_eps = args.events / join.seconds;
  std::printf("windowed  join -> rocksdb state -> emit -> ack:            %10.0f events/s (%.2f s), "
              "%.2fx the puts baseline\n",
              join_eps, join.seconds, join_eps / puts_eps);
  std::printf("          commands %lld (db-upsert mode: %lld, %.1f%% of it), windows emitted %lld, "
              "joined %lld, late %lld, state keys at end %lld\n",
              static_cast<long long>(join.commands), static_cast<long long>(db_commands),
              100.0 * join.commands / db_commands,
              static_cast<long long>(join.stats.windows_emitted),
              static_cast<long long>(join.stats.joined_pairs),
              static_cast<long long>(join.stats.late_drops),
              static_cast<long long>(join.stats.state_keys));
  const JoinResult logic = RunJoin(args, /*decode=*/false, /*no_io=*/true);
  const double logic_eps = args.events / logic.seconds;
  std::printf("windowed  join logic alone (store only counts, no RocksDB):  %10.0f events/s (%.2f s), "
              "%lld store ops (%.2f per event)\n",
              logic_eps, logic.seconds, static_cast<long long>(logic.store_ops),
              static_cast<double>(logic.store_ops) / args.events);
  const JoinResult decode_join = RunJoin(args, /*decode=*/true);
  const double decode_eps = args.events / decode_join.seconds;
  std::printf("windowed  decode (Debezium JSON) -> join -> state -> emit: %10.0f events/s (%.2f s)\n",
              decode_eps, decode_join.seconds);

  const DecodeResult decode_only = RunDecodeOnly(args);
  PrintDecodeOnly(decode_only);
  const double json_decode_eps = decode_only.events / decode_only.json_seconds;
  const double avro_decode_eps = decode_only.events / decode_only.avro_seconds;

  const ReopenResult reopen = RunReopen(args);
  std::printf("restart   crash after %lld events, reopen + pending: %.1f ms (RocksDB open %.1f ms) "
              "for %lld open windows and %lld pending commands\n",
              static_cast<long long>(args.events / 2), reopen.seconds * 1000,
              reopen.store_open_seconds * 1000,
              static_cast<long long>(reopen.open_windows),
              static_cast<long long>(reopen.pending_commands));

  const double rss_mb = StatusKb("VmHWM:") / 1024.0;
  const double rss_start_mb = rss_start_kb / 1024.0;
  std::printf("memory    VmHWM %.1f MB (process start %.1f MB); configured RocksDB budget "
              "block_cache %d MB + 2 x write_buffer %d MB = %lld MB: %s\n",
              rss_mb, rss_start_mb, store_options.block_cache_mb, store_options.write_buffer_mb,
              static_cast<long long>(budget_mb), rss_mb <= budget_mb ? "within" : "OVER");
  std::printf("target    >= 200000 events/s: %s\n", join_eps >= 200000 ? "met" : "NOT met");
  std::printf(
      "{\"events\":%lld,\"keys\":%lld,\"events_per_s\":%.0f,\"decode_join_events_per_s\":%.0f,"
      "\"join_logic_no_io_events_per_s\":%.0f,\"store_ops_per_event\":%.2f,"
      "\"baseline_events_per_s\":%.0f,\"baseline_db_upsert_build_events_per_s\":%.0f,"
      "\"commands\":%lld,\"db_upsert_commands\":%lld,\"windows_emitted\":%lld,"
      "\"joined_pairs\":%lld,\"late_drops\":%lld,\"rss_mb\":%.1f,\"rss_start_mb\":%.1f,"
      "\"budget_mb\":%lld,\"reopen_ms\":%.1f,\"reopen_rocksdb_open_ms\":%.1f,\"reopen_open_windows\":%lld,"
      "\"reopen_pending_commands\":%lld,\"target_events_per_s\":200000,"
      "\"json_decode_events_per_s\":%.0f,\"avro_decode_events_per_s\":%.0f}\n",
      static_cast<long long>(args.events), static_cast<long long>(args.keys), join_eps, decode_eps,
      logic_eps, static_cast<double>(logic.store_ops) / args.events, puts_eps, build_eps, static_cast<long long>(join.commands),
      static_cast<long long>(db_commands), static_cast<long long>(join.stats.windows_emitted),
      static_cast<long long>(join.stats.joined_pairs),
      static_cast<long long>(join.stats.late_drops), rss_mb, rss_start_mb,
      static_cast<long long>(budget_mb), reopen.seconds * 1000, reopen.store_open_seconds * 1000,
      static_cast<long long>(reopen.open_windows), static_cast<long long>(reopen.pending_commands),
      json_decode_eps, avro_decode_eps);
  return 0;
}

}  // namespace
}  // namespace cdcjoin

int main(int argc, char** argv) { return cdcjoin::Main(argc, argv); }
