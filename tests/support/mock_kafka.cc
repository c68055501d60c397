// A librdkafka mock cluster in a process of its own, so a test or benchmark can kill and restart
// cdcjoind against a cluster that outlives it.
//
//   mock_kafka --bootstrap_file=/tmp/bootstrap --topics=cdc.User:8,cdc.UserExtData:8
//
// Runs until SIGTERM or SIGINT.

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "service/embedded_kafka.h"

ABSL_FLAG(std::string, bootstrap_file, "", "Where to write the bootstrap address (required).");
ABSL_FLAG(std::string, topics, "", "Topics to create: name:partitions,name:partitions.");
ABSL_FLAG(int32_t, brokers, 3, "Number of mock brokers.");

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<cdcjoin::EmbeddedKafka::TopicSpec> topics;
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_topics), ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(spec, ':');
    cdcjoin::EmbeddedKafka::TopicSpec topic;
    topic.name = parts[0];
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &topic.partitions) ||
        topic.partitions <= 0) {
      std::fprintf(stderr, "mock_kafka: --topics: '%s' is not name:partitions\n",
                   std::string(spec).c_str());
      return 2;
    }
    topics.push_back(topic);
  }
  auto cluster = cdcjoin::EmbeddedKafka::Start(absl::GetFlag(FLAGS_brokers), topics);
  if (!cluster.ok()) {
    std::fprintf(stderr, "mock_kafka: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  std::printf("mock_kafka: listening at %s\n", bootstrap.c_str());
  std::fflush(stdout);
  if (!absl::GetFlag(FLAGS_bootstrap_file).empty()) {
    if (auto s = cdcjoin::WriteFileAtomically(absl::GetFlag(FLAGS_bootstrap_file), bootstrap + "\n");
        !s.ok()) {
      std::fprintf(stderr, "mock_kafka: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  while (g_stop == 0) absl::SleepFor(absl::Milliseconds(100));
  return 0;
}
