#pragma once

#include <cstddef>
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

}  // namespace tessenger::app
