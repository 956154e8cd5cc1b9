#include "common/terminal_text.hpp"

#include <cstdint>
#include <iterator>

#include <fmt/format.h>

#include "common/message_text.hpp"

namespace tessenger::app {
namespace {

bool printable_ascii(std::string_view text) noexcept {
  for (const char c : text) {
    const auto byte = static_cast<std::uint8_t>(c);
    if (byte < 0x20 || byte >= 0x7f) return false;
  }
  return true;
}

// Code points that change how the surrounding text is laid out or read.
bool hidden_effect(std::uint32_t point) noexcept {
  return (point >= 0x80 && point <= 0x9f) || point == 0x061c || point == 0x200e ||
         point == 0x200f || (point >= 0x2028 && point <= 0x202e) ||
         (point >= 0x2066 && point <= 0x2069);
}

}  // namespace

std::string terminal_safe(std::string_view text) {
  if (printable_ascii(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  while (!text.empty()) {
    const auto byte = static_cast<std::uint8_t>(text[0]);
    if (byte < 0x20 || byte == 0x7f) {
      out.push_back('^');
      out.push_back(static_cast<char>(byte ^ 0x40));
      text.remove_prefix(1);
      continue;
    }
    std::uint32_t point = 0;
    const auto length = utf8_sequence(text, point);
    if (length == 0) {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", byte);
      text.remove_prefix(1);
      continue;
    }
    if (hidden_effect(point)) {
      fmt::format_to(std::back_inserter(out), "\\u{{{:x}}}", point);
    } else {
      out.append(text.substr(0, length));
    }
    text.remove_prefix(length);
  }
  return out;
}

}  // namespace tessenger::app
