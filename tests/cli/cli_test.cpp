// End to end: the real tessenger-client over pipes against the real
// tessenger-server, checking the SPEC texts byte for byte.

#include <doctest/doctest.h>

#include <signal.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <future>
#include <memory>

#include <tessenger/client.hpp>
#include <tessenger/file_transfer.hpp>

#include "cli_harness.hpp"
#include "eventually.hpp"

using namespace tessenger::testing;

namespace {

struct Setup {
  TempDir dir{"tessenger-cli"};
  explicit Setup(const char* accounts = "alice pa\nbob pb\ncarol pc\ndave pd\n") {
    dir.write("credentials.txt", accounts);
  }
};

using Lines = std::vector<std::string>;

// A server with alice, bob, carol and dave logged in through the real client.
struct FourOnline {
  Setup setup;
  CliServer server{setup.dir};
  std::array<CliClient, 4> clients{CliClient(server.port()), CliClient(server.port()),
                                   CliClient(server.port()), CliClient(server.port())};
  FourOnline() {
    clients[0].login("alice", "pa");
    clients[1].login("bob", "pb");
    clients[2].login("carol", "pc");
    clients[3].login("dave", "pd");
  }
};

// Everything in `dir`, hidden files included.
std::vector<std::string> listing(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Waits for a library Client's result on the test's thread.
template <class T, class Start>
tessenger::Result<T> await(Start&& start) {
  auto promise = std::make_shared<std::promise<tessenger::Result<T>>>();
  auto future = promise->get_future();
  start([promise](tessenger::Result<T> result) { promise->set_value(std::move(result)); });
  REQUIRE(future.wait_for(cli_deadline) == std::future_status::ready);
  return future.get();
}

// A library Client logged in as `user` whose UDP socket never answers: a
// sender that offers files and sends nothing.
struct SilentPeer {
  asio::io_context io;
  asio::ip::udp::socket udp{io, {asio::ip::udp::v4(), 0}};
  tessenger::Client client{tessenger::ClientEvents{}};

  SilentPeer(std::uint16_t port, const std::string& user, const std::string& password) {
    REQUIRE(await<tessenger::ServerInfo>(
        [&](auto done) { client.connect("127.0.0.1", port, std::move(done)); }));
    REQUIRE(await<tessenger::LoggedIn>([&](auto done) {
      client.login(user, password, udp.local_endpoint().port(), std::move(done));
    }));
  }
};

}  // namespace

TEST_CASE("login failures, retries and success") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient client(server.port());
  CHECK(client.line() == "Please login");
  client.send("zed");
  client.send("pa");
  CHECK(client.line() == "Username: Password: Invalid username. Please try again.");
  client.send("alice");
  client.send("wrong");
  CHECK(client.line() == "Username: Password: Invalid password. Please try again.");
  client.send("alice");
  client.send("pa");
  CHECK(client.line() == "Username: Password: Welcome to TESSENGER!");
  CHECK(client.line() == prompt);
  client.send("/logout");
  CHECK(client.line() == "Bye, alice!");
  CHECK(client.wait() == 0);
}

// The texts of a block. Its expiry is tested on a ManualClock
// (tests/integration/chat/login_test.cpp); the real binary runs on real time,
// so here the block is made to outlast any test.
TEST_CASE("blocking after max_attempts, and the blocked account's text") {
  Setup setup;
  CliServer server(setup.dir, 2, {"--block-seconds", "86400"});
  {
    CliClient client(server.port());
    CHECK(client.line() == "Please login");
    client.send("alice");
    client.send("x");
    CHECK(client.line() == "Username: Password: Invalid password. Please try again.");
    client.send("alice");
    client.send("y");
    CHECK(client.line() ==
          "Username: Password: Invalid password. Your account has been blocked. Please try again "
          "later.");
    CHECK(client.wait() == 1);
  }
  {
    CliClient client(server.port());
    CHECK(client.line() == "Please login");
    client.send("alice");
    client.send("pa");
    CHECK(client.line() ==
          "Username: Password: Your account is blocked due to multiple login failures. Please "
          "try again later.");
    CHECK(client.wait() == 1);
  }
  CliClient bob(server.port());
  bob.login("bob", "pb");
}

TEST_CASE("a second login to an online account is refused") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient first(server.port());
  first.login("alice", "pa");
  CliClient second(server.port());
  CHECK(second.line() == "Please login");
  second.send("alice");
  second.send("pa");
  CHECK(second.line() == "Username: Password: This account is already logged in.");
  second.send("bob");
  second.send("pb");
  CHECK(second.line() == "Username: Password: Welcome to TESSENGER!");
  CHECK(second.line() == prompt);
  const auto sent = first.command("/msgto bob still here");
  REQUIRE(sent.size() == 1);
  CHECK(matches(sent[0], "message sent at {TS}."));
  CHECK(matches(second.line(), "{TS}, alice: still here"));
  CHECK(second.line() == prompt);
}

