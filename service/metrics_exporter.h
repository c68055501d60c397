#ifndef CDCJOIN_SERVICE_METRICS_EXPORTER_H_
#define CDCJOIN_SERVICE_METRICS_EXPORTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/pipeline.h"

namespace cdcjoin {

struct MetricsExporterOptions {
  // host:port of the HTTP listener serving /metrics; port 0 picks a free one (see port()).
  // Loopback by default: the metrics say how far behind the join is, which is nobody else's
  // business unless the operator opens it. Default: "127.0.0.1:9464".
  std::string listen_address = "127.0.0.1:9464";
};

// The options a MetricsConfig describes (listen address, defaults applied by service/config).
MetricsExporterOptions MetricsExporterOptionsFromConfig(const v1::MetricsConfig& config);

// Prometheus metrics of a running Pipeline on their own HTTP port (Debian's prometheus-cpp
// Exposer). Nothing is stored here: every scrape reads the pipeline's counters, partitions and
// lanes at that moment, so the numbers are never stale and there is nothing to keep in sync.
// Metric names and meanings: docs/operations.md, "Metrics".
//
//   absl::StatusOr<std::unique_ptr<MetricsExporter>> metrics =
//       MetricsExporter::Start(options, pipeline.get());
//   LogInfo("metrics at http://", (*metrics)->address(), "/metrics");
class MetricsExporter {
 public:
  // `pipeline` must outlive the exporter. Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const MetricsExporterOptions& options, const Pipeline* pipeline);
  // Stops the listener (scrapes in flight finish first).
  virtual ~MetricsExporter() = default;

  // The bound port (the real one when the options asked for port 0).
  virtual int port() const = 0;
  // host:port with the bound port.
  virtual std::string address() const = 0;
};

// The exposition text of one scrape (what GET /metrics returns), for tests and debugging.
std::string RenderMetrics(const Pipeline& pipeline);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_METRICS_EXPORTER_H_
