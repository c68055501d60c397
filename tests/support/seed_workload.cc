#include "tests/support/seed_workload.h"

#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace cdcjoin::testing {
namespace {

constexpr char kUserSchema[] =
    R"({"type":"struct","name":"azar.User.Envelope","fields":[)"
    R"({"field":"before","type":"struct","optional":true,"fields":[)"
    R"({"field":"id","type":"int64"},{"field":"simpleName","type":"string","optional":true},)"
    R"({"field":"dateCreated","type":"int64","name":"io.debezium.time.Timestamp"}]},)"
    R"({"field":"after","type":"struct","optional":true,"fields":[)"
    R"({"field":"id","type":"int64"},{"field":"simpleName","type":"string","optional":true},)"
    R"({"field":"dateCreated","type":"int64","name":"io.debezium.time.Timestamp"}]},)"
    R"({"field":"op","type":"string"},{"field":"ts_ms","type":"int64","optional":true}]})";

constexpr char kExtSchema[] =
    R"({"type":"struct","name":"azar.UserExtData.Envelope","fields":[)"
    R"({"field":"before","type":"struct","optional":true,"fields":[)"
    R"({"field":"userId","type":"int64"},{"field":"originalName","type":"string","optional":true}]},)"
    R"({"field":"after","type":"struct","optional":true,"fields":[)"
    R"({"field":"userId","type":"int64"},{"field":"originalName","type":"string","optional":true}]},)"
    R"({"field":"op","type":"string"},{"field":"ts_ms","type":"int64","optional":true}]})";

std::string JsonString(const std::optional<std::string>& text) {
  if (!text.has_value()) return "null";
  std::string out = "\"";
  for (char c : *text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// The DATETIME(6) text MariaDB returns for an epoch-millisecond timestamp.
std::string DateTimeText(int64_t epoch_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", absl::FromUnixMillis(epoch_ms),
                          absl::UTCTimeZone());
}

class Generator {
 public:
  explicit Generator(const SeedWorkloadOptions& options)
      : options_(options), rng_(options.seed), ts_(options.start_ts_ms) {}

  std::vector<SeedRecord> Run() {
    // Snapshot: the seed's salted key sequence over both tables.
    int64_t key = 0;
    for (int i = 0; key < options_.users; ++i) {
      const bool repeat = i > 0 && i % 6 == 5;  // 1,2,3,4,5,5,6,...: every fifth key twice.
      if (!repeat) ++key;
      Emit(UserRecord('r', key));
      Emit(ExtRecord('r', key));
    }
    // Live changes until the target count is reached.
    std::uniform_int_distribution<int64_t> pick_user(1, options_.users + options_.users / 10);
    std::bernoulli_distribution is_delete(options_.delete_share);
    std::bernoulli_distribution is_user(0.5);
    while (static_cast<int>(records_.size()) < options_.records) {
      const int64_t user = pick_user(rng_);
      const int source = is_user(rng_) ? 0 : 1;
      if (is_delete(rng_) && live_[source].count(user) > 0) {
        Emit(source == 0 ? UserRecord('d', user) : ExtRecord('d', user));
        Emit(Tombstone(source, user));
        live_[source].erase(user);
        continue;
      }
      const char op = live_[source].count(user) > 0 ? 'u' : 'c';
      Emit(source == 0 ? UserRecord(op, user) : ExtRecord(op, user));
    }
    return std::move(records_);
  }

 private:
  bool Wrapped() { return options_.mix_schema_envelopes && (records_.size() % 2 == 1); }

  std::string Key(int source, int64_t user, bool wrapped) {
    const char* field = source == 0 ? "id" : "userId";
    const std::string payload = absl::StrCat("{\"", field, "\":", user, "}");
    if (!wrapped) return payload;
    return absl::StrCat(R"({"schema":{"type":"struct","fields":[{"field":")", field,
                        R"(","type":"int64"}]},"payload":)", payload, "}");
  }

  std::string Envelope(int source, char op, const std::string& before, const std::string& after,
                       bool wrapped) {
    const std::string payload = absl::StrCat(
        R"({"before":)", before, R"(,"after":)", after, R"(,"source":{"version":"1.9.7.Final",)",
        R"("connector":"mysql","name":"azar","ts_ms":)", ts_, R"(,"db":"azar","table":")",
        source == 0 ? "User" : "UserExtData", R"("},"op":")", std::string(1, op),
        R"(","ts_ms":)", ts_ + 3, "}");
    if (!wrapped) return payload;
    return absl::StrCat(R"({"schema":)", source == 0 ? kUserSchema : kExtSchema,
                        R"(,"payload":)", payload, "}");
  }

  SeedRecord Base(int source, char op, int64_t user) {
    SeedRecord record;
    record.source = source;
    record.op = op;
    record.user_id = user;
    record.partition = static_cast<int32_t>(user % options_.partitions);
    record.ts_ms = ts_;
    return record;
  }

  SeedRecord UserRecord(char op, int64_t user) {
    SeedRecord record = Base(0, op, user);
    const bool wrapped = Wrapped();
    record.key = Key(0, user, wrapped);
    std::optional<std::string> name;
    std::bernoulli_distribution null_name(options_.null_name_share);
    if (op == 'd') {
      name = last_user_name_[user];
    } else if (!null_name(rng_)) {
      static const char* const kNames[] = {"neo", "trinity", "o'brien", "닉네임", "a\\b", "zoë"};
      name = absl::StrCat(kNames[rng_() % 6], "-", user, "-", ++version_);
      last_user_name_[user] = name;
    }
    const int64_t created = options_.start_ts_ms - 86400000LL * (user % 400) + user % 1000;
    record.fields["id"] = absl::StrCat(user);
    record.fields["simpleName"] = name;
    record.fields["dateCreated"] = DateTimeText(created);
    const std::string image = absl::StrCat(R"({"id":)", user, R"(,"simpleName":)",
                                           JsonString(name), R"(,"dateCreated":)", created, "}");
    record.value = op == 'd' ? Envelope(0, op, image, "null", wrapped)
                             : Envelope(0, op, op == 'u' ? image : "null", image, wrapped);
    if (op != 'd') live_[0].insert(user);
    return record;
  }

  SeedRecord ExtRecord(char op, int64_t user) {
    SeedRecord record = Base(1, op, user);
    const bool wrapped = Wrapped();
    record.key = Key(1, user, wrapped);
    const std::optional<std::string> name =
        op == 'd' ? last_ext_name_[user] : absl::StrCat("orig \"", user, "\" v", ++version_);
    if (op != 'd') last_ext_name_[user] = name;
    record.fields["userId"] = absl::StrCat(user);
    record.fields["originalName"] = name;
    const std::string image =
        absl::StrCat(R"({"userId":)", user, R"(,"originalName":)", JsonString(name), "}");
    record.value = op == 'd' ? Envelope(1, op, image, "null", wrapped)
                             : Envelope(1, op, op == 'u' ? image : "null", image, wrapped);
    if (op != 'd') live_[1].insert(user);
    return record;
  }

  SeedRecord Tombstone(int source, int64_t user) {
    SeedRecord record = Base(source, 'T', user);
    record.key = Key(source, user, false);
    record.value = std::nullopt;
    return record;
  }

  SeedRecord Poison(int64_t n) {
    const int source = static_cast<int>(n % 2);
    SeedRecord record = Base(source, 'P', n);
    record.key = Key(source, n, false);
    static const char* const kPoison[] = {
        R"({"op":"c","after":{"id":1,)",                                   // truncated JSON
        R"({"op":"z","after":{"id":1,"userId":1}})",                      // unknown op
        R"({"op":"c","after":{"id":[1],"userId":[1]}})",                  // key of wrong type
        R"({"op":"c","after":{"simpleName":"x","originalName":"x"}})",    // no key field
        R"(["not","an","object"])",                                       // not an envelope
        R"({"op":"c","after":{"id":1,"userId":1,"simpleName":{"a":1},"originalName":[2],)"
        R"("dateCreated":"yesterday"}})",                                 // wrong column types
    };
    record.value = kPoison[n % 6];
    return record;
  }

  void Emit(SeedRecord record) {
    records_.push_back(std::move(record));
    ts_ += options_.ts_step_ms;
    if (options_.poison_every > 0 && records_.size() % options_.poison_every == 0) {
      records_.push_back(Poison(static_cast<int64_t>(records_.size())));
    }
  }

  const SeedWorkloadOptions options_;
  std::mt19937_64 rng_;
  int64_t ts_;
  int64_t version_ = 0;
  std::vector<SeedRecord> records_;
  std::set<int64_t> live_[2];
  std::map<int64_t, std::optional<std::string>> last_user_name_;
  std::map<int64_t, std::optional<std::string>> last_ext_name_;
};

}  // namespace