TEST_CASE("msgto to online, offline, unknown and self") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  CliClient bob(server.port());
  alice.login("alice", "pa");
  bob.login("bob", "pb");

  const auto sent = alice.command("/msgto bob hello  there");
  REQUIRE(sent.size() == 1);
  CHECK(matches(sent[0], "message sent at {TS}."));
  const auto received = bob.line();
  CHECK(matches(received, "{TS}, alice: hello  there"));
  // The receiver sees the time the sender was told.
  CHECK(received.substr(0, received.find(',')) == sent[0].substr(16, sent[0].size() - 17));
  CHECK(bob.line() == prompt);

  // carol is a known user who is offline; zed is unknown.
  CHECK(alice.command("msgto carol hi") ==
        Lines{"carol is offline; the message will be delivered when they log in."});
  CHECK(alice.command("/msgto zed hi") == Lines{"zed is not online."});
  CHECK(alice.command("/msgto alice hi") == Lines{"You cannot message yourself."});
  CHECK(alice.command("/msgto bob") == Lines{"Usage: /msgto USER MESSAGE"});
  CHECK(alice.command("/msgto bob \x01") == Lines{"Message contains control characters."});
  CHECK(alice.command("/msgto bob " + std::string(4097, 'x')) ==
        Lines{"Message is too long: at most 4096 bytes."});
  CHECK(alice.command("/msgto bob \xff") == Lines{"Message is not valid UTF-8."});
}

TEST_CASE("activeuser lists the others in login order") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  CHECK(alice.command("/activeuser") == Lines{"no other active user"});
  CliClient carol(server.port());
  carol.login("carol", "pc");
  CliClient bob(server.port());
  bob.login("bob", "pb");
  const auto users = alice.command("activeuser");
  REQUIRE(users.size() == 2);
  CHECK(matches(users[0], "carol, 127.0.0.1, {N}, active since {TS}."));
  CHECK(matches(users[1], "bob, 127.0.0.1, {N}, active since {TS}."));
  // The client reported the UDP port it bound (0 picked a real one).
  CHECK(users[0].find(", 0, ") == std::string::npos);
  CHECK(alice.command("/activeuser now") == Lines{"Usage: /activeuser"});
}

TEST_CASE("the group life cycle and each of its errors") {
  FourOnline room;
  auto& [alice, bob, carol, dave] = room.clients;

  CHECK(alice.command("/creategroup chat alice bob carol") ==
        Lines{"Group chat room has been created, room name: chat, users in this room: alice, "
              "bob, carol"});
  for (auto* invited : {&bob, &carol}) {
    CHECK(invited->line() == "alice invited you to group chat; use /joingroup chat to join.");
    CHECK(invited->line() == prompt);
  }
  CHECK(dave.command("/creategroup chat bob") == Lines{"a group chat (Name: chat) already exists"});
  CHECK(alice.command("/creategroup team bob zed") == Lines{"zed is not online."});
  CHECK(alice.command("/creategroup") == Lines{"Usage: /creategroup GROUP USER [USER...]"});

  CHECK(bob.command("/joingroup nochat") == Lines{"Groupchat nochat doesn't exist."});
  CHECK(dave.command("/joingroup chat") == Lines{"You are not invited to group chat."});
  CHECK(alice.command("/joingroup chat") == Lines{"You have already joined Groupchat chat."});
  CHECK(bob.command("joingroup chat") == Lines{"Joined the group chat: chat successfully."});
  CHECK(bob.command("/joingroup") == Lines{"Usage: /joingroup GROUP"});

  CHECK(alice.command("/groupmsg nochat hi") == Lines{"The group chat does not exist."});
  CHECK(dave.command("/groupmsg chat hi") == Lines{"You are not in this group chat."});
  CHECK(carol.command("/groupmsg chat hi") ==
        Lines{"Please join the group before sending messages."});
  CHECK(alice.command("/groupmsg chat") == Lines{"Usage: /groupmsg GROUP MESSAGE"});

  const auto sent = bob.command("/groupmsg chat hello group");
  REQUIRE(sent.size() == 1);
  CHECK(matches(sent[0], "Group chat message sent at {TS}."));
  CHECK(matches(alice.line(), "{TS}, chat, bob: hello group"));
  CHECK(alice.line() == prompt);
  // carol (invited, not joined) and dave (not invited) got nothing: their
  // next output is the reply to their next command.
  CHECK(carol.command("/activeuser").size() == 3);
  CHECK(dave.command("/activeuser").size() == 3);

  const auto log = lines_of(room.setup.dir / "chat_messagelog.txt");
  REQUIRE(log.size() == 1);
  CHECK(matches(log[0], "1; {TS}; bob; hello group"));
}

