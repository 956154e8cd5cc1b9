// kill -9 of a real tessenger-server while clients keep it logging as fast as
// it can, then a restart on the same data directory: every log line must be
// whole, every message whose sender saw it acknowledged must be in the log
// (SPEC §5), and numbering must go on from the last line.

#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "process.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::testing::Process;
using tessenger::testing::ServerProcess;
using tessenger::testing::TempDir;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> users = {"alice", "bob", "carol", "dave"};

struct Line {
  std::uint64_t seq = 0;
  std::string sender;
  std::string text;
};

struct LogFile {
  std::vector<Line> lines;  // the whole lines, parsed
  std::size_t malformed = 0;
  bool torn_tail = false;  // bytes after the last newline
};

LogFile read_log(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string content = buffer.str();
  LogFile log;
  std::size_t start = 0;
  while (start < content.size()) {
    const auto end = content.find('\n', start);
    if (end == std::string::npos) {
      log.torn_tail = true;
      break;
    }
    const std::string_view line(content.data() + start, end - start);
    start = end + 1;
    // SEQ; TS; SENDER; MESSAGE
    const auto a = line.find("; ");
    const auto b = a == std::string_view::npos ? a : line.find("; ", a + 2);
    const auto c = b == std::string_view::npos ? b : line.find("; ", b + 2);
    Line parsed;
    const bool numbered =
        a != std::string_view::npos &&
        std::from_chars(line.data(), line.data() + a, parsed.seq).ptr == line.data() + a;
    if (!numbered || c == std::string_view::npos || b - a < 20) {
      ++log.malformed;
      continue;
    }
    parsed.sender = std::string(line.substr(b + 2, c - b - 2));
    parsed.text = std::string(line.substr(c + 2));
    log.lines.push_back(std::move(parsed));
  }
  return log;
}

// Lines are numbered 1, 2, 3… and each sender's messages appear in the order
// sent, at most once. Returns the last sequence number.
std::uint64_t check_log(const LogFile& log, const std::string& name) {
  CAPTURE(name);
  CHECK(log.malformed == 0);
  std::map<std::string, long> last_sent;
  std::uint64_t expected = 0;
  for (const auto& line : log.lines) {
    CHECK(line.seq == ++expected);
    // MESSAGE is "ROUND-SENDER-K": K grows by one per sender within a round.
    const auto dash = line.text.rfind('-');
    REQUIRE(dash != std::string::npos);
    const auto key = line.text.substr(0, dash);
    CHECK(key.ends_with(line.sender));
    const long k = std::stol(line.text.substr(dash + 1));
    const auto previous = last_sent.find(key);
    CHECK(k > (previous == last_sent.end() ? -1 : previous->second));
    last_sent[key] = k;
  }
  return expected;
}

// The message numbers K that `log` holds, per "ROUND-SENDER" key.
std::map<std::string, std::set<long>> logged_numbers(const LogFile& log) {
  std::map<std::string, std::set<long>> numbers;
  for (const auto& line : log.lines) {
    const auto dash = line.text.rfind('-');
    if (dash == std::string::npos) continue;
    numbers[line.text.substr(0, dash)].insert(std::stol(line.text.substr(dash + 1)));
  }
  return numbers;
}

// Replies acknowledged so far per user, waited on by the test: both logs must
// be well into the flood at the kill, however the threads were scheduled.
struct Progress {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, long> acked;

  void add(const std::string& user, long n) {
    {
      std::lock_guard lock(mutex);
      acked[user] += n;
    }
    changed.notify_all();
  }
  bool wait_for_each(const std::vector<std::string>& flooders, long count) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 30s, [&] {
      return std::ranges::all_of(flooders, [&](const auto& user) { return acked[user] >= count; });
    });
  }
};

// Each user pipelines batches of messages (direct for alice and bob, to the
// group for carol and dave) until the connection dies under it. Nobody sends
// before all are online: a direct message to a peer not yet logged in is
// refused, not logged.
void flood(std::uint16_t port, const std::string& user, int round, Progress& progress,
           std::latch& all_online) {
  // Arrives exactly once, whatever happens, so that no other flood waits forever.
  bool arrived = false;
  const auto arrive = [&] {
    if (!arrived) all_online.count_down();
    arrived = true;
  };
  try {
    WireClient client(port);
    const bool logged_in = std::holds_alternative<p::LoginOk>(client.login(user, "pw-" + user));
    arrive();
    if (!logged_in) return;
    all_online.wait();
    const bool direct = user == "alice" || user == "bob";
    long k = 0;
    for (;;) {
      std::vector<std::byte> batch;
      for (int i = 0; i < 50; ++i, ++k) {
        const auto text = std::to_string(round) + "-" + user + "-" + std::to_string(k);
        if (direct) {
          p::encode(p::DirectSend{1, user == "alice" ? "bob" : "alice", text}, batch);
        } else {
          p::encode(p::GroupSend{1, "crash", text}, batch);
        }
      }
      client.send_bytes(batch);
      for (int replies = 0; replies < 50;) {
        const auto message = client.next(10s);
        if (!message) return;
        // Replies come in request order: the n-th acknowledges K = n - 1.
        if (std::holds_alternative<p::DirectSent>(*message) ||
            std::holds_alternative<p::GroupSent>(*message)) {
          ++replies;
          progress.add(user, 1);
        }
      }
    }
  } catch (const std::runtime_error&) {
    // The server died under the client: what this test does on purpose.
    arrive();
  }
}

