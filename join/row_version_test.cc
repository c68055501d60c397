#include "join/row_version.h"

#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

ChangeEvent Event(ChangeOp op, std::optional<BinlogCoordinates> binlog, int64_t offset = 7) {
  ChangeEvent event;
  event.op = op;
  event.binlog = binlog;
  event.position.offset = offset;
  return event;
}

TEST(RowVersionTest, BinlogLayoutIsReadableDigits) {
  EXPECT_EQ(RowVersionOf(Event(ChangeOp::kUpsert, BinlogCoordinates{42, 1234, 3, false})),
            "2000000042000000001234100000" "30");
  EXPECT_EQ(RowVersionOf(Event(ChangeOp::kDelete, BinlogCoordinates{42, 1234, 3, true})),
            "2000000042000000001234000000" "31");
  EXPECT_EQ(RowVersionOf(Event(ChangeOp::kUpsert, std::nullopt, 123)),
            "1000000000000000012300000000" "00");
}

TEST(RowVersionTest, OrdersByFileThenPositionThenSnapshotThenRow) {
  auto v = [](uint64_t file, uint64_t pos, bool snapshot, uint64_t row) {
    return RowVersionOf(Event(ChangeOp::kUpsert, BinlogCoordinates{file, pos, row, snapshot}));
  };
  EXPECT_TRUE(IsNewerRowVersion(v(2, 4, false, 0), v(1, 999999, false, 9)));
  EXPECT_TRUE(IsNewerRowVersion(v(1, 5, false, 0), v(1, 4, false, 99)));
  // A snapshot read at the position streaming then starts from comes before what streams.
  EXPECT_TRUE(IsNewerRowVersion(v(1, 4, false, 0), v(1, 4, true, 5)));
  EXPECT_TRUE(IsNewerRowVersion(v(1, 4, false, 2), v(1, 4, false, 1)));
  EXPECT_FALSE(IsNewerRowVersion(v(1, 4, false, 1), v(1, 4, false, 1)));  // A redelivery.
  EXPECT_TRUE(IsNewerRowVersion(v(1, 4, false, 1), ""));
}

TEST(RowVersionTest, OffsetVersionsOrderByOffsetAndLoseToBinlogVersions) {
  const std::string low = RowVersionOf(Event(ChangeOp::kUpsert, std::nullopt, 9));
  const std::string high = RowVersionOf(Event(ChangeOp::kUpsert, std::nullopt, 10));
  EXPECT_TRUE(IsNewerRowVersion(high, low));
  EXPECT_TRUE(IsNewerRowVersion(
      RowVersionOf(Event(ChangeOp::kUpsert, BinlogCoordinates{0, 0, 0, true})), high));
}

TEST(RowVersionTest, DeleteOfTheSamePositionIsMarkedInTheLastDigit) {
  const std::string upsert = RowVersionOf(Event(ChangeOp::kUpsert, std::nullopt, 10));
  const std::string deleted = RowVersionOf(Event(ChangeOp::kDelete, std::nullopt, 10));
  EXPECT_EQ(upsert.back(), '0');
  EXPECT_EQ(deleted.back(), '1');
  EXPECT_EQ(upsert.size(), static_cast<size_t>(kRowVersionDigits));
}

TEST(RowVersionTest, PositionBeyondTheLayoutFallsBackToTheOffset) {
  EXPECT_EQ(RowVersionOf(Event(ChangeOp::kUpsert,
                               BinlogCoordinates{kMaxBinlogFileNumber + 1, 1, 1, false}, 5))[0],
            '1');
}

}  // namespace
}  // namespace cdcjoin
