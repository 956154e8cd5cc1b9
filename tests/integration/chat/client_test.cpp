// Client behaviour that the real server never provokes: a scripted fake
// server on a blocking socket sends garbage, unknown ids or coalesced
// frames. Plus connection edge cases and the contents of every result,
// against the real server.

#include <doctest/doctest.h>

#include <poll.h>

#include <atomic>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include "chat_client.hpp"
#include "next_protocol.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;

namespace {

// One accepted connection, driven step by step by the test thread.
class FakeServer {
 public:
  FakeServer() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {}

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void accept() { socket_ = acceptor_.accept(); }

  /// The next message the client sent (bounded by the deadline).
  protocol::Message read() {
    for (;;) {
      if (!pending_.empty()) {
        auto result = decoder_.feed(pending_);
        pending_.erase(pending_.begin(),
                       pending_.begin() + static_cast<std::ptrdiff_t>(result.consumed));
        REQUIRE_FALSE(result.error);
        if (result.message) {
          last_version_ = result.version;
          return std::move(*result.message);
        }
      }
      pollfd fd{socket_->native_handle(), POLLIN, 0};
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count();
      REQUIRE(::poll(&fd, 1, static_cast<int>(ms)) == 1);
      std::byte chunk[4096];
      const auto n = socket_->read_some(asio::buffer(chunk));
      pending_.insert(pending_.end(), chunk, chunk + n);
    }
  }

  template <class M>
  M read_as() {
    auto message = read();
    REQUIRE(std::holds_alternative<M>(message));
    return std::get<M>(std::move(message));
  }

  void write(const std::vector<std::byte>& bytes) { asio::write(*socket_, asio::buffer(bytes)); }
  void send(const protocol::Message& message) { write(protocol::encode(message)); }

  /// Accepts and answers the Hello.
  void handshake() {
    accept();
    const auto hello = read_as<protocol::Hello>();
    protocol::HelloOk ok;
    ok.request_id = hello.request_id;
    ok.max_frame_size = 65536;
    send(ok);
  }

  void close() { socket_->close(); }

