// Connections the server has closed but whose peers never read nor close
// (issue 13, findings 1 and 8): each counts against the connection limits
// until its socket is closed, and that happens within the 2 s linger
// whatever its write state, over plain TCP and over TLS; a stream of garbage
// connections keeps the server's descriptors within the limits. The
// attackers are other loopback addresses (127.0.0.0/8); the figures are
// printed.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <tessenger/clock.hpp>

#include "eventually.hpp"
#include "log_capture.hpp"
#include "process.hpp"
#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::testing::Account;
using tessenger::testing::eventually;
using tessenger::testing::LogCapture;
using tessenger::testing::Process;
using tessenger::testing::TempDir;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// What the server allows a closing connection, and what the tests allow on
// top for a loaded machine (or a sanitizer build).
constexpr auto linger_time = 2s;
constexpr auto slack = 1500ms;
constexpr int messages_each = 100;

std::size_t descriptors() {
  std::size_t count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory's own descriptor
}

// A frame header declaring 4 GiB: a protocol error as soon as it is read.
std::vector<std::byte> garbage() {
  return std::vector<std::byte>(8, std::byte{0xff});
}

// A Hello, then Pings whose Pongs fill more than the socket buffers of a
// peer that does not read hold, then garbage: the server closes the
// connection with a write still under way.
std::vector<std::byte> pings_then_garbage(int pings) {
  std::vector<std::byte> bytes;
  p::encode(p::Hello{1, 1, p::version, "zombie"}, bytes);
  for (int i = 0; i < pings; ++i)
    p::encode(p::Ping{static_cast<p::RequestId>(i + 2), 0}, bytes);
  const auto bad = garbage();
  bytes.insert(bytes.end(), bad.begin(), bad.end());
  return bytes;
}

// Sends what it can; a refused connection may be reset while it sends.
void send_quietly(WireClient& client, std::span<const std::byte> bytes) {
  try {
    client.send_bytes(bytes);
  } catch (const std::runtime_error&) {
  }
}

bool admitted(std::uint16_t port, const std::string& source) {
  WireClient client(port, "127.0.0.1", 0, source);
  send_quietly(client, p::encode(p::Hello{1, 1, 1, "probe"}));
  const auto reply = client.next();
  return reply && std::holds_alternative<p::HelloOk>(*reply);
}

std::vector<Account> zombie_accounts(int count) {
  std::vector<Account> accounts{{"sender", "ps"}};
  for (int i = 0; i < count; ++i)
    accounts.push_back({"zombie" + std::to_string(i), "pz" + std::to_string(i)});
  return accounts;
}

// A peer that stops reading, over plain TCP or TLS (OpenSSL, blocking): a
// small receive buffer, and a small segment size, which keeps the server's
// kernel send buffer small too (about 80 KB instead of megabytes on
// loopback), so that what the server sends it backs up in the server's own
// queue. Every wait is bounded (10 s).
class Zombie {
 public:
  Zombie(std::uint16_t port, const std::string& source, const std::string& ca = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    const int receive_buffer = 4096;
    const int segment = 536;
    const timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    ::setsockopt(fd_, IPPROTO_TCP, TCP_MAXSEG, &segment, sizeof segment);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &address.sin_addr);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    address.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    if (ca.empty()) return;
    context_.reset(SSL_CTX_new(TLS_client_method()));
    REQUIRE(context_ != nullptr);
    REQUIRE(SSL_CTX_load_verify_locations(context_.get(), ca.c_str(), nullptr) == 1);
    SSL_CTX_set_verify(context_.get(), SSL_VERIFY_PEER, nullptr);
    ssl_.reset(SSL_new(context_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    SSL_set1_host(ssl_.get(), "127.0.0.1");
    REQUIRE(SSL_connect(ssl_.get()) == 1);
  }
  ~Zombie() { ::close(fd_); }
  Zombie(const Zombie&) = delete;
  Zombie& operator=(const Zombie&) = delete;

  /// False if the server reset the connection (or the deadline passed).
  bool send_bytes(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      std::size_t sent = 0;
      if (ssl_) {
        if (SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &sent) != 1) return false;
      } else {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent = static_cast<std::size_t>(n);
      }
      bytes = bytes.subspan(sent);
    }
    return true;
  }
  void send(const p::Message& message) { REQUIRE(send_bytes(p::encode(message))); }

  template <typename T>
  T expect() {
    while (queue_.empty()) {
      std::byte buffer[16384];
      std::size_t length = 0;
      if (ssl_) {
        REQUIRE(SSL_read_ex(ssl_.get(), buffer, sizeof buffer, &length) == 1);
      } else {
        const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
        REQUIRE(n > 0);
        length = static_cast<std::size_t>(n);
      }
      std::span<const std::byte> input(buffer, length);
      while (!input.empty()) {
        auto result = decoder_.feed(input);
        input = input.subspan(result.consumed);
        REQUIRE_FALSE(result.error);
        if (result.message) queue_.push_back(std::move(*result.message));
      }
    }
    auto message = std::move(queue_.front());
    queue_.pop_front();
    REQUIRE(std::holds_alternative<T>(message));
    return std::get<T>(std::move(message));
  }

  void login(const std::string& user, const std::string& password) {
    send(p::Hello{1, 1, 1, "zombie"});
    expect<p::HelloOk>();
    send(p::Login{2, user, password, 9});
    expect<p::LoginOk>();
  }

 private:
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  struct ContextFree {
    void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
  };
  int fd_ = -1;
  std::unique_ptr<SSL_CTX, ContextFree> context_;
  std::unique_ptr<SSL, SslFree> ssl_;
  p::Decoder decoder_;
  std::deque<p::Message> queue_;
};

