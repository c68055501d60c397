#ifndef CDCJOIN_STORAGE_MYSQL_WRITER_H_
#define CDCJOIN_STORAGE_MYSQL_WRITER_H_

// MySqlWriter applies a lane's row commands to the target table of MySQL/MariaDB, one batch per
// transaction, through mysql-connector-c++ 1.1. No exception leaves it: every connector error
// becomes an absl::Status classified by storage/retry_classifier.
//
//   absl::StatusOr<std::unique_ptr<MySqlWriter>> writer = MySqlWriter::Connect(options, &schema);
//   absl::Status status = (*writer)->Apply(batch);   // all or nothing
//   if (IsRetriable(status)) { back off; (*writer)->Apply(batch); }  // reconnects by itself

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "join/row_command.h"
#include "join/row_writer.h"
#include "join/table_schema.h"
#include "proto/cdcjoin/v1/config.pb.h"
#include "storage/mysql_connection.h"

namespace cdcjoin {

// Counters since Connect, for status pages and benchmarks.
struct MySqlWriterStats {
  uint64_t transactions = 0;         // Committed.
  uint64_t failed_transactions = 0;  // Rolled back (or lost) on an error.
  uint64_t statements = 0;           // Executed inside committed transactions.
  uint64_t rows = 0;                 // Rows those statements carried (after collapsing).
  uint64_t commands = 0;             // Row commands given to successful Apply calls.
  uint64_t deadlocks = 0;            // 1213 seen.
  uint64_t lock_wait_timeouts = 0;   // 1205 seen.
  uint64_t reconnects = 0;           // Connections opened after the first one.
  // Stale-write guard: (row, source) writes not applied because the row held a version of
  // that source at least as new, in committed transactions (storage/statement_sql.h says why
  // the count is exact), plus stale commands the batch's reduction folded away.
  uint64_t stale_writes_stopped = 0;
};

class MySqlWriter : public RowWriter {
 public:
  // Opens the connection and checks nothing else: the table is created by whoever owns the
  // database. `schema` must outlive the writer. Fails with the classified status when the
  // server cannot be reached (kUnavailable with the code: retriable).
  static absl::StatusOr<std::unique_ptr<MySqlWriter>> Connect(const MySqlOptions& options,
                                                              const TableSchema* schema);

  // Opens one writer per call: what the sink lanes connect through. `schema` must outlive it.
  static std::function<absl::StatusOr<std::unique_ptr<RowWriter>>()> Factory(
      MySqlOptions options, const TableSchema* schema);

  ~MySqlWriter() override;
  MySqlWriter(const MySqlWriter&) = delete;
  MySqlWriter& operator=(const MySqlWriter&) = delete;

  // Applies the commands (consumption order) in one transaction built by join/batch_plan:
  // multi-row `INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c)` for the update-on-conflict
  // columns (insert-only columns only in the VALUES list), `UPDATE ... SET c = NULL WHERE key`
  // for clears, `DELETE ... WHERE key` for deletes, rows in key order, every value a bound
  // parameter; with the stale-write guard, the guarded forms of storage/statement_sql.h. On error the transaction is rolled back and the classified status returned; after
  // a connection error the next call reconnects first, so the caller just retries.
  // A connection lost during COMMIT leaves unknown whether the batch committed; the retry then
  // applies it again (at-least-once, like any replay after a crash).
  // An empty batch does nothing and succeeds. REQUIRES: one caller at a time.
  absl::Status Apply(const std::vector<RowCommand>& commands) override;

  // Thread-safe.
  MySqlWriterStats Stats() const;

  int64_t TakeStaleWritesStopped() override;

 private:
  class Impl;
  explicit MySqlWriter(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  uint64_t stale_writes_reported_ = 0;  // By TakeStaleWritesStopped (the caller's thread).
};

}  // namespace cdcjoin

#endif  // CDCJOIN_STORAGE_MYSQL_WRITER_H_