  /// The header version of the frame read() returned last.
  std::uint8_t last_version() const { return last_version_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::optional<asio::ip::tcp::socket> socket_;
  protocol::Decoder decoder_;
  std::vector<std::byte> pending_;
  std::uint8_t last_version_ = 0;
};

}  // namespace

TEST_CASE("frames coalesced into one read and split byte by byte are all decoded") {
  FakeServer fake;
  std::thread connector([&] {
    fake.handshake();
    fake.read_as<protocol::Login>();
  });
  ChatClient chat(fake.port());
  REQUIRE(chat.hello().ok());
  chat.client().login("alice", "pa", 1, [](Result<LoggedIn>) {});
  connector.join();

  std::vector<std::byte> burst;
  for (int i = 0; i < 50; ++i) {
    protocol::encode(protocol::DirectEvent{"bob", i, "m" + std::to_string(i)}, burst);
  }
  fake.write(burst);
  for (int i = 0; i < 50; ++i)
    CHECK(chat.next<protocol::DirectEvent>().timestamp == i);

  const auto split = protocol::encode(protocol::GroupEvent{"g", "carol", 7, "split"});
  for (auto byte : split)
    fake.write({byte});
  const auto event = chat.next<protocol::GroupEvent>();
  CHECK(event.text == "split");
  CHECK(event.from == "carol");
}

TEST_CASE("against a server of version N+1 the client agrees on N and skips what it lacks") {
  FakeServer fake;
  std::thread script([&] {
    fake.accept();
    const auto hello = fake.read_as<protocol::Hello>();
    // Said in the oldest version, so that any server can read it.
    CHECK(fake.last_version() == protocol::min_version);
    CHECK(hello.min_version == protocol::min_version);
    CHECK(hello.max_version == protocol::version);
    const auto chosen = next::negotiate(hello);
    REQUIRE(chosen == protocol::version);
    const std::uint8_t v = *chosen;
    fake.write(next::encode(protocol::HelloOk{hello.request_id, v, "next-server", 65536}, v));
    // A newer event and a newer request: one ignored, the other refused.
    fake.write(next::encode(next::Wave{"carol"}, v));
    fake.write(next::encode(next::Shout{77, "hey"}, v));
    const auto refused = fake.read_as<protocol::Error>();
    CHECK(fake.last_version() == v);
    CHECK(refused.request_id == 77);
    CHECK(refused.code == static_cast<std::uint16_t>(errc::unsupported_request));
    // Version 2: the server pings a silent client, which answers in kind.
    fake.write(protocol::encode(protocol::Ping{78, 99}, v));
    CHECK(fake.read_as<protocol::Pong>() == protocol::Pong{78, 99});
    fake.write(protocol::encode(protocol::DirectEvent{"carol", 1, "after"}, v));
    fake.write(protocol::encode(protocol::LoginAttemptEvent{"192.0.2.9", 5}, v));
  });
  ChatClient chat(fake.port());
  REQUIRE(chat.hello().ok());
  CHECK(chat.hello()->version == protocol::version);
  CHECK(chat.next<protocol::DirectEvent>().text == "after");
  CHECK(chat.next<protocol::LoginAttemptEvent>().address == "192.0.2.9");
  script.join();
}

TEST_CASE("replies are matched by request id, not by arrival order") {
  FakeServer fake;
  std::thread script([&] {
    fake.handshake();
    const auto first = fake.read_as<protocol::Ping>();
    const auto second = fake.read_as<protocol::Ping>();
    fake.send(protocol::Pong{second.request_id, second.payload});
    fake.send(protocol::Pong{first.request_id, first.payload});
  });
  ChatClient chat(fake.port());
  std::promise<std::uint64_t> one, two;
  chat.client().ping(1, [&](Result<PingReply> r) { one.set_value(r.value().payload); });
  chat.client().ping(2, [&](Result<PingReply> r) { two.set_value(r.value().payload); });
  script.join();
  auto first = one.get_future();
  auto second = two.get_future();
  REQUIRE(first.wait_for(deadline) == std::future_status::ready);
  REQUIRE(second.wait_for(deadline) == std::future_status::ready);
  CHECK(first.get() == 1);
  CHECK(second.get() == 2);
}

TEST_CASE("a protocol error from the server closes the client with that error") {
  SUBCASE("garbage bytes") {
    FakeServer fake;
    std::thread script([&] { fake.handshake(); });
    ChatClient chat(fake.port());
    script.join();
    // A frame header announcing more than max_frame_size.
    fake.write({std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff},
                std::byte{protocol::version}, std::byte{0x80}, std::byte{0}, std::byte{0}});
    CHECK(chat.next<Disconnected>().code == errc::frame_too_large);
    CHECK(chat.ping().error() == std::errc::not_connected);
  }
  SUBCASE("a reply to a request never made") {
    FakeServer fake;
    std::thread script([&] { fake.handshake(); });
    ChatClient chat(fake.port());
    script.join();
    fake.send(protocol::Pong{999, 0});
    CHECK(chat.next<Disconnected>().code == errc::unexpected_message);
  }
  SUBCASE("a reply of the wrong type fails the pending request too") {
    FakeServer fake;
    std::thread script([&] {
      fake.handshake();
      const auto ping = fake.read_as<protocol::Ping>();
      fake.send(protocol::LoginOk{ping.request_id, "alice"});
    });
    ChatClient chat(fake.port());
    CHECK(chat.ping().error() == errc::unexpected_message);
    script.join();
    CHECK(chat.next<Disconnected>().code == errc::unexpected_message);
  }
  SUBCASE("a request sent by the server") {
    FakeServer fake;
    std::thread script([&] { fake.handshake(); });
    ChatClient chat(fake.port());
    script.join();
    fake.send(protocol::Logout{5});
    CHECK(chat.next<Disconnected>().code == errc::unexpected_message);
  }
  SUBCASE("an Error for no request") {
    FakeServer fake;
    std::thread script([&] { fake.handshake(); });
    ChatClient chat(fake.port());
    script.join();
    fake.send(protocol::Error{0, static_cast<std::uint16_t>(errc::malformed_frame), "bad"});
    const auto closed = chat.next<Disconnected>();
    CHECK(closed.code == errc::malformed_frame);
    CHECK(closed.reason == "bad");
  }
}

