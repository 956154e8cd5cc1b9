#pragma once

// The Lua scripts of RedisStore: every operation that checks and changes
// state is one script, so it runs atomically in one round trip. Each takes
// no KEYS and the key prefix as ARGV[1]; the key layout is described at the
// top of redis_store.cpp.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace tessenger::cluster {

enum class Script : std::size_t {
  create_group,
  join_group,
  leave_group,
  delete_group,
  append_group,
  append_direct,
  missed,
  delivered,
  history,
  is_blocked,
  login_failed,
  login_succeeded,
  retention,
  count_,
};

inline constexpr std::size_t script_count = static_cast<std::size_t>(Script::count_);

/// The full source of `script` (the shared helpers, then its body).
const std::string& script_source(Script script);

/// Its name, for messages.
std::string_view script_name(Script script);

}  // namespace tessenger::cluster
