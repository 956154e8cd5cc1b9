#pragma once

#include <string_view>

namespace tessenger::protocol {

/// Strict UTF-8 (RFC 3629): rejects overlong forms, surrogates (U+D800-U+DFFF),
/// code points above U+10FFFF, stray continuation bytes and truncated sequences.
bool valid_utf8(std::string_view text) noexcept;

}  // namespace tessenger::protocol