void create_group(std::uint16_t port) {
  WireClient carol(port);
  WireClient dave(port);
  REQUIRE(std::holds_alternative<p::LoginOk>(carol.login("carol", "pw-carol")));
  REQUIRE(std::holds_alternative<p::LoginOk>(dave.login("dave", "pw-dave")));
  carol.send(p::GroupCreate{5, "crash", {"dave"}});
  carol.expect<p::GroupCreated>();
  dave.expect<p::InviteEvent>();
  dave.send(p::GroupJoin{6, "crash"});
  dave.expect<p::GroupJoined>();
  // Logged out at once, so the flood can log them in again.
  for (auto* client : {&carol, &dave}) {
    client->send(p::Logout{7});
    client->expect<p::LoggedOut>();
  }
}

}  // namespace

TEST_CASE("kill -9 during heavy logging leaves whole lines; numbering continues after restart") {
  TempDir dir;
  std::string credentials;
  for (const auto& user : users)
    credentials += user + " pw-" + user + "\n";
  dir.write("credentials.txt", credentials);
  const auto messages = dir / "data" / "messagelog.txt";
  const auto group = dir / "data" / "crash_messagelog.txt";

  std::uint64_t direct_seq = 0;
  std::uint64_t group_seq = 0;
  int torn = 0;
  constexpr int rounds = 5;
  long acknowledged = 0;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    ServerProcess server(dir);
    // The store keeps the group (and dave's membership) across the kills.
    if (round == 0) create_group(server.port);

    Progress progress;
    std::latch all_online(static_cast<std::ptrdiff_t>(users.size()));
    std::vector<std::thread> clients;
    for (const auto& user : users)
      clients.emplace_back(flood, server.port, user, round, std::ref(progress),
                           std::ref(all_online));
    // Kill once both logs are well into the flood, at no chosen point of a write.
    CHECK(progress.wait_for_each(users, 750 + 250 * round));
    server.process.signal(SIGKILL);
    CHECK(server.process.wait(10s) == 128 + SIGKILL);
    for (auto& client : clients)
      client.join();

    // As the killed server left them: only whole lines, except that a write(2)
    // cut short by the kill may leave a partial last line.
    std::map<std::string, std::set<long>> logged;
    for (const auto& [path, seq] : {std::pair{messages, &direct_seq}, {group, &group_seq}}) {
      const auto log = read_log(path);
      if (log.torn_tail) ++torn;
      const auto last = check_log(log, path.filename().string());
      CHECK(last > *seq);  // this round logged something
      *seq = last;
      logged.merge(logged_numbers(log));
    }
    // Acknowledged means logged: K = 0 .. acked - 1 of each sender are there.
    for (const auto& user : users) {
      CAPTURE(user);
      const auto acked = progress.acked[user];
      const auto& numbers = logged[std::to_string(round) + "-" + user];
      long missing = 0;
      for (long k = 0; k < acked; ++k)
        missing += numbers.contains(k) ? 0 : 1;
      CHECK(missing == 0);
      acknowledged += acked;
    }
  }
  MESSAGE(rounds << " kill -9 rounds, " << acknowledged
                 << " acknowledged messages, all in the logs; rounds with a torn last line "
                    "(repaired at the next start): "
                 << torn);

  // A last start: it cuts off any torn tail, and numbering continues.
  // (Each login first delivers what the user missed while killed.)
  ServerProcess server(dir);
  const auto skip_missed = []<class T>(WireClient& client, std::type_identity<T>) {
    for (;;) {
      auto message = client.next(10s);
      REQUIRE(message.has_value());
      if (const auto* event = std::get_if<p::DirectEvent>(&*message); event && event->missed) {
        continue;
      }
      if (const auto* event = std::get_if<p::GroupEvent>(&*message); event && event->missed) {
        continue;
      }
      REQUIRE(std::holds_alternative<T>(*message));
      return std::get<T>(*message);
    }
  };
  {
    WireClient alice(server.port);
    WireClient bob(server.port);
    REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pw-alice", 9, p::version)));
    REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pw-bob", 9, p::version)));
    skip_missed(alice, std::type_identity<p::MissedEnd>{});
    skip_missed(bob, std::type_identity<p::MissedEnd>{});
    alice.send(p::DirectSend{7, "bob", "9-alice-0"});
    alice.expect<p::DirectSent>();
    CHECK(bob.expect<p::DirectEvent>().text == "9-alice-0");
    bob.send(p::Logout{8});
    bob.expect<p::LoggedOut>();
    CHECK(bob.closed_within(5s));
  }
  {
    WireClient carol(server.port);
    REQUIRE(std::holds_alternative<p::LoginOk>(carol.login("carol", "pw-carol", 9, p::version)));
    skip_missed(carol, std::type_identity<p::MissedEnd>{});
    carol.send(p::GroupSend{9, "crash", "9-carol-0"});
    carol.expect<p::GroupSent>();
  }
  server.process.signal(SIGTERM);
  CHECK(server.process.wait(10s) == 0);

  const auto direct_log = read_log(messages);
  const auto group_log = read_log(group);
  CHECK_FALSE(direct_log.torn_tail);
  CHECK_FALSE(group_log.torn_tail);
  CHECK(check_log(direct_log, "messagelog.txt") == direct_seq + 1);
  CHECK(check_log(group_log, "crash_messagelog.txt") == group_seq + 1);
  CHECK(direct_log.lines.back().text == "9-alice-0");
  CHECK(group_log.lines.back().text == "9-carol-0");
}
