#include "common/timefmt.hpp"

#include <ctime>

namespace tessenger::app {

std::string format_timestamp(protocol::Timestamp timestamp) {
  // Floor, so a time just before the epoch does not round up a second.
  auto seconds = timestamp / 1'000'000;
  if (timestamp < 0 && timestamp % 1'000'000 != 0) --seconds;
  const auto time = static_cast<std::time_t>(seconds);
  std::tm local{};
  localtime_r(&time, &local);
  char text[64];
  const auto length = std::strftime(text, sizeof text, "%d %B %Y %H:%M:%S", &local);
  return std::string(text, length);
}

}  // namespace tessenger::app
