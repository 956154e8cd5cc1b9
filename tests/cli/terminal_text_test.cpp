// What the client prints of network text: terminal_safe() and the Console
// line path that applies it. No sockets.

#include <doctest/doctest.h>

#include <string>

#include <unistd.h>

#include "common/console.hpp"
#include "common/terminal_text.hpp"

using tessenger::app::Console;
using tessenger::app::terminal_safe;

TEST_CASE("printable text, UTF-8 and zero-width joiners pass unchanged") {
  for (const std::string text : {"", "hello there", "caf\xc3\xa9 \xe2\x82\xac",
                                 "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
                                 "zero\xe2\x80\x8bwidth", "\xef\xbb\xbfmark", "a^[b \\u{202e}"}) {
    CAPTURE(text);
    CHECK(terminal_safe(text) == text);
  }
}

TEST_CASE("C0 controls and DEL are shown in caret notation") {
  CHECK(terminal_safe("\x1b]0;TITLE\x07") == "^[]0;TITLE^G");
  CHECK(terminal_safe("\nFAKE: Received evil.exe from Yoda\r") ==
        "^JFAKE: Received evil.exe from Yoda^M");
  CHECK(terminal_safe(std::string("a\0b", 3)) == "a^@b");
  CHECK(terminal_safe("tab\there") == "tab^Ihere");
  CHECK(terminal_safe("\x1f\x7f") == "^_^?");
  CHECK(terminal_safe("\x1b[2J\x1b[H") == "^[[2J^[[H");
}

TEST_CASE("C1 controls, separators and bidi controls are shown as \\u{...}") {
  CHECK(terminal_safe("\xc2\x9b"
                      "31m") == "\\u{9b}31m");
  CHECK(terminal_safe("\xc2\x80\xc2\x85\xc2\x9f") == "\\u{80}\\u{85}\\u{9f}");
  CHECK(terminal_safe("line\xe2\x80\xa8two\xe2\x80\xa9") == "line\\u{2028}two\\u{2029}");
  // "evil\u202egpj.exe" would read "evilexe.jpg".
  CHECK(terminal_safe("evil\xe2\x80\xaegpj.exe") == "evil\\u{202e}gpj.exe");
  CHECK(terminal_safe("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad") ==
        "\\u{202a}\\u{202b}\\u{202c}\\u{202d}");
  CHECK(terminal_safe("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9") ==
        "\\u{2066}\\u{2067}\\u{2068}\\u{2069}");
  CHECK(terminal_safe("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c") == "\\u{200e}\\u{200f}\\u{61c}");
  // Neighbours of the ranges stay.
  CHECK(terminal_safe("\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa") ==
        "\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa");
}

TEST_CASE("bytes that are not UTF-8 are shown as \\xHH") {
  CHECK(terminal_safe("\x9b"
                      "31m") == "\\x9b31m");
  CHECK(terminal_safe("a\xff") == "a\\xff");
  // Overlong ESC, a surrogate and a truncated sequence.
  CHECK(terminal_safe("\xc0\x9b") == "\\xc0\\x9b");
  CHECK(terminal_safe("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(terminal_safe("end\xe2\x80") == "end\\xe2\\x80");
}

TEST_CASE("the result never holds a control, a separator or a bidi control") {
  // Every one- and two-byte string: what comes out is printable ASCII or
  // UTF-8 outside the neutralised set.
  const auto safe = [](const std::string& out) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      const auto byte = static_cast<unsigned char>(out[i]);
      if (byte < 0x20 || byte == 0x7f) return false;
      if (byte == 0xc2 && i + 1 < out.size() && static_cast<unsigned char>(out[i + 1]) <= 0x9f) {
        return false;
      }
    }
    return true;
  };
  std::string input(2, '\0');
  int unsafe = 0;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      input[0] = static_cast<char>(a);
      input[1] = static_cast<char>(b);
      if (!safe(terminal_safe(input))) ++unsafe;
    }
  }
  CHECK(unsafe == 0);
}

TEST_CASE("Console::line prints network text neutralised, write() as is") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    Console console(fds[1]);
    console.line("12 May 2026 10:00:00, Yoda: \x1b]0;TITLE\x07hi\nFAKE: Received evil.exe\r");
    console.write("\r\x1b[K");
  }
  ::close(fds[1]);
  std::string got;
  char buffer[256];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) {
    got.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  CHECK(got ==
        "12 May 2026 10:00:00, Yoda: ^[]0;TITLE^Ghi^JFAKE: Received evil.exe^M\n"
        "\r\x1b[K");
}
