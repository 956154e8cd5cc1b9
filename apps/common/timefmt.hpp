#pragma once

#include <string>

#include <tessenger/protocol.hpp>

namespace tessenger::app {

/// Microseconds since the epoch as `%d %B %Y %H:%M:%S` in local time
/// (SPEC §4), e.g. "10 November 2023 20:57:10".
std::string format_timestamp(protocol::Timestamp timestamp);

}  // namespace tessenger::app
