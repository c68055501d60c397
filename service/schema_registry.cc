#include "service/schema_registry.h"

// simdjson through error codes only (the BUILD file sets SIMDJSON_EXCEPTIONS=0).
#include <curl/curl.h>
#include <simdjson.h>

#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/config.h"

namespace cdcjoin {
namespace {

size_t AppendBody(char* data, size_t size, size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

// Reads GET /schemas/ids/{id}'s answer: {"schema": "...", "schemaType": "AVRO",
// "references": [...]}.
absl::StatusOr<std::shared_ptr<const RegisteredSchema>> ParseAnswer(int32_t id,
                                                                    const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto invalid = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema registry: the answer for id ", id, " is no schema: ", why));
  };
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return invalid("not JSON");
  auto schema = std::make_shared<RegisteredSchema>();
  schema->id = id;
  std::string_view text;
  if (root["schema"].get_string().get(text) != simdjson::SUCCESS) return invalid("no \"schema\"");
  schema->text.assign(text.data(), text.size());
  std::string_view type = "AVRO";
  if (root["schemaType"].get_string().get(type) != simdjson::SUCCESS) type = "AVRO";
  schema->schema_type.assign(type.data(), type.size());
  simdjson::dom::array references;
  schema->has_references = root["references"].get_array().get(references) == simdjson::SUCCESS &&
                           references.size() > 0;
  return std::shared_ptr<const RegisteredSchema>(std::move(schema));
}

}  // namespace

absl::StatusOr<std::shared_ptr<SchemaRegistry>> SchemaRegistry::ForConfig(
    const v1::SchemaRegistryConfig& config) {
  Options options;
  options.url = config.url();
  while (absl::EndsWith(options.url, "/")) options.url.pop_back();
  absl::StatusOr<std::string> auth = ResolveSecret(
      "schema_registry.basic_auth", config.basic_auth_file(), config.basic_auth_env());
  if (!auth.ok()) return auth.status();
  if (!auth->empty() && !absl::StrContains(*auth, ":")) {
    return absl::InvalidArgumentError(
        "schema_registry.basic_auth: the secret must be user:password");
  }
  options.basic_auth = *std::move(auth);
  options.ca_file = config.ca_file();
  if (config.timeout_ms() > 0) options.timeout = absl::Milliseconds(config.timeout_ms());
  return std::make_shared<SchemaRegistry>(std::move(options));
}

SchemaRegistry::SchemaRegistry(Options options) : options_(std::move(options)) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

int64_t SchemaRegistry::fetches() const {
  absl::MutexLock lock(&mu_);
  return fetches_;
}

absl::StatusOr<std::shared_ptr<const RegisteredSchema>> SchemaRegistry::Get(int32_t id) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = schemas_.find(id); it != schemas_.end()) return it->second;
    if (auto it = failures_.find(id); it != failures_.end() && absl::Now() < it->second.retry_at) {
      return it->second.status;
    }
    ++fetches_;
  }
  // Outside the lock: other ids keep being served while one is fetched.
  absl::StatusOr<std::shared_ptr<const RegisteredSchema>> fetched = Fetch(id);
  absl::MutexLock lock(&mu_);
  if (fetched.ok()) {
    failures_.erase(id);
    return schemas_.emplace(id, *fetched).first->second;
  }
  if (fetched.status().code() == absl::StatusCode::kUnavailable) {
    failures_[id] = Failure{fetched.status(), absl::Now() + options_.retry_after};
  }
  return fetched.status();
}

absl::StatusOr<std::shared_ptr<const RegisteredSchema>> SchemaRegistry::Fetch(int32_t id) {
  const std::string url = absl::StrCat(options_.url, "/schemas/ids/", id);
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (curl == nullptr) return absl::UnavailableError("schema registry: curl_easy_init failed");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, "Accept: application/vnd.schemaregistry.v1+json, "
                                 "application/json"),
      curl_slist_free_all);
  std::string body;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // Timeouts without SIGALRM: other threads run.
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!options_.basic_auth.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERPWD, options_.basic_auth.c_str());
  }
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  const CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("schema registry: GET ", url, ": ",
                                               error[0] != 0 ? error : curl_easy_strerror(code)));
  }
  long http = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
  if (http == 404) {
    return absl::NotFoundError(
        absl::StrCat("schema registry: GET ", url, ": 404, no schema has id ", id));
  }
  if (http == 401 || http == 403) {
    // Unavailable, not the record's fault: the partition holds until the credentials (or the
    // registry's users) are put right, and nothing is dead-lettered meanwhile.
    return absl::UnavailableError(absl::StrCat(
        "schema registry: GET ", url, ": HTTP ", http, ", ",
        options_.basic_auth.empty()
            ? "the registry wants credentials: set schema_registry.basic_auth_file or "
              "basic_auth_env"
            : "the registry refused the user of schema_registry.basic_auth_file/basic_auth_env",
        body.empty() ? "" : ": ", body.substr(0, 200)));
  }
  if (http != 200) {
    return absl::UnavailableError(absl::StrCat("schema registry: GET ", url, ": HTTP ", http, " ",
                                               body.substr(0, 200)));
  }
  return ParseAnswer(id, body);
}

}  // namespace cdcjoin
