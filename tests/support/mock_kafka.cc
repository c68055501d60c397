// A librdkafka mock cluster in a process of its own, so a test or benchmark can kill and restart
// cdcjoind against a cluster that outlives it.
//
//   mock_kafka --bootstrap_file=/tmp/bootstrap --topics=cdc.User:8,cdc.UserExtData:8
//
// Runs until SIGTERM or SIGINT. With --control_file, a test injects faults by writing one command
// to that file; the command is carried out and the file removed:
//   down | up                        every broker stops / starts answering
//   rtt MS                           every broker answers MS later
//   fail API_KEY COUNT ERROR_CODE    the next COUNT requests of that API fail with that error
//   clear API_KEY                    the failures still queued for that API are forgotten

#include <csignal>
#include <cstdio>
#include <fstream>
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
ABSL_FLAG(std::string, control_file, "", "A file the test writes fault commands to (see above).");

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// Carries out one control command; false when it is not one.
bool Control(cdcjoin::EmbeddedKafka& cluster, const std::string& command) {
  std::vector<std::string> words = absl::StrSplit(command, ' ', absl::SkipWhitespace());
  int a = 0, b = 0, c = 0;
  if (words.size() == 1 && words[0] == "down") {
    cluster.SetAllBrokersDown(true);
  } else if (words.size() == 1 && words[0] == "up") {
    cluster.SetAllBrokersDown(false);
  } else if (words.size() == 2 && words[0] == "rtt" && absl::SimpleAtoi(words[1], &a)) {
    cluster.SetRtt(absl::Milliseconds(a));
  } else if (words.size() == 4 && words[0] == "fail" && absl::SimpleAtoi(words[1], &a) &&
             absl::SimpleAtoi(words[2], &b) && absl::SimpleAtoi(words[3], &c)) {
    cluster.FailRequests(a, b, c);
  } else if (words.size() == 2 && words[0] == "clear" && absl::SimpleAtoi(words[1], &a)) {
    cluster.ClearFailures(a);
  } else {
    return false;
  }
  return true;
}
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
  const std::string control_file = absl::GetFlag(FLAGS_control_file);
  while (g_stop == 0) {
    absl::SleepFor(absl::Milliseconds(20));
    if (control_file.empty()) continue;
    std::ifstream in(control_file);
    if (!in) continue;
    std::string command;
    std::getline(in, command);
    const bool known = Control(**cluster, command);
    std::printf("mock_kafka: %s: %s\n", known ? "control" : "unknown control command",
                command.c_str());
    std::fflush(stdout);
    std::remove(control_file.c_str());
  }
  return 0;
}
