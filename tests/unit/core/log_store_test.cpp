// The log files of SPEC §5, written to a temporary directory.

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <tessenger/timestamp.hpp>

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

// Hands the records over and waits until the writer thread has written them.
void flush_and_wait(FileLogStore& store, std::span<const OnlineRecord> online = {}) {
  auto written = std::make_shared<std::promise<void>>();
  auto future = written->get_future();
  store.flush(online, [written] { written->set_value(); });
  future.wait();
}

std::size_t open_descriptors() {
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator{}));
}

}  // namespace

TEST_CASE("messagelog: one line per message, numbering continues across restarts") {
  TempDir dir;
  {
    FileLogStore store(dir.path, {});
    store.direct_message(ts, "alice", "hello; with separator");
    store.direct_message(ts, "bob", "second");
    flush_and_wait(store);
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
    flush_and_wait(store);
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
  flush_and_wait(store);
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
  flush_and_wait(store, online);
  auto got = lines(dir.path / "userlog.txt");
  REQUIRE(got.size() == 3);
  auto bob = fields(got[1]);
  CHECK(bob[0] == "2");
  CHECK(bob[2] == "bob");
  CHECK(bob[3] == "10.0.0.2; 5002");

  online.erase(online.begin());
  store.user_offline();
  flush_and_wait(store, online);
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
  flush_and_wait(store, online);
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
    flush_and_wait(store);
    CHECK(fs::exists(dir.path / "chat_messagelog.txt"));
    store.group_created("other");
    store.group_message("chat", ts, "alice", "a1");
    store.group_message("other", ts, "bob", "b1");
    store.group_message("chat", ts, "carol", "a2");
    flush_and_wait(store);
  }
  auto chat = lines(dir.path / "chat_messagelog.txt");
  REQUIRE(chat.size() == 2);
  CHECK(fields(chat[1])[0] == "2");
  CHECK(fields(chat[1])[2] == "carol");
  CHECK(lines(dir.path / "other_messagelog.txt").size() == 1);
  FileLogStore store(dir.path, {});
  store.group_created("chat");
  store.group_message("chat", ts, "alice", "after restart");
  flush_and_wait(store);
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
  flush_and_wait(store);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("blocked_messagelog.txt") != std::string::npos);
  CHECK(lines(dir.path / "messagelog.txt").size() == 1);
}

TEST_CASE("5,000 group logs hold at most the bound of descriptors and keep their numbering") {
  TempDir dir;
  constexpr int groups = 5000;
  constexpr std::size_t batch = 250;
  const auto name = [](int i) { return "g" + std::to_string(i); };
  const auto before = open_descriptors();
  std::size_t peak = 0;
  // Each round writes one line to every group, a batch of groups per flush.
  const auto round = [&](FileLogStore& store, const std::string& text, bool create) {
    for (int i = 0; i < groups; ++i) {
      if (create) store.group_created(name(i));
      store.group_message(name(i), ts, "alice", text + " " + name(i));
      if ((i + 1) % batch == 0) {
        flush_and_wait(store);
        peak = std::max(peak, open_descriptors());
      }
    }
  };
  {
    FileLogStore store(dir.path, {});
    round(store, "first", true);
    round(store, "second", false);  // every group closed and reopened since
  }
  CHECK(open_descriptors() == before);
  {
    FileLogStore store(dir.path, {});
    round(store, "third", false);  // numbering read back from each file
  }
  MESSAGE("descriptors: " << before << " before, at most " << peak << " with " << groups
                          << " groups (bound " << FileLogStore::default_max_open_groups
                          << " group logs + userlog + messagelog)");
  CHECK(peak <= before + 2 + FileLogStore::default_max_open_groups);
  CHECK(peak >= before + 2);
  for (int i = 0; i < groups; ++i) {
    const auto got = lines(dir.path / (name(i) + "_messagelog.txt"));
    REQUIRE(got.size() == 3);
    int seq = 0;
    for (const auto* text : {"first", "second", "third"}) {
      const auto f = fields(got[static_cast<std::size_t>(seq)]);
      CHECK(f[0] == std::to_string(++seq));
      CHECK(f[2] == "alice");
      CHECK(f[3] == std::string(text) + " " + name(i));
    }
  }
}

