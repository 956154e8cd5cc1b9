// fanout: one sender, a group of M joined members; the sender keeps at most
// W messages not yet received by every member.

#include <memory>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "event_loop.hpp"
#include "histogram.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

namespace p = tessenger::protocol;

constexpr std::uint64_t second = 1'000'000'000;
constexpr std::string_view group_name = "benchgroup";

class FanoutRun final : public Handler {
 public:
  explicit FanoutRun(const FanoutOptions& options)
      : options_(options),
        frame_(p::GroupSend{0, std::string(group_name), stamp_text(options.payload)}),
        slots_(options.window),
        next_seq_(options.members + 1) {
    if (options.members == 0) throw std::runtime_error("--members must be > 0");
    if (options.window == 0) throw std::runtime_error("--window must be > 0");
    if (options.payload < min_payload || options.payload > 4096) {
      throw std::runtime_error(fmt::format("--payload: {}..4096", min_payload));
    }
  }

  Report run(const std::string& host, std::uint16_t port, pid_t server_pid) {
    setup(host, port);

    CpuMeter cpu(server_pid);
    const auto start = now_ns();
    sending_ = true;
    credits_ = options_.window;
    sender().mark_dirty();
    const auto measure_at = start + static_cast<std::uint64_t>(options_.warmup_s * 1e9);
    const auto end_at = measure_at + static_cast<std::uint64_t>(options_.duration_s * 1e9);
    run_until(measure_at);
    cpu.start();
    measuring_ = true;
    run_until(end_at);
    cpu.stop();
    measuring_ = false;
    sending_ = false;
    loop_.run_until([this] { return outstanding_ == 0; }, now_ns() + 5 * second);

    Report report{"fanout", {}, {}};
    cpu.report(report);
    const double wall = cpu.wall_seconds();
    report.add("deliveries_per_second", "deliveries", static_cast<double>(deliveries_) / wall,
               "/s");
    report.add("messages_per_second", "messages", static_cast<double>(completed_) / wall, "msgs/s");
    std::uint64_t lost = 0;
    for (const auto& slot : slots_)
      lost += slot.remaining;
    report.add("lost", "lost deliveries", static_cast<std::int64_t>(lost));
    report.add("latency_us", "latency (last member)", latency_of(latency_), "us");
    report.add("server_cpu_us_per_delivery", "server CPU per delivery",
               deliveries_ == 0
                   ? Value{Unknown{}}
                   : Value{cpu.server_seconds() * 1e6 / static_cast<double>(deliveries_)},
               "us");
    report.notes.push_back(fmt::format("{} members, window {}, {}-byte texts", options_.members,
                                       options_.window, options_.payload));
    return report;
  }

 private:
  struct Slot {
    std::uint64_t sent_ns = 0;
    std::uint32_t seq = 0;
    std::size_t remaining = 0;
  };

  Connection& sender() { return *connections_[0]; }

  void setup(const std::string& host, std::uint16_t port) {
    for (std::size_t i = 0; i <= options_.members; ++i) {
      connections_.push_back(std::make_unique<Connection>(loop_, *this, i));
      append_login(connections_.back()->out(), i);
      connections_.back()->connect(host, port);
    }
    const auto deadline = now_ns() + 30 * second;
    if (!loop_.run_until([&] { return logged_in_ == connections_.size(); }, deadline)) {
      throw std::runtime_error(fmt::format("only {} users logged in", logged_in_));
    }
    p::GroupCreate create{3, std::string(group_name), {}};
    for (std::size_t i = 1; i <= options_.members; ++i)
      create.members.push_back(user_name(i));
    sender().send(create);
    if (!loop_.run_until([&] { return joined_ == options_.members; }, deadline)) {
      throw std::runtime_error(fmt::format("only {} members joined", joined_));
    }
  }

  void run_until(std::uint64_t deadline) {
    for (auto now = now_ns(); now < deadline; now = now_ns()) {
      loop_.run_once(
          static_cast<int>(std::min<std::uint64_t>((deadline - now) / 1'000'000 + 1, 50)));
    }
  }

  void before_write(Connection& c, std::uint64_t now) override {
    if (c.index() != 0 || !sending_) return;
    for (; credits_ > 0; --credits_) {
      const auto seq = static_cast<std::uint32_t>(sent_++);
      slots_[seq % slots_.size()] = {now, seq, options_.members};
      ++outstanding_;
      frame_.append(c.out(), seq + 1, {now, seq, 0});
    }
  }

  void on_message(Connection& c, p::Message& message, std::uint64_t received_ns) override {
    if (const auto* event = std::get_if<p::GroupEvent>(&message))
      return on_event(c, *event, received_ns);
    if (std::holds_alternative<p::GroupSent>(message) ||
        std::holds_alternative<p::HelloOk>(message) ||
        std::holds_alternative<p::GroupCreated>(message) ||
        std::holds_alternative<p::MissedEnd>(message)) {
      return;
    }
    if (std::holds_alternative<p::LoginOk>(message)) {
      ++logged_in_;
      return;
    }
    if (std::holds_alternative<p::InviteEvent>(message)) {
      c.send(p::GroupJoin{3, std::string(group_name)});
      return;
    }
    if (std::holds_alternative<p::GroupJoined>(message)) {
      ++joined_;
      return;
    }
    if (const auto* error = std::get_if<p::Error>(&message)) {
      throw std::runtime_error(fmt::format("{} got error {}", user_name(c.index()), error->code));
    }
    throw std::runtime_error(
        fmt::format("unexpected {} from the server", p::name_of(p::type_of(message))));
  }

  void on_event(Connection& c, const p::GroupEvent& event, std::uint64_t received_ns) {
    const auto stamp = read_stamp(event.text);
    if (!stamp || c.index() == 0) throw std::runtime_error("malformed group message");
    auto& expected = next_seq_[c.index()];
    if (stamp->seq != expected) {
      throw std::runtime_error(fmt::format("{}: message {} arrived when {} was expected",
                                           user_name(c.index()), stamp->seq, expected));
    }
    ++expected;
    auto& slot = slots_[stamp->seq % slots_.size()];
    if (slot.seq != stamp->seq || slot.remaining == 0) {
      throw std::runtime_error("group message delivered twice");
    }
    if (measuring_) ++deliveries_;
    if (--slot.remaining > 0) return;
    --outstanding_;
    if (measuring_) {
      ++completed_;
      latency_.record(received_ns - slot.sent_ns);
    }
    if (sending_) {
      ++credits_;
      sender().mark_dirty();
    }
  }

  void on_closed(Connection& c, std::string_view why) override {
    throw std::runtime_error(fmt::format("connection of {} lost: {}", user_name(c.index()), why));
  }

  const FanoutOptions& options_;
  FrameTemplate frame_;
  Loop loop_;
  std::vector<std::unique_ptr<Connection>> connections_;  // the sender, then the members
  std::vector<Slot> slots_;                               // messages in flight, by seq % window
  std::vector<std::uint32_t> next_seq_;                   // per member
  std::size_t logged_in_ = 0;
  std::size_t joined_ = 0;
  bool sending_ = false;
  bool measuring_ = false;
  std::size_t credits_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t outstanding_ = 0;
  std::uint64_t deliveries_ = 0;
  std::uint64_t completed_ = 0;
  Histogram latency_;
};

}  // namespace

Report run_fanout(const ServerUnderTest::Options& server, const FanoutOptions& options) {
  auto config = server;
  config.users = options.members + 1;
  raise_fd_limit(options.members + 64);
  ServerUnderTest target(config);
  FanoutRun run(options);
  return run.run(target.host(), target.port(), target.pid());
}

}  // namespace bench
