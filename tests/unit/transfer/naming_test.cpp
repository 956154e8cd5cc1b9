#include <doctest/doctest.h>

#include <string>

#include <tessenger/transfer_engine.hpp>

using tessenger::transfer::numbered_name;
using tessenger::transfer::safe_file_name;

TEST_CASE("a plain name is SENDER_FILENAME") {
  CHECK(safe_file_name("alice", "video.mp4") == "alice_video.mp4");
  CHECK(safe_file_name("bob", "no extension") == "bob_no extension");
}

TEST_CASE("hostile names stay inside the download dir") {
  CHECK(safe_file_name("alice", "../../etc/passwd") == "alice_passwd");
  CHECK(safe_file_name("alice", "/etc/shadow") == "alice_shadow");
  CHECK(safe_file_name("alice", "..\\..\\windows\\win.ini") == "alice_win.ini");
  CHECK(safe_file_name("alice", "dir/") == "alice_file");
  CHECK(safe_file_name("alice", "..") == "alice_file");
  CHECK(safe_file_name("alice", ".") == "alice_file");
  CHECK(safe_file_name("alice", "") == "alice_file");
  CHECK(safe_file_name("alice", "a/..") == "alice_file");
  CHECK(safe_file_name("alice", "...hidden") == "alice_hidden");
  CHECK(safe_file_name("alice", ".bashrc") == "alice_bashrc");
  CHECK(safe_file_name("alice", " . .x") == "alice_x");
  CHECK(safe_file_name("alice", "bad\nname\t.txt") == "alice_bad_name_.txt");
  CHECK(safe_file_name("alice", std::string("nul\0byte", 8)) == "alice_nul_byte");
  CHECK(safe_file_name("alice", "del\x7f") == "alice_del_");
  CHECK(safe_file_name("alice", "trailing  ") == "alice_trailing");
}

TEST_CASE("the sender part is cleaned too") {
  CHECK(safe_file_name("../x", "f") == "x_f");
  CHECK(safe_file_name("", "f") == "unknown_f");
  CHECK(safe_file_name(".evil", "f") == "evil_f");
}

TEST_CASE("results are never paths, never hidden, never empty, at most 255 bytes") {
  const char* hostile[] = {"../../../../x", "////", "\\\\", "..\\..",   "\x01\x02",
                           "a/b/c/..",      " ",    "....", "\xff\xfe", "x/./y"};
  for (const char* h : hostile) {
    const auto n = safe_file_name("u", h);
    CAPTURE(n);
    CHECK(n.find('/') == std::string::npos);
    CHECK(n.find('\\') == std::string::npos);
    CHECK(n.front() != '.');
    CHECK(n != "u_..");
    CHECK(n.size() > 2);
  }
  const std::string long_name(1000, 'a');
  CHECK(safe_file_name("alice", long_name).size() == 255);
  const auto kept = safe_file_name("alice", long_name + ".tar");
  CHECK(kept.size() == 255);
  CHECK(kept.ends_with(".tar"));
}

TEST_CASE("truncation never splits a UTF-8 sequence") {
  std::string euros;
  for (int i = 0; i < 200; ++i)
    euros += "\xe2\x82\xac";  // U+20AC, 3 bytes
  const auto n = safe_file_name("alice", euros);
  CHECK(n.size() <= 255);
  CHECK((n.size() - 6) % 3 == 0);
}

TEST_CASE("collisions get a number before the extension") {
  CHECK(numbered_name("alice_a.txt", 0) == "alice_a.txt");
  CHECK(numbered_name("alice_a.txt", 1) == "alice_a (1).txt");
  CHECK(numbered_name("alice_a.tar.gz", 2) == "alice_a.tar (2).gz");
  CHECK(numbered_name("alice_noext", 3) == "alice_noext (3)");
  CHECK(numbered_name("alice_dot.", 1) == "alice_dot. (1)");
  const std::string long_name = "u_" + std::string(253, 'b');
  CHECK(numbered_name(long_name, 12).size() <= 255);
  CHECK(numbered_name(long_name, 12).ends_with(" (12)"));
}