TEST_CASE("a removed group is forgotten: its file stays and a group of that name numbers on") {
  TempDir dir;
  FileLogStore store(dir.path, {}, 1);
  store.group_created("gone");
  store.group_message("gone", ts, "alice", "one");
  store.group_message("gone", ts, "alice", "two");
  store.group_removed("gone");
  flush_and_wait(store);
  CHECK(lines(dir.path / "gone_messagelog.txt").size() == 2);
  // Written behind the store's back: a forgotten group is read afresh.
  std::ofstream(dir.path / "gone_messagelog.txt", std::ios::app)
      << "7; 10 November 2023 20:57:10; bob; appended\n";
  store.group_created("gone");
  store.group_message("gone", ts, "carol", "again");
  flush_and_wait(store);
  const auto got = lines(dir.path / "gone_messagelog.txt");
  REQUIRE(got.size() == 4);
  CHECK(fields(got[3])[0] == "8");
  CHECK(fields(got[3])[3] == "again");
}

TEST_CASE("done runs after its lines are in the files, flushes in order; queued bytes drain") {
  TempDir dir;
  FileLogStore store(dir.path, {});
  const auto messagelog = dir.path / "messagelog.txt";
  const auto grouplog = dir.path / "team_messagelog.txt";
  struct Seen {
    int flush;
    std::size_t messages;
    std::size_t group;
  };
  std::mutex mutex;
  std::vector<Seen> seen;
  // The writer waits in the first done until the test lets it go, so the
  // later flushes queue up behind it.
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> all_done;
  constexpr int flushes = 40;
  const auto done = [&](int n) {
    return [&, n] {
      if (n == 0) {
        entered.set_value();
        released.wait();
      }
      std::lock_guard lock(mutex);
      seen.push_back({n, lines(messagelog).size(), lines(grouplog).size()});
      if (n == flushes - 1) all_done.set_value();
    };
  };

  // Nothing queued and nothing to write: done runs at once, inside flush().
  bool ran = false;
  store.flush({}, [&] { ran = true; });
  CHECK(ran);

  store.group_created("team");
  store.direct_message(ts, "alice", "m0");
  store.group_message("team", ts, "alice", "g0");
  store.flush({}, done(0));
  entered.get_future().wait();
  const auto body = [](std::string_view from, const std::string& text) {
    return tessenger::format_timestamp(ts).size() + from.size() + text.size() + 5;
  };
  std::size_t expected_queue = 0;
  for (int n = 1; n < flushes; ++n) {
    // Every fifth flush has nothing to write: its done still waits its turn.
    if (n % 5 != 0) {
      const auto text = "m" + std::to_string(n);
      store.direct_message(ts, "alice", text);
      store.group_message("team", ts, "bob", text);
      expected_queue += body("alice", text) + body("bob", text);
    }
    store.flush({}, done(n));
  }
  CHECK(store.queued_bytes() == expected_queue);
  release.set_value();
  all_done.get_future().wait();
  CHECK(store.queued_bytes() == 0);

  std::lock_guard lock(mutex);
  REQUIRE(seen.size() == flushes);
  std::size_t written = 1;
  for (int n = 0; n < flushes; ++n) {
    const auto& s = seen[static_cast<std::size_t>(n)];
    CHECK(s.flush == n);
    if (n != 0 && n % 5 != 0) ++written;
    CHECK(s.messages >= written);  // later flushes may already be written too
    CHECK(s.group >= written);
  }
  const auto got = lines(messagelog);
  REQUIRE(got.size() == written);
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(fields(got[i])[0] == std::to_string(i + 1));
}

TEST_CASE("sync writes what was recorded, even without an earlier flush") {
  TempDir dir;
  FileLogStore store(dir.path, {});
  const std::vector<OnlineRecord> online{{"alice", ts, "127.0.0.1", 5001}};
  store.user_online(1, online[0]);
  store.direct_message(ts, "alice", "before sync");
  store.group_message("late", ts, "alice", "before sync");
  store.sync(online);
  CHECK(store.queued_bytes() == 0);
  CHECK(lines(dir.path / "messagelog.txt").size() == 1);
  CHECK(lines(dir.path / "late_messagelog.txt").size() == 1);
  CHECK(lines(dir.path / "userlog.txt").size() == 1);
}

TEST_CASE("a full disk is reported once per episode, from the log thread, and done still runs") {
  TempDir dir;
  fs::create_symlink("/dev/full", dir.path / "messagelog.txt");
  std::mutex mutex;
  std::vector<std::string> errors;
  tessenger::LogSink sink{tessenger::LogLevel::debug,
                          [&](tessenger::LogLevel level, std::string_view t) {
                            std::lock_guard lock(mutex);
                            if (level == tessenger::LogLevel::error) errors.emplace_back(t);
                          }};
  FileLogStore store(dir.path, sink);
  for (int i = 0; i < 3; ++i) {
    store.direct_message(ts, "alice", "to a full disk");
    flush_and_wait(store);
  }
  CHECK(store.queued_bytes() == 0);
  std::lock_guard lock(mutex);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("messagelog.txt") != std::string::npos);
  CHECK(errors[0].find("No space left") != std::string::npos);
}