// `count` users who never read get more than their socket buffers take from
// a sender, then log out together: each connection is gone within the
// linger, its queue undrained, and the server is back where it started.
void zombies_log_out(TestServer& server, int count, const std::string& ca = {}) {
  auto& s = server.server();
  const auto before = s.stats();
  auto sender = std::make_unique<Zombie>(server.port(), "127.0.0.1", ca);
  sender->login("sender", "ps");
  std::vector<std::unique_ptr<Zombie>> zombies;
  for (int i = 0; i < count; ++i) {
    zombies.push_back(std::make_unique<Zombie>(server.port(), "127.0.0.1", ca));
    zombies.back()->login("zombie" + std::to_string(i), "pz" + std::to_string(i));
  }
  // Messages of 4,000 bytes: more than the kernel buffers take, less than
  // the write bound (no slow-consumer drop).
  const std::string text(4000, 'z');
  p::RequestId request = 10;
  for (int i = 0; i < count; ++i) {
    const auto to = "zombie" + std::to_string(i);
    for (int k = 0; k < messages_each; ++k)
      sender->send(p::DirectSend{request++, to, text});
    for (int k = 0; k < messages_each; ++k)
      sender->expect<p::DirectSent>();
  }
  // A quarter of what each was sent is still in the server's queue: the
  // kernel took the rest.
  const auto least = before.pending_write_bytes +
                     static_cast<std::uint64_t>(count) * messages_each * text.size() / 4;
  CHECK(eventually([&] { return s.stats().pending_write_bytes >= least; }));
  const auto stuck = s.stats().pending_write_bytes - before.pending_write_bytes;

  const auto logout = Clock::now();
  for (auto& zombie : zombies)
    zombie->send(p::Logout{99});
  const auto target = before.connections + 1;  // the sender stays
  CHECK(eventually([&] { return s.stats().connections == target; }, linger_time + slack));
  const auto gone = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - logout);
  CHECK(gone < linger_time + slack);
  const auto after = s.stats();
  CHECK(after.closing == 0);
  CHECK(after.slow_consumers == before.slow_consumers);
  CHECK(after.sessions_online == before.sessions_online + 1);
  CHECK(after.pending_write_bytes == before.pending_write_bytes);
  // The zombies' sockets were open until here: the server closed its end.
  zombies.clear();
  sender.reset();
  CHECK(eventually([&] {
    const auto stats = s.stats();
    return stats.connections == before.connections &&
           stats.sessions_online == before.sessions_online;
  }));
  MESSAGE(count << " zombie(s), " << messages_each << " messages of 4,000 bytes each: " << stuck
                << " bytes queued and unread at the logout; every connection closed "
                << gone.count() << " ms after it (bound "
                << std::chrono::milliseconds(linger_time).count() << " ms + slack), "
                << after.pending_write_bytes - before.pending_write_bytes
                << " bytes left queued; back to " << s.stats().connections << " connections");
}

// A CA and a server certificate for 127.0.0.1, from scripts/make-dev-cert.sh.
struct Certificates {
  explicit Certificates(const TempDir& dir) : path(dir / "certificates") {
    Process make({"/bin/bash", TESSENGER_MAKE_DEV_CERT, path.string()});
    make.close_stdin();
    REQUIRE(make.wait(60s) == 0);
  }
  std::filesystem::path path;
};

}  // namespace

