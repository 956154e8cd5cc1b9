#pragma once

#include <string>
#include <string_view>

namespace tessenger::app {

/// `text` made safe to show on a terminal: whatever a server or peer sent,
/// nothing in it can move the cursor, change the terminal's state, start a
/// line of its own or reorder what is shown around it. Each of these is
/// replaced by a visible escape:
///
/// - C0 controls and DEL in caret notation: ESC -> `^[`, LF -> `^J`, DEL -> `^?`;
/// - C1 controls (U+0080-U+009F), U+061C, U+200E, U+200F, the line and
///   paragraph separators U+2028, U+2029 and the bidi embeddings, overrides
///   and isolates U+202A-U+202E, U+2066-U+2069 as `\u{202e}` (hex, lowercase);
/// - bytes that are not UTF-8 as `\xff`.
///
/// Everything else, zero-width joiners and emoji included, is kept. The
/// escapes are for reading only: a text that already holds `^[` or `\u{...}`
/// shows the same.
std::string terminal_safe(std::string_view text);

}  // namespace tessenger::app
