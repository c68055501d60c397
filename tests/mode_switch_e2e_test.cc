// Switching modes at runtime under load, against the real parts: events keep flowing while the
// joiner is switched between DB_UPSERT and WINDOWED (outer) over gRPC, again and again. The final
// table must equal the reference model, nothing valid may be dead-lettered, and every switch
// reports how long consumption stood still.

#include <algorithm>
#include <cstdio>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "proto/cdcjoin/v1/admin.grpc.pb.h"
#include "tests/support/e2e_harness.h"

namespace cdcjoin::testing {
namespace {

using ModeSwitchEndToEndTest = EndToEndTest;

TEST_F(ModeSwitchEndToEndTest, SwitchingBackAndForthUnderLoadConverges) {
  SeedWorkloadOptions options;
  options.records = 24000;
  options.seed = 21;
  options.ts_step_ms = 2;
  const std::vector<SeedRecord> records = GenerateSeedWorkload(options);
  StartDaemon({WindowedConfig(2000, v1::DB_UPSERT)});
  absl::StatusOr<std::string> address = WaitForAddress("admin");
  ASSERT_TRUE(address.ok()) << address.status();
  auto stub = v1::Admin::NewStub(grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));

  constexpr int kSwitches = 12;
  // The switches must happen while the daemon consumes, not before it joined its group.
  Produce(records, 0, records.size() / kSwitches);
  const absl::Time joined_by = absl::Now() + absl::Seconds(60);
  int64_t consumed = 0;
  while (consumed == 0 && absl::Now() < joined_by) {
    grpc::ClientContext context;
    v1::Status status;
    if (stub->GetStatus(&context, v1::GetStatusRequest(), &status).ok()) {
      consumed = status.counters().events_total();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(consumed, 0) << ReadFile(DaemonLog());
  std::vector<double> paused_ms;
  v1::JoinMode target = v1::WINDOWED;
  for (int i = 0; i < kSwitches; ++i) {
    // A slice of the stream, then a switch while the daemon is still working through it.
    if (i > 0) {
      Produce(records, records.size() * i / kSwitches, records.size() * (i + 1) / kSwitches);
    }
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    v1::SwitchModeRequest request;
    request.set_mode(target);
    v1::SwitchModeResponse response;
    const grpc::Status status = stub->SwitchMode(&context, request, &response);
    ASSERT_TRUE(status.ok()) << "switch " << i << ": " << status.error_message() << "\n"
                             << ReadFile(DaemonLog());
    EXPECT_TRUE(response.changed()) << "switch " << i;
    EXPECT_EQ(response.to(), target);
    paused_ms.push_back(response.paused_ms());
    target = target == v1::WINDOWED ? v1::DB_UPSERT : v1::WINDOWED;
  }
  // Ends in DB_UPSERT after an even number of switches; a switch to the same mode is a no-op.
  {
    grpc::ClientContext context;
    v1::SwitchModeRequest request;
    request.set_mode(v1::DB_UPSERT);
    v1::SwitchModeResponse response;
    ASSERT_TRUE(stub->SwitchMode(&context, request, &response).ok());
    EXPECT_FALSE(response.changed());
  }
  ExpectConverges(records, absl::Seconds(120));

  grpc::ClientContext context;
  v1::Status status;
  ASSERT_TRUE(stub->GetStatus(&context, v1::GetStatusRequest(), &status).ok());
  EXPECT_EQ(status.counters().dead_lettered(), 0);
  EXPECT_EQ(status.mode(), v1::DB_UPSERT);

  std::sort(paused_ms.begin(), paused_ms.end());
  std::printf("%d switches under load; consumption paused (ms): min %.1f, median %.1f, max %.1f\n",
              kSwitches, paused_ms.front(), paused_ms[paused_ms.size() / 2], paused_ms.back());
  for (double pause : paused_ms) EXPECT_GT(pause, 0.0);
  EXPECT_EQ(StopDaemon(), 0) << ReadFile(DaemonLog());
}

}  // namespace
}  // namespace cdcjoin::testing
