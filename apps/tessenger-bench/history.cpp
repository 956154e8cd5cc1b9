// history: fills a SQLite database with one conversation of N messages and
// one of a thousand, times how long a server takes to start serving with
// them, then reads pages of 50 from both at random points, interleaved, so
// the two latencies come from the same minutes of the same machine.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include <tessenger/client.hpp>
#include <tessenger/sqlite_store.hpp>

#include "histogram.hpp"
#include "scenarios.hpp"

namespace bench {
namespace {

namespace p = tessenger::protocol;
using Clock = std::chrono::steady_clock;

template <class T, class Start>
tessenger::Result<T> await(Start&& start) {
  auto promise = std::make_shared<std::promise<tessenger::Result<T>>>();
  auto future = promise->get_future();
  start([promise](tessenger::Result<T> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    throw std::runtime_error("the server did not answer within 30 s");
  }
  return future.get();
}

// Appends through the store itself, many in flight, as the server would.
void fill(const std::filesystem::path& file, std::size_t big, std::size_t small) {
  std::error_code ec;
  std::string problem;
  auto store = tessenger::open_sqlite_store({file, {}, {}}, ec, problem);
  if (!store) throw std::runtime_error(problem);
  store->configure({});
  const std::string text(32, 'x');
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  constexpr std::size_t in_flight = 20'000;
  std::atomic<std::size_t> failed{0};
  for (std::size_t start = 0; start < big + small; start += in_flight) {
    const auto count = std::min(in_flight, big + small - start);
    std::promise<void> all;
    std::atomic<std::size_t> left{count};
    for (std::size_t i = start; i < start + count; ++i) {
      const bool large = i < big;
      const auto from = user_name(large ? i % 2 : 2 + i % 2);
      const auto to = user_name(large ? 1 - i % 2 : 3 - i % 2);
      store->append_direct_message(from, to, text, now, [&](tessenger::StoredMessage stored) {
        if (!stored.outcome.ok()) ++failed;
        if (--left == 0) all.set_value();
      });
    }
    all.get_future().wait();
  }
  if (failed != 0) throw std::runtime_error(fmt::format("{} messages not stored", failed.load()));
}

Latency latency_of(const Histogram& h) {
  return {h.quantile(0.50) / 1e3, h.quantile(0.99) / 1e3, h.quantile(0.999) / 1e3};
}

}  // namespace

Report run_history(const ServerUnderTest::Options& server, const HistoryOptions& options) {
  if (!server.attach.empty()) throw std::runtime_error("history starts its own server");
  if (options.page == 0 || options.page > p::max_history_page || options.messages <= options.page) {
    throw std::runtime_error("--page must be 1-100 and smaller than --messages");
  }
  TempDir dir;
  const auto data = dir.path() / "data";
  std::filesystem::create_directories(data);
  const auto fill_start = Clock::now();
  fill(data / "tessenger.db", options.messages, options.small);
  const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
  const auto db_bytes = std::filesystem::file_size(data / "tessenger.db");

  auto with_data = server;
  with_data.store = "sqlite";
  with_data.data_dir = data;
  with_data.users = std::max<std::size_t>(with_data.users, 4);
  std::vector<double> starts;
  std::unique_ptr<ServerUnderTest> running;
  for (unsigned i = 0; i < std::max(1u, options.restarts); ++i) {
    running.reset();
    const auto begin = Clock::now();
    running = std::make_unique<ServerUnderTest>(with_data);
    starts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
  }
  std::sort(starts.begin(), starts.end());

  // bob reads the large conversation (with alice), dave the small one.
  tessenger::Client large_reader{tessenger::ClientEvents{}};
  tessenger::Client small_reader{tessenger::ClientEvents{}};
  for (auto [client, user] : {std::pair{&large_reader, 1}, std::pair{&small_reader, 3}}) {
    if (!await<tessenger::ServerInfo>([&](auto done) {
          client->connect(running->host(), running->port(), std::move(done));
        })) {
      throw std::runtime_error("cannot connect");
    }
    const auto login = await<tessenger::LoggedIn>([&](auto done) {
      client->login(user_name(static_cast<std::size_t>(user)),
                    user_password(static_cast<std::size_t>(user)), 0, std::move(done));
    });
    if (!login) throw std::runtime_error("login refused: " + login.error().message());
  }
  // Ids: the large conversation holds 1..messages, the small one the rest.
  std::mt19937_64 random(42);
  Histogram large_pages;
  Histogram small_pages;
  Histogram pings;  // the same round trip without the store: the baseline
  std::size_t short_pages = 0;
  const auto read = [&](tessenger::Client& client, const std::string& peer, p::MessageId low,
                        p::MessageId high, Histogram& into) {
    const auto anchor =
        std::uniform_int_distribution<p::MessageId>(low + options.page + 1, high)(random);
    const auto begin = Clock::now();
    const auto page = await<tessenger::ConversationHistory>([&](auto done) {
      client.history({0, p::ConversationKind::direct, peer, p::HistoryDirection::before, anchor,
                      static_cast<std::uint16_t>(options.page)},
                     std::move(done));
    });
    into.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin).count()));
    if (!page) throw std::runtime_error("history refused: " + page.error().message());
    if (page->entries.size() != options.page) ++short_pages;
  };
  const auto first_small = static_cast<p::MessageId>(options.messages);
  const auto last_small = static_cast<p::MessageId>(options.messages + options.small);
  for (std::size_t i = 0; i < options.pages; ++i) {
    read(large_reader, user_name(0), 0, first_small, large_pages);
    read(small_reader, user_name(2), first_small, last_small, small_pages);
    const auto begin = Clock::now();
    if (!await<tessenger::PingReply>([&](auto done) { large_reader.ping(i, std::move(done)); })) {
      throw std::runtime_error("ping failed");
    }
    pings.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin).count()));
  }

  Report report{"history", {}, {}};
  report.add("messages", "messages in the large conversation",
             static_cast<std::int64_t>(options.messages));
  report.add("fill_seconds", "filling the database", fill_s, "s");
  report.add("database_bytes_per_message", "database per message",
             static_cast<double>(db_bytes) / static_cast<double>(options.messages + options.small),
             "B");
  report.add("start_ms", "server start to listening (median)", starts[starts.size() / 2], "ms");
  report.add("page_large", "page of 50, large conversation", latency_of(large_pages), "us");
  report.add("page_small", "page of 50, small conversation", latency_of(small_pages), "us");
  report.add("ping", "ping round trip (baseline)", latency_of(pings), "us");
  report.add("p99_ratio", "p99 large / small",
             large_pages.quantile(0.99) / std::max(1.0, small_pages.quantile(0.99)));
  report.add("short_pages", "pages with fewer messages than asked",
             static_cast<std::int64_t>(short_pages));
  report.notes.push_back(
      "latencies are client round trips over loopback: request, SQLite read on the writer "
      "thread, reply");
  report.succeeded = short_pages == 0;
  return report;
}

}  // namespace bench