TEST_CASE("leavegroup declines or leaves, deletegroup is the creator's, and members are told") {
  FourOnline room;
  auto& [alice, bob, carol, dave] = room.clients;
  REQUIRE(alice.command("/creategroup chat bob carol").size() == 1);
  for (auto* invited : {&bob, &carol}) {
    REQUIRE(invited->line().find("invited you") != std::string::npos);
    REQUIRE(invited->line() == prompt);
  }
  REQUIRE(bob.command("/joingroup chat") == Lines{"Joined the group chat: chat successfully."});

  CHECK(carol.command("/leavegroup chat") ==
        Lines{"You have declined the invitation to group chat."});
  CHECK(carol.command("/leavegroup chat") == Lines{"You are not in this group chat."});
  CHECK(carol.command("/leavegroup nochat") == Lines{"Groupchat nochat doesn't exist."});
  CHECK(carol.command("/leavegroup") == Lines{"Usage: /leavegroup GROUP"});
  CHECK(bob.command("/deletegroup chat") == Lines{"Only the creator of group chat can delete it."});
  CHECK(dave.command("/deletegroup chat") == Lines{"You are not in this group chat."});
  CHECK(dave.command("deletegroup") == Lines{"Usage: /deletegroup GROUP"});

  CHECK(bob.command("leavegroup chat") == Lines{"You have left the group chat: chat."});
  CHECK(alice.line() == "bob left the group chat: chat.");
  CHECK(alice.line() == prompt);
  REQUIRE(bob.command("/joingroup chat") == Lines{"You are not invited to group chat."});

  REQUIRE(alice.command("/creategroup team bob").size() == 1);
  REQUIRE(bob.line().find("invited you") != std::string::npos);
  REQUIRE(bob.line() == prompt);
  CHECK(alice.command("/deletegroup team") == Lines{"Group chat team has been deleted."});
  CHECK(bob.line() == "alice deleted the group chat: team.");
  CHECK(bob.line() == prompt);

  // The last joined member leaves: the group closes and its invitees are told.
  CHECK(alice.command("/leavegroup chat") == Lines{"You have left the group chat: chat."});
  CHECK(alice.command("/joingroup chat") == Lines{"Groupchat chat doesn't exist."});
  CHECK(dave.command("/creategroup chat alice").size() == 1);
}

TEST_CASE("unknown commands, blank lines and commands without the slash") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  CHECK(alice.command("/dance") == Lines{"Error. Invalid command!"});
  CHECK(alice.command("hello world") == Lines{"Error. Invalid command!"});
  CHECK(alice.command("").empty());
  CHECK(alice.command("activeuser") == Lines{"no other active user"});
  CHECK(alice.command("logout now") == Lines{"Usage: /logout"});
  alice.send("logout");
  CHECK(alice.line() == "Bye, alice!");
  CHECK(alice.wait() == 0);
}

TEST_CASE("end of input is a clean logout") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  alice.process().close_stdin();
  CHECK(alice.line() == "Bye, alice!");
  CHECK(alice.wait() == 0);
}

TEST_CASE("SIGINT is a clean logout") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  alice.process().signal(SIGINT);
  CHECK(alice.line() == "Bye, alice!");
  CHECK(alice.wait() == 0);
}

TEST_CASE("server shutdown ends the client with a clear line") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  CHECK(server.stop() == 0);
  CHECK(alice.line() == "The server is shutting down. Bye!");
  CHECK(alice.wait() == 1);
}

TEST_CASE("log files, renumbering on logout, and numbering across a restart") {
  Setup setup;
  CliServer server(setup.dir);
  {
    CliClient alice(server.port());
    CliClient bob(server.port());
    CliClient carol(server.port());
    alice.login("alice", "pa");
    bob.login("bob", "pb");
    carol.login("carol", "pc");
    // A round trip after the last login: its log lines are then on disk.
    CHECK(carol.command("/activeuser").size() == 2);
    auto users = lines_of(setup.dir / "userlog.txt");
    REQUIRE(users.size() == 3);
    CHECK(matches(users[0], "1; {TS}; alice; 127.0.0.1; {N}"));
    CHECK(matches(users[1], "2; {TS}; bob; 127.0.0.1; {N}"));
    CHECK(matches(users[2], "3; {TS}; carol; 127.0.0.1; {N}"));

    alice.send("/logout");
    CHECK(alice.line() == "Bye, alice!");
    CHECK(alice.wait() == 0);
    CHECK(carol.command("/activeuser").size() == 1);
    users = lines_of(setup.dir / "userlog.txt");
    REQUIRE(users.size() == 2);
    CHECK(matches(users[0], "1; {TS}; bob; 127.0.0.1; {N}"));
    CHECK(matches(users[1], "2; {TS}; carol; 127.0.0.1; {N}"));

    CHECK(bob.command("/msgto carol one").size() == 1);
    CHECK(matches(carol.line(), "{TS}, bob: one"));
    CHECK(carol.line() == prompt);
    CHECK(bob.command("/msgto alice offline") ==
          Lines{"alice is offline; the message will be delivered when they log in."});
    CHECK(carol.command("/msgto bob two").size() == 1);
    CHECK(server.stop() == 0);
  }
  auto messages = lines_of(setup.dir / "messagelog.txt");
  REQUIRE(messages.size() == 3);
  CHECK(matches(messages[0], "1; {TS}; bob; one"));
  CHECK(matches(messages[1], "2; {TS}; bob; offline"));
  CHECK(matches(messages[2], "3; {TS}; carol; two"));
  CHECK(lines_of(setup.dir / "userlog.txt").empty());

  server.start();
  CliClient bob(server.port());
  CliClient dave(server.port());
  bob.login("bob", "pb");
  dave.login("dave", "pd");
  CHECK(dave.command("/msgto bob three").size() == 1);
  CHECK(matches(bob.line(), "{TS}, dave: three"));
  CHECK(bob.line() == prompt);
  CHECK(bob.command("/activeuser").size() == 1);
  messages = lines_of(setup.dir / "messagelog.txt");
  REQUIRE(messages.size() == 4);
  CHECK(matches(messages[3], "4; {TS}; dave; three"));
}