TEST_CASE("a refused Hello fails connect") {
  FakeServer fake;
  std::thread script([&] {
    fake.accept();
    const auto hello = fake.read_as<protocol::Hello>();
    fake.send(protocol::Error{hello.request_id,
                              static_cast<std::uint16_t>(errc::unsupported_version), ""});
    fake.close();
  });
  ChatClient chat(fake.port());
  script.join();
  CHECK(chat.hello().error() == errc::unsupported_version);
  CHECK(chat.ping().error() == std::errc::not_connected);
  CHECK(chat.queued() == 0);
}

TEST_CASE("the server closing mid-request fails the request and reports it once") {
  FakeServer fake;
  std::thread script([&] {
    fake.handshake();
    fake.read_as<protocol::ActiveUsersQuery>();
    fake.close();
  });
  ChatClient chat(fake.port());
  CHECK(chat.active_users().error() == errc::peer_closed);
  script.join();
  CHECK(chat.next<Disconnected>().code == errc::peer_closed);
  CHECK(chat.queued() == 0);
}

TEST_CASE("server shutdown is reported with its code") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  server.stop();
  CHECK(alice.next<Disconnected>().code == errc::server_shutdown);
  CHECK(alice.send("bob", "hi").error() == std::errc::not_connected);
}

TEST_CASE("connection errors and misuse") {
  SUBCASE("connection refused") {
    std::uint16_t closed_port = 0;
    {
      FakeServer fake;  // bound then released: nothing listens there now
      closed_port = fake.port();
    }
    ChatClient chat(closed_port);
    CHECK(chat.hello().error() == std::errc::connection_refused);
    CHECK(chat.queued() == 0);
  }
  SUBCASE("requests before connect and a second connect") {
    TestServer server;
    Client client(ClientEvents{});
    const auto early = await<PingReply>([&](auto done) { client.ping(0, std::move(done)); });
    CHECK(early.error() == std::errc::not_connected);
    const auto hello = await<ServerInfo>(
        [&](auto done) { client.connect("127.0.0.1", server.port(), std::move(done)); });
    CHECK(hello.ok());
    const auto again = await<ServerInfo>(
        [&](auto done) { client.connect("127.0.0.1", server.port(), std::move(done)); });
    CHECK(again.error() == std::errc::connection_already_in_progress);
  }
  SUBCASE("close fails pending requests and is not reported as a disconnection") {
    FakeServer fake;
    std::thread script([&] {
      fake.handshake();
      fake.read_as<protocol::Ping>();
    });
    ChatClient chat(fake.port());
    std::promise<std::error_code> failed;
    chat.client().ping(0, [&](Result<PingReply> r) { failed.set_value(r.error()); });
    script.join();
    chat.client().close();
    auto code = failed.get_future();
    REQUIRE(code.wait_for(deadline) == std::future_status::ready);
    CHECK(code.get() == std::errc::operation_canceled);
    CHECK(chat.queued() == 0);
  }
  SUBCASE("destroying the client drops pending callbacks") {
    FakeServer fake;
    std::thread script([&] {
      fake.handshake();
      fake.read_as<protocol::Ping>();
    });
    auto called = std::make_shared<std::atomic<bool>>(false);
    {
      Client client(ClientEvents{});
      const auto hello = await<ServerInfo>(
          [&](auto done) { client.connect("127.0.0.1", fake.port(), std::move(done)); });
      REQUIRE(hello.ok());
      client.ping(0, [called](Result<PingReply>) { *called = true; });
      script.join();
    }
    CHECK_FALSE(*called);
  }
}

