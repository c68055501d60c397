#ifndef CDCJOIN_SERVICE_VERSION_H_
#define CDCJOIN_SERVICE_VERSION_H_

namespace cdcjoin {

// The release of cdcjoind and cdcjoinctl; the admin API reports it.
inline constexpr char kVersion[] = "0.1.0";

}  // namespace cdcjoin

#endif  // CDCJOIN_SERVICE_VERSION_H_
