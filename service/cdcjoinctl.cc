// cdcjoinctl: the admin client of cdcjoind (proto/cdcjoin/v1/admin.proto).
//
//   cdcjoinctl status [--json]
//   cdcjoinctl watch [--interval_ms=1000] [--until_caught_up]
//   cdcjoinctl switch-mode db|windowed
//   cdcjoinctl pause | resume
//   cdcjoinctl config [--json]
//   cdcjoinctl dead-letter --topic=T --partition=P --offset=O [--note=WHY]
//
// Exit codes are part of the interface (scripts rely on them): see kHelp.

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "proto/cdcjoin/v1/admin.grpc.pb.h"
#include "service/status_format.h"
#include "service/version.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "The daemon's admin address.");
ABSL_FLAG(std::string, token_file, "",
          "A file whose first line is the bearer token (admin.token_file).");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA that signed the server certificate: turns TLS on.");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS), with --tls_key.");
ABSL_FLAG(std::string, tls_key, "", "PEM key of --tls_cert.");
ABSL_FLAG(std::string, tls_server_name, "",
          "The name to check the server certificate against (default: the host of --address).");
ABSL_FLAG(bool, json, false, "status, watch, config: print protobuf JSON instead of text.");
ABSL_FLAG(int32_t, interval_ms, 1000, "watch: update interval, 100..60000.");
ABSL_FLAG(bool, until_caught_up, false,
          "watch: exit 0 once the daemon is RUNNING and every assigned partition has lag 0.");
ABSL_FLAG(std::string, topic, "", "dead-letter: the source topic of the held event.");
ABSL_FLAG(int32_t, partition, -1, "dead-letter: its partition.");
ABSL_FLAG(int64_t, offset, -1, "dead-letter: its offset.");
ABSL_FLAG(std::string, note, "", "dead-letter: why, for the dead letter and the daemon's log.");
ABSL_FLAG(int32_t, timeout_ms, 0,
          "Deadline of one call; 0: the command's default (10000, switch-mode 120000).");

namespace cdcjoin {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitOther = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitUnauthenticated = 4;
constexpr int kExitRefused = 5;

constexpr char kHelp[] = R"(cdcjoinctl: the admin client of cdcjoind.

Usage: cdcjoinctl [flags] COMMAND [ARGS]

Commands:
  status                    Mode, state, per-partition offsets and lag, counters, rates, sink
                            latency, lanes and the last error, as a table.
  watch                     A live view: a progress bar per source (lag going to zero), rates
                            and state; redrawn in place on a terminal, one line per update
                            otherwise.
  switch-mode db|windowed   Switch the joiner (DB_UPSERT or WINDOWED) at runtime; prints how
                            long consumption was paused. Already in that mode: says so, exit 0.
  pause                     Stop consuming (pending work still applies and commits).
  resume                    Resume consuming.
  config                    The running configuration (defaults applied, secrets redacted).
  dead-letter --topic=T --partition=P --offset=O [--note=WHY]
                            When a sink lane holds a batch on an error nobody classified (its
                            last error in status), take the row of that event out: it goes to
                            the dead-letter topic with reason "operator" and the rest goes on.
                            Needs the token when one is configured; the daemon logs it.

Flags:
  --address=HOST:PORT       The daemon's admin address. Default: 127.0.0.1:50051.
  --token_file=PATH         A file whose first line is the bearer token (admin.token_file).
  --tls_ca=PATH             PEM CA that signed the server certificate: turns TLS on.
  --tls_cert=PATH           PEM client certificate (mutual TLS), with --tls_key.
  --tls_key=PATH            PEM key of --tls_cert.
  --tls_server_name=NAME    The name to check the server certificate against (default: the
                            host of --address).
  --json                    status, watch, config: print protobuf JSON (one object per line
                            for watch) instead of text.
  --interval_ms=N           watch: update interval, 100..60000. Default: 1000.
  --until_caught_up         watch: exit 0 once the daemon is RUNNING and every assigned
                            partition has lag 0.
  --topic, --partition, --offset, --note
                            dead-letter: the held event, and why.
  --timeout_ms=N            Deadline of one call. Default: 10000 (switch-mode: 120000).
  --help                    This text.

Exit codes:
  0  ok
  1  other error
  2  usage error (unknown command or flag, bad argument)
  3  daemon unreachable (UNAVAILABLE, DEADLINE_EXCEEDED)
  4  unauthenticated (UNAUTHENTICATED, PERMISSION_DENIED): missing or wrong --token_file
  5  refused by the daemon (FAILED_PRECONDITION, ALREADY_EXISTS, INVALID_ARGUMENT, ABORTED,
     OUT_OF_RANGE, NOT_FOUND), e.g. a mode switch while another one runs, or a dead-letter of
     an event nothing holds on
)";