TEST_CASE("requests that would break a codec limit fail locally") {
  TestServer server;
  ChatClient alice(server.port());
  CHECK(alice.login(std::string(33, 'a'), "pa").error() == errc::invalid_username);
  CHECK(alice.login("alice", std::string(300, 'p')).error() == errc::field_too_long);
  alice.must_login("alice", "pa");
  CHECK(alice.create_group("g", std::vector<std::string>(2000, "bob")).error() ==
        errc::limit_reached);
  const auto bad_member = alice.create_group("g", {std::string(33, 'b')});
  CHECK(bad_member.error() == errc::user_not_online);
  CHECK(bad_member.detail() == std::string(33, 'b'));
  CHECK(alice.join_group(std::string(40, 'g')).error() == errc::group_not_found);
  CHECK(alice.send_group(std::string(40, 'g'), "hi").error() == errc::group_not_found_for_message);
  // Still connected.
  CHECK(alice.ping(3)->payload == 3);
}

TEST_CASE("IPv6 works") {
  ServerConfig config;
  config.bind_address = "::1";
  std::optional<TestServer> server;
  try {
    server.emplace(config);
  } catch (const std::system_error&) {
    MESSAGE("no IPv6 loopback here; skipped");
    return;
  }
  ChatClient alice(server->port(), "::1");
  ChatClient bob(server->port(), "::1");
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  REQUIRE(alice.send("bob", "over v6").ok());
  CHECK(bob.next<protocol::DirectEvent>().text == "over v6");
  const auto users = alice.active_users();
  REQUIRE(users.ok());
  REQUIRE(users->users.size() == 1);
  CHECK(users->users[0].address == "::1");
}

// ---- The error contract ----

TEST_CASE("transport errors are in std::system_category, the rest are tessenger::errc") {
  SUBCASE("a refused connect") {
    std::uint16_t closed_port = 0;
    {
      FakeServer fake;
      closed_port = fake.port();
    }
    ChatClient chat(closed_port);
    CHECK(chat.hello().error() == std::errc::connection_refused);
    CHECK(chat.hello().error().category() == std::system_category());
  }
  SUBCASE("a name that does not resolve") {
    Client client(ClientEvents{});
    const auto hello = await<ServerInfo>(
        [&](auto done) { client.connect("no-such-host.invalid", 1, std::move(done)); });
    CHECK(hello.error() == errc::host_not_found);
  }
  SUBCASE("an unreadable CA file") {
    ClientOptions options;
    options.tls = true;
    options.tls_ca_file = "/nonexistent/ca.pem";
    Client client(ClientEvents{}, options);
    const auto hello =
        await<ServerInfo>([&](auto done) { client.connect("127.0.0.1", 1, std::move(done)); });
    CHECK(hello.error() == errc::tls_error);
    CHECK(hello.detail().find("/nonexistent/ca.pem") != std::string::npos);
  }
}

// ---- Timeouts and liveness ----

namespace {

ClientOptions quick(std::chrono::milliseconds connect, std::chrono::milliseconds request,
                    std::chrono::milliseconds idle = {}, std::chrono::milliseconds ping = {}) {
  ClientOptions options;
  options.connect_timeout = connect;
  options.request_timeout = request;
  options.idle_time = idle;
  options.ping_timeout = ping;
  return options;
}

}  // namespace

TEST_CASE("a server that never answers Hello fails connect with timed_out") {
  FakeServer fake;
  std::thread script([&] {
    fake.accept();
    fake.read_as<protocol::Hello>();
  });
  Client client(ClientEvents{}, quick(200ms, 0ms));
  const auto hello = await<ServerInfo>(
      [&](auto done) { client.connect("127.0.0.1", fake.port(), std::move(done)); });
  CHECK(hello.error() == errc::timed_out);
  script.join();
}

