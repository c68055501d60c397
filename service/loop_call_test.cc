#include "service/loop_call.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace cdcjoin {
namespace {

TEST(LoopCall, RunsTheWorkOnTheServingThreadAndReturnsItsResult) {
  LoopCall<int> call;
  std::atomic<bool> stop{false};
  std::thread::id served_on;
  std::thread loop([&] {
    while (!stop.load()) call.Serve();
  });
  absl::StatusOr<int> result = call.Run([&served_on] {
    served_on = std::this_thread::get_id();
    return absl::StatusOr<int>(42);
  });
  stop.store(true);
  loop.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 42);
  EXPECT_NE(served_on, std::this_thread::get_id());
}

TEST(LoopCall, ASecondCallWhileOneIsRunningIsRefused) {
  LoopCall<absl::StatusCode> call;
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop.load()) call.Serve();
  });
  // The first call's work makes the second call while the first is still running.
  absl::StatusOr<absl::StatusCode> second = call.Run([&call] {
    return absl::StatusOr<absl::StatusCode>(
        call.Run([] { return absl::StatusOr<absl::StatusCode>(absl::StatusCode::kOk); })
            .status()
            .code());
  });
  stop.store(true);
  loop.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, absl::StatusCode::kFailedPrecondition);
}

TEST(LoopCall, CloseAnswersWaitingAndLaterCallsWithCancelled) {
  LoopCall<int> call;
  absl::StatusOr<int> waiting = 0;
  std::thread caller([&] { waiting = call.Run([] { return absl::StatusOr<int>(1); }); });
  call.Close();
  caller.join();
  EXPECT_EQ(waiting.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(call.Run([] { return absl::StatusOr<int>(1); }).status().code(),
            absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace cdcjoin
