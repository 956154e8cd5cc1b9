#pragma once

#include <string>

#include <tessenger/export.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger {

/// Renders microseconds since the epoch as `%d %B %Y %H:%M:%S` in local time,
/// the form SPEC §4 and §5 use in replies and logs, e.g.
/// "10 November 2023 20:57:10". Times before the epoch round down.
TESSENGER_EXPORT std::string format_timestamp(protocol::Timestamp timestamp);

}  // namespace tessenger