std::vector<SeedRecord> GenerateSeedWorkload(const SeedWorkloadOptions& options) {
  return Generator(options).Run();
}

std::string SeedConfigText(const std::string& brokers, const std::string& mysql_host,
                           int mysql_port, const std::string& mysql_user,
                           const std::string& database, const std::string& group_id) {
  return absl::StrFormat(R"pb(
    kafka {
      brokers: "%s"
      group_id: "%s"
      dead_letter_topic: "cdcjoin.dlq"
      session_timeout_ms: 6000
      commit_interval_ms: 200
    }
    target {
      table: "Nickname"
      key_columns: "userId"
      database { host: "%s" port: %d user: "%s" database: "%s" }
    }
    sources {
      name: "user"
      topic: "cdc.azar.User"
      key_fields: "id"
      columns { from: "simpleName" to: "maskingName" skip_event_if_null: true shared: true }
      columns { from: "dateCreated" to: "dateCreated" type: TIMESTAMP_MILLIS }
      on_delete: IGNORE
    }
    sources {
      name: "user_ext"
      topic: "cdc.azar.UserExtData"
      key_fields: "userId"
      columns { from: "originalName" to: "currentNickname" }
      columns { from: "originalName" to: "maskingName" insert_only: true shared: true }
      on_delete: CLEAR_COLUMNS
    }
    sink { lanes: 4 batch_rows: 500 linger_ms: 5 }
    mode: DB_UPSERT
    # Tests run daemons side by side: each admin server and metrics endpoint takes a free port.
    admin { listen_address: "127.0.0.1:0" }
    metrics { listen_address: "127.0.0.1:0" }
  )pb",
                         brokers, group_id, mysql_host, mysql_port, mysql_user, database);
}

std::string SeedTargetTableDdl() {
  return "CREATE TABLE Nickname ("
         " userId BIGINT NOT NULL PRIMARY KEY,"
         " maskingName VARCHAR(100) NULL,"
         " currentNickname VARCHAR(100) NULL,"
         " dateCreated DATETIME(6) NULL"
         ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
}

}  // namespace cdcjoin::testing
