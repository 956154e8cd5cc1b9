// The log files of SPEC §5, written to a temporary directory.

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/log_store.hpp"

namespace fs = std::filesystem;
using tessenger::core::FileLogStore;
using tessenger::core::OnlineRecord;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("tessenger-logs-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<std::string> lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> result;
  for (std::string line; std::getline(in, line);)
    result.push_back(line);
  return result;
}

std::string content(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// 2023-11-10 20:57:10 UTC; the expected text depends on the local zone, so
// the tests compare only the fields around it.
constexpr tessenger::protocol::Timestamp ts = 1'699'649'830'000'000;

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> result;
  std::size_t start = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto end = line.find("; ", start);
    if (end == std::string::npos) break;
    result.push_back(line.substr(start, end - start));
    start = end + 2;
  }
  result.push_back(line.substr(start));
  return result;
}

}  // namespace

TEST_CASE("messagelog: one line per message, numbering continues across restarts") {
  TempDir dir;
  {
    FileLogStore store(dir.path, {});
    store.direct_message(ts, "alice", "hello; with separator");
    store.direct_message(ts, "bob", "second");
    store.flush({});
  }
  auto got = lines(dir.path / "messagelog.txt");
  REQUIRE(got.size() == 2);
  auto first = fields(got[0]);
  CHECK(first[0] == "1");
  CHECK(first[1].find("2023") != std::string::npos);
  CHECK(first[2] == "alice");
  CHECK(first[3] == "hello; with separator");
  CHECK(fields(got[1])[0] == "2");
  {
    FileLogStore store(dir.path, {});
    store.direct_message(ts, "carol", "after restart");
    store.flush({});
  }
  got = lines(dir.path / "messagelog.txt");
  REQUIRE(got.size() == 3);
  CHECK(fields(got[2])[0] == "3");
  CHECK(fields(got[2])[2] == "carol");
}

TEST_CASE("messagelog: a torn last line is cut off and numbering follows the last whole line") {
  TempDir dir;
  {
    std::ofstream out(dir.path / "messagelog.txt");
    out << "1; 10 November 2023 20:57:10; alice; one\n"
        << "2; 10 November 2023 20:57:11; bob; two\n"
        << "3; 10 Nov";
  }
  std::vector<std::string> warnings;
  tessenger::LogSink sink{tessenger::LogLevel::debug, [&](tessenger::LogLevel, std::string_view t) {
                            warnings.emplace_back(t);
                          }};
  FileLogStore store(dir.path, sink);
  store.direct_message(ts, "carol", "three");
  store.flush({});
  const auto got = lines(dir.path / "messagelog.txt");
  REQUIRE(got.size() == 3);
  CHECK(fields(got[2])[0] == "3");
  CHECK(fields(got[2])[3] == "three");
  CHECK(content(dir.path / "messagelog.txt").back() == '\n');
  CHECK(warnings.size() == 1);
}

TEST_CASE("userlog: emptied at start, appended on login, renumbered after a logout") {
  TempDir dir;
  {
    std::ofstream out(dir.path / "userlog.txt");
    out << "1; stale; ghost; 1.2.3.4; 1\n";
  }
  FileLogStore store(dir.path, {});
  CHECK(content(dir.path / "userlog.txt").empty());
  std::vector<OnlineRecord> online{
      {"alice", ts, "127.0.0.1", 5001}, {"bob", ts, "10.0.0.2", 5002}, {"carol", ts, "::1", 5003}};
  for (std::size_t i = 0; i < online.size(); ++i)
    store.user_online(i + 1, online[i]);
  store.flush(online);
  auto got = lines(dir.path / "userlog.txt");
  REQUIRE(got.size() == 3);
  auto bob = fields(got[1]);
  CHECK(bob[0] == "2");
  CHECK(bob[2] == "bob");
  CHECK(bob[3] == "10.0.0.2; 5002");

  online.erase(online.begin());
  store.user_offline();
  store.flush(online);
  got = lines(dir.path / "userlog.txt");
  REQUIRE(got.size() == 2);
  CHECK(fields(got[0])[0] == "1");
  CHECK(fields(got[0])[2] == "bob");
  CHECK(fields(got[1])[0] == "2");
  CHECK(fields(got[1])[2] == "carol");
  CHECK(fields(got[1])[3] == "::1; 5003");

  // Appends after a rewrite land in the new file.
  online.push_back({"dave", ts, "127.0.0.1", 5004});
  store.user_online(3, online.back());
  store.flush(online);
  got = lines(dir.path / "userlog.txt");
  REQUIRE(got.size() == 3);
  CHECK(fields(got[2])[0] == "3");
  CHECK(fields(got[2])[2] == "dave");
}

TEST_CASE("group logs: created with the group, numbered per group") {
  TempDir dir;
  {
    FileLogStore store(dir.path, {});
    store.group_created("chat");
    CHECK(fs::exists(dir.path / "chat_messagelog.txt"));
    store.group_created("other");
    store.group_message("chat", ts, "alice", "a1");
    store.group_message("other", ts, "bob", "b1");
    store.group_message("chat", ts, "carol", "a2");
    store.flush({});
  }
  auto chat = lines(dir.path / "chat_messagelog.txt");
  REQUIRE(chat.size() == 2);
  CHECK(fields(chat[1])[0] == "2");
  CHECK(fields(chat[1])[2] == "carol");
  CHECK(lines(dir.path / "other_messagelog.txt").size() == 1);
  FileLogStore store(dir.path, {});
  store.group_created("chat");
  store.group_message("chat", ts, "alice", "after restart");
  store.flush({});
  chat = lines(dir.path / "chat_messagelog.txt");
  REQUIRE(chat.size() == 3);
  CHECK(fields(chat[2])[0] == "3");
}

TEST_CASE("a data directory that cannot be written is an error at start") {
  TempDir dir;
  const auto file = dir.path / "not-a-directory";
  std::ofstream(file) << "x";
  CHECK_THROWS_AS(FileLogStore(file / "sub", {}), std::system_error);
}

TEST_CASE("a group log that cannot be opened is reported and does not stop the server") {
  TempDir dir;
  fs::create_directories(dir.path / "blocked_messagelog.txt");
  std::vector<std::string> errors;
  tessenger::LogSink sink{tessenger::LogLevel::debug,
                          [&](tessenger::LogLevel level, std::string_view t) {
                            if (level == tessenger::LogLevel::error) errors.emplace_back(t);
                          }};
  FileLogStore store(dir.path, sink);
  store.group_created("blocked");
  store.group_message("blocked", ts, "alice", "not written");
  store.direct_message(ts, "alice", "still written");
  store.flush({});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("blocked_messagelog.txt") != std::string::npos);
  CHECK(lines(dir.path / "messagelog.txt").size() == 1);
}