TEST_CASE("a request without a reply times out; a late reply is dropped and the link goes on") {
  FakeServer fake;
  std::promise<void> late_sent;
  std::thread script([&] {
    fake.handshake();
    const auto first = fake.read_as<protocol::Ping>();
    const auto second = fake.read_as<protocol::Ping>();
    fake.send(protocol::Pong{first.request_id, first.payload});
    fake.send(protocol::Pong{second.request_id, second.payload});
  });
  Client client(ClientEvents{}, quick(5s, 200ms));
  REQUIRE(await<ServerInfo>([&](auto done) {
            client.connect("127.0.0.1", fake.port(), std::move(done));
          }).ok());
  // The fake answers the first ping only once the second has been sent,
  // which happens after the first timed out.
  const auto first = await<PingReply>([&](auto done) { client.ping(1, std::move(done)); });
  CHECK(first.error() == errc::timed_out);
  const auto second = await<PingReply>([&](auto done) { client.ping(2, std::move(done)); });
  REQUIRE(second.ok());
  CHECK(second->payload == 2);
  script.join();
}

TEST_CASE("a silent server is pinged, then dropped with timed_out") {
  FakeServer fake;
  std::thread script([&] {
    fake.handshake();
    fake.read_as<protocol::ActiveUsersQuery>();
    // The client's own probe; never answered.
    CHECK(fake.read_as<protocol::Ping>().payload == 0);
  });
  auto disconnected = std::make_shared<std::promise<std::error_code>>();
  ClientEvents events;
  events.on_disconnected = [disconnected](std::error_code code, std::string_view) {
    disconnected->set_value(code);
  };
  Client client(events, quick(5s, 0ms, 150ms, 150ms));
  REQUIRE(await<ServerInfo>([&](auto done) {
            client.connect("127.0.0.1", fake.port(), std::move(done));
          }).ok());
  const auto pending = await<OnlineUsers>([&](auto done) { client.active_users(std::move(done)); });
  CHECK(pending.error() == errc::timed_out);
  auto code = disconnected->get_future();
  REQUIRE(code.wait_for(deadline) == std::future_status::ready);
  CHECK(code.get() == errc::timed_out);
  script.join();
}

TEST_CASE("a server that keeps talking is not probed") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  // Every round trip is input; the probe would be an extra request the
  // server answers, invisible here, so the check is that nothing breaks.
  for (int i = 0; i < 3; ++i)
    CHECK(alice.ping(static_cast<std::uint64_t>(i)).ok());
}

// ---- Lifetime ----

TEST_CASE("a Client destroyed from another thread while io threads deliver events") {
  ServerConfig config;
  config.limits.message_rate = 100'000;  // the burst below is the point, not the limit
  config.limits.message_burst = 100'000;
  TestServer server(config);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&] { io.run(); });

  ChatClient bob(server.port());
  bob.must_login("bob", "pb");
  // A fresh account each round: the server learns of the previous close asynchronously.
  for (const auto& [user, password] : {std::pair{"alice", "pa"}, std::pair{"carol", "pc"},
                                       std::pair{"dave", "pd"}, std::pair{"erin", "pe"}}) {
    auto destroyed = std::make_shared<std::atomic<bool>>(false);
    auto late = std::make_shared<std::atomic<int>>(0);
    auto seen = std::make_shared<std::promise<void>>();
    auto first = std::make_shared<std::atomic<bool>>(true);
    ClientEvents events;
    events.on_direct_message = [=](const protocol::DirectEvent&) {
      if (*destroyed) ++*late;
      if (first->exchange(false)) seen->set_value();
    };
    auto alice = std::make_unique<Client>(io, events);
    REQUIRE(await<ServerInfo>([&](auto done) {
              alice->connect("127.0.0.1", server.port(), std::move(done));
            }).ok());
    REQUIRE(
        await<LoggedIn>([&](auto done) { alice->login(user, password, 1, std::move(done)); }).ok());
    for (int i = 0; i < 200; ++i)
      bob.client().send_direct(user, "m" + std::to_string(i), [](auto) {});
    REQUIRE(seen->get_future().wait_for(deadline) == std::future_status::ready);
    alice.reset();
    *destroyed = true;
    // Whatever was still queued for alice is processed without her handlers.
    CHECK(bob.ping().ok());
    CHECK(*late == 0);
  }
  work.reset();
  for (auto& t : threads)
    t.join();
}

