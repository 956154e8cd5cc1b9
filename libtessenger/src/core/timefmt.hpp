#pragma once

#include <string_view>

#include <tessenger/protocol.hpp>

namespace tessenger::core {

/// tessenger::format_timestamp for the log writer: caches the last second, as
/// bursts of messages share it. The view is valid until the next call on the
/// same thread.
std::string_view format_timestamp_cached(protocol::Timestamp timestamp);

}  // namespace tessenger::core
