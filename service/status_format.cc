#include "service/status_format.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cdcjoin {
namespace {

std::string Duration(double seconds) {
  return absl::FormatDuration(absl::Trunc(absl::Seconds(seconds), absl::Seconds(1)));
}

std::string Number(int64_t n) {
  // Thousands separated by commas: lag and counters get big.
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Offsets below zero are librdkafka's "none yet" markers (-1, -1001): shown as "-".
std::string Offset(int64_t offset) { return offset < 0 ? "-" : Number(offset); }

struct SourceProgress {
  int64_t high = 0;
  int64_t lag = 0;
  int partitions = 0;
  int data_loss = 0;
};

std::map<std::string, SourceProgress> BySource(const v1::Status& status) {
  std::map<std::string, SourceProgress> sources;
  for (const v1::PartitionStatus& p : status.partitions()) {
    SourceProgress& s = sources[p.source().empty() ? p.topic() : p.source()];
    s.high += std::max<int64_t>(p.high_watermark(), 0);
    s.lag += p.lag();
    ++s.partitions;
    s.data_loss += p.data_loss() ? 1 : 0;
  }
  return sources;
}

std::string Bar(double fraction, int width) {
  const int filled = static_cast<int>(fraction * width + 0.5);
  return absl::StrCat(std::string(filled, '#'), std::string(width - filled, '.'));
}

// The widest of `header` and the values, so columns stay aligned whatever the names.
template <typename Field>
int Width(const v1::Status& status, const char* header, Field field) {
  size_t width = std::string(header).size();
  for (const v1::PartitionStatus& p : status.partitions()) width = std::max(width, field(p).size());
  return static_cast<int>(width);
}

std::string ByReason(const v1::Counters& counters) {
  std::vector<std::string> reasons;
  for (const auto& [reason, count] : counters.dead_lettered_by_reason()) {
    if (count > 0) reasons.push_back(absl::StrCat(reason, " ", Number(count)));
  }
  std::sort(reasons.begin(), reasons.end());
  return reasons.empty() ? "" : absl::StrCat(" (", absl::StrJoin(reasons, ", "), ")");
}

}  // namespace

std::string StateName(v1::State state) {
  return state == v1::STATE_UNSPECIFIED ? "UNKNOWN" : v1::State_Name(state);
}

std::string FormatStatus(const v1::Status& status, const std::string& address) {
  std::string out;
  absl::StrAppendFormat(&out, "cdcjoind %s at %s, up %s\n", status.version(), address,
                        Duration(status.uptime_seconds()));
  for (const std::string& warning : status.warnings()) {
    absl::StrAppendFormat(&out, "WARNING: %s\n", warning);
  }
  absl::StrAppendFormat(&out, "mode %s   state %s   assigned %s   total lag %s\n\n",
                        v1::JoinMode_Name(status.mode()), StateName(status.state()),
                        status.assigned() ? "yes" : "no", Number(status.total_lag()));
  if (status.members_size() > 0) {
    std::vector<std::string> members;
    for (const v1::GroupMember& member : status.members()) {
      const double age = std::max<double>(
          0, static_cast<double>(status.time_unix_ms() - member.updated_unix_ms()) / 1000);
      members.push_back(absl::StrFormat("%s %s (%s ago)", member.member(),
                                        v1::JoinMode_Name(member.mode()), Duration(age)));
    }
    absl::StrAppendFormat(&out, "group members: %s\n\n", absl::StrJoin(members, ", "));
  }
  const int source_width =
      Width(status, "SOURCE", [](const v1::PartitionStatus& p) { return p.source(); });
  const int topic_width =
      Width(status, "TOPIC", [](const v1::PartitionStatus& p) { return p.topic(); });
  absl::StrAppendFormat(&out, "%-*s %-*s %4s %12s %12s %12s %10s\n", source_width, "SOURCE",
                        topic_width, "TOPIC", "PART", "CONSUMED", "COMMITTED", "HIGH WMARK",
                        "LAG");
  for (const v1::PartitionStatus& p : status.partitions()) {
    absl::StrAppendFormat(&out, "%-*s %-*s %4d %12s %12s %12s %10s%s\n", source_width,
                          p.source(), topic_width, p.topic(), p.partition(),
                          Offset(p.consumed_offset()), Offset(p.committed_offset()),
                          Offset(p.high_watermark()), Number(p.lag()),
                          p.data_loss() ? "  DATA LOSS" : "");
  }
  if (status.partitions_size() == 0) out += "(no partitions assigned)\n";
  const v1::Counters& c = status.counters();
  absl::StrAppendFormat(&out,
                        "\nevents     create %s  update %s  read %s  delete %s  total %s\n"
                        "skipped    tombstones %s  ops %s  nulls %s  ignored by policy %s\n"
                        "dead       dead-lettered %s%s\n"
                        "sink       commands %s  rows written %s  batches %s  retries %s  "
                        "deadlocks %s  stale writes stopped %s\n"
                        "windows    opened %s  emitted %s  late drops %s\n"
                        "offsets    commits %s  data-loss partitions %s\n",
                        Number(c.events_create()), Number(c.events_update()),
                        Number(c.events_read()), Number(c.events_delete()),
                        Number(c.events_total()), Number(c.tombstones()), Number(c.skipped_ops()),
                        Number(c.skipped_nulls()), Number(c.ignored_by_policy()),
                        Number(c.dead_lettered()), ByReason(c), Number(c.commands()),
                        Number(c.rows_written()), Number(c.batches()), Number(c.retries()),
                        Number(c.deadlocks()), Number(c.stale_writes_stopped()),
                        Number(c.windows_opened()),
                        Number(c.windows_emitted()), Number(c.late_drops()),
                        Number(c.offset_commits()), Number(c.data_loss_partitions()));
  absl::StrAppendFormat(&out, "rates      %.1f events/s  %.1f rows/s  (last %.0f s)\n",
                        status.rates().events_per_second(), status.rates().rows_per_second(),
                        status.rates().window_seconds());
  absl::StrAppendFormat(&out, "latency    sink batch p50 %.3f ms  p99 %.3f ms  (%s batches)\n\n",
                        status.sink_latency().p50_ms(), status.sink_latency().p99_ms(),
                        Number(status.sink_latency().count()));
  absl::StrAppendFormat(&out, "%-5s %8s %8s %9s  %s\n", "LANE", "QUEUED", "HOLDING", "ATTEMPTS",
                        "LAST ERROR");
  for (const v1::LaneStatus& lane : status.lanes()) {
    absl::StrAppendFormat(&out, "%-5d %8s %8s %9d  %s%s\n", lane.lane(), Number(lane.queued()),
                          lane.holding() ? "yes" : "no", lane.attempts(),
                          lane.held_on().empty()
                              ? ""
                              : absl::StrCat("held on ", lane.held_on(), ": "),
                          lane.last_error());
  }
  if (status.last_error().empty()) {
    out += "\nlast error: none\n";
  } else {
    const absl::Time when = absl::FromUnixMillis(status.last_error_time_unix_ms());
    absl::StrAppendFormat(&out, "\nlast error: %s (%s, %s ago)\n", status.last_error(),
                          absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", when, absl::UTCTimeZone()),
                          Duration(absl::ToDoubleSeconds(
                              absl::FromUnixMillis(status.time_unix_ms()) - when)));
  }
  return out;
}

bool CaughtUp(const v1::Status& status) {
  // Paused partitions fetch nothing, so their high watermarks are not refreshed: a paused (or
  // switching) daemon's lag of 0 proves nothing.
  if (status.state() != v1::RUNNING) return false;
  if (!status.assigned() || status.partitions_size() == 0) return false;
  for (const v1::PartitionStatus& p : status.partitions()) {
    if (p.high_watermark() < 0 || p.lag() != 0) return false;
  }
  return true;
}

// The live view on a terminal: a block redrawn in place.
std::string WatchFrame(const v1::Status& status, const std::string& address) {
  std::string out;
  absl::StrAppendFormat(&out, "cdcjoind %s at %s   mode %s   state %s   up %s\n\n",
                        status.version(), address, v1::JoinMode_Name(status.mode()),
                        StateName(status.state()), Duration(status.uptime_seconds()));
  const std::map<std::string, SourceProgress> sources = BySource(status);
  int source_width = 10;
  for (const auto& [source, progress] : sources) {
    source_width = std::max(source_width, static_cast<int>(source.size()));
  }
  for (const auto& [source, progress] : sources) {
    const double done =
        progress.high > 0 ? static_cast<double>(progress.high - progress.lag) / progress.high : 1;
    absl::StrAppendFormat(&out, "%-*s [%s] %5.1f%%  lag %10s  of %s (%d partitions)%s\n",
                          source_width, source, Bar(done, 40), done * 100, Number(progress.lag),
                          Number(progress.high), progress.partitions,
                          progress.data_loss > 0
                              ? absl::StrCat("  DATA LOSS on ", progress.data_loss)
                              : "");
  }
  if (status.partitions_size() == 0) out += "(waiting for partitions)\n";
  const v1::Counters& c = status.counters();
  absl::StrAppendFormat(&out,
                        "\n%9.1f events/s  %9.1f rows/s   events %s  rows %s  dead-lettered %s  "
                        "retries %s\nsink p50 %.3f ms  p99 %.3f ms",
                        status.rates().events_per_second(), status.rates().rows_per_second(),
                        Number(c.events_total()), Number(c.rows_written()),
                        Number(c.dead_lettered()), Number(c.retries()),
                        status.sink_latency().p50_ms(), status.sink_latency().p99_ms());
  if (!status.last_error().empty()) absl::StrAppend(&out, "\nlast error: ", status.last_error());
  out += "\n";
  return out;
}

// The live view when stdout is not a terminal: one line per update.
std::string WatchLine(const v1::Status& status) {
  std::vector<std::string> sources;
  for (const auto& [source, progress] : BySource(status)) {
    const double done =
        progress.high > 0 ? static_cast<double>(progress.high - progress.lag) / progress.high : 1;
    sources.push_back(absl::StrFormat("%s=%.1f%%(lag %d%s)", source, done * 100, progress.lag,
                                      progress.data_loss > 0
                                          ? absl::StrCat(", DATA LOSS on ", progress.data_loss)
                                          : ""));
  }
  return absl::StrFormat(
      "%s mode=%s state=%s lag=%d %s events=%d rows=%d events/s=%.1f rows/s=%.1f\n",
      absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(status.time_unix_ms()),
                       absl::LocalTimeZone()),
      v1::JoinMode_Name(status.mode()), StateName(status.state()), status.total_lag(),
      absl::StrJoin(sources, " "), status.counters().events_total(),
      status.counters().rows_written(), status.rates().events_per_second(),
      status.rates().rows_per_second());
}

}  // namespace cdcjoin