TEST_CASE("offline delivery: stored, then delivered once at login, in order, marked missed") {
  Setup setup;
  CliServer server(setup.dir);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  const Lines stored{"bob is offline; the message will be delivered when they log in."};
  CHECK(alice.command("/msgto bob first, with  spaces") == stored);
  CHECK(alice.command("/msgto bob second \xe2\x82\xac") == stored);
  CliClient carol(server.port());
  carol.login("carol", "pc");
  CHECK(carol.command("/msgto bob from carol") == stored);
  {
    CliClient bob(server.port());
    bob.login("bob", "pb");
    const auto first = bob.line();
    CHECK(matches(first, "[missed] {TS}, alice: first, with  spaces"));
    CHECK(bob.line() == prompt);
    CHECK(matches(bob.line(), "[missed] {TS}, alice: second \xe2\x82\xac"));
    CHECK(bob.line() == prompt);
    CHECK(matches(bob.line(), "[missed] {TS}, carol: from carol"));
    CHECK(bob.line() == prompt);
    CHECK(bob.line() == "3 messages arrived while you were away.");
    CHECK(bob.line() == prompt);
    // The original time, as history keeps it.
    const auto history = bob.command("/history alice");
    REQUIRE(history.size() == 3);
    CHECK(history[0] == first.substr(std::string("[missed] ").size()));
    // Online: live messages are not marked.
    CHECK(matches(alice.command("/msgto bob live")[0], "message sent at {TS}."));
    CHECK(matches(bob.line(), "{TS}, alice: live"));
    CHECK(bob.line() == prompt);
    bob.send("/logout");
    CHECK(bob.line() == "Bye, bob!");
    CHECK(bob.wait() == 0);
  }
  // Exactly once: nothing is missed at the next login.
  CliClient bob(server.port());
  bob.login("bob", "pb");
  CHECK(bob.command("/activeuser").size() == 2);
  // An unknown user is still only "not online".
  CHECK(alice.command("/msgto zed hi") == Lines{"zed is not online."});
}

TEST_CASE("history: newest page first, the same command pages back, groups and errors") {
  FourOnline four;
  auto& alice = four.clients[0];
  auto& bob = four.clients[1];
  for (int i = 1; i <= 3; ++i) {
    alice.command("/msgto bob m" + std::to_string(i));
    CHECK(matches(bob.line(), "{TS}, alice: m" + std::to_string(i)));
    CHECK(bob.line() == prompt);
  }
  auto page = bob.command("/history alice 2");
  REQUIRE(page.size() == 3);
  CHECK(matches(page[0], "{TS}, alice: m2"));
  CHECK(matches(page[1], "{TS}, alice: m3"));
  CHECK(page[2] == "2 messages with alice shown; /history alice again for earlier ones.");
  page = bob.command("/history alice 2");
  REQUIRE(page.size() == 2);
  CHECK(matches(page[0], "{TS}, alice: m1"));
  CHECK(page[1] == "1 message with alice shown: the start of the conversation.");
  // From the newest again.
  page = bob.command("/history alice 1");
  REQUIRE(page.size() == 2);
  CHECK(matches(page[0], "{TS}, alice: m3"));
  CHECK(bob.command("/history dave") == Lines{"No earlier messages with dave."});
  CHECK(bob.command("/history nobody") == Lines{"No earlier messages with nobody."});

  REQUIRE(alice.command("/creategroup team bob").size() == 1);
  CHECK(bob.line().starts_with("alice invited you"));
  CHECK(bob.line() == prompt);
  CHECK(bob.command("/joingroup team").size() == 1);
  alice.command("/groupmsg team hello team");
  CHECK(matches(bob.line(), "{TS}, team, alice: hello team"));
  CHECK(bob.line() == prompt);
  page = bob.command("/history team");
  REQUIRE(page.size() == 2);
  CHECK(matches(page[0], "{TS}, team, alice: hello team"));
  CHECK(page[1] == "1 message with group chat team shown: the start of the conversation.");
  // carol is not in it: the name reads as a user's, with whom she has no messages.
  CHECK(four.clients[2].command("/history team") == Lines{"No earlier messages with team."});

  const Lines usage{"Usage: /history USER|GROUP [N]"};
  CHECK(bob.command("/history") == usage);
  CHECK(bob.command("/history alice 0") == usage);
  CHECK(bob.command("/history alice 101") == usage);
  CHECK(bob.command("/history alice x") == usage);
  CHECK(bob.command("/history alice 2 3") == usage);
}

