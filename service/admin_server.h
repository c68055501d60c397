#ifndef CDCJOIN_SERVICE_ADMIN_SERVER_H_
#define CDCJOIN_SERVICE_ADMIN_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/cdcjoin/v1/admin.pb.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/pipeline.h"

namespace cdcjoin {

struct AdminServerOptions {
  // host:port to listen on; port 0 picks a free one (see AdminServer::port()).
  // Default: "127.0.0.1:50051".
  std::string listen_address = "127.0.0.1:50051";
  // The bearer token mutating calls need (`authorization: Bearer <token>`). Empty: no call needs
  // one. Default: empty. Never logged.
  std::string token;
  // With a token: whether read calls (GetStatus, WatchStatus, GetConfig) work without it
  // (AdminConfig.require_token_for_reads inverted). Default: true.
  bool allow_unauthenticated_reads = true;
  // A plaintext port serving grpc.health.v1 only, for probes that cannot speak TLS.
  // Default: "" (none).
  std::string health_listen_address;
  // What is unsafe about this configuration (admin.insecure), for the log and status.
  // Default: none.
  std::vector<std::string> warnings;
  // PEM contents (not paths). A certificate and key turn TLS on; a client CA additionally
  // requires and verifies client certificates (mutual TLS). Default: empty (plaintext).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_client_ca_pem;
  // How often the health status follows the pipeline. Default: 500 ms.
  absl::Duration health_interval = absl::Milliseconds(500);
  // How often counters are sampled for the rates. Default: 1 s.
  absl::Duration sample_interval = absl::Seconds(1);
  // The span the rates are computed over. Default: 10 s.
  absl::Duration rate_window = absl::Seconds(10);
};

// The options an AdminConfig describes: reads the token (token_file's first line or $token_env)
// and the TLS files. Errors name the field ("admin.token_file: cannot read /x").
absl::StatusOr<AdminServerOptions> AdminServerOptionsFromConfig(const v1::AdminConfig& config);

// The daemon's gRPC control plane: the cdcjoin.v1.Admin service (proto/cdcjoin/v1/admin.proto)
// over a Pipeline, grpc.health.v1 (SERVING once partitions are assigned and the sink is not
// degraded) and server reflection.
//
//   absl::StatusOr<std::unique_ptr<AdminServer>> admin = AdminServer::Start(options, pipeline);
//   LogInfo("admin listening on ", (*admin)->address());
//   ...
//   (*admin)->Shutdown();  // before pipeline->Stop()
class AdminServer {
 public:
  // `pipeline` must outlive the server (or at least its Shutdown()).
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(AdminServerOptions options,
                                                            Pipeline* pipeline);
  virtual ~AdminServer() = default;

  // The bound port (the real one when the options asked for port 0).
  virtual int port() const = 0;
  // The health port's host:port with the bound port; "" without one.
  virtual std::string health_address() const = 0;
  // host:port with the bound port.
  virtual std::string address() const = 0;

  // The Status that GetStatus returns right now.
  virtual v1::Status Snapshot() const = 0;

  // Sets health to NOT_SERVING, ends open WatchStatus streams, waits up to `grace` for calls in
  // flight (a running SwitchMode is waited for), then stops. Idempotent; the destructor calls it.
  virtual void Shutdown(absl::Duration grace = absl::Seconds(2)) = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_ADMIN_SERVER_H_
