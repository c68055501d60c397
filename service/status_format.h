#ifndef CDCJOIN_SERVICE_STATUS_FORMAT_H_
#define CDCJOIN_SERVICE_STATUS_FORMAT_H_

// How cdcjoinctl shows a daemon's Status to a person: the status table, the live view redrawn on
// a terminal, and the one-line form for logs and scripts.

#include <string>

#include "proto/cdcjoin/v1/admin.pb.h"

namespace cdcjoin {

// A State as shown: its name, UNKNOWN when unset.
std::string StateName(v1::State state);
// `cdcjoinctl status`: columns sized to the longest source and topic names.
std::string FormatStatus(const v1::Status& status, const std::string& address);
// `cdcjoinctl watch` on a terminal: a block redrawn in place.
std::string WatchFrame(const v1::Status& status, const std::string& address);
// `cdcjoinctl watch` elsewhere: one line per update.
std::string WatchLine(const v1::Status& status);
// RUNNING, assigned, and every partition at lag 0 (`watch --until_caught_up`).
bool CaughtUp(const v1::Status& status);

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_STATUS_FORMAT_H_
