#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace tessenger::app {

/// Why a message text was refused before it was sent.
enum class TextProblem { empty, too_long, not_utf8, control_character };

/// The text with surrounding blanks trimmed, or why it cannot be sent
/// (SPEC §4: UTF-8, one line, 1 to `max_bytes` bytes after trimming, no
/// control characters).
std::variant<std::string, TextProblem> clean_message(std::string_view text,
                                                     std::size_t max_bytes = 4096);

/// One clear line for the CLI.
std::string_view describe(TextProblem problem) noexcept;

/// Strict UTF-8: no overlong forms, surrogates or values past U+10FFFF.
bool is_utf8(std::string_view text) noexcept;

/// The length of the strict UTF-8 sequence `text` starts with, its code
/// point in `point`; 0 if it does not start with one (or is empty).
std::size_t utf8_sequence(std::string_view text, std::uint32_t& point) noexcept;

}  // namespace tessenger::app
