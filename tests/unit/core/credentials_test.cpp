#include <doctest/doctest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "core/credentials.hpp"

using tessenger::core::parse_credentials;

TEST_CASE("credentials: one 'username password' per line") {
  const auto parsed = parse_credentials("Hans falcon*solo\nYoda wise@!man\r\n");
  CHECK(parsed.problems.empty());
  REQUIRE(parsed.passwords.size() == 2);
  CHECK(parsed.passwords.at("Hans") == "falcon*solo");
  CHECK(parsed.passwords.at("Yoda") == "wise@!man");
}

TEST_CASE("credentials: blank lines and comments are ignored, malformed lines reported") {
  const auto parsed = parse_credentials(
      "# demo accounts\n"
      "\n"
      "alice pw1\n"
      "justonefield\n"
      "bob two  spaces\n"
      "bad/name pw\n"
      "carol pw3\n"
      "alice again\n"
      "dave \n");
  CHECK(parsed.passwords.size() == 2);
  CHECK(parsed.passwords.contains("alice"));
  CHECK(parsed.passwords.contains("carol"));
  CHECK(parsed.passwords.at("alice") == "pw1");
  REQUIRE(parsed.problems.size() == 5);
  CHECK(parsed.problems[0].line == 4);
  CHECK(parsed.problems[1].line == 5);
  CHECK(parsed.problems[2].line == 6);
  CHECK(parsed.problems[3].line == 8);
  CHECK(parsed.problems[3].reason.find("duplicate") != std::string::npos);
  CHECK(parsed.problems[4].line == 9);
}

TEST_CASE("credentials: the authenticator tells unknown names from wrong passwords") {
  tessenger::core::TableAuthenticator auth(
      std::unordered_map<std::string, std::string>{{"alice", "secret"}});
  CHECK(auth.exists("alice"));
  CHECK_FALSE(auth.exists("Alice"));
  CHECK(auth.verify("alice", "secret"));
  CHECK_FALSE(auth.verify("alice", "secreT"));
  CHECK_FALSE(auth.verify("alice", "secret "));
  CHECK_FALSE(auth.verify("alice", ""));
  CHECK_FALSE(auth.verify("bob", "secret"));
}

TEST_CASE("credentials: loading a file reports malformed lines with their numbers") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("tessenger-cred-" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(path);
    out << "alice pw\nbroken\n";
  }
  std::vector<std::string> warnings;
  tessenger::LogSink sink{
      tessenger::LogLevel::debug,
      [&](tessenger::LogLevel, std::string_view text) { warnings.emplace_back(text); }};
  const auto auth = tessenger::load_credentials_file(path, sink);
  CHECK(auth->exists("alice"));
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find(":2:") != std::string::npos);
  std::filesystem::remove(path);
  CHECK_THROWS_AS(tessenger::load_credentials_file(path), std::system_error);
}