TEST_CASE("p2pvideo sends a file peer to peer and both sides say so") {
  Setup setup;
  CliServer server(setup.dir);
  std::filesystem::create_directory(setup.dir / "downloads");
  std::string content;
  for (std::uint32_t i = 0; i < 300'000; ++i) {
    content.push_back(static_cast<char>(i * 7919u % 251u));
  }
  setup.dir.write("clip.mp4", content);
  const auto file = (setup.dir / "clip.mp4").string();

  CliClient alice(server.port());
  CliClient bob(server.port(), {"--download-dir", (setup.dir / "downloads").string()});
  alice.login("alice", "pa");
  bob.login("bob", "pb");

  CHECK(alice.command("/p2pvideo bob " + file).empty());
  CHECK(alice.line() == file + " has been uploaded.");
  CHECK(alice.line() == prompt);
  CHECK(bob.line() == "Received clip.mp4 from alice");
  CHECK(bob.line() == prompt);
  std::ifstream saved(setup.dir / "downloads" / "alice_clip.mp4", std::ios::binary);
  const std::string received((std::istreambuf_iterator<char>(saved)), {});
  CHECK(received == content);

  CHECK(alice.command("/p2pvideo bob " + file + ".missing") ==
        Lines{"No such file: " + file + ".missing"});
  CHECK(alice.command("/p2pvideo bob " + setup.dir.path().string()) ==
        Lines{"No such file: " + setup.dir.path().string()});
  CHECK(alice.command("/p2pvideo carol " + file) == Lines{"carol is not online."});
  CHECK(alice.command("/p2pvideo alice " + file) == Lines{"You cannot message yourself."});
  CHECK(alice.command("/p2pvideo bob") == Lines{"Usage: /p2pvideo USER FILE"});

  // End of input lets a running upload finish before the logout.
  alice.send("/p2pvideo bob " + file);
  alice.process().close_stdin();
  CHECK(alice.line() == prompt);
  CHECK(alice.line() == file + " has been uploaded.");
  CHECK(alice.line() == prompt);
  CHECK(alice.line() == "Bye, alice!");
  CHECK(alice.wait() == 0);
  CHECK(bob.line() == "Received clip.mp4 from alice");
  // An existing file is never overwritten.
  std::ifstream second(
      setup.dir / "downloads" / tessenger::transfer::numbered_name("alice_clip.mp4", 1),
      std::ios::binary);
  CHECK(std::string((std::istreambuf_iterator<char>(second)), {}) == content);
}

