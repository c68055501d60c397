#ifndef CDCJOIN_JOIN_ROW_VERSION_H_
#define CDCJOIN_JOIN_ROW_VERSION_H_

// A source's version of a target row: what the stale-write guard stores in the source's version
// column and compares before letting a write of that source change the row.
//
//   std::string v = RowVersionOf(event);          // "2000000042000000001234100000030"
//   if (IsNewerRowVersion(v, stored)) apply(...);  // the SQL does the same with DECIMALs
//
// A version is 30 decimal digits, zero-padded, so comparing the strings compares the numbers,
// and the same text is the value of a DECIMAL(30,0) UNSIGNED column, which the database compares
// exactly (a BIGINT cannot hold the binlog coordinates; a DOUBLE would round them):
//
//   binlog:  2 FFFFFFFFF PPPPPPPPPPPP S RRRRRR D   file number (9), pos (12), S: 0 snapshot read
//                                                   (op r), 1 streamed; row (6)
//   offset:  1 OOOOOOOOOOOOOOOOOOO 000000000 D      the Kafka offset (19), for events without a
//                                                   usable binlog position
//   D (last digit): 1 when the version was written by a delete of the source, else 0.
//
// Why this order is right: one MariaDB/MySQL server writes its binlog in commit order, files
// numbered upwards, positions growing inside a file, rows numbered inside a rows event, so
// (file, pos, row) orders every change of the server. A snapshot reads rows as of the binlog
// position it then streams from, so at equal (file, pos) the snapshot's read comes first. GTIDs
// are not used: MariaDB GTIDs of different domains (and MySQL GTIDs of different servers) are
// not ordered against each other. The Kafka offset orders one partition, and Debezium sends all
// changes of a key to one partition. The two kinds never compare meaningfully with each other:
// a binlog version is always newer than an offset version (docs/operations.md lists the limits).

#include <cstdint>
#include <string>

#include "join/change_event.h"

namespace cdcjoin {

inline constexpr int kRowVersionDigits = 30;
// The largest values the binlog layout holds; a position beyond them is not usable.
inline constexpr uint64_t kMaxBinlogFileNumber = 999999999ull;
inline constexpr uint64_t kMaxBinlogPosition = 999999999999ull;
inline constexpr uint64_t kMaxBinlogRow = 999999ull;

// The version an event of a source gives that source's columns: from event.binlog when set
// (and within the limits above), else from event.position.offset. Deleted for a kDelete.
std::string RowVersionOf(const ChangeEvent& event);

// Whether `candidate` is strictly newer than `stored` (both built by RowVersionOf; an empty
// `stored` is no version at all, so anything is newer).
bool IsNewerRowVersion(const std::string& candidate, const std::string& stored);

}  // namespace cdcjoin

#endif  // CDCJOIN_JOIN_ROW_VERSION_H_
