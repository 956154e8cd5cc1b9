// pairs and baseline-relay: P disjoint sender -> recipient pairs, closed loop
// (at most W messages per sender not yet received) or open loop at a fixed
// total rate.

#include <memory>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "event_loop.hpp"
#include "histogram.hpp"
#include "relay.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

namespace p = tessenger::protocol;

constexpr std::uint64_t second = 1'000'000'000;
// Open loop: a sender this far behind stops adding to an unbounded backlog.
constexpr std::uint64_t max_backlog = 1 << 20;

std::uint64_t seconds(double s) {
  return static_cast<std::uint64_t>(s * 1e9);
}

class PairsRun final : public Handler {
 public:
  PairsRun(const PairsOptions& options, bool relay) : options_(options), relay_(relay) {
    if (options.pairs == 0 || options.pairs > 0xffff) throw std::runtime_error("--pairs: 1..65535");
    if (options.rate <= 0 && options.window == 0) throw std::runtime_error("--window must be > 0");
    if (options.payload < min_payload || options.payload > 4096) {
      throw std::runtime_error(fmt::format("--payload: {}..4096", min_payload));
    }
    const auto text = stamp_text(options.payload);
    for (std::size_t i = 0; i < options.pairs; ++i) {
      templates_.emplace_back(p::DirectSend{0, user_name(options.pairs + i), text});
    }
    pairs_.resize(options.pairs);
  }

  Report run(const std::string& host, std::uint16_t port, pid_t server_pid, std::string scenario) {
    connect_all(host, port);

    CpuMeter cpu(server_pid);
    const auto start = now_ns();
    sending_ = true;
    std::unique_ptr<Timer> timer;
    if (options_.rate > 0) {
      timer = std::make_unique<Timer>(loop_, [this, &timer] { on_tick(*timer); });
      rate_start_ = start;
      timer->arm_at(start);
    } else {
      for (std::size_t i = 0; i < pairs_.size(); ++i)
        add_credits(i, static_cast<std::uint32_t>(options_.window));
    }
    const auto measure_at = start + seconds(options_.warmup_s);
    const auto end_at = measure_at + seconds(options_.duration_s);
    run_until(measure_at);
    cpu.start();
    measuring_ = true;
    run_until(end_at);
    cpu.stop();
    measuring_ = false;
    sending_ = false;
    timer.reset();

    // Whatever is still in flight must arrive: anything missing is lost.
    loop_.run_until([this] { return in_flight() == 0; }, now_ns() + 5 * second);

    Report report{std::move(scenario), {}, {}};
    cpu.report(report);
    const double wall = cpu.wall_seconds();
    report.add("delivered_per_second", "delivered", static_cast<double>(delivered_) / wall,
               "msgs/s");
    report.add("lost", "lost", static_cast<std::int64_t>(in_flight()));
    report.add("latency_us", "latency", latency_of(latency_), "us");
    const double server_cpu = cpu.server_seconds();
    report.add("server_cpu_us_per_message", "server CPU per message",
               delivered_ == 0 ? Value{Unknown{}}
                               : Value{server_cpu * 1e6 / static_cast<double>(delivered_)},
               "us");
    report.notes.push_back(options_.rate > 0
                               ? fmt::format("{} pairs, open loop at {} msgs/s, {}-byte texts",
                                             options_.pairs, options_.rate, options_.payload)
                               : fmt::format("{} pairs, window {}, {}-byte texts", options_.pairs,
                                             options_.window, options_.payload));
    return report;
  }

 private:
  struct Pair {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint32_t credits = 0;
  };

  bool is_sender(const Connection& c) const noexcept { return c.index() < pairs_.size(); }

  void connect_all(const std::string& host, std::uint16_t port) {
    const auto n = pairs_.size();
    for (std::size_t i = 0; i < 2 * n; ++i)
      connections_.push_back(std::make_unique<Connection>(loop_, *this, i));
    const auto deadline = now_ns() + 30 * second;
    if (relay_) {
      // The relay pairs connections in accept order: sender i, then recipient i.
      for (std::size_t i = 0; i < n; ++i) {
        for (auto* c : {connections_[i].get(), connections_[n + i].get()}) {
          c->connect(host, port);
          if (!loop_.run_until([c] { return c->connected(); }, deadline)) {
            throw std::runtime_error("cannot connect to the relay");
          }
        }
      }
      return;
    }
    for (auto& c : connections_) {
      append_login(c->out(), c->index());
      c->connect(host, port);
    }
    if (!loop_.run_until([&] { return logged_in_ == 2 * n; }, deadline)) {
      throw std::runtime_error(fmt::format("only {} of {} users logged in", logged_in_, 2 * n));
    }
  }

  void run_until(std::uint64_t deadline) {
    for (auto now = now_ns(); now < deadline; now = now_ns()) {
      loop_.run_once(
          static_cast<int>(std::min<std::uint64_t>((deadline - now) / 1'000'000 + 1, 50)));
    }
  }

