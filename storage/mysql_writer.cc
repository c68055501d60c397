#include "storage/mysql_writer.h"

#include <cppconn/connection.h>
#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>

#include <algorithm>
#include <exception>
#include <map>
#include <utility>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "join/batch_plan.h"
#include "storage/statement_sql.h"
#include "storage/retry_classifier.h"

namespace cdcjoin {
namespace {

// MySQL's limit on placeholders in one prepared statement.
constexpr size_t kMaxPlaceholders = 65535;

constexpr int kErLockDeadlock = 1213;
constexpr int kErLockWaitTimeout = 1205;

void Bind(sql::PreparedStatement* statement, unsigned int position, const Value& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) {
    statement->setInt64(position, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    statement->setDouble(position, *d);
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    statement->setString(position, sql::SQLString(*s));
  } else {
    statement->setNull(position, sql::DataType::VARCHAR);
  }
}

absl::Status FromException(const sql::SQLException& e, absl::string_view context) {
  return MySqlErrorToStatus(e.getErrorCode(), e.getSQLState(), e.what(), context);
}

}  // namespace

class MySqlWriter::Impl {
 public:
  Impl(const MySqlOptions& options, const TableSchema* schema)
      : options_(options), schema_(schema) {
    // Every row binds the key and at most every non-key column (and, with the stale-write
    // guard, every source's version).
    const size_t per_row = schema_->key_columns.size() + schema_->columns.size() +
                           (schema_->stale_write_guard ? schema_->sources.size() : 0);
    max_rows_ = std::max<size_t>(1, std::min(options_.max_rows_per_statement,
                                             kMaxPlaceholders / std::max<size_t>(1, per_row)));
  }

  ~Impl() { DropConnection(); }

  absl::Status Open() {
    DropConnection();
    const std::string where = absl::StrCat("connect to ", options_.host, ":", options_.port);
    absl::StatusOr<std::unique_ptr<sql::Connection>> opened = OpenMySqlConnection(options_);
    if (!opened.ok()) return opened.status();
    std::unique_ptr<sql::Connection> connection = *std::move(opened);
    try {
      connection->setAutoCommit(false);
      if (options_.read_committed) {
        connection->setTransactionIsolation(sql::TRANSACTION_READ_COMMITTED);
      }
      if (options_.lock_wait_timeout_s > 0) {
        std::unique_ptr<sql::Statement> statement(connection->createStatement());
        statement->execute(absl::StrCat("SET SESSION innodb_lock_wait_timeout = ",
                                        options_.lock_wait_timeout_s));
      }
      connection_ = std::move(connection);
    } catch (const sql::SQLException& e) {
      return FromException(e, where);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat(where, ": ", e.what()));
    }
    if (opened_once_) {
      absl::MutexLock lock(&stats_mu_);
      ++stats_.reconnects;
    }
    opened_once_ = true;
    return absl::OkStatus();
  }

  absl::Status Apply(const std::vector<RowCommand>& commands) {
    if (commands.empty()) return absl::OkStatus();
    if (connection_ == nullptr) {
      absl::Status status = Open();
      if (!status.ok()) {
        CountFailure(status);
        return status;
      }
    }

    BatchPlan plan = PlanBatch(commands, BatchPlanOptions{max_rows_});
    size_t statements = 0;
    int64_t stale_refused = 0;
    std::string context;
    try {
      if (schema_->stale_write_guard) {
        context = "reset the stale-write counter";
        Statement()->execute(absl::StrCat("SET ", kStaleCounter, " = 0"));
      }
      for (size_t round = 0; round < plan.rounds.size(); ++round) {
        for (const PlannedStatement& planned : plan.rounds[round]) {
          context = absl::StrCat(RowCommandKindName(planned.shape.kind), " of ",
                                 planned.rows.size(), " rows into `", schema_->table,
                                 "` (round ", round, ")");
          statements += Execute(planned);
        }
      }
      if (schema_->stale_write_guard) {
        // Read inside the transaction: once COMMIT succeeds, the count is of committed work.
        context = "read the stale-write counter";
        std::unique_ptr<sql::ResultSet> result(
            Statement()->executeQuery(absl::StrCat("SELECT ", kStaleCounter)));
        if (result->next()) stale_refused = result->getInt64(1);
      }
      context = "commit";
      connection_->commit();
    } catch (const sql::SQLException& e) {
      return Fail(FromException(e, context));
    } catch (const std::exception& e) {
      // Not from the server (bad_alloc, a connector invariant): the connection's state is
      // unknown, so it is replaced (closing it rolls the transaction back).
      absl::Status status = absl::InternalError(absl::StrCat(context, ": ", e.what()));
      CountFailure(status);
      DropConnection();
      return status;
    }

    absl::MutexLock lock(&stats_mu_);
    ++stats_.transactions;
    stats_.statements += statements;
    stats_.rows += plan.RowCount();
    stats_.commands += commands.size();
    stats_.stale_writes_stopped += static_cast<uint64_t>(stale_refused) + plan.stale_folded;
    return absl::OkStatus();
  }