TEST_CASE("a handler may destroy the Client it is called from") {
  TestServer server;
  ChatClient bob(server.port());
  bob.must_login("bob", "pb");
  for (const bool own_thread : {true, false}) {
    CAPTURE(own_thread);
    asio::io_context io;
    std::unique_ptr<Client> alice;
    auto gone = std::make_shared<std::promise<void>>();
    ClientEvents events;
    events.on_direct_message = [&alice, gone](const protocol::DirectEvent&) {
      if (!alice) return;
      alice.reset();
      gone->set_value();
    };
    alice = own_thread ? std::make_unique<Client>(events) : std::make_unique<Client>(io, events);
    auto work = asio::make_work_guard(io);
    std::thread runner;
    if (!own_thread) runner = std::thread([&] { io.run(); });
    REQUIRE(await<ServerInfo>([&](auto done) {
              alice->connect("127.0.0.1", server.port(), std::move(done));
            }).ok());
    REQUIRE(
        await<LoggedIn>([&](auto done) { alice->login("alice", "pa", 1, std::move(done)); }).ok());
    REQUIRE(bob.send("alice", "bye").ok());
    REQUIRE(gone->get_future().wait_for(deadline) == std::future_status::ready);
    work.reset();
    if (runner.joinable()) runner.join();
    // alice is logged out by the close: the account is free again.
    ChatClient again(server.port());
    for (int attempt = 0; attempt < 100 && !again.login("alice", "pa").ok(); ++attempt) {
      REQUIRE(bob.ping().ok());
    }
  }
}

// ---- Completion tokens and late events ----

TEST_CASE("requests take use_future and use_awaitable as well as plain handlers") {
  TestServer server;
  SUBCASE("use_future") {
    Client client(ClientEvents{});
    auto hello = client.connect("127.0.0.1", server.port(), asio::use_future);
    REQUIRE(hello.wait_for(deadline) == std::future_status::ready);
    REQUIRE(hello.get().ok());
    auto login = client.login("alice", "pa", 1, asio::use_future);
    REQUIRE(login.wait_for(deadline) == std::future_status::ready);
    CHECK(login.get()->username == "alice");
    auto refused = client.send_direct("nobody", "hi", asio::use_future);
    REQUIRE(refused.wait_for(deadline) == std::future_status::ready);
    const auto result = refused.get();
    CHECK(result.error() == errc::user_not_online);
    CHECK(result.detail() == "nobody");
  }
  SUBCASE("use_awaitable") {
    asio::io_context io;
    Client client(io);
    std::optional<std::uint64_t> payload;
    std::error_code refused;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const auto hello =
              co_await client.connect("127.0.0.1", server.port(), asio::use_awaitable);
          if (!hello) co_return;
          co_await client.login("alice", "pa", 1, asio::use_awaitable);
          payload = (co_await client.ping(42, asio::use_awaitable))->payload;
          refused = (co_await client.join_group("nogroup", asio::use_awaitable)).error();
          client.close();
        },
        asio::detached);
    io.run_for(deadline);
    CHECK(payload == 42u);
    CHECK(refused == errc::group_not_found);
  }
}

TEST_CASE("events attached after construction are delivered") {
  TestServer server;
  ChatClient bob(server.port());
  bob.must_login("bob", "pb");
  Client alice(ClientEvents{});
  auto got = std::make_shared<std::promise<std::string>>();
  ClientEvents late;
  late.on_direct_message = [got](const protocol::DirectEvent& e) { got->set_value(e.text); };
  alice.set_events(std::move(late));
  REQUIRE(await<ServerInfo>([&](auto done) {
            alice.connect("127.0.0.1", server.port(), std::move(done));
          }).ok());
  REQUIRE(await<LoggedIn>([&](auto done) { alice.login("alice", "pa", 1, std::move(done)); }).ok());
  REQUIRE(bob.send("alice", "late events").ok());
  auto text = got->get_future();
  REQUIRE(text.wait_for(deadline) == std::future_status::ready);
  CHECK(text.get() == "late events");
}

