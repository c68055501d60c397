#include "tests/support/reference_model.h"

#include "absl/strings/str_cat.h"

namespace cdcjoin::testing {
namespace {

std::string Show(const std::optional<std::string>& value) {
  return value.has_value() ? absl::StrCat("'", *value, "'") : "NULL";
}

std::string Show(const ModelRow& row) {
  std::string out = "{";
  for (const auto& [column, value] : row) absl::StrAppend(&out, column, "=", Show(value), " ");
  return out + "}";
}

}  // namespace

ModelTable ComputeExpectedTable(const v1::Config& config, const std::vector<SeedRecord>& records) {
  // Every column any source maps: a new row has them all, NULL where nobody wrote.
  ModelRow empty_row;
  for (const v1::SourceConfig& source : config.sources()) {
    for (const v1::ColumnMapping& column : source.columns()) empty_row[column.to()] = std::nullopt;
  }
  ModelTable table;
  for (const SeedRecord& record : records) {
    const v1::SourceConfig& source = config.sources(record.source);
    if (record.op == 'r' || record.op == 'c' || record.op == 'u') {
      bool skip = false;
      for (const v1::ColumnMapping& column : source.columns()) {
        if (column.skip_event_if_null() && !record.fields.at(column.from()).has_value()) {
          skip = true;
        }
      }
      if (skip) continue;
      auto [row, inserted] = table.try_emplace(record.user_id, empty_row);
      for (const v1::ColumnMapping& column : source.columns()) {
        if (inserted || !column.insert_only()) {
          row->second[column.to()] = record.fields.at(column.from());
        }
      }
    } else if (record.op == 'd') {
      switch (source.on_delete()) {
        case v1::DELETE_ROW:
          table.erase(record.user_id);
          break;
        case v1::CLEAR_COLUMNS: {
          auto row = table.find(record.user_id);
          if (row == table.end()) break;
          for (const v1::ColumnMapping& column : source.columns()) {
            if (!column.insert_only()) row->second[column.to()] = std::nullopt;
          }
          break;
        }
        default:
          break;
      }
    }
  }
  return table;
}

std::vector<std::string> DiffTables(const ModelTable& expected, const ModelTable& actual,
                                    size_t limit) {
  std::vector<std::string> diffs;
  size_t total = 0;
  auto note = [&](std::string line) {
    if (diffs.size() < limit) diffs.push_back(std::move(line));
    ++total;
  };
  for (const auto& [key, row] : expected) {
    auto it = actual.find(key);
    if (it == actual.end()) {
      note(absl::StrCat("key ", key, ": missing, expected ", Show(row)));
    } else if (it->second != row) {
      note(absl::StrCat("key ", key, ": expected ", Show(row), " got ", Show(it->second)));
    }
  }
  for (const auto& [key, row] : actual) {
    if (expected.count(key) == 0) note(absl::StrCat("key ", key, ": unexpected ", Show(row)));
  }
  if (total > diffs.size()) diffs.push_back(absl::StrCat("... ", total - diffs.size(), " more"));
  return diffs;
}

}  // namespace cdcjoin::testing