TEST_CASE("p2pvideo options: --chunk-size, --max-receive-size, --transfer-timeout") {
  Setup setup;
  CliServer server(setup.dir);
  std::filesystem::create_directory(setup.dir / "bob");
  std::filesystem::create_directory(setup.dir / "carol");
  setup.dir.write("clip.mp4", std::string(300'000, 'v'));
  const auto file = (setup.dir / "clip.mp4").string();

  CliClient alice(server.port(), {"--chunk-size", "8000", "--transfer-timeout", "1"});
  CliClient bob(server.port(),
                {"--download-dir", (setup.dir / "bob").string(), "--max-receive-size", "100KB"});
  CliClient carol(server.port(),
                  {"--download-dir", (setup.dir / "carol").string(), "--transfer-timeout", "1"});
  alice.login("alice", "pa");
  bob.login("bob", "pb");
  carol.login("carol", "pc");

  // 8,000-byte chunks on loopback.
  CHECK(alice.command("/p2pvideo carol " + file).empty());
  CHECK(alice.line() == file + " has been uploaded.");
  CHECK(alice.line() == prompt);
  CHECK(carol.line() == "Received clip.mp4 from alice");
  CHECK(carol.line() == prompt);

  // 300,000 bytes against a limit of 100 KB (100,000 bytes): refused on both sides.
  CHECK(alice.command("/p2pvideo bob " + file).empty());
  CHECK(alice.line() ==
        "Upload of " + file + " to bob failed: the file is larger than the receiver accepts");
  CHECK(alice.line() == prompt);
  CHECK(bob.line() ==
        "Receiving clip.mp4 from alice failed: the file (300000 bytes) is larger than the "
        "limit of 100000 bytes");
  CHECK(bob.line() == prompt);
  CHECK(std::filesystem::is_empty(setup.dir / "bob"));

  // A receiver that stops answering (frozen) fails the upload after 1 s; once
  // it runs again, its side fails too, with a line of its own.
  carol.process().signal(SIGSTOP);
  REQUIRE(eventually([&] { return stopped(carol.process().pid()); }));
  const auto frozen_at = std::chrono::steady_clock::now();
  CHECK(alice.command("/p2pvideo carol " + file).empty());
  CHECK(alice.line() ==
        "Upload of " + file + " to carol failed: no answer from the receiver for 1.0 s");
  // A lower bound on a monotonic clock: a slower machine only adds to it, so
  // it fails only if the timeout fired early.
  CHECK(std::chrono::steady_clock::now() - frozen_at >= 1s);
  CHECK(alice.line() == prompt);
  carol.process().signal(SIGCONT);
  CHECK(carol.line().starts_with("Receiving clip.mp4 from alice failed: "));
  CHECK(carol.line() == prompt);
}

TEST_CASE("command line: help, version, bad arguments, refused connection, busy UDP port") {
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), TESSENGER_CLIENT_PATH);
    Process process(args);
    process.close_stdin();
    const auto status = process.wait(cli_deadline);
    return std::make_pair(status.value_or(-1), process.error_output(cli_deadline));
  };
  {
    Process help({TESSENGER_CLIENT_PATH, "--help"});
    CHECK(help.wait(cli_deadline) == 0);
    const auto first = help.read_line(cli_deadline);
    REQUIRE(first);
    CHECK(first->find("TESSENGER chat client") != std::string::npos);
  }
  {
    Process version({TESSENGER_CLIENT_PATH, "--version"});
    CHECK(version.wait(cli_deadline) == 0);
    CHECK(version.read_line(cli_deadline).value_or("").starts_with("tessenger-client "));
  }
  CHECK(run({"127.0.0.1"}).first == 2);
  CHECK(run({"127.0.0.1", "70000", "0"}).first == 2);
  CHECK(run({"127.0.0.1", "12000", "-1"}).first == 2);
  CHECK(run({"127.0.0.1", "12000", "0", "--download-dir", "/nonexistent/dir"}).first == 2);
  for (const auto& [option, value] : {std::pair{"--chunk-size", "0"},
                                      {"--chunk-size", "70000"},
                                      {"--max-receive-size", "lots"},
                                      {"--transfer-timeout", "0"}}) {
    CAPTURE(option);
    CAPTURE(value);
    CHECK(run({"127.0.0.1", "12000", "0", option, value}).first == 2);
  }

  // Nothing listens on a port that was just released.
  std::uint16_t closed_port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::tcp::v4(), 0});
    closed_port = acceptor.local_endpoint().port();
  }
  const auto refused = run({"127.0.0.1", std::to_string(closed_port), "0"});
  CHECK(refused.first == 1);
  CHECK(refused.second.find("cannot connect") != std::string::npos);
  CHECK(std::count(refused.second.begin(), refused.second.end(), '\n') == 1);

  asio::io_context io;
  asio::ip::udp::socket taken(io, {asio::ip::udp::v4(), 0});
  const auto busy = run({"127.0.0.1", "12000", std::to_string(taken.local_endpoint().port())});
  CHECK(busy.first == 1);
  CHECK(busy.second.find("cannot use UDP port") != std::string::npos);
}

// The server refuses control characters, separators and bidi overrides in
// messages and file names, but lets through what it has no reason to refuse
// (bidi marks): the receiving client shows them as escapes.
TEST_CASE("network text reaches the terminal neutralised") {
  Setup setup;
  CliServer server(setup.dir);
  std::filesystem::create_directory(setup.dir / "downloads");
  // "evil<RLO>gpj.exe" reads "evilexe.jpg"; U+009B is an 8-bit CSI.
  const std::string refused =
      "evil\xe2\x80\xaegpj.exe\xc2\x9b"
      "31m";
  setup.dir.write(refused, "not a picture");
  // U+200F (RLM) is a mark, not an override.
  const std::string name = "evil\xe2\x80\x8fgpj.exe";
  setup.dir.write(name, "not a picture");
  CliClient alice(server.port());
  CliClient bob(server.port(), {"--download-dir", (setup.dir / "downloads").string()});
  alice.login("alice", "pa");
  bob.login("bob", "pb");

  // U+200F (RLM) is neutralised, U+200B (zero width space) kept.
  CHECK(alice.command("/msgto bob left\xe2\x80\x8fright\xe2\x80\x8b").size() == 1);
  CHECK(matches(bob.line(), "{TS}, alice: left\\u{200f}right\xe2\x80\x8b"));
  CHECK(bob.line() == prompt);

  CHECK(alice.command("/p2pvideo bob " + (setup.dir / refused).string()) ==
        Lines{"Error: a request field is out of range (file name)."});
  CHECK(alice.command("/p2pvideo bob " + (setup.dir / name).string()).empty());
  CHECK(alice.line().ends_with(" has been uploaded."));
  CHECK(alice.line() == prompt);
  CHECK(bob.line() == "Received evil\\u{200f}gpj.exe from alice");
  CHECK(bob.line() == prompt);
}

