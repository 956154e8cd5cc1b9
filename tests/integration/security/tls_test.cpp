// TLS on the chat channel, with certificates made by scripts/make-dev-cert.sh:
// a TLS client chats with a TLS server; a certificate from the wrong CA, or
// for another name, is refused; plain and TLS ends that meet fail clearly on
// both sides; the server warns about a plain listener off loopback.

#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <string>

// After a standard header: Asio decides how it allocates from macros the
// standard library defines, and every file must decide the same way.

#include <tessenger/client.hpp>

#include "log_capture.hpp"
#include "process.hpp"
#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::testing::LogCapture;
using tessenger::testing::Process;
using tessenger::testing::TempDir;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

// Runs a command to completion; true if it exited 0.
bool run(const std::vector<std::string>& argv) {
  Process process(argv);
  process.close_stdin();
  return process.wait(60s) == 0;
}

// A CA and a server certificate for localhost, 127.0.0.1 and ::1, in `dir`.
struct Certificates {
  explicit Certificates(const TempDir& dir, const std::string& name) : path(dir / name) {
    REQUIRE(run({"/bin/bash", TESSENGER_MAKE_DEV_CERT, path.string()}));
  }
  std::string ca() const { return (path / "ca.pem").string(); }
  std::filesystem::path certificate() const { return path / "server.pem"; }
  std::filesystem::path key() const { return path / "server.key"; }
  std::filesystem::path path;
};

tessenger::ServerConfig tls_config(const Certificates& certificates, LogCapture& log) {
  tessenger::ServerConfig config;
  config.tls_certificate = certificates.certificate();
  config.tls_private_key = certificates.key();
  config.log = log.sink();
  return config;
}

template <class T, class Start>
tessenger::Result<T> wait(Start&& start) {
  auto promise = std::make_shared<std::promise<tessenger::Result<T>>>();
  auto future = promise->get_future();
  start([promise](tessenger::Result<T> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(20s) != std::future_status::ready) {
    FAIL_CHECK("no reply within the deadline");
    return tessenger::Failure{std::make_error_code(std::errc::timed_out), {}};
  }
  return future.get();
}

// A library Client on a thread of its own, whose direct messages queue up.
class ChatClient {
 public:
  explicit ChatClient(tessenger::ClientOptions options) : client_(events(), std::move(options)) {}

  tessenger::Result<tessenger::ServerInfo> connect(std::uint16_t port,
                                                   const std::string& host = "127.0.0.1") {
    return wait<tessenger::ServerInfo>(
        [&](auto done) { client_.connect(host, port, std::move(done)); });
  }
  tessenger::Result<tessenger::LoggedIn> login(const std::string& user,
                                               const std::string& password) {
    return wait<tessenger::LoggedIn>(
        [&](auto done) { client_.login(user, password, 9, std::move(done)); });
  }
  tessenger::Result<tessenger::DirectMessageSent> send(const std::string& to,
                                                       const std::string& text) {
    return wait<tessenger::DirectMessageSent>(
        [&](auto done) { client_.send_direct(to, text, std::move(done)); });
  }
  std::optional<p::DirectEvent> next_message() {
    std::unique_lock lock(state_->mutex);
    if (!state_->arrived.wait_for(lock, 20s, [&] { return !state_->messages.empty(); })) {
      return std::nullopt;
    }
    auto message = std::move(state_->messages.front());
    state_->messages.pop_front();
    return message;
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable arrived;
    std::deque<p::DirectEvent> messages;
  };
  tessenger::ClientEvents events() {
    tessenger::ClientEvents events;
    events.on_direct_message = [state = state_](const p::DirectEvent& event) {
      {
        std::lock_guard lock(state->mutex);
        state->messages.push_back(event);
      }
      state->arrived.notify_all();
    };
    return events;
  }

  std::shared_ptr<State> state_ = std::make_shared<State>();
  tessenger::Client client_;
};

tessenger::ClientOptions tls_options(const std::string& ca) {
  tessenger::ClientOptions options;
  options.tls = true;
  options.tls_ca_file = ca;
  return options;
}

bool is_tls_error(std::error_code code) {
  return code == tessenger::errc::tls_error;
}

}  // namespace