// The flags, read once after parsing.
struct Flags {
  std::string address;
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  bool json = false;
  int interval_ms = 0;
  bool until_caught_up = false;
  int timeout_ms = 0;  // <= 0: the command's default.

  static Flags FromCommandLine() {
    Flags flags;
    flags.address = absl::GetFlag(FLAGS_address);
    flags.token_file = absl::GetFlag(FLAGS_token_file);
    flags.tls_ca = absl::GetFlag(FLAGS_tls_ca);
    flags.tls_cert = absl::GetFlag(FLAGS_tls_cert);
    flags.tls_key = absl::GetFlag(FLAGS_tls_key);
    flags.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
    flags.json = absl::GetFlag(FLAGS_json);
    flags.interval_ms = absl::GetFlag(FLAGS_interval_ms);
    flags.until_caught_up = absl::GetFlag(FLAGS_until_caught_up);
    flags.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
    return flags;
  }
};

int Usage(const std::string& problem) {
  std::fprintf(stderr, "cdcjoinctl: %s\nRun cdcjoinctl --help for usage.\n", problem.c_str());
  return kExitUsage;
}

// absl::ParseCommandLine exits with status 1 on a flag it does not know or cannot parse, and
// answers --help with its own flag list; cdcjoinctl promises exit code 2 for usage errors and
// prints kHelp. So every flag is first looked up, and its value tried, through absl's
// reflection API. Returns a usage problem, or "" when ParseCommandLine will accept the line.
std::string CheckFlags(int argc, char** argv, bool* help) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;  // The rest is positional.
    if (arg.size() < 2 || arg[0] != '-') continue;
    absl::ConsumePrefix(&arg, "-");
    absl::ConsumePrefix(&arg, "-");  // absl takes -name as --name.
    const size_t eq = arg.find('=');
    absl::string_view name = arg.substr(0, eq);
    if (name == "help" || name == "h") {
      *help = true;
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && eq == absl::string_view::npos && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));  // --nojson
      if (flag != nullptr && flag->IsOfType<bool>()) continue;
      flag = nullptr;
    }
    if (flag == nullptr) return absl::StrCat("unknown flag --", name);
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (flag->IsOfType<bool>()) {
      continue;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::StrCat("--", name, " needs a value");
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) return absl::StrCat("--", name, ": ", error);
  }
  return "";
}

int ExitCodeFor(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnreachable;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitUnauthenticated;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::NOT_FOUND:
      return kExitRefused;
    default:
      return kExitOther;
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    default:
      return "ERROR";
  }
}

int Fail(const Flags& flags, const std::string& what, const grpc::Status& status) {
  std::string hint;
  const int code = ExitCodeFor(status);
  if (code == kExitUnreachable) hint = absl::StrCat(" (is cdcjoind running at ", flags.address, "?)");
  if (code == kExitUnauthenticated) hint = " (check --token_file)";
  std::fprintf(stderr, "cdcjoinctl: %s: %s: %s%s\n", what.c_str(), CodeName(status.error_code()),
               status.error_message().c_str(), hint.c_str());
  return code;
}

bool ReadFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *contents = buffer.str();
  return true;
}

class Client {
 public:
  // Returns a usage problem, or "" when the channel is ready to use.
  std::string Init(const Flags& flags) {
    flags_ = flags;
    if (!flags.token_file.empty()) {
      std::string contents;
      if (!ReadFile(flags.token_file, &contents)) {
        return absl::StrCat("--token_file: cannot read ", flags.token_file);
      }
      token_ = std::string(absl::StripAsciiWhitespace(contents.substr(0, contents.find('\n'))));
      if (token_.empty()) return absl::StrCat("--token_file: ", flags.token_file, " is empty");
    }
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    grpc::ChannelArguments args;
    if (!flags.tls_ca.empty() || !flags.tls_cert.empty()) {
      grpc::SslCredentialsOptions ssl;
      if (!flags.tls_ca.empty() && !ReadFile(flags.tls_ca, &ssl.pem_root_certs)) {
        return absl::StrCat("--tls_ca: cannot read ", flags.tls_ca);
      }
      if (flags.tls_cert.empty() != flags.tls_key.empty()) {
        return "--tls_cert and --tls_key go together";
      }
      if (!flags.tls_cert.empty()) {
        if (!ReadFile(flags.tls_cert, &ssl.pem_cert_chain)) {
          return absl::StrCat("--tls_cert: cannot read ", flags.tls_cert);
        }
        if (!ReadFile(flags.tls_key, &ssl.pem_private_key)) {
          return absl::StrCat("--tls_key: cannot read ", flags.tls_key);
        }
      }
      if (!flags.tls_server_name.empty()) args.SetSslTargetNameOverride(flags.tls_server_name);
      credentials = grpc::SslCredentials(ssl);
    } else {
      credentials = grpc::InsecureChannelCredentials();
    }
    stub_ = v1::Admin::NewStub(grpc::CreateCustomChannel(flags.address, credentials, args));
    return "";
  }

