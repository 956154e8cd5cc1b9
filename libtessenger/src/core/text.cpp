#include "core/text.hpp"

#include <cstdint>

namespace tessenger::core {
namespace {

bool is_ascii_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool is_valid_username(std::string_view name, std::size_t max_length) noexcept {
  if (name.empty() || name.size() > max_length) return false;
  for (char c : name) {
    if (!is_ascii_alnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

bool is_valid_group_name(std::string_view name, std::size_t max_length) noexcept {
  if (name.empty() || name.size() > max_length) return false;
  for (char c : name) {
    if (!is_ascii_alnum(c)) return false;
  }
  return true;
}

bool is_safe_text(std::string_view text) noexcept {
  // Printable ASCII, by far the common case, is settled in one branch-free
  // pass the compiler vectorises; only other text needs the byte-wise scan.
  std::uint8_t outside = 0;
  for (const char c : text)
    outside |= static_cast<std::uint8_t>(static_cast<std::uint8_t>(c) - 0x20) >= 0x5f;
  if (outside == 0) return true;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) return false;
    // U+0080..U+009F are encoded as C2 80..C2 9F.
    if (byte == 0xc2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9f) return false;
    }
    // Line and paragraph separators (U+2028, U+2029) break a message into
    // lines; bidi embeddings, overrides and isolates (U+202A..U+202E,
    // U+2066..U+2069) reorder what follows them on the reader's screen, so a
    // name or an extension can be shown as something else. Both are refused
    // like control characters. Zero-width characters (U+200B..U+200D, U+FEFF)
    // are allowed: emoji sequences and some scripts need them; clients show
    // them safely.
    if (byte == 0xe2 && i + 2 < text.size()) {
      const auto second = static_cast<unsigned char>(text[i + 1]);
      const auto third = static_cast<unsigned char>(text[i + 2]);
      if (second == 0x80 && third >= 0xa8 && third <= 0xae) return false;
      if (second == 0x81 && third >= 0xa6 && third <= 0xa9) return false;
    }
  }
  return true;
}

std::optional<std::string_view> clean_text(std::string_view text, std::size_t max_bytes) noexcept {
  constexpr std::string_view blanks = " \t";
  const auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) return std::nullopt;
  text = text.substr(first, text.find_last_not_of(blanks) - first + 1);
  if (text.size() > max_bytes || !is_safe_text(text)) return std::nullopt;
  return text;
}

}  // namespace tessenger::core
