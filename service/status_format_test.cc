#include "service/status_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

using ::testing::HasSubstr;

v1::Status WithPartitions(const std::vector<std::pair<std::string, std::string>>& sources) {
  v1::Status status;
  status.set_state(v1::RUNNING);
  status.set_assigned(true);
  int partition = 0;
  for (const auto& [source, topic] : sources) {
    v1::PartitionStatus* p = status.add_partitions();
    p->set_source(source);
    p->set_topic(topic);
    p->set_partition(partition++);
    p->set_consumed_offset(1234567);
    p->set_committed_offset(1234000);
    p->set_high_watermark(1300000);
    p->set_lag(66000);
  }
  return status;
}

// The table's header and partition rows, which must all line up.
std::vector<std::string> TableRows(const std::string& text) {
  std::vector<std::string> rows;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "SOURCE")) in_table = true;
    if (in_table && line.empty()) break;
    if (in_table) rows.emplace_back(line);
  }
  return rows;
}

TEST(FormatStatus, ColumnsStayAlignedWithLongNames) {
  for (const auto& sources : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"user", "cdc.azar.User"}, {"user_ext", "cdc.azar.UserExtData"}},
           {{"user", "cdc.azar.User"},
            {"a_source_named_at_length", "cdc.a.much.longer.topic.name.than.usual.Table"}}}) {
    const std::string text = FormatStatus(WithPartitions(sources), "127.0.0.1:50051");
    const std::vector<std::string> rows = TableRows(text);
    ASSERT_EQ(rows.size(), sources.size() + 1) << text;
    for (size_t i = 1; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i].size(), rows[0].size()) << "misaligned:\n" << text;
      // The last column (LAG) ends where its header does.
      EXPECT_EQ(rows[i].find_last_of("0123456789"), rows[0].size() - 1) << text;
    }
    EXPECT_EQ(rows[1].find("cdc."), rows[0].find("TOPIC")) << text;
  }
}

TEST(FormatStatus, ShowsWarningsIgnoredDeletesDeadLettersByReasonAndStaleWrites) {
  v1::Status status = WithPartitions({{"user", "t"}});
  status.add_warnings("admin: 0.0.0.0:50051 is not loopback and speaks plaintext");
  status.mutable_counters()->set_ignored_by_policy(7);
  status.mutable_counters()->set_dead_lettered(3);
  (*status.mutable_counters()->mutable_dead_lettered_by_reason())["malformed"] = 3;
  status.mutable_counters()->set_stale_writes_stopped(12345);
  const std::string text = FormatStatus(status, "a:1");
  EXPECT_THAT(text, HasSubstr("WARNING: admin: 0.0.0.0:50051 is not loopback"));
  EXPECT_THAT(text, HasSubstr("ignored by policy 7"));
  EXPECT_THAT(text, HasSubstr("dead-lettered 3 (malformed 3)"));
  EXPECT_THAT(text, HasSubstr("stale writes stopped 12,345"));
}

TEST(FormatStatus, ShowsEveryMembersMode) {
  v1::Status status;
  status.set_time_unix_ms(100000);
  v1::GroupMember* a = status.add_members();
  a->set_member("pod-0");
  a->set_mode(v1::WINDOWED);
  a->set_updated_unix_ms(90000);
  v1::GroupMember* b = status.add_members();
  b->set_member("pod-1");
  b->set_mode(v1::DB_UPSERT);
  b->set_updated_unix_ms(99000);
  const std::string text = FormatStatus(status, "127.0.0.1:1");
  EXPECT_NE(text.find("group members: pod-0 WINDOWED (10s ago), pod-1 DB_UPSERT (1s ago)"),
            std::string::npos)
      << text;
}

TEST(WatchFrame, SourceColumnFitsTheLongestName) {
  const std::string text = WatchFrame(
      WithPartitions({{"user", "t1"}, {"a_source_named_at_length", "t2"}}), "127.0.0.1:50051");
  std::vector<size_t> bars;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.find(" [") != absl::string_view::npos) bars.push_back(line.find(" ["));
  }
  ASSERT_EQ(bars.size(), 2u) << text;
  EXPECT_EQ(bars[0], bars[1]) << text;
}

}  // namespace
}  // namespace cdcjoin