TEST_CASE("a TLS client chats with a TLS server") {
  TempDir dir;
  const Certificates certificates(dir, "ca");
  LogCapture log;
  TestServer server(tls_config(certificates, log));

  ChatClient alice(tls_options(certificates.ca()));
  ChatClient bob(tls_options(certificates.ca()));
  REQUIRE(alice.connect(server.port()).ok());
  // By name as well as by address: the certificate names both.
  REQUIRE(bob.connect(server.port(), "localhost").ok());
  REQUIRE(alice.login("alice", "pa").ok());
  REQUIRE(bob.login("bob", "pb").ok());
  for (int i = 0; i < 20; ++i) {
    const auto text = "over TLS " + std::to_string(i);
    REQUIRE(alice.send("bob", text).ok());
    const auto message = bob.next_message();
    REQUIRE(message.has_value());
    CHECK(message->from == "alice");
    CHECK(message->text == text);
  }
  CHECK(log.count("TLS") == 0);
  CHECK(log.count("without TLS") == 0);
}

TEST_CASE("a client refuses a certificate from the wrong CA, or for another name") {
  TempDir dir;
  const Certificates certificates(dir, "ca");
  const Certificates stranger(dir, "stranger");
  LogCapture log;
  TestServer server(tls_config(certificates, log));

  ChatClient client(tls_options(stranger.ca()));
  const auto refused = client.connect(server.port());
  REQUIRE_FALSE(refused.ok());
  CHECK(is_tls_error(refused.error()));
  CHECK(refused.detail().rfind("TLS handshake failed: ", 0) == 0);
  CHECK(refused.detail().find("certificate verify failed") != std::string::npos);
  CHECK(log.wait_for("127.0.0.1: TLS handshake failed: tlsv1 alert unknown ca"));

  // A certificate the CA vouches for, but for example.org only.
  const auto other = dir / "other";
  std::filesystem::create_directories(other);
  REQUIRE(run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=example.org",
               "-addext", "subjectAltName=DNS:example.org", "-keyout", (other / "key.pem").string(),
               "-out", (other / "cert.pem").string()}));
  tessenger::ServerConfig config;
  config.tls_certificate = other / "cert.pem";
  config.tls_private_key = other / "key.pem";
  TestServer misnamed(config);
  ChatClient wrong_name(tls_options((other / "cert.pem").string()));
  const auto mismatch = wrong_name.connect(misnamed.port());
  REQUIRE_FALSE(mismatch.ok());
  CHECK(is_tls_error(mismatch.error()));
  CHECK(mismatch.detail().find("certificate verify failed") != std::string::npos);
}

TEST_CASE("a plain client against a TLS port fails clearly on both sides") {
  TempDir dir;
  const Certificates certificates(dir, "ca");
  LogCapture log;
  TestServer server(tls_config(certificates, log));

  ChatClient plain(tessenger::ClientOptions{});
  const auto refused = plain.connect(server.port());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == errc::unsupported_version);
  CHECK(refused.detail() == "the server requires TLS");
  CHECK(log.wait_for("127.0.0.1: a client without TLS on a TLS port; told so and closed"));

  // On the wire: the answer is a TESSENGER frame, not a TLS alert.
  WireClient raw(server.port());
  raw.send(p::Hello{1, 1, 1, "plain"});
  const auto notice = raw.expect<p::ShutdownEvent>();
  CHECK(static_cast<errc>(notice.code) == errc::unsupported_version);
  CHECK(notice.reason == "the server requires TLS");
  CHECK(raw.closed_within(5s));
}