  std::unique_ptr<grpc::ClientContext> Context(int default_timeout_ms) const {
    auto context = std::make_unique<grpc::ClientContext>();
    const int timeout_ms = flags_.timeout_ms > 0 ? flags_.timeout_ms : default_timeout_ms;
    if (timeout_ms > 0) {
      context->set_deadline(std::chrono::system_clock::now() +
                            std::chrono::milliseconds(timeout_ms));
    }
    if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
    return context;
  }

  v1::Admin::Stub* stub() { return stub_.get(); }

 private:
  Flags flags_;
  std::string token_;
  std::unique_ptr<v1::Admin::Stub> stub_;
};

std::string Json(const google::protobuf::Message& message, bool multi_line) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = multi_line;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!multi_line || json.empty() || json.back() != '\n') json += "\n";
  return json;
}

int Status(Client& client, const Flags& flags) {
  v1::Status status;
  grpc::Status rpc = client.stub()->GetStatus(client.Context(10000).get(), {}, &status);
  if (!rpc.ok()) return Fail(flags, "status", rpc);
  std::fputs(flags.json ? Json(status, true).c_str() : FormatStatus(status, flags.address).c_str(),
             stdout);
  return kExitOk;
}

int Watch(Client& client, const Flags& flags) {
  v1::WatchStatusRequest request;
  request.set_interval_ms(flags.interval_ms);
  // A stream has no overall deadline: it runs until caught up or interrupted.
  auto context = client.Context(flags.timeout_ms > 0 ? flags.timeout_ms : 0);
  if (flags.timeout_ms <= 0) context->set_deadline(std::chrono::system_clock::time_point::max());
  auto reader = client.stub()->WatchStatus(context.get(), request);
  const bool terminal = isatty(STDOUT_FILENO) == 1 && !flags.json;
  v1::Status status;
  bool first = true;
  while (reader->Read(&status)) {
    if (flags.json) {
      std::fputs(Json(status, false).c_str(), stdout);
    } else if (terminal) {
      // Home, clear to the end of the screen, redraw.
      std::fputs(absl::StrCat(first ? "\x1b[2J" : "", "\x1b[H\x1b[J",
                              WatchFrame(status, flags.address))
                     .c_str(),
                 stdout);
    } else {
      std::fputs(WatchLine(status).c_str(), stdout);
    }
    std::fflush(stdout);
    first = false;
    if (flags.until_caught_up && CaughtUp(status)) {
      context->TryCancel();
      while (reader->Read(&status)) {
      }
      (void)reader->Finish();
      if (!flags.json) std::printf("caught up: lag 0 on %d partitions\n", status.partitions_size());
      return kExitOk;
    }
  }
  grpc::Status finished = reader->Finish();
  if (!finished.ok()) return Fail(flags, "watch", finished);
  return kExitOk;
}

int SwitchMode(Client& client, const Flags& flags, const std::vector<std::string>& args) {
  if (args.size() != 2) return Usage("switch-mode needs one argument: db or windowed");
  v1::SwitchModeRequest request;
  const std::string target = absl::AsciiStrToLower(args[1]);
  if (target == "db" || target == "db_upsert") {
    request.set_mode(v1::DB_UPSERT);
  } else if (target == "windowed") {
    request.set_mode(v1::WINDOWED);
  } else {
    return Usage(absl::StrCat("switch-mode: '", args[1], "' is neither db nor windowed"));
  }
  v1::SwitchModeResponse response;
  const absl::Time begin = absl::Now();
  grpc::Status rpc = client.stub()->SwitchMode(client.Context(120000).get(), request, &response);
  if (!rpc.ok()) return Fail(flags, "switch-mode", rpc);
  if (flags.json) {
    std::fputs(Json(response, false).c_str(), stdout);
  } else if (response.changed()) {
    std::printf("switched %s -> %s: consumption paused %.1f ms (call took %.1f ms)\n",
                v1::JoinMode_Name(response.from()).c_str(), v1::JoinMode_Name(response.to()).c_str(),
                response.paused_ms(), absl::ToDoubleMilliseconds(absl::Now() - begin));
  } else {
    std::printf("already in %s mode: not changed\n", v1::JoinMode_Name(response.to()).c_str());
  }
  return kExitOk;
}

