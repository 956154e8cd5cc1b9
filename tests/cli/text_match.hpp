#pragma once

// Matching output lines that hold timestamps, without std::regex (whose
// g++ 12 -O2 instantiation trips -Wmaybe-uninitialized under -Werror).

#include <array>
#include <cctype>
#include <optional>
#include <string_view>

namespace tessenger::testing {

namespace detail {

inline bool digits(std::string_view& text, std::size_t count) {
  if (text.size() < count) return false;
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  text.remove_prefix(count);
  return true;
}

inline bool literal(std::string_view& text, std::string_view expected) {
  if (!text.starts_with(expected)) return false;
  text.remove_prefix(expected.size());
  return true;
}

// `%d %B %Y %H:%M:%S`, e.g. "10 November 2023 20:57:10".
inline bool timestamp(std::string_view& text) {
  static constexpr std::array<std::string_view, 12> months = {
      "January", "February", "March",     "April",   "May",      "June",
      "July",    "August",   "September", "October", "November", "December"};
  if (!digits(text, 2) || !literal(text, " ")) return false;
  bool month = false;
  for (auto name : months) {
    if (literal(text, name)) {
      month = true;
      break;
    }
  }
  return month && literal(text, " ") && digits(text, 4) && literal(text, " ") && digits(text, 2) &&
         literal(text, ":") && digits(text, 2) && literal(text, ":") && digits(text, 2);
}

}  // namespace detail

/// What follows `pattern` at the start of `text`, where `{TS}` stands for a
/// timestamp and `{N}` for one or more digits and the rest is literal;
/// nothing if `text` does not start that way.
inline std::optional<std::string_view> after_prefix(std::string_view text,
                                                    std::string_view pattern) {
  while (!pattern.empty()) {
    if (pattern.starts_with("{TS}")) {
      if (!detail::timestamp(text)) return std::nullopt;
      pattern.remove_prefix(4);
    } else if (pattern.starts_with("{N}")) {
      if (!detail::digits(text, 1)) return std::nullopt;
      while (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front()))) {
        text.remove_prefix(1);
      }
      pattern.remove_prefix(3);
    } else {
      if (text.empty() || text.front() != pattern.front()) return std::nullopt;
      text.remove_prefix(1);
      pattern.remove_prefix(1);
    }
  }
  return text;
}

/// True if all of `text` matches `pattern` (see after_prefix).
inline bool matches(std::string_view text, std::string_view pattern) {
  const auto rest = after_prefix(text, pattern);
  return rest && rest->empty();
}

}  // namespace tessenger::testing
