// login: N users log in with at most C logins in flight, then all are held
// for S seconds while the server's memory is measured.

#include <memory>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "event_loop.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

namespace p = tessenger::protocol;

constexpr std::uint64_t second = 1'000'000'000;

class LoginRun final : public Handler {
 public:
  explicit LoginRun(const LoginOptions& options) : options_(options), done_(options.users) {
    if (options.users == 0 || options.concurrency == 0) {
      throw std::runtime_error("--users and --concurrency must be > 0");
    }
    connections_.reserve(options.users);
  }

  Report run(const std::string& host, std::uint16_t port, pid_t server_pid) {
    host_ = host;
    port_ = port;
    const bool local = server_pid > 0;
    const auto idle_rss = local ? process_rss(server_pid) : 0;

    CpuMeter cpu(server_pid);
    cpu.start();
    while (connections_.size() < std::min(options_.users, options_.concurrency))
      launch();
    const bool all = loop_.run_until([&] { return logged_in_ + failed_ == options_.users; },
                                     now_ns() + 120 * second);
    cpu.stop();
    if (!all) throw std::runtime_error(fmt::format("only {} users logged in", logged_in_));

    const auto hold_until = now_ns() + static_cast<std::uint64_t>(options_.hold_s * 1e9);
    while (now_ns() < hold_until)
      loop_.run_once(50);
    const auto rss = local ? process_rss(server_pid) : 0;
    const int threads = local ? process_threads(server_pid) : 0;
    std::size_t held = 0;
    for (const auto& c : connections_)
      held += c->connected() ? 1 : 0;

    Report report{"login", {}, {}};
    cpu.report(report);
    report.add("sessions_held", "sessions held", static_cast<std::int64_t>(held));
    report.add("logins_per_second", "logins", static_cast<double>(logged_in_) / cpu.wall_seconds(),
               "/s");
    const auto bytes = [local](std::uint64_t v) {
      return local ? Value{static_cast<std::int64_t>(v)} : Value{Unknown{}};
    };
    report.add("server_rss_bytes", "server RSS", bytes(rss), "bytes");
    report.add("idle_server_rss_bytes", "idle server RSS", bytes(idle_rss), "bytes");
    report.add("rss_per_session_bytes", "RSS per session",
               local && held > 0 ? Value{static_cast<double>(rss - std::min(rss, idle_rss)) /
                                         static_cast<double>(held)}
                                 : Value{Unknown{}},
               "bytes");
    report.add("server_threads", "server threads",
               local ? Value{static_cast<std::int64_t>(threads)} : Value{Unknown{}});
    report.notes.push_back(fmt::format("{} users, {} logins in flight, held {} s", options_.users,
                                       options_.concurrency, options_.hold_s));
    if (failed_ > 0)
      report.notes.push_back(fmt::format("{} logins failed: {}", failed_, first_error_));
    return report;
  }

 private:
  void launch() {
    const auto index = connections_.size();
    connections_.push_back(std::make_unique<Connection>(loop_, *this, index));
    append_login(connections_.back()->out(), index);
    connections_.back()->connect(host_, port_);
  }

  void finished() {
    if (connections_.size() < options_.users) launch();
  }

  void on_message(Connection& c, p::Message& message, std::uint64_t) override {
    if (std::holds_alternative<p::HelloOk>(message) ||
        std::holds_alternative<p::MissedEnd>(message)) {
      return;
    }
    if (std::holds_alternative<p::LoginOk>(message)) {
      done_[c.index()] = true;
      ++logged_in_;
      return finished();
    }
    const auto* error = std::get_if<p::Error>(&message);
    fail(c, error ? fmt::format("error {}", error->code)
                  : fmt::format("unexpected {}", p::name_of(p::type_of(message))));
  }

  void on_closed(Connection& c, std::string_view why) override {
    // Before its login completes a closed connection is a failed login;
    // afterwards it is a session not held, counted at the end.
    if (!logged_in(c)) fail(c, std::string(why));
  }

  bool logged_in(const Connection& c) const { return done_[c.index()]; }

  void fail(Connection& c, std::string why) {
    if (first_error_.empty()) first_error_ = fmt::format("{}: {}", user_name(c.index()), why);
    ++failed_;
    c.close();
    finished();
  }

  const LoginOptions& options_;
  std::vector<bool> done_;  // logged in, by user index
  std::string host_;
  std::uint16_t port_ = 0;
  Loop loop_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::size_t logged_in_ = 0;
  std::size_t failed_ = 0;
  std::string first_error_;
};

}  // namespace

Report run_login(const ServerUnderTest::Options& server, const LoginOptions& options) {
  auto config = server;
  config.users = options.users;
  const auto limit = raise_fd_limit(options.users + 64);
  if (limit < options.users + 64) {
    throw std::runtime_error(fmt::format("{} users need {} file descriptors; the limit is {}",
                                         options.users, options.users + 64, limit));
  }
  ServerUnderTest target(config);
  LoginRun run(options);
  return run.run(target.host(), target.port(), target.pid());
}

}  // namespace bench
