#include "service/metrics_exporter.h"

#include <exception>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "service/version.h"

namespace cdcjoin {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Sink latency buckets: the LatencyHistogram's power-of-two µs buckets from 2^6 µs (64 µs) to
// 2^25 µs (~34 s); the ones below and above fold into their neighbours (the counts stay
// cumulative, so nothing is lost, only resolution at the extremes nobody alerts on).
constexpr int kFirstBucket = 6;
constexpr int kLastBucket = 25;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

ClientMetric Value(MetricType type, double value,
                   std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

MetricFamily Single(std::string name, std::string help, MetricType type, double value) {
  MetricFamily family = Family(std::move(name), std::move(help), type);
  family.metric.push_back(Value(type, value));
  return family;
}

// Reads the pipeline on every scrape: counters, partitions, lanes, mode, state.
class PipelineCollector : public prometheus::Collectable {
 public:
  explicit PipelineCollector(const Pipeline* pipeline) : pipeline_(pipeline) {}

  std::vector<MetricFamily> Collect() const override {
    const Pipeline& pipeline = *pipeline_;
    const PipelineStats& stats = pipeline.stats();
    std::vector<MetricFamily> families;
    constexpr MetricType kCounter = MetricType::Counter;
    constexpr MetricType kGauge = MetricType::Gauge;

    MetricFamily events = Family("cdcjoin_events_total",
                                 "Change events decoded from the source topics, by Debezium op.",
                                 kCounter);
    for (const auto& [op, value] : {std::pair<const char*, int64_t>{"create", stats.events_create},
                                    {"update", stats.events_update},
                                    {"read", stats.events_read},
                                    {"delete", stats.events_delete}}) {
      events.metric.push_back(Value(kCounter, value, {{"op", op}}));
    }
    families.push_back(std::move(events));

    MetricFamily skipped = Family(
        "cdcjoin_records_skipped_total",
        "Records consumed that change nothing, by reason: tombstone (null value), op (Debezium "
        "t/m), null_field (a skip_event_if_null column was null).",
        kCounter);
    skipped.metric.push_back(Value(kCounter, stats.tombstones, {{"reason", "tombstone"}}));
    skipped.metric.push_back(Value(kCounter, stats.skipped_ops, {{"reason", "op"}}));
    skipped.metric.push_back(Value(kCounter, stats.skipped_nulls, {{"reason", "null_field"}}));
    families.push_back(std::move(skipped));

    families.push_back(Single("cdcjoin_records_consumed_total",
                              "Every record consumed from the source topics, whatever became of it.",
                              kCounter, stats.EventsConsumed()));
    families.push_back(Single("cdcjoin_events_ignored_by_policy_total",
                              "Delete events (counted in cdcjoin_events_total) of a source whose "
                              "on_delete is IGNORE: by design they change nothing.",
                              kCounter, stats.ignored_by_policy));
    MetricFamily dead_lettered = Family(
        "cdcjoin_dead_lettered_total",
        "Records sent to the dead-letter topic, by reason (the cdcjoin.reason header): malformed "
        "(the decoder refused the record), type-mismatch (a value its target column cannot "
        "hold), foreign-table (an event of another table than the source's), row-rejected (the "
        "database refused the row), operator (cdcjoinctl dead-letter).",
        kCounter);
    for (DeadLetterReason reason : kDeadLetterReasons) {
      dead_lettered.metric.push_back(
          Value(kCounter, stats.dead_lettered_by_reason[static_cast<int>(reason)],
                {{"reason", DeadLetterReasonName(reason)}}));
    }
    families.push_back(std::move(dead_lettered));
    families.push_back(Single("cdcjoin_key_disagreements_total",
                              "Events whose Kafka record key and row image carry different key "
                              "values; the source's key_source decided the key.",
                              kCounter, stats.key_disagreements));
    families.push_back(Single("cdcjoin_commands_total",
                              "Row commands the joiner handed to the sink lanes.", kCounter,
                              stats.commands));
    families.push_back(Single("cdcjoin_rows_written_total",
                              "Row commands applied to the target table (durable).", kCounter,
                              stats.rows_written));
    families.push_back(Single("cdcjoin_sink_batches_total",
                              "Batches (one transaction each) the sink lanes applied.", kCounter,
                              stats.batches));
    families.push_back(Single("cdcjoin_sink_retries_total",
                              "Failed batch attempts that were retried (deadlocks, lock waits, "
                              "lost connections, ...).",
                              kCounter, stats.retries));
    families.push_back(Single("cdcjoin_sink_deadlocks_total",
                              "Batch attempts the database aborted as a deadlock (1213).",
                              kCounter, stats.deadlocks));
    families.push_back(Single("cdcjoin_stale_writes_stopped_total",
                              "Stale-write guard: writes of a source refused because the row "
                              "held a version of that source at least as new (per row and "
                              "source).",
                              kCounter, stats.stale_writes_stopped));
    families.push_back(Single("cdcjoin_window_late_drops_total",
                              "WINDOWED mode, INNER/LEFT joins: events later than window + "
                              "grace, dropped (OUTER never drops).",
                              kCounter, stats.late_drops));
    families.push_back(Single("cdcjoin_windows_opened_total", "WINDOWED mode: windows opened.",
                              kCounter, stats.windows_opened));
    families.push_back(Single("cdcjoin_windows_emitted_total",
                              "WINDOWED mode: windows closed and emitted as row commands.",
                              kCounter, stats.windows_emitted));
    families.push_back(Single("cdcjoin_offset_commits_total",
                              "Offset commits to the consumer group.", kCounter,
                              stats.offset_commits));
    families.push_back(Single("cdcjoin_data_loss_partitions",
                              "Partitions stopped because their committed offset fell out of "
                              "retention (data loss; needs an operator).",
                              kGauge, stats.data_loss_partitions));

    // Sink latency: cumulative power-of-two buckets, seconds.
    MetricFamily latency = Family("cdcjoin_sink_latency_seconds",
                                  "Time of one attempt to apply a batch (one transaction) to the target table.",
                                  MetricType::Histogram);
    ClientMetric histogram;
    const auto buckets = stats.sink_latency.Buckets();
    uint64_t cumulative = 0;
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
      cumulative += static_cast<uint64_t>(buckets[i]);
      if (i < kFirstBucket || i > kLastBucket) continue;
      ClientMetric::Bucket bucket;
      bucket.upper_bound = static_cast<double>(int64_t{1} << i) / 1e6;
      bucket.cumulative_count = cumulative;
      histogram.histogram.bucket.push_back(bucket);
    }
    ClientMetric::Bucket infinity;
    infinity.upper_bound = std::numeric_limits<double>::infinity();
    infinity.cumulative_count = cumulative;
    histogram.histogram.bucket.push_back(infinity);
    histogram.histogram.sample_count = cumulative;
    histogram.histogram.sample_sum = static_cast<double>(stats.sink_latency.SumMicros()) / 1e6;
    latency.metric.push_back(std::move(histogram));
    families.push_back(std::move(latency));

    // Per partition.
    MetricFamily lag = Family("cdcjoin_partition_lag",
                              "Records not yet durable: high watermark - committed offset.", kGauge);
    MetricFamily committed = Family("cdcjoin_partition_committed_offset",
                                    "Last committed offset (everything below it is applied).",
                                    kGauge);
    MetricFamily consumed = Family("cdcjoin_partition_consumed_offset",
                                   "Next offset to consume.", kGauge);
    MetricFamily high = Family("cdcjoin_partition_high_watermark",
                               "High watermark from the last fetch.", kGauge);
    MetricFamily loss = Family("cdcjoin_partition_data_loss",
                               "1 when the partition stopped on an out-of-range offset.", kGauge);
    for (const PartitionStatus& partition : pipeline.Partitions()) {
      const std::vector<ClientMetric::Label> labels = {
          {"topic", partition.topic}, {"partition", absl::StrCat(partition.partition)}};
      lag.metric.push_back(Value(kGauge, partition.lag, labels));
      committed.metric.push_back(Value(kGauge, partition.committed, labels));
      consumed.metric.push_back(Value(kGauge, partition.consumed, labels));
      high.metric.push_back(Value(kGauge, partition.high_watermark, labels));
      loss.metric.push_back(Value(kGauge, partition.data_loss ? 1 : 0, labels));
    }
    for (MetricFamily* family : {&lag, &committed, &consumed, &high, &loss}) {
      families.push_back(std::move(*family));
    }
    families.push_back(Single("cdcjoin_assigned",
                              "1 once the consumer group assigned partitions to this instance.",
                              kGauge, pipeline.Assigned() ? 1 : 0));

    // Per lane.
    MetricFamily queued = Family("cdcjoin_lane_queued_commands",
                                 "Row commands waiting in a sink lane.", kGauge);
    MetricFamily holding = Family("cdcjoin_lane_holding",
                                  "1 when a lane exhausted its retries and holds (it keeps "
                                  "retrying slowly; consumption pauses when it fills).",
                                  kGauge);
    MetricFamily attempts = Family("cdcjoin_lane_failed_attempts",
                                   "Failed attempts of the lane's current batch.", kGauge);
    const std::vector<LaneStatus> lanes = pipeline.Lanes();
    for (size_t i = 0; i < lanes.size(); ++i) {
      const std::vector<ClientMetric::Label> labels = {{"lane", absl::StrCat(i)}};
      queued.metric.push_back(Value(kGauge, lanes[i].queued, labels));
      holding.metric.push_back(Value(kGauge, lanes[i].holding ? 1 : 0, labels));
      attempts.metric.push_back(Value(kGauge, lanes[i].attempts, labels));
    }
    for (MetricFamily* family : {&queued, &holding, &attempts}) {
      families.push_back(std::move(*family));
    }

    // Mode and state as one-hot gauges, the usual way to export an enum.
    MetricFamily mode = Family("cdcjoin_mode", "1 for the joiner in use.", kGauge);
    for (v1::JoinMode value : {v1::DB_UPSERT, v1::WINDOWED}) {
      mode.metric.push_back(Value(kGauge, pipeline.mode() == value ? 1 : 0,
                                  {{"mode", v1::JoinMode_Name(value)}}));
    }
    families.push_back(std::move(mode));
    MetricFamily state = Family("cdcjoin_state", "1 for the pipeline's current state.", kGauge);
    const PipelineState current = pipeline.state();
    for (PipelineState value :
         {PipelineState::kStarting, PipelineState::kRunning, PipelineState::kPaused,
          PipelineState::kSwitching, PipelineState::kDegraded, PipelineState::kStopping,
          PipelineState::kStopped}) {
      state.metric.push_back(Value(kGauge, current == value ? 1 : 0,
                                   {{"state", absl::AsciiStrToLower(PipelineStateName(value))}}));
    }
    families.push_back(std::move(state));
    MetricFamily build = Family("cdcjoin_build_info", "Always 1; the version as a label.", kGauge);
    build.metric.push_back(Value(kGauge, 1, {{"version", kVersion}}));
    families.push_back(std::move(build));
    return families;
  }

 private:
  const Pipeline* pipeline_;
};

class MetricsExporterImpl : public MetricsExporter {
 public:
  MetricsExporterImpl(std::unique_ptr<prometheus::Exposer> exposer,
                      std::shared_ptr<PipelineCollector> collector, std::string host, int port)
      : exposer_(std::move(exposer)),
        collector_(std::move(collector)),
        host_(std::move(host)),
        port_(port) {}