int PauseOrResume(Client& client, const Flags& flags, bool pause) {
  grpc::Status rpc;
  v1::State state = v1::STATE_UNSPECIFIED;
  if (pause) {
    v1::PauseResponse response;
    rpc = client.stub()->Pause(client.Context(10000).get(), {}, &response);
    state = response.state();
  } else {
    v1::ResumeResponse response;
    rpc = client.stub()->Resume(client.Context(10000).get(), {}, &response);
    state = response.state();
  }
  if (!rpc.ok()) return Fail(flags, pause ? "pause" : "resume", rpc);
  // The poll loop applies the request within one poll (~100 ms): wait to report the new state.
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while ((state == v1::PAUSED) != pause && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    v1::Status status;
    if (!client.stub()->GetStatus(client.Context(2000).get(), {}, &status).ok()) break;
    state = status.state();
  }
  std::printf("%s (state %s)\n", pause ? "paused" : "resumed", StateName(state).c_str());
  return kExitOk;
}

int Config(Client& client, const Flags& flags) {
  v1::Config config;
  grpc::Status rpc = client.stub()->GetConfig(client.Context(10000).get(), {}, &config);
  if (!rpc.ok()) return Fail(flags, "config", rpc);
  if (flags.json) {
    std::fputs(Json(config, true).c_str(), stdout);
  } else {
    std::string text;
    google::protobuf::TextFormat::PrintToString(config, &text);
    std::fputs(text.c_str(), stdout);
  }
  return kExitOk;
}

int DeadLetter(Client& client, const Flags& flags) {
  v1::DeadLetterRequest request;
  request.set_topic(absl::GetFlag(FLAGS_topic));
  request.set_partition(absl::GetFlag(FLAGS_partition));
  request.set_offset(absl::GetFlag(FLAGS_offset));
  request.set_note(absl::GetFlag(FLAGS_note));
  if (request.topic().empty() || request.partition() < 0 || request.offset() < 0) {
    return Usage("dead-letter needs --topic, --partition and --offset of the held event");
  }
  v1::DeadLetterResponse response;
  grpc::Status rpc = client.stub()->DeadLetter(client.Context(10000).get(), request, &response);
  if (!rpc.ok()) return Fail(flags, "dead-letter", rpc);
  std::printf("%s[%d]@%lld: taken out of the held batch; it goes to the dead-letter topic "
              "(reason operator) at the lane's next attempt\n",
              request.topic().c_str(), request.partition(),
              static_cast<long long>(request.offset()));
  return kExitOk;
}

int Run(int argc, char** argv) {
  bool help = false;
  if (std::string problem = CheckFlags(argc, argv, &help); !problem.empty()) {
    return Usage(problem);
  }
  std::vector<std::string> args;
  if (!help) {
    absl::SetProgramUsageMessage(kHelp);
    const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
    args.assign(positional.begin() + 1, positional.end());  // [0] is the program.
  }
  if (help || (!args.empty() && args[0] == "help")) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  const Flags flags = Flags::FromCommandLine();
  if (args.empty()) return Usage("no command (status, watch, switch-mode, pause, resume, config, dead-letter)");
  const std::string& command = args[0];
  if (command == "version") {
    std::printf("cdcjoinctl %s\n", kVersion);
    return kExitOk;
  }
  if (flags.interval_ms < 100 || flags.interval_ms > 60000) {
    return Usage(absl::StrCat("--interval_ms: must be in [100, 60000], got ", flags.interval_ms));
  }
  const bool no_args = command != "switch-mode";
  if (no_args && args.size() > 1) {
    return Usage(absl::StrCat(command, ": unexpected argument '", args[1], "'"));
  }
  Client client;
  if (std::string problem = client.Init(flags); !problem.empty()) return Usage(problem);
  if (command == "status") return Status(client, flags);
  if (command == "watch") return Watch(client, flags);
  if (command == "switch-mode") return SwitchMode(client, flags, args);
  if (command == "pause") return PauseOrResume(client, flags, true);
  if (command == "resume") return PauseOrResume(client, flags, false);
  if (command == "config") return Config(client, flags);
  if (command == "dead-letter") return DeadLetter(client, flags);
  return Usage(absl::StrCat("unknown command '", command, "'"));
}

}  // namespace
}  // namespace cdcjoin

int main(int argc, char** argv) { return cdcjoin::Run(argc, argv); }