  MySqlWriterStats Stats() const {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  // Runs the SQL of one planned statement; returns how many statements that took.
  size_t Execute(const PlannedStatement& planned) {
    std::vector<SqlStatement> sql = PlannedStatementSql(*schema_, planned);
    for (const SqlStatement& one : sql) {
      sql::PreparedStatement* statement = Prepared(one.text);
      unsigned int position = 1;
      for (const Value& value : one.parameters) Bind(statement, position++, value);
      statement->executeUpdate();
    }
    return sql.size();
  }

  sql::PreparedStatement* Prepared(const std::string& text) {
    auto it = statements_.find(text);
    if (it != statements_.end()) return it->second.get();
    if (statements_.size() >= options_.max_cached_statements) statements_.clear();
    std::unique_ptr<sql::PreparedStatement> statement(connection_->prepareStatement(text));
    return statements_.emplace(text, std::move(statement)).first->second.get();
  }

  sql::Statement* Statement() {
    if (plain_statement_ == nullptr) plain_statement_.reset(connection_->createStatement());
    return plain_statement_.get();
  }

  // Rolls back what the failed transaction did and decides whether the connection survives.
  absl::Status Fail(absl::Status status) {
    CountFailure(status);
    if (NeedsReconnect(status)) {
      DropConnection();
      return status;
    }
    try {
      connection_->rollback();
    } catch (const sql::SQLException&) {
      // A connection that cannot even roll back is replaced; the server rolls back the
      // transaction when the connection closes.
      DropConnection();
    }
    return status;
  }

  void CountFailure(const absl::Status& status) {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.failed_transactions;
    const std::optional<int> code = MySqlErrorCode(status);
    if (code == kErLockDeadlock) ++stats_.deadlocks;
    if (code == kErLockWaitTimeout) ++stats_.lock_wait_timeouts;
  }

  // Prepared statements belong to their connection and must go first.
  void DropConnection() {
    statements_.clear();
    plain_statement_.reset();
    connection_.reset();
  }

  const MySqlOptions options_;
  const TableSchema* const schema_;
  size_t max_rows_ = 1;
  bool opened_once_ = false;

  // Touched only by the (single) calling thread.
  std::unique_ptr<sql::Connection> connection_;
  std::map<std::string, std::unique_ptr<sql::PreparedStatement>> statements_;  // By SQL text.
  std::unique_ptr<sql::Statement> plain_statement_;

  mutable absl::Mutex stats_mu_;
  MySqlWriterStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

absl::StatusOr<std::unique_ptr<MySqlWriter>> MySqlWriter::Connect(const MySqlOptions& options,
                                                                  const TableSchema* schema) {
  if (schema == nullptr) return absl::InvalidArgumentError("MySqlWriter: schema is null");
  if (schema->table.empty()) return absl::InvalidArgumentError("MySqlWriter: schema has no table");
  if (schema->key_columns.empty()) {
    return absl::InvalidArgumentError("MySqlWriter: schema has no key columns");
  }
  auto impl = std::make_unique<Impl>(options, schema);
  absl::Status status = impl->Open();
  if (!status.ok()) return status;
  return std::unique_ptr<MySqlWriter>(new MySqlWriter(std::move(impl)));
}

MySqlWriter::MySqlWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MySqlWriter::~MySqlWriter() = default;

absl::Status MySqlWriter::Apply(const std::vector<RowCommand>& commands) {
  return impl_->Apply(commands);
}

int64_t MySqlWriter::TakeStaleWritesStopped() {
  const uint64_t now = impl_->Stats().stale_writes_stopped;
  const int64_t delta = static_cast<int64_t>(now - stale_writes_reported_);
  stale_writes_reported_ = now;
  return delta;
}

MySqlWriterStats MySqlWriter::Stats() const { return impl_->Stats(); }

std::function<absl::StatusOr<std::unique_ptr<RowWriter>>()> MySqlWriter::Factory(
    MySqlOptions options, const TableSchema* schema) {
  return [options = std::move(options), schema]() -> absl::StatusOr<std::unique_ptr<RowWriter>> {
    absl::StatusOr<std::unique_ptr<MySqlWriter>> writer = Connect(options, schema);
    if (!writer.ok()) return writer.status();
    return std::unique_ptr<RowWriter>(*std::move(writer));
  };
}

}  // namespace cdcjoin