template <class T>
concept has_request_id = requires(T result) {
  result.request_id;
};
static_assert(!has_request_id<ServerInfo> && !has_request_id<LoggedIn> &&
              !has_request_id<DirectMessageSent> && !has_request_id<OnlineUsers> &&
              !has_request_id<NewGroup> && !has_request_id<JoinedGroup> &&
              !has_request_id<GroupMessageSent> && !has_request_id<FileOfferAccepted> &&
              !has_request_id<PingReply> && !has_request_id<SessionEnded>);

TEST_CASE("results carry what was asked for and what the server answered") {
  ServerConfig config;
  config.software = "tessenger-server/results";
  TestServer server(config);
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  ChatClient carol(server.port());

  REQUIRE(alice.hello().ok());
  CHECK(alice.hello().value() == ServerInfo{protocol::version, "tessenger-server/results",
                                            static_cast<std::uint32_t>(Limits{}.max_frame_size)});

  const auto logged_in = alice.login("alice", "pa", 7001);
  REQUIRE(logged_in.ok());
  CHECK(logged_in->username == "alice");
  bob.must_login("bob", "pb", 7002);
  carol.must_login("carol", "pc", 7003);

  const auto online = alice.active_users();
  REQUIRE(online.ok());
  REQUIRE(online->users.size() == 2);
  CHECK(online->users[0].username == "bob");
  CHECK(online->users[0].udp_port == 7002);
  CHECK(online->users[1].username == "carol");
  CHECK(online->users[1].udp_port == 7003);

  const auto sent = alice.send("bob", "hi bob");
  REQUIRE(sent.ok());
  CHECK(sent->to == "bob");
  const auto direct = bob.next<protocol::DirectEvent>();
  CHECK(direct.text == "hi bob");
  CHECK(sent->timestamp == direct.timestamp);

  const auto created = alice.create_group("team", {"bob", "carol"});
  REQUIRE(created.ok());
  CHECK(created.value() == NewGroup{"team", {"alice", "bob", "carol"}});
  CHECK(bob.next<protocol::InviteEvent>().group == "team");
  const auto joined = bob.join_group("team");
  REQUIRE(joined.ok());
  CHECK(joined->group == "team");

  const auto posted = alice.send_group("team", "hi team");
  REQUIRE(posted.ok());
  CHECK(posted->group == "team");
  const auto group = bob.next<protocol::GroupEvent>();
  CHECK(group.text == "hi team");
  CHECK(posted->timestamp == group.timestamp);

  const auto offered = await<FileOfferAccepted>([&](auto done) {
    alice.client().offer_file("bob", "a.bin", 10, protocol::Sha256{}, std::move(done));
  });
  REQUIRE(offered.ok());
  const auto incoming = bob.next<protocol::FileIncomingEvent>();
  CHECK(offered->to == "bob");
  CHECK(offered->transfer_id == incoming.transfer_id);
  CHECK(offered->peer_address == "127.0.0.1");
  CHECK(offered->peer_udp_port == 7002);
  CHECK(offered->key == incoming.key);

  // The round trip lies within the time the test waited for it.
  const auto before = std::chrono::steady_clock::now();
  const auto pong = alice.ping(0xfeedULL);
  const auto waited = std::chrono::steady_clock::now() - before;
  REQUIRE(pong.ok());
  CHECK(pong->payload == 0xfeedULL);
  CHECK(pong->round_trip >= std::chrono::microseconds(0));
  CHECK(pong->round_trip <= waited);

  const auto bye = alice.logout();
  REQUIRE(bye.ok());
  CHECK(bye->username == "alice");
}