TEST_CASE("a TLS client against a plain port fails clearly on both sides") {
  TempDir dir;
  const Certificates certificates(dir, "ca");
  LogCapture log;
  tessenger::ServerConfig config;
  config.log = log.sink();
  TestServer server(config);

  ChatClient client(tls_options(certificates.ca()));
  const auto refused = client.connect(server.port());
  REQUIRE_FALSE(refused.ok());
  CHECK(is_tls_error(refused.error()));
  CHECK(refused.detail().rfind("TLS handshake failed: ", 0) == 0);
  CHECK(log.wait_for("127.0.0.1: a TLS handshake on a plain-TCP port"));
}

TEST_CASE("TLS setup errors are clear, and a plain listener off loopback is warned about") {
  TempDir dir;
  const Certificates certificates(dir, "ca");
  const Certificates stranger(dir, "stranger");
  dir.write("credentials.txt", "alice pa\n");
  LogCapture log;
  tessenger::ServerConfig config;
  config.credentials_file = dir / "credentials.txt";
  config.data_dir = dir / "data";
  config.log = log.sink();
  std::error_code ec;
  std::string what;

  config.tls_certificate = certificates.certificate();
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec);
    CHECK(what == "TLS needs both a certificate and a private key");
  }
  config.tls_private_key = stranger.key();
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec);
    CHECK(what.find("cannot load the TLS private key") != std::string::npos);
    CHECK(what.find("key values mismatch") != std::string::npos);
  }
  config.tls_private_key = dir / "missing.key";
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec);
    CHECK(what.find("cannot load the TLS private key") != std::string::npos);
  }

  // The warning comes before the listener opens: on a port already taken the
  // start fails, and nothing listens beyond loopback.
  TestServer taken;
  config.tls_certificate.clear();
  config.tls_private_key.clear();
  config.bind_address = "0.0.0.0";
  config.port = taken.port();
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec == std::errc::address_in_use);
  }
  CHECK(log.count("listening on 0.0.0.0 without TLS: passwords and messages cross the network") ==
        1);
  config.tls_certificate = certificates.certificate();
  config.tls_private_key = certificates.key();
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec == std::errc::address_in_use);
  }
  CHECK(log.count("without TLS") == 1);
}

TEST_CASE("tessenger-client --tls --ca talks to tessenger-server --tls-cert --tls-key") {
  TempDir dir;
  const Certificates certificates(dir, "ca");
  dir.write("credentials.txt", "alice pa\nbob pb\n");
  Process server({TESSENGER_SERVER_PATH, "127.0.0.1", "0", "3", "--credentials",
                  (dir / "credentials.txt").string(), "--data-dir", (dir / "data").string(),
                  "--tls-cert", certificates.certificate().string(), "--tls-key",
                  certificates.key().string()});
  std::string port;
  while (port.empty()) {
    const auto line = server.read_line(30s);
    REQUIRE(line.has_value());
    if (line->starts_with("TESSENGER server listening on 127.0.0.1:")) port = line->substr(40);
  }

  Process alice(
      {TESSENGER_CLIENT_PATH, "127.0.0.1", port, "0", "--tls", "--ca", certificates.ca()});
  alice.write("alice\npa\n/logout\n");
  bool bye = false;
  while (auto line = alice.read_line(30s)) {
    bye = bye || line->find("Bye, alice!") != std::string::npos;
  }
  CHECK(bye);
  CHECK(alice.wait(30s) == 0);

  Process plain({TESSENGER_CLIENT_PATH, "127.0.0.1", port, "0"});
  plain.write("alice\npa\n");
  CHECK(plain.wait(30s) == 1);
  CHECK(plain.error_output(5s).find("cannot connect to 127.0.0.1 port " + port +
                                    ": the server requires TLS") != std::string::npos);

  Process ca_less({TESSENGER_CLIENT_PATH, "127.0.0.1", port, "0", "--ca", certificates.ca()});
  CHECK(ca_less.wait(30s) == 2);  // --ca needs --tls: no quiet fallback to clear text
}
