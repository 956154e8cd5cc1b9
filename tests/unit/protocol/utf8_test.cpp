#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "protocol/utf8.hpp"

using tessenger::protocol::valid_utf8;

namespace {

// An independent reading of RFC 3629: decode by bit pattern, then reject
// overlong forms, surrogates and values above U+10FFFF.
bool reference_valid(const std::string& s) {
  static constexpr std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t length = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      length = 1;
      cp = b;
    } else if ((b & 0xe0) == 0xc0) {
      length = 2;
      cp = b & 0x1fu;
    } else if ((b & 0xf0) == 0xe0) {
      length = 3;
      cp = b & 0x0fu;
    } else if ((b & 0xf8) == 0xf0) {
      length = 4;
      cp = b & 0x07u;
    } else {
      return false;
    }
    if (i + length > s.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3fu);
    }
    if (cp < min_for_length[length] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string encode_code_point(std::uint32_t cp) {
  std::string s;
  const auto put = [&s](std::uint32_t v) { s.push_back(static_cast<char>(v)); };
  if (cp < 0x80) {
    put(cp);
  } else if (cp < 0x800) {
    put(0xc0 | (cp >> 6));
    put(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    put(0xe0 | (cp >> 12));
    put(0x80 | ((cp >> 6) & 0x3f));
    put(0x80 | (cp & 0x3f));
  } else {
    put(0xf0 | (cp >> 18));
    put(0x80 | ((cp >> 12) & 0x3f));
    put(0x80 | ((cp >> 6) & 0x3f));
    put(0x80 | (cp & 0x3f));
  }
  return s;
}

}  // namespace

TEST_CASE("every scalar value is valid, every surrogate is not") {
  for (std::uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
    const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    if (valid_utf8(encode_code_point(cp)) == surrogate) {
      CAPTURE(cp);
      FAIL("wrong verdict");
    }
  }
  CHECK_FALSE(valid_utf8(encode_code_point(0x110000)));
  CHECK_FALSE(valid_utf8(encode_code_point(0x1fffff)));
}

TEST_CASE("agrees with the reference on every one- and two-byte string") {
  std::size_t valid = 0;
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string s(1, static_cast<char>(a));
      if (b >= 0) s.push_back(static_cast<char>(b));
      if (valid_utf8(s) != reference_valid(s)) {
        CAPTURE(a);
        CAPTURE(b);
        FAIL("disagreement");
      }
      valid += valid_utf8(s) ? 1 : 0;
    }
  }
  // 128 one-byte, 128*128 ASCII pairs, 30*64 two-byte sequences.
  CHECK(valid == 128 + 128 * 128 + 30 * 64);
}

TEST_CASE("agrees with the reference around every three- and four-byte boundary") {
  const int edges[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                       0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xff};
  for (int lead = 0xc0; lead < 0x100; ++lead) {
    for (int b : edges) {
      for (int c : edges) {
        for (int d = -1; d < static_cast<int>(std::size(edges)); ++d) {
          std::string s{static_cast<char>(lead), static_cast<char>(b), static_cast<char>(c)};
          if (d >= 0) s.push_back(static_cast<char>(edges[d]));
          if (valid_utf8(s) != reference_valid(s)) {
            CAPTURE(lead);
            CAPTURE(b);
            CAPTURE(c);
            CAPTURE(d);
            FAIL("disagreement");
          }
        }
      }
    }
  }
  CHECK(valid_utf8(""));
}

TEST_CASE("a bad byte is found at any offset of a long ASCII run") {
  for (std::size_t at = 0; at < 40; ++at) {
    CAPTURE(at);
    std::string s(40, 'a');
    CHECK(valid_utf8(s));
    s[at] = '\x80';
    CHECK_FALSE(valid_utf8(s));
    s[at] = '\xc3';
    CHECK_FALSE(valid_utf8(s));
    if (at + 1 < s.size()) {
      s[at + 1] = '\xa9';
      CHECK(valid_utf8(s));
    }
  }
}
