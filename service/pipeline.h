#ifndef CDCJOIN_SERVICE_PIPELINE_H_
#define CDCJOIN_SERVICE_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "join/table_schema.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "service/dead_letter_sink.h"
#include "service/group_control.h"
#include "service/pipeline_status.h"
#include "service/record_source.h"
#include "service/sink_lanes.h"
#include "service/stats.h"

namespace cdcjoin {

// The process's data path, a short loop on one thread: records from the source (KafkaSource, the
// only owner of the consumer), decoded (or dead-lettered), handed to the stage of the current
// mode (service/stage.h), whose commands the sink lanes apply; offsets committed only as far as
// the stage reports them durable.
//
//   auto pipeline = Pipeline::Start({config, brokers, connect});
//   ... pipeline->Partitions(), pipeline->stats() ...
//   pipeline->Stop(absl::Seconds(30));
class Pipeline {
 public:
  struct Options {
    // Validated, with defaults applied (service/config).
    v1::Config config;
    // bootstrap.servers: the config's brokers or the embedded cluster's.
    std::string bootstrap_servers;
    // Opens one writer per sink lane.
    SinkLanes::WriterFactory connect_writer;
    // What the database says about the target table's columns, by name (the start-up check
    // reads them): the decoder refuses values these columns cannot hold. Default: empty (values
    // are checked against the configured types only).
    std::map<std::string, ColumnFacts> target_columns;
  };

  // Consumes from Kafka (options.bootstrap_servers) and dead-letters to its dead-letter topic.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Start(Options options);

  // The parts that face Kafka, replaceable (tests drive the loop with scripted ones). Each is
  // built by the pipeline, given the counters it reports into.
  struct Connectors {
    std::function<absl::StatusOr<std::unique_ptr<RecordSource>>(PipelineStats* stats)> source;
    // `on_delivered` must be called once a dead letter is delivered.
    std::function<absl::StatusOr<std::unique_ptr<DeadLetterSink>>(
        PipelineStats* stats, std::function<void(const EventPosition&)> on_delivered)>
        dead_letters;
    std::function<absl::StatusOr<std::unique_ptr<GroupControl>>(PipelineStats* stats)> control;
  };
  static absl::StatusOr<std::unique_ptr<Pipeline>> StartWith(Options options,
                                                             Connectors connectors);
  virtual ~Pipeline() = default;

  // Stops consuming, waits up to `timeout` for what was consumed to be applied, commits, leaves
  // the group. What did not get applied in time is not committed, so it is consumed again on the
  // next start. Idempotent.
  virtual absl::Status Stop(absl::Duration timeout) = 0;

  // Operator pause: no new records are consumed; pending ones still apply and commit.
  virtual void Pause() = 0;
  virtual void Resume() = 0;

  struct SwitchReport {
    v1::JoinMode from = v1::DB_UPSERT;
    v1::JoinMode to = v1::DB_UPSERT;
    bool changed = false;                            // false: already in that mode.
    absl::Duration paused = absl::ZeroDuration();   // How long consumption stood still.
  };
  // Switches the joiner at runtime: pause consumption, drain (flush open windows and pending
  // batches), commit, swap, resume. Returns when done. FailedPrecondition while another switch
  // runs or while stopping; Unavailable if the drain cannot finish (the old mode stays).
  // Switches the whole group: the mode is written to the group's control topic, which every
  // member follows at its next barrier and reads when it starts; then this member switches and
  // reports its own pause.
  virtual absl::StatusOr<SwitchReport> SwitchMode(v1::JoinMode mode) = 0;
  // Every member's mode as it last reported it on the control topic (this one included).
  virtual std::vector<v1::GroupMember> Members() const = 0;
  virtual v1::JoinMode mode() const = 0;

  // The operator's way out of a hold no classifier lets go (cdcjoinctl dead-letter): when a
  // sink lane holds a batch with the event at `offset` of `topic`'s `partition`, its row is taken
  // out at the lane's next attempt and dead-lettered with reason "operator" and `note`, and the
  // rest goes on. NotFound when nothing holds on that event; InvalidArgument for a topic that is
  // no source's.
  virtual absl::Status DeadLetterHeld(const std::string& topic, int32_t partition,
                                      int64_t offset, const std::string& note) = 0;

  // The running configuration (defaults applied; secrets are references, never values).
  virtual const v1::Config& config() const = 0;

  virtual PipelineState state() const = 0;
  virtual std::vector<PartitionStatus> Partitions() const = 0;
  virtual std::vector<LaneStatus> Lanes() const = 0;
  virtual const PipelineStats& stats() const = 0;
  // True once the consumer group gave this instance its partitions.
  virtual bool Assigned() const = 0;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_PIPELINE_H_
