#ifndef CDCJOIN_TESTS_SUPPORT_REFERENCE_MODEL_H_
#define CDCJOIN_TESTS_SUPPORT_REFERENCE_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/cdcjoin/v1/config.pb.h"
#include "tests/support/seed_workload.h"

namespace cdcjoin::testing {

// A target row: column name -> SQL text (nullopt: NULL). Key columns are not included.
using ModelRow = std::map<std::string, std::optional<std::string>>;
// The target table by key.
using ModelTable = std::map<int64_t, ModelRow>;

// The judge of every end-to-end result (DESIGN.md, Convergence): the expected target table,
// computed from the records' meanings with nothing of the service's code. Records apply in the
// given order with the SQL semantics the design promises: an upsert inserts every mapped
// column of its source when the key is absent and otherwise updates only the columns not
// marked insert_only; skip_event_if_null skips the event; deletes follow the source's policy
// (IGNORE, CLEAR_COLUMNS of its updatable columns, DELETE_ROW); tombstones, skipped ops and
// poison records change nothing.
//
// The service consumes the two topics concurrently, so only the order within each key of each
// source is fixed. For the seed workload the result does not depend on how the two sources
// interleave (each updatable column has one owner, insert-only values are overwritten by their
// owner, nothing deletes whole rows), which is what makes this model a valid judge there.
ModelTable ComputeExpectedTable(const v1::Config& config, const std::vector<SeedRecord>& records);

// Human-readable differences (at most `limit`), empty when equal.
std::vector<std::string> DiffTables(const ModelTable& expected, const ModelTable& actual,
                                    size_t limit = 10);

}  // namespace cdcjoin::testing

#endif  // CDCJOIN_TESTS_SUPPORT_REFERENCE_MODEL_H_