  std::uint64_t in_flight() const noexcept {
    std::uint64_t total = 0;
    for (const auto& pair : pairs_)
      total += pair.sent - pair.received;
    return total;
  }

  void add_credits(std::size_t pair, std::uint32_t credits) {
    pairs_[pair].credits += credits;
    connections_[pair]->mark_dirty();
  }

  void on_tick(Timer& timer) {
    if (!sending_) return;
    const auto now = now_ns();
    const auto interval = static_cast<double>(second) / options_.rate;
    const auto due =
        static_cast<std::uint64_t>(static_cast<double>(now - rate_start_) / interval) + 1;
    for (; issued_ < due; ++issued_) {
      const auto pair = static_cast<std::size_t>(issued_ % pairs_.size());
      if (pairs_[pair].sent - pairs_[pair].received < max_backlog) add_credits(pair, 1);
    }
    timer.arm_at(rate_start_ + static_cast<std::uint64_t>(static_cast<double>(issued_) * interval));
  }

  void before_write(Connection& c, std::uint64_t now) override {
    if (!is_sender(c)) return;
    auto& pair = pairs_[c.index()];
    if (!sending_) {
      pair.credits = 0;
      return;
    }
    const auto& frame = templates_[c.index()];
    for (; pair.credits > 0; --pair.credits) {
      const auto seq = static_cast<std::uint32_t>(pair.sent++);
      frame.append(c.out(), seq + 1, {now, seq, static_cast<std::uint16_t>(c.index())});
    }
  }

  void on_message(Connection& c, p::Message& message, std::uint64_t received_ns) override {
    if (const auto* event = std::get_if<p::DirectEvent>(&message))
      return on_text(c, event->text, received_ns);
    // The relay hands the recipient the sender's own frame.
    if (const auto* forwarded = std::get_if<p::DirectSend>(&message)) {
      return on_text(c, forwarded->text, received_ns);
    }
    if (std::holds_alternative<p::DirectSent>(message) ||
        std::holds_alternative<p::HelloOk>(message) ||
        std::holds_alternative<p::MissedEnd>(message)) {
      return;
    }
    if (std::holds_alternative<p::LoginOk>(message)) {
      ++logged_in_;
      return;
    }
    if (const auto* error = std::get_if<p::Error>(&message)) {
      throw std::runtime_error(fmt::format(
          "{} got error {} ({})", user_name(c.index()), error->code,
          tessenger::make_error_code(static_cast<tessenger::errc>(error->code)).message()));
    }
    throw std::runtime_error(
        fmt::format("unexpected {} from the server", p::name_of(p::type_of(message))));
  }

  void on_text(Connection& c, const std::string& text, std::uint64_t received_ns) {
    const auto stamp = read_stamp(text);
    const std::size_t pair = c.index() - pairs_.size();
    if (is_sender(c) || !stamp || stamp->sender != pair) {
      throw std::runtime_error(fmt::format("message misrouted to {}", user_name(c.index())));
    }
    auto& state = pairs_[pair];
    if (stamp->seq != static_cast<std::uint32_t>(state.received)) {
      throw std::runtime_error(fmt::format("pair {}: message {} arrived when {} was expected", pair,
                                           stamp->seq, state.received));
    }
    ++state.received;
    if (measuring_) {
      ++delivered_;
      latency_.record(received_ns - stamp->sent_ns);
    }
    if (sending_ && options_.rate <= 0) add_credits(pair, 1);
  }

  void on_closed(Connection& c, std::string_view why) override {
    throw std::runtime_error(fmt::format("connection of {} lost: {}", user_name(c.index()), why));
  }

  const PairsOptions& options_;
  bool relay_;
  Loop loop_;
  std::vector<std::unique_ptr<Connection>> connections_;  // senders, then recipients
  std::vector<FrameTemplate> templates_;
  std::vector<Pair> pairs_;
  std::size_t logged_in_ = 0;
  bool sending_ = false;
  bool measuring_ = false;
  std::uint64_t delivered_ = 0;
  std::uint64_t rate_start_ = 0;
  std::uint64_t issued_ = 0;
  Histogram latency_;
};

}  // namespace

Report run_pairs(const ServerUnderTest::Options& server, const PairsOptions& options) {
  auto config = server;
  config.users = 2 * options.pairs;
  raise_fd_limit(2 * options.pairs + 64);
  ServerUnderTest target(config);
  PairsRun run(options, false);
  return run.run(target.host(), target.port(), target.pid(), "pairs");
}

Report run_baseline_relay(const PairsOptions& options) {
  raise_fd_limit(2 * options.pairs + 64);
  Relay relay;
  PairsRun run(options, true);
  return run.run("127.0.0.1", relay.port(), relay.pid(), "baseline-relay");
}

}  // namespace bench
