// The server's per-message work without sockets: the hub handles a request,
// the in-memory store answers and its result comes back through a posted
// task, the message is encoded once and appended to each recipient's write
// queue (as the network adapter does), and the log line is buffered and
// written once per batch. Run from a Release build:
//   build/release/tests/bench/bench_fanout

#include <benchmark/benchmark.h>

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include <tessenger/store.hpp>

#include "core/credentials.hpp"
#include "core/hub.hpp"
#include "core/log_store.hpp"
#include "core/presence.hpp"
#include "hub_doubles.hpp"

namespace p = tessenger::protocol;
namespace core = tessenger::core;

namespace {

// A typical one-line chat message, as in bench_codec.
const std::string text = "see you at the station at half past six, bring the tickets";
// Messages handled between two flushes: one read's worth under load.
constexpr int batch = 32;

// Encodes every message once per version and copies the frame into
// per-session queues, like the server's Outbox; the queues are emptied as if
// written.
class QueueOutbox final : public core::Outbox {
 public:
  void send(core::SessionId to, const p::Message& message) override {
    p::encode(message, queue(to).bytes, queue(to).version);
  }
  void send_to_many(std::span<const core::SessionId> to, const p::Message& message) override {
    for (auto& frame : frames_)
      frame.clear();
    for (const auto id : to) {
      auto& q = queue(id);
      auto& frame = frames_[q.version];
      if (frame.empty()) p::encode(message, frame, q.version);
      q.bytes.insert(q.bytes.end(), frame.begin(), frame.end());
    }
  }
  void negotiated(core::SessionId session, std::uint8_t version) override {
    queue(session).version = version;
  }
  void close(core::SessionId, tessenger::errc) override {}
  void resume(core::SessionId) override {}
  std::size_t backlog(core::SessionId) const override { return 0; }
  void notify_drained(core::SessionId) override {}
  void written() {
    for (auto& q : queues_)
      q.bytes.clear();
  }
  /// Sessions with something queued: the recipients and the sender's reply.
  std::size_t queues_with_frames() const {
    std::size_t n = 0;
    for (const auto& q : queues_)
      n += q.bytes.empty() ? 0 : 1;
    return n;
  }
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto& q : queues_)
      n += q.bytes.size();
    return n;
  }

 private:
  struct Queue {
    std::uint8_t version = p::min_version;
    std::vector<std::byte> bytes;
  };
  Queue& queue(core::SessionId id) {
    if (id >= queues_.size()) queues_.resize(id + 1);
    return queues_[id];
  }
  std::vector<Queue> queues_;
  std::array<std::vector<std::byte>, p::version + 1> frames_;  // by version
};

std::string user(std::size_t i) {
  return "user" + std::to_string(i);
}

// A hub with `users` sessions logged in, its log files in a fresh directory,
// groups in the in-memory store.
struct Setup {
  explicit Setup(std::size_t users)
      : dir(std::filesystem::temp_directory_path() /
            ("tessenger-bench-fanout-" + std::to_string(::getpid()))),
        logs(dir, {}),
        store(tessenger::make_memory_store()),
        hub(config(), core::HubParts{authenticator(users),
                                     logs,
                                     *store,
                                     presence,
                                     outbox,
                                     tasks.poster(),
                                     tessenger::testing::counting_random(),
                                     nullptr,
                                     {}}) {
    for (std::size_t i = 0; i < users; ++i) {
      const core::SessionId id = i + 1;
      hub.connected(id, "127.0.0.1", now);
      handle(id, p::Hello{1, 1, 1, "bench"});
      handle(id, p::Login{2, user(i), "pw", 9});
    }
    hub.flush_logs();
    outbox.written();
  }
  ~Setup() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  static core::HubConfig config() {
    core::HubConfig c;
    // Trusted load from one address: the abuse limits would refuse most of it.
    c.limits.message_rate = 0;
    c.limits.max_connections = 0;
    c.limits.max_connections_per_ip = 0;
    return c;
  }
  static std::shared_ptr<const tessenger::Authenticator> authenticator(std::size_t users) {
    std::unordered_map<std::string, std::string> table;
    for (std::size_t i = 0; i < users; ++i)
      table.emplace(user(i), "pw");
    return std::make_shared<core::TableAuthenticator>(std::move(table));
  }

  // As the server's strand runs it: the request, then the store's answer.
  void handle(core::SessionId id, const p::Message& message) {
    hub.handle(id, message, now);
    tasks.run();
  }

  // Time moves on between batches, as it does between reads.
  void end_batch() {
    hub.flush_logs();
    outbox.written();
    now.steady += std::chrono::microseconds(50);
    now.wall += 50;
  }

  std::filesystem::path dir;
  QueueOutbox outbox;
  core::FileLogStore logs;
  tessenger::testing::TaskQueue tasks;
  std::shared_ptr<tessenger::Store> store;
  core::LocalPresence presence;
  core::Instant now{std::chrono::steady_clock::now(), 1'700'000'000'000'000};
  core::Hub hub;
};

// The timed loop: session 1 sends `message` over and over, and the queues
// and log buffers are emptied every `batch` messages, as a read pass would.
void send_in_batches(benchmark::State& state, Setup& s, const p::Message& message) {
  int in_batch = 0;
  for (auto _ : state) {
    s.handle(1, message);
    if (++in_batch == batch) {
      benchmark::DoNotOptimize(s.outbox.bytes());
      s.end_batch();
      in_batch = 0;
    }
  }
}

// One sender, `members` other joined members of a group: per delivery cost.
void group_fanout(benchmark::State& state) {
  const auto members = static_cast<std::size_t>(state.range(0));
  Setup s(members + 1);
  p::GroupCreate create{3, "benchgroup", {}};
  for (std::size_t i = 1; i <= members; ++i)
    create.members.push_back(user(i));
  s.handle(1, create);
  for (std::size_t i = 1; i <= members; ++i)
    s.handle(i + 1, p::GroupJoin{4, "benchgroup"});
  s.end_batch();

  const p::Message message = p::GroupSend{5, "benchgroup", text};
  s.handle(1, message);
  if (s.outbox.queues_with_frames() != members + 1) {
    state.SkipWithError("the group message did not reach every member");
    return;
  }
  s.end_batch();
  send_in_batches(state, s, message);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(members));
  state.counters["deliveries/msg"] = static_cast<double>(members);
}

// The pairs workload's unit: one sender, one recipient.
void direct_message(benchmark::State& state) {
  Setup s(2);
  const p::Message message = p::DirectSend{5, user(1), text};
  s.handle(1, message);
  if (s.outbox.queues_with_frames() != 2) {
    state.SkipWithError("the message was not delivered");
    return;
  }
  s.end_batch();
  send_in_batches(state, s, message);
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(group_fanout)->Arg(1)->Arg(8)->Arg(50)->Arg(500);
BENCHMARK(direct_message);

BENCHMARK_MAIN();
