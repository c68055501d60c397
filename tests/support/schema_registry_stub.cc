#include "tests/support/schema_registry_stub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cdcjoin {
namespace {

// The schema as a JSON string literal.
std::string Quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

SchemaRegistryStub::SchemaRegistryStub() { Listen(); }

SchemaRegistryStub::~SchemaRegistryStub() { Stop(); }

void SchemaRegistryStub::Listen() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port_));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 16) != 0) {
    std::perror("schema registry stub: bind/listen");
    std::abort();
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  listener_.store(fd);
  thread_ = std::thread([this, fd] { AcceptLoop(fd); });
}

void SchemaRegistryStub::Stop() {
  const int fd = listener_.exchange(-1);
  if (fd < 0) return;
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  if (thread_.joinable()) thread_.join();
}

void SchemaRegistryStub::Restart() {
  if (listener_.load() < 0) Listen();
}

std::string SchemaRegistryStub::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void SchemaRegistryStub::Serve(int32_t id, const std::string& schema) {
  absl::MutexLock lock(&mu_);
  schemas_[id] = schema;
}

void SchemaRegistryStub::SetFailing(bool failing) {
  absl::MutexLock lock(&mu_);
  failing_ = failing;
}

void SchemaRegistryStub::RequireBasicAuth(const std::string& user_colon_password) {
  absl::MutexLock lock(&mu_);
  required_authorization_ =
      user_colon_password.empty()
          ? ""
          : absl::StrCat("\r\nAuthorization: Basic ", absl::Base64Escape(user_colon_password),
                         "\r\n");
}

int SchemaRegistryStub::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void SchemaRegistryStub::AcceptLoop(int listener) {
  while (listener_.load() == listener) {
    pollfd wait{listener, POLLIN, 0};
    if (::poll(&wait, 1, 100) <= 0) continue;
    const int connection = ::accept(listener, nullptr, nullptr);
    if (connection < 0) continue;
    Answer(connection);
    ::close(connection);
  }
}

void SchemaRegistryStub::Answer(int connection) {
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::read(connection, buffer, sizeof(buffer));
    if (n <= 0) return;
    request.append(buffer, static_cast<size_t>(n));
  }
  int status = 404;
  std::string body = R"({"error_code":40403,"message":"Schema not found"})";
  {
    absl::MutexLock lock(&mu_);
    ++requests_;
    constexpr char kPrefix[] = "GET /schemas/ids/";
    int32_t id = 0;
    if (failing_) {
      status = 503;
      body = R"({"error_code":50301,"message":"unavailable"})";
    } else if (!required_authorization_.empty() &&
               !absl::StrContains(request, required_authorization_)) {
      status = 401;
      body = R"({"error_code":401,"message":"Unauthorized"})";
    } else if (request.rfind(kPrefix, 0) == 0 &&
               absl::SimpleAtoi(request.substr(sizeof(kPrefix) - 1,
                                               request.find(' ', sizeof(kPrefix) - 1) -
                                                   (sizeof(kPrefix) - 1)),
                                &id)) {
      if (auto it = schemas_.find(id); it != schemas_.end()) {
        status = 200;
        body = absl::StrCat(R"({"schema":)", Quoted(it->second), R"(,"references":[]})");
      }
    }
  }
  WriteAll(connection,
           absl::StrCat("HTTP/1.1 ", status, status == 200 ? " OK" : " Error",
                        "\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
                        "Content-Length: ",
                        body.size(), "\r\nConnection: close\r\n\r\n", body));
}

}  // namespace cdcjoin
