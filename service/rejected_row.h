#ifndef CDCJOIN_SERVICE_REJECTED_ROW_H_
#define CDCJOIN_SERVICE_REJECTED_ROW_H_

// What a dead letter carries for a row the sink could not apply (the database refused it, or the
// operator took it out): the row as JSON, since by then the events it came from are decoded and
// merged. Their source positions go in the dead letter's headers; the records themselves stay in
// the source topic.
//
//   {"table":"users","command":"upsert","key":{"id":7},"columns":{"name":"x","age":null}}

#include <string>

#include "join/row_command.h"
#include "join/table_schema.h"

namespace cdcjoin {

// `command` as a JSON object: table, command (upsert, clear, delete), key and the columns it
// writes (a clear's columns are null). Text is escaped as JSON strings; bytes that are not UTF-8
// pass through unchanged.
std::string RejectedRowJson(const RowCommand& command, const TableSchema& schema);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_REJECTED_ROW_H_
