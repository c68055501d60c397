#include "storage/retry_classifier.h"

#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

TEST(ClassifyMySqlErrorTest, LockConflictsRetryTheTransaction) {
  for (int code : {1213, 1205}) {
    EXPECT_EQ(ClassifyMySqlError(code), MySqlErrorClass::kRetryTransaction) << code;
    EXPECT_EQ(StatusCodeForMySqlError(code), absl::StatusCode::kAborted) << code;
  }
}

TEST(ClassifyMySqlErrorTest, ConnectionLossRetriesAfterReconnect) {
  for (int code : {2002, 2003, 2006, 2013, 2055, 1927, 1053}) {
    EXPECT_EQ(ClassifyMySqlError(code), MySqlErrorClass::kRetryAfterReconnect) << code;
    EXPECT_EQ(StatusCodeForMySqlError(code), absl::StatusCode::kUnavailable) << code;
  }
}

TEST(ClassifyMySqlErrorTest, EverythingElseIsPermanent) {
  for (int code : {1062, 1064, 1406, 1366, 1054, 1146, 1045, 1049, 1292, 0, -1, 9999, 2000}) {
    EXPECT_EQ(ClassifyMySqlError(code), MySqlErrorClass::kPermanent) << code;
    const absl::StatusCode status_code = StatusCodeForMySqlError(code);
    EXPECT_TRUE(status_code == absl::StatusCode::kInvalidArgument ||
                status_code == absl::StatusCode::kFailedPrecondition ||
                status_code == absl::StatusCode::kInternal)
        << code;
  }
  EXPECT_EQ(StatusCodeForMySqlError(1406), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForMySqlError(1062), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForMySqlError(1146), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusCodeForMySqlError(1234), absl::StatusCode::kInternal);
}

TEST(MySqlErrorToStatusTest, CarriesTheCodeAsPayloadAndInTheMessage) {
  absl::Status status = MySqlErrorToStatus(1213, "40001", "Deadlock found", "upsert of 3 rows");
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(status.message(), "upsert of 3 rows: MySQL error 1213 (40001): Deadlock found");
  EXPECT_EQ(MySqlErrorCode(status), 1213);
  EXPECT_TRUE(IsRetriable(status));
  EXPECT_TRUE(IsDeadlock(status));
  EXPECT_FALSE(IsLockWaitTimeout(status));
  EXPECT_FALSE(NeedsReconnect(status));
}

TEST(MySqlErrorToStatusTest, LockWaitTimeout) {
  absl::Status status = MySqlErrorToStatus(1205, "HY000", "Lock wait timeout exceeded", "");
  EXPECT_EQ(status.message(), "MySQL error 1205 (HY000): Lock wait timeout exceeded");
  EXPECT_TRUE(IsRetriable(status));
  EXPECT_TRUE(IsLockWaitTimeout(status));
  EXPECT_FALSE(IsDeadlock(status));
  EXPECT_FALSE(NeedsReconnect(status));
}

TEST(MySqlErrorToStatusTest, LostConnectionNeedsReconnect) {
  absl::Status status = MySqlErrorToStatus(2013, "HY000", "Lost connection", "commit");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetriable(status));
  EXPECT_TRUE(NeedsReconnect(status));
  EXPECT_FALSE(IsDeadlock(status));
}

TEST(MySqlErrorToStatusTest, PermanentErrorIsNotRetriable) {
  absl::Status status = MySqlErrorToStatus(1406, "22001", "Data too long", "upsert");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MySqlErrorCode(status), 1406);
  EXPECT_FALSE(IsRetriable(status));
  EXPECT_FALSE(NeedsReconnect(status));
}

TEST(StatusClassificationTest, TheCodePayloadWinsOverTheStatusCode) {
  // A caller that wrapped the error with another status code keeps the MySQL decision.
  absl::Status status = absl::InternalError("wrapped");
  status.SetPayload(kMySqlErrorCodePayload, absl::Cord("1213"));
  EXPECT_TRUE(IsRetriable(status));
  EXPECT_TRUE(IsDeadlock(status));

  absl::Status permanent = absl::UnavailableError("wrapped");
  permanent.SetPayload(kMySqlErrorCodePayload, absl::Cord("1064"));
  EXPECT_FALSE(IsRetriable(permanent));
  EXPECT_FALSE(NeedsReconnect(permanent));
}

TEST(StatusClassificationTest, WithoutPayloadTheStatusCodeDecides) {
  EXPECT_FALSE(IsRetriable(absl::OkStatus()));
  EXPECT_FALSE(NeedsReconnect(absl::OkStatus()));
  EXPECT_EQ(MySqlErrorCode(absl::OkStatus()), std::nullopt);
  EXPECT_TRUE(IsRetriable(absl::AbortedError("x")));
  EXPECT_FALSE(NeedsReconnect(absl::AbortedError("x")));
  EXPECT_TRUE(IsRetriable(absl::UnavailableError("x")));
  EXPECT_TRUE(NeedsReconnect(absl::UnavailableError("x")));
  EXPECT_FALSE(IsRetriable(absl::InvalidArgumentError("x")));
  EXPECT_FALSE(IsRetriable(absl::InternalError("x")));
  EXPECT_FALSE(IsDeadlock(absl::AbortedError("x")));

  absl::Status garbage = absl::AbortedError("x");
  garbage.SetPayload(kMySqlErrorCodePayload, absl::Cord("not a number"));
  EXPECT_EQ(MySqlErrorCode(garbage), std::nullopt);
  EXPECT_TRUE(IsRetriable(garbage));
}

TEST(RowErrorTest, ErrorsOfOneRowAreRowErrors) {
  for (int code : {1048, 1062, 1264, 1265, 1292, 1366, 1406, 1451, 1452, 4025}) {
    const absl::Status status = MySqlErrorToStatus(code, "HY000", "bad row", "apply");
    EXPECT_TRUE(IsRowError(status)) << code;
    EXPECT_FALSE(IsRetriable(status)) << code;
  }
}

TEST(RowErrorTest, ErrorsOfEveryRowAndTransientErrorsAreNot) {
  for (int code : {1054, 1146, 1045, 1142, 1290, 1836, 1064, 1213, 1205, 2006, 2013}) {
    EXPECT_FALSE(IsRowError(MySqlErrorToStatus(code, "HY000", "x", "apply"))) << code;
  }
  EXPECT_FALSE(IsRowError(absl::InvalidArgumentError("no MySQL code")));
  EXPECT_FALSE(IsRowError(absl::OkStatus()));
}

}  // namespace
}  // namespace cdcjoin
