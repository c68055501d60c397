#ifndef CDCJOIN_SERVICE_DB_UPSERT_STAGE_H_
#define CDCJOIN_SERVICE_DB_UPSERT_STAGE_H_

#include "service/stage.h"

namespace cdcjoin {

// DB_UPSERT: every event becomes one column-masked command (join/db_upsert_joiner.h) and the
// database merges the sources' rows. It holds nothing of its own: what it has is in the sink.
class DbUpsertStage final : public Stage {
 public:
  explicit DbUpsertStage(StageContext context) : context_(context) {}

  v1::JoinMode mode() const override { return v1::DB_UPSERT; }
  absl::Status Start() override { return ResendWindowState(context_, /*flush_open=*/true); }
  void OnAssigned(std::vector<AssignedPartition>& partitions) override {}
  absl::Status OnEvents(std::vector<ChangeEvent> events,
                        const EventTimeAligner::CaughtUp& caught_up) override;
  absl::Status Advance(int64_t now_ms, const EventTimeAligner::CaughtUp& caught_up) override {
    return absl::OkStatus();
  }
  void OnRevoked(const std::vector<SourcePartition>& partitions, absl::Time deadline) override;
  void OnLost(const std::vector<SourcePartition>& partitions) override;
  absl::Status Drain(absl::Time deadline) override;
  std::map<SourcePartition, int64_t> DurableOffsets() const override;

 private:
  const StageContext context_;
};

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_DB_UPSERT_STAGE_H_
