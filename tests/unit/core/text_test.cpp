#include <doctest/doctest.h>

#include <string>

#include "core/text.hpp"

using tessenger::core::clean_text;
using tessenger::core::is_valid_group_name;
using tessenger::core::is_valid_username;

TEST_CASE("usernames are 1-32 characters of A-Z a-z 0-9 _ - .") {
  CHECK(is_valid_username("Hans"));
  CHECK(is_valid_username("a.b-c_d9"));
  CHECK(is_valid_username(std::string(32, 'x')));
  CHECK_FALSE(is_valid_username(std::string(33, 'x')));
  CHECK_FALSE(is_valid_username(""));
  CHECK_FALSE(is_valid_username("a b"));
  CHECK_FALSE(is_valid_username("a/b"));
  CHECK_FALSE(is_valid_username("h\xc3\xa9"));
}

TEST_CASE("group names are 1-32 letters and digits") {
  CHECK(is_valid_group_name("chat1"));
  CHECK(is_valid_group_name(std::string(32, 'G')));
  CHECK_FALSE(is_valid_group_name(std::string(33, 'G')));
  CHECK_FALSE(is_valid_group_name(""));
  CHECK_FALSE(is_valid_group_name("my_group"));
  CHECK_FALSE(is_valid_group_name("../x"));
}

TEST_CASE("message text is trimmed, 1-4096 bytes, one line, no control characters") {
  CHECK(clean_text("  hello there \t", 4096) == std::optional<std::string_view>("hello there"));
  CHECK(clean_text("caf\xc3\xa9 \xe2\x9c\x93", 4096).has_value());
  CHECK(clean_text(std::string(4096, 'a'), 4096).has_value());
  CHECK(clean_text("  " + std::string(4096, 'a') + "  ", 4096).has_value());
  CHECK_FALSE(clean_text(std::string(4097, 'a'), 4096).has_value());
  CHECK_FALSE(clean_text("", 4096).has_value());
  CHECK_FALSE(clean_text("   \t ", 4096).has_value());
  CHECK_FALSE(clean_text("two\nlines", 4096).has_value());
  CHECK_FALSE(clean_text("carriage\rreturn", 4096).has_value());
  CHECK_FALSE(clean_text("bell\a", 4096).has_value());
  CHECK_FALSE(clean_text("del\x7f", 4096).has_value());
  CHECK_FALSE(clean_text("c1\xc2\x85", 4096).has_value());
  CHECK(clean_text("latin \xc2\xa0 nbsp", 4096).has_value());
}

TEST_CASE("line separators and bidi controls are refused; zero-width characters pass") {
  for (const char* bad :
       {"a\u2028b", "a\u2029b", "invoice\u202Efdp.exe", "x\u202Ay", "x\u2066y", "x\u2069y"}) {
    CHECK_FALSE(clean_text(bad, 4096).has_value());
  }
  for (const char* good : {"a\u200Bb", "\u200Dx", "a\uFEFFb", "\u20AC 5", "x\u2010y"}) {
    CHECK(clean_text(good, 4096).has_value());
  }
}
