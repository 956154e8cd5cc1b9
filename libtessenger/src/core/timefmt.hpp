#pragma once

#include <string_view>

#include <tessenger/protocol.hpp>

namespace tessenger::core {

/// Renders microseconds since the epoch as `%d %B %Y %H:%M:%S` in local time
/// (SPEC §4), e.g. "10 November 2023 20:57:10". Caches the last second, as
/// bursts of messages share it; the view is valid until the next call on the
/// same thread.
std::string_view format_timestamp(protocol::Timestamp timestamp);

}  // namespace tessenger::core
