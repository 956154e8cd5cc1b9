#include "common/message_text.hpp"

#include <cstdint>

namespace tessenger::app {

std::size_t utf8_sequence(std::string_view text, std::uint32_t& point) noexcept {
  if (text.empty()) return 0;
  const auto lead = static_cast<std::uint8_t>(text[0]);
  std::size_t length = 0;
  if (lead < 0x80) {
    point = lead;
    return 1;
  }
  if ((lead & 0xe0) == 0xc0) {
    length = 2;
    point = lead & 0x1fu;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    point = lead & 0x0fu;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    point = lead & 0x07u;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    const auto next = static_cast<std::uint8_t>(text[k]);
    if ((next & 0xc0) != 0x80) return 0;
    point = (point << 6) | (next & 0x3fu);
  }
  constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (point < smallest[length] || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) {
    return 0;
  }
  return length;
}

bool is_utf8(std::string_view text) noexcept {
  std::uint32_t point = 0;
  while (!text.empty()) {
    const auto length = utf8_sequence(text, point);
    if (length == 0) return false;
    text.remove_prefix(length);
  }
  return true;
}

std::variant<std::string, TextProblem> clean_message(std::string_view text, std::size_t max_bytes) {
  constexpr std::string_view blanks = " \t";
  const auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) return TextProblem::empty;
  text = text.substr(first, text.find_last_not_of(blanks) - first + 1);
  if (!is_utf8(text)) return TextProblem::not_utf8;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<std::uint8_t>(text[i]);
    // C0 and DEL, and C1 (U+0080..U+009F, encoded C2 80..C2 9F).
    const bool c1 =
        byte == 0xc2 && i + 1 < text.size() && static_cast<std::uint8_t>(text[i + 1]) <= 0x9f;
    if (byte < 0x20 || byte == 0x7f || c1) return TextProblem::control_character;
  }
  if (text.size() > max_bytes) return TextProblem::too_long;
  return std::string(text);
}

std::string_view describe(TextProblem problem) noexcept {
  switch (problem) {
    case TextProblem::empty:
      return "Message is empty.";
    case TextProblem::too_long:
      return "Message is too long: at most 4096 bytes.";
    case TextProblem::not_utf8:
      return "Message is not valid UTF-8.";
    case TextProblem::control_character:
      return "Message contains control characters.";
  }
  return "Invalid message.";
}

}  // namespace tessenger::app