// The attack of the security issue: one sender offers 300 files and never
// sends a byte. The receiver takes 4 (the per-sender limit), declines the
// rest with a few lines, and once the 4 time out nothing is left behind.
TEST_CASE("a flood of offers without data: bounded lines, no leftover files") {
  Setup setup;
  CliServer server(setup.dir, 3, {"--message-rate", "0"});
  const auto downloads = setup.dir / "downloads";
  std::filesystem::create_directory(downloads);
  CliClient bob(server.port(), {"--download-dir", downloads.string(), "--transfer-timeout", "2"});
  bob.login("bob", "pb");

  SilentPeer peer(server.port(), "alice", "pa");
  auto& mallory = peer.client;
  constexpr int offers = 300;
  std::vector<std::future<tessenger::Result<tessenger::FileOfferAccepted>>> results;
  for (int i = 0; i < offers; ++i) {
    auto promise =
        std::make_shared<std::promise<tessenger::Result<tessenger::FileOfferAccepted>>>();
    results.push_back(promise->get_future());
    mallory.offer_file("bob", "f" + std::to_string(i) + ".bin", 5000, {},
                       [promise](auto result) { promise->set_value(std::move(result)); });
  }
  for (auto& result : results) {
    REQUIRE(result.wait_for(cli_deadline) == std::future_status::ready);
    REQUIRE(result.get());
  }

  // The reply to a command comes after every offer before it was handled;
  // the four accepted ones fail once their 2 s pass.
  bob.send("/activeuser");
  Lines printed;
  int failures = 0;
  bool replied = false;
  while (!replied || failures < 4) {
    const auto line = bob.line();
    REQUIRE(line != "<nothing>");
    if (line == prompt) continue;
    if (matches(line, "alice, 127.0.0.1, {N}, active since {TS}.")) {
      replied = true;
      continue;
    }
    if (line.ends_with(" from alice failed: no data from the sender for 2.0 s")) ++failures;
    printed.push_back(line);
  }
  std::sort(printed.begin(), printed.end());
  CHECK(printed ==
        Lines{"Declined f103.bin from alice: alice already has 4 files waiting; 100 files from "
              "alice declined so far.",
              "Declined f13.bin from alice: alice already has 4 files waiting; 10 files from "
              "alice declined so far.",
              "Declined f4.bin from alice: alice already has 4 files waiting.",
              "Receiving f0.bin from alice failed: no data from the sender for 2.0 s",
              "Receiving f1.bin from alice failed: no data from the sender for 2.0 s",
              "Receiving f2.bin from alice failed: no data from the sender for 2.0 s",
              "Receiving f3.bin from alice failed: no data from the sender for 2.0 s"});
  // No hidden .part or .ranges file, nor any other.
  CHECK(listing(downloads).empty());
  // The prompt after the last line read, then nothing more.
  CHECK(bob.line() == prompt);
  CHECK(bob.command("/activeuser").size() == 1);
}