TEST_CASE("closed connections that never read count against the limits until their sockets close") {
  // The linger follows the server's clock: standing still, it never ends,
  // so the counts below do not depend on the machine's speed.
  auto clock = std::make_shared<tessenger::ManualClock>();
  tessenger::ServerConfig config;
  config.clock = clock;
  config.limits.max_connections_per_ip = 20;
  config.limits.max_connections = 40;
  config.limits.message_rate = 0;  // the Pings must all be answered
  TestServer server(config);
  auto& s = server.server();
  const std::string attacker = "127.0.0.31";
  const auto attack = pings_then_garbage(20'000);

  std::vector<std::unique_ptr<Zombie>> zombies;
  std::uint64_t most = 0;
  for (int i = 0; i < 60; ++i) {
    zombies.push_back(std::make_unique<Zombie>(server.port(), attacker));
    zombies.back()->send_bytes(attack);  // a refused one is reset on the way
    most = std::max(most, s.stats().connections);
  }
  REQUIRE(eventually([&] {
    const auto stats = s.stats();
    return stats.connections_refused == 40 && stats.closing == 20 && stats.protocol_errors == 20;
  }));
  const auto held = s.stats();
  CHECK(most <= 20);
  CHECK(held.connections == 20);
  CHECK(held.connections_accepted == 20);
  // Their Pongs are still queued: the closes did not wait for the writes.
  CHECK(held.pending_write_bytes >= 20 * attack.size() / 4);

  // Still full for that address; another address has the rest of the total.
  CHECK_FALSE(admitted(server.port(), attacker));
  CHECK(admitted(server.port(), "127.0.0.32"));
  CHECK(eventually([&] { return s.stats().connections == 20; }));

  clock->advance(linger_time);
  CHECK(eventually([&] { return s.stats().connections == 0; }));
  const auto after = s.stats();
  CHECK(after.closing == 0);
  CHECK(after.pending_write_bytes == 0);
  CHECK(admitted(server.port(), attacker));
  MESSAGE("60 connections from " << attacker << " closed by the server, never read: at most "
                                 << most << " open at once, " << held.connections_refused
                                 << " refused, " << held.pending_write_bytes
                                 << " bytes unsent while closing; after the 2 s linger "
                                 << after.connections << " left and the address is admitted again");
}

TEST_CASE("a user who never reads and logs out is gone within the linger, with its queue full") {
  tessenger::ServerConfig config;
  config.limits.message_rate = 0;
  TestServer server(config, zombie_accounts(20));
  zombies_log_out(server, 1);
  zombies_log_out(server, 20);
}

TEST_CASE("the same over TLS") {
  TempDir dir;
  const Certificates certificates(dir);
  tessenger::ServerConfig config;
  config.limits.message_rate = 0;
  config.tls_certificate = certificates.path / "server.pem";
  config.tls_private_key = certificates.path / "server.key";
  TestServer server(config, zombie_accounts(20));
  const auto ca = (certificates.path / "ca.pem").string();
  zombies_log_out(server, 1, ca);
  zombies_log_out(server, 20, ca);
}

TEST_CASE("2,500 garbage connections keep the server's descriptors within the limits") {
  LogCapture log;
  tessenger::ServerConfig config;
  config.limits.max_connections = 50;
  config.limits.max_connections_per_ip = 20;
  config.log = log.sink();
  const auto test_descriptors = descriptors();
  TestServer server(config);
  auto& s = server.server();
  const auto idle = descriptors() - test_descriptors;
  const std::string attacker = "127.0.0.41";
  const auto bad = garbage();

  // The attacker keeps every socket open and never reads; the descriptors
  // that are not its own are the server's.
  std::vector<std::unique_ptr<WireClient>> attackers;
  std::size_t most = 0;
  auto sample = [&] { most = std::max(most, descriptors() - test_descriptors - attackers.size()); };
  const auto start = Clock::now();
  for (int i = 0; i < 2500; ++i) {
    attackers.push_back(std::make_unique<WireClient>(server.port(), "127.0.0.1", 0, attacker));
    send_quietly(*attackers.back(), bad);
    if (i % 10 == 0) sample();
  }
  REQUIRE(eventually([&] {
    sample();
    const auto stats = s.stats();
    return stats.connections_accepted + stats.connections_refused == 2500;
  }));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  // The listener, the event loop's and the log files' descriptors, and the
  // connections one address may have.
  CHECK(most <= idle + config.limits.max_connections_per_ip + 2);
  CHECK(eventually([&] { return s.stats().connections == 0; }, linger_time + slack));
  sample();
  CHECK(descriptors() - test_descriptors - attackers.size() <= idle + 1);
  const auto stats = s.stats();
  const auto refusal_lines = log.count("connection refused");
  // Refusals are summarised (1st, 10th, 100th... since the last admission).
  CHECK(refusal_lines * 20 <= stats.connections_refused);
  // Each admitted one is a protocol error; five lines per 10 s say so and
  // one summary the rest (docs/security.md).
  const auto windows = static_cast<std::size_t>(elapsed / 10s) + 2;
  const auto error_lines = log.count("protocol error");
  CHECK(error_lines <= windows * 6);
  MESSAGE("2,500 garbage connections from "
          << attacker << " in " << elapsed.count() << " ms, limits 50 in all and 20 per address: "
          << stats.connections_accepted << " accepted, " << stats.connections_refused
          << " refused; the server's descriptors: " << idle << " idle, at most " << most
          << " during the attack; " << refusal_lines << " refusal lines and " << error_lines
          << " protocol error lines in the log");
  CHECK(admitted(server.port(), attacker));
}
