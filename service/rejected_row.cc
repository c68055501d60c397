#include "service/rejected_row.h"

#include <cmath>
#include <cstdio>
#include <variant>

#include "absl/strings/str_cat.h"

namespace cdcjoin {
namespace {

void AppendJsonString(const std::string& text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned char>(c));
          out->append(escaped);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendJsonValue(const Value& value, std::string* out) {
  if (const int64_t* i = std::get_if<int64_t>(&value)) {
    absl::StrAppend(out, *i);
  } else if (const double* d = std::get_if<double>(&value)) {
    // JSON has no NaN or infinity: those go as text rather than as an invalid document.
    if (std::isfinite(*d)) {
      absl::StrAppend(out, *d);
    } else {
      AppendJsonString(absl::StrCat(*d), out);
    }
  } else if (const std::string* s = std::get_if<std::string>(&value)) {
    AppendJsonString(*s, out);
  } else {
    out->append("null");
  }
}

}  // namespace

std::string RejectedRowJson(const RowCommand& command, const TableSchema& schema) {
  std::string out = "{\"table\":";
  AppendJsonString(schema.table, &out);
  absl::StrAppend(&out, ",\"command\":\"", RowCommandKindName(command.kind), "\",\"key\":{");
  for (size_t i = 0; i < command.key.size() && i < schema.key_columns.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(schema.key_columns[i], &out);
    out.push_back(':');
    AppendJsonValue(command.key[i], &out);
  }
  out.append("},\"columns\":{");
  bool first = true;
  for (const ColumnWrite& write : command.writes) {
    if (write.column < 0 || write.column >= static_cast<int>(schema.columns.size())) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(schema.columns[write.column], &out);
    out.push_back(':');
    AppendJsonValue(command.kind == RowCommandKind::kClear ? Value() : write.value, &out);
  }
  out.append("}}");
  return out;
}

}  // namespace cdcjoin