TEST_CASE("--accept-files known: files only from users this session has a tie with") {
  Setup setup;
  CliServer server(setup.dir);
  const auto downloads = setup.dir / "downloads";
  std::filesystem::create_directory(downloads);
  setup.dir.write("clip.mp4", std::string(20'000, 'k'));
  const auto file = (setup.dir / "clip.mp4").string();
  CliClient alice(server.port());
  CliClient bob(server.port(), {"--download-dir", downloads.string(), "--accept-files", "known"});
  CliClient carol(server.port());
  alice.login("alice", "pa");
  bob.login("bob", "pb");
  carol.login("carol", "pc");

  // A stranger's file is declined: no file, and the sender is told at once.
  CHECK(carol.command("/p2pvideo bob " + file).empty());
  CHECK(bob.line() ==
        "Declined clip.mp4 from carol: carol is not a known user (--accept-files known).");
  CHECK(bob.line() == prompt);
  CHECK(carol.line() ==
        "Upload of " + file + " to bob failed: the receiver cancelled the transfer");
  CHECK(carol.line() == prompt);
  CHECK(listing(downloads).empty());

  // A message from carol is no tie (anyone can send one); one to her is.
  CHECK(carol.command("/msgto bob let me send it").size() == 1);
  CHECK(matches(bob.line(), "{TS}, carol: let me send it"));
  CHECK(bob.line() == prompt);
  CHECK(carol.command("/p2pvideo bob " + file).empty());
  CHECK(carol.line() ==
        "Upload of " + file + " to bob failed: the receiver cancelled the transfer");
  CHECK(carol.line() == prompt);
  CHECK(bob.command("/msgto carol go ahead").size() == 1);
  CHECK(matches(carol.line(), "{TS}, bob: go ahead"));
  CHECK(carol.line() == prompt);
  CHECK(carol.command("/p2pvideo bob " + file).empty());
  CHECK(carol.line() == file + " has been uploaded.");
  CHECK(carol.line() == prompt);
  CHECK(bob.line() == "Received clip.mp4 from carol");
  CHECK(bob.line() == prompt);

  // The creator of a group bob joined shares it with him.
  CHECK(alice.command("/creategroup team bob").size() == 1);
  CHECK(bob.line() == "alice invited you to group team; use /joingroup team to join.");
  CHECK(bob.line() == prompt);
  CHECK(bob.command("/joingroup team") == Lines{"Joined the group chat: team successfully."});
  CHECK(alice.command("/p2pvideo bob " + file).empty());
  CHECK(alice.line() == file + " has been uploaded.");
  CHECK(alice.line() == prompt);
  CHECK(bob.line() == "Received clip.mp4 from alice");
  CHECK(bob.line() == prompt);
  CHECK(listing(downloads) == std::vector<std::string>{"alice_clip.mp4", "carol_clip.mp4"});
}

TEST_CASE("--accept-files ask is refused in a pipe, and bad values are usage errors") {
  for (const auto& value : {"ask", "none"}) {
    CAPTURE(value);
    Process client({TESSENGER_CLIENT_PATH, "127.0.0.1", "12000", "0", "--accept-files", value});
    client.close_stdin();
    CHECK(client.wait(cli_deadline) == 2);
    const auto error = client.error_output(cli_deadline);
    if (std::string_view(value) == "ask") {
      CHECK(error ==
            "tessenger-client: --accept-files ask needs a terminal on stdin; in a pipe use all "
            "or known\n");
    } else {
      CHECK(error.find("--accept-files") != std::string::npos);
    }
  }
  Process limit({TESSENGER_CLIENT_PATH, "127.0.0.1", "12000", "0", "--max-pending-files", "0"});
  limit.close_stdin();
  CHECK(limit.wait(cli_deadline) == 2);
}

// The server tells a transfer's other side when one side's session ends, so
// it stops within a second rather than after --transfer-timeout (10 s).
TEST_CASE("a killed receiver or a vanished sender ends the other side's transfer at once") {
  Setup setup;
  CliServer server(setup.dir);
  setup.dir.write("clip.mp4", std::string(200'000, 'v'));
  const auto file = (setup.dir / "clip.mp4").string();
  const auto downloads = setup.dir / "downloads";
  std::filesystem::create_directory(downloads);
  CliClient alice(server.port());
  alice.login("alice", "pa");
  {
    CliClient bob(server.port());
    bob.login("bob", "pb");
    // Frozen, bob acknowledges nothing: the upload waits on him.
    bob.process().signal(SIGSTOP);
    REQUIRE(eventually([&] { return stopped(bob.process().pid()); }));
    CHECK(alice.command("/p2pvideo bob " + file).empty());
    const auto killed_at = std::chrono::steady_clock::now();
    bob.process().signal(SIGKILL);
    CHECK(alice.line() ==
          "Upload of " + file + " to bob failed: bob logged out or lost the connection.");
    CHECK(std::chrono::steady_clock::now() - killed_at < 1s);
    CHECK(alice.line() == prompt);
  }

  CliClient carol(server.port(), {"--download-dir", downloads.string()});
  carol.login("carol", "pc");
  {
    // A sender that offers and never sends, then goes.
    SilentPeer peer(server.port(), "dave", "pd");
    auto& dave = peer.client;
    REQUIRE(await<tessenger::FileReceiverReady>(
        [&](auto done) { dave.check_file_receiver("carol", std::move(done)); }));
    REQUIRE(await<tessenger::FileOfferAccepted>(
        [&](auto done) { dave.offer_file("carol", "gone.bin", 5000, {}, std::move(done)); }));
    // The offer reached carol before the reply to her next command.
    CHECK(carol.command("/activeuser").size() == 2);
    const auto gone_at = std::chrono::steady_clock::now();
    dave.close();
    CHECK(carol.line() ==
          "Receiving gone.bin from dave failed: dave logged out or lost the connection.");
    CHECK(std::chrono::steady_clock::now() - gone_at < 1s);
    CHECK(carol.line() == prompt);
  }
  // The check before hashing has the offer's errors.
  CHECK(alice.command("/p2pvideo dave " + file) == Lines{"dave is not online."});
  CHECK(std::filesystem::is_empty(downloads));
}

TEST_CASE("--user, --password-file and TESSENGER_PASSWORD log in without asking") {
  Setup setup;
  CliServer server(setup.dir);
  setup.dir.write("right", "pa\n");
  setup.dir.write("wrong", "nope\n");
  {
    CliClient alice(server.port(),
                    {"--user", "alice", "--password-file", (setup.dir / "right").string()});
    CHECK(alice.line() == "Please login");
    CHECK(alice.line() == "Welcome to TESSENGER!");
    CHECK(alice.line() == prompt);
    alice.send("/logout");
    CHECK(alice.line() == "Bye, alice!");
    CHECK(alice.wait() == 0);
  }
  {
    // Given on the command line, a refused password is final.
    CliClient alice(server.port(),
                    {"--user", "alice", "--password-file", (setup.dir / "wrong").string()});
    CHECK(alice.line() == "Please login");
    CHECK(alice.line() == "Invalid password. Please try again.");
    CHECK(alice.wait() == 1);
  }
  {
    ::setenv("TESSENGER_PASSWORD", "pb", 1);
    CliClient bob(server.port());
    ::unsetenv("TESSENGER_PASSWORD");
    CHECK(bob.line() == "Please login");
    bob.send("bob");
    CHECK(bob.line() == "Username: Welcome to TESSENGER!");
    CHECK(bob.line() == prompt);
  }
  {
    CliClient missing(server.port(), {"--password-file", (setup.dir / "none").string()});
    CHECK(missing.wait() == 2);
    CHECK(missing.process().error_output().starts_with(
        "tessenger-client: cannot read a password from --password-file"));
  }
}