  ~MetricsExporterImpl() override {
    // The exposer holds only a weak_ptr; stop serving before the collector goes.
    exposer_.reset();
  }

  int port() const override { return port_; }
  std::string address() const override { return absl::StrCat(host_, ":", port_); }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<PipelineCollector> collector_;
  std::string host_;
  int port_;
};

}  // namespace

MetricsExporterOptions MetricsExporterOptionsFromConfig(const v1::MetricsConfig& config) {
  MetricsExporterOptions options;
  if (!config.listen_address().empty()) options.listen_address = config.listen_address();
  return options;
}

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const MetricsExporterOptions& options, const Pipeline* pipeline) {
  const size_t colon = options.listen_address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen_address: '", options.listen_address, "' is not host:port"));
  }
  std::string host = options.listen_address.substr(0, colon);
  // civetweb spells IPv6 addresses "[::1]:port" like we do, and binds IPv4 the same way.
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // One thread: scrapes are rare and each one only reads atomics.
    exposer = std::make_unique<prometheus::Exposer>(options.listen_address, 1);
  } catch (const std::exception& e) {
    // prometheus-cpp reports a failed bind by throwing; this is the one place it can.
    return absl::UnavailableError(absl::StrCat("metrics.listen_address: cannot listen on ",
                                               options.listen_address, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("metrics.listen_address: not listening on ", options.listen_address));
  }
  auto collector = std::make_shared<PipelineCollector>(pipeline);
  exposer->RegisterCollectable(collector);
  return std::unique_ptr<MetricsExporter>(
      new MetricsExporterImpl(std::move(exposer), std::move(collector), host, ports.front()));
}

std::string RenderMetrics(const Pipeline& pipeline) {
  return prometheus::TextSerializer().Serialize(PipelineCollector(&pipeline).Collect());
}

}  // namespace cdcjoin
