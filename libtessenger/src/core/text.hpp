#pragma once

// Validation of names and message text (SPEC §3, §4). Pure functions.

#include <optional>
#include <string_view>

namespace tessenger::core {

/// 1-32 characters of A-Z a-z 0-9 _ - . (SPEC §3).
bool is_valid_username(std::string_view name, std::size_t max_length = 32) noexcept;

/// 1-32 ASCII letters and digits (SPEC §4).
bool is_valid_group_name(std::string_view name, std::size_t max_length = 32) noexcept;

/// True if `text` holds no control character (C0, DEL, C1), line or
/// paragraph separator, or bidi embedding, override or isolate: nothing that
/// can break a line or make a reader see something else. Every text field
/// the server forwards must pass. The input must already be UTF-8.
bool is_safe_text(std::string_view text) noexcept;

/// Message text with surrounding blanks trimmed, or nothing if it is empty
/// after trimming, longer than `max_bytes`, or not is_safe_text (so it is
/// always one line). The input must already be UTF-8.
std::optional<std::string_view> clean_text(std::string_view text, std::size_t max_bytes) noexcept;

}  // namespace tessenger::core
