// Two FileTransfer instances over real UDP sockets on 127.0.0.1, port 0.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <tessenger/file_transfer.hpp>

using namespace tessenger;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using udp = asio::ip::udp;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() /
           ("tessenger-xfer-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path / "download");
    fs::create_directories(path / "outbox");
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path download() const { return path / "download"; }
  fs::path outbox() const { return path / "outbox"; }
};

std::vector<char> random_content(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<char> v(n);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const auto x = rng();
    std::memcpy(v.data() + i, &x, 8);
  }
  for (; i < n; ++i)
    v[i] = static_cast<char>(rng());
  return v;
}

void write_file(const fs::path& p, const std::vector<char>& data) {
  std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

transfer::Digest digest_of(const fs::path& p) {
  transfer::Digest d{};
  REQUIRE_FALSE(transfer::sha256_file(p, d));
  return d;
}

struct Watch {
  bool completed = false;
  bool failed = false;
  std::error_code error;
  std::string reason;
  TransferResult result;
  std::uint64_t progress = 0;
  int progress_calls = 0;
  std::chrono::steady_clock::time_point ended;

  bool finished() const { return completed || failed; }
  TransferCallbacks callbacks() {
    TransferCallbacks c;
    c.on_progress = [this](std::uint64_t done, std::uint64_t) {
      progress = done;
      ++progress_calls;
    };
    c.on_complete = [this](const TransferResult& r) {
      CHECK_FALSE(finished());
      completed = true;
      result = r;
      ended = std::chrono::steady_clock::now();
    };
    c.on_failure = [this](std::error_code ec, const std::string& why) {
      CHECK_FALSE(finished());
      failed = true;
      error = ec;
      reason = why;
      ended = std::chrono::steady_clock::now();
    };
    return c;
  }
};

struct Peer {
  TempDir dir;
  TransferOptions options;
  std::unique_ptr<FileTransfer> service;

  Peer(asio::io_context& io, TransferOptions opts = {}) : options(std::move(opts)) {
    options.download_dir = dir.download();
    options.progress_interval = 0ms;
    start(io);
  }
  void start(asio::io_context& io) {
    service =
        std::make_unique<FileTransfer>(io.get_executor(), udp::endpoint(loopback, 0), options);
  }
  udp::endpoint endpoint() const { return {loopback, service->local_port()}; }
};

// Runs the io_context until `done` holds or the watchdog limit passes.
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::seconds limit = 120s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_one_for(20ms);
    if (io.stopped()) io.restart();
  }
  return true;
}

std::uint64_t next_id() {
  static std::uint64_t id = 0x7000;
  return ++id;
}

transfer::Key key_for(std::uint64_t id) {
  std::mt19937_64 rng(id);
  transfer::Key k{};
  for (auto& b : k)
    b = static_cast<std::uint8_t>(rng());
  return k;
}

struct Offer {
  std::uint64_t id;
  transfer::Key key;
  fs::path path;
  IncomingTransfer incoming;
};

// Writes the file to the sender's outbox and makes what the server would
// hand to both sides.
Offer make_offer(Peer& from, const Peer& to, const std::string& name,
                 const std::vector<char>& content, const std::string& sender_name = "alice") {
  Offer o;
  o.id = next_id();
  o.key = key_for(o.id);
  o.path = from.dir.outbox() / ("src-" + std::to_string(o.id));
  write_file(o.path, content);
  o.incoming.transfer_id = o.id;
  o.incoming.key = o.key;
  o.incoming.sender_name = sender_name;
  o.incoming.file_name = name;
  o.incoming.size = content.size();
  o.incoming.sha256 = digest_of(o.path);
  o.incoming.sender_endpoint = from.endpoint();
  (void)to;
  return o;
}

void start(Peer& from, Peer& to, const Offer& o, Watch& sent, Watch& received) {
  REQUIRE_FALSE(to.service->expect_file(o.incoming, received.callbacks()));
  REQUIRE_FALSE(from.service->send_file(o.id, o.key, o.path, to.endpoint(), sent.callbacks()));
}

void check_delivered(const Offer& o, const Watch& sent, const Watch& received,
                     const fs::path& expected_path) {
  CAPTURE(sent.reason);
  CAPTURE(received.reason);
  REQUIRE(sent.completed);
  REQUIRE(received.completed);
  CHECK(received.result.path == expected_path);
  CHECK(fs::file_size(expected_path) == o.incoming.size);
  CHECK(digest_of(expected_path) == o.incoming.sha256);
  CHECK(sent.result.path == o.path);
}

std::vector<fs::path> listing(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("sizes 0, 1, one chunk and one chunk + 1 arrive intact") {
  asio::io_context io;
  Peer a(io), b(io);
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, transfer::default_chunk_size,
                                 transfer::default_chunk_size + 1}) {
    CAPTURE(size);
    const std::string name = "f" + std::to_string(size) + ".bin";
    const auto o = make_offer(a, b, name, random_content(size, size));
    Watch sent, received;
    start(a, b, o, sent, received);
    REQUIRE(run_until(io, [&] { return sent.finished() && received.finished(); }));
    check_delivered(o, sent, received, b.dir.download() / ("alice_" + name));
  }
  // Nothing but the four files is left in the download dir.
  CHECK(listing(b.dir.download()).size() == 4);
}

TEST_CASE("a 100 MB file arrives intact") {
  asio::io_context io;
  Peer a(io), b(io);
  const auto o = make_offer(a, b, "big.bin", random_content(100'000'000, 100));
  Watch sent, received;
  const auto t0 = std::chrono::steady_clock::now();
  start(a, b, o, sent, received);
  REQUIRE(run_until(
      io, [&] { return sent.finished() && received.finished(); }, 300s));
  check_delivered(o, sent, received, b.dir.download() / "alice_big.bin");
  const double seconds = std::chrono::duration<double>(received.ended - t0).count();
  MESSAGE("100 MB in " << seconds << " s, " << 100.0 / seconds << " MB/s; resent "
                       << sent.result.stats.bytes_retransmitted << " bytes");
  CHECK(received.progress_calls > 1);
  CHECK(b.service->stats().dropped_auth == 0);
}

TEST_CASE("with and without segmentation offload and background hashing, files arrive intact") {
  for (const bool offload : {true, false}) {
    for (const bool background : {true, false}) {
      CAPTURE(offload);
      CAPTURE(background);
      asio::io_context io;
      TransferOptions options;
      options.segmentation_offload = offload;
      options.max_hashing_threads = background ? 4 : 0;
      options.chunk_size = 8000;
      Peer a(io, options), b(io, options);
      const auto o = make_offer(a, b, "o.bin", random_content(5'000'003, offload + 2 * background));
      Watch sent, received;
      start(a, b, o, sent, received);
      REQUIRE(run_until(io, [&] { return sent.finished() && received.finished(); }));
      check_delivered(o, sent, received, b.dir.download() / "alice_o.bin");
      // Runs of data datagrams leave as GSO sends, and loopback hands them
      // to the receiver still joined.
      const auto from = a.service->stats();
      const auto to = b.service->stats();
      CHECK(to.hashed_on_own_thread == (background ? 1 : 0));
      if (offload) {
        CHECK(from.datagrams_sent_offloaded > from.datagrams_sent / 2);
        CHECK(to.datagrams_received_coalesced > to.datagrams_received / 2);
      } else {
        CHECK(from.datagrams_sent_offloaded == 0);
        CHECK(to.datagrams_received_coalesced == 0);
      }
    }
  }
}

TEST_CASE("hashing threads: none for small files, at most the configured number at once") {
  asio::io_context io;
  TransferOptions one_thread;
  one_thread.max_hashing_threads = 1;
  Peer a(io), b(io, one_thread);
  const auto large = 5'000'000;
  const auto first = make_offer(a, b, "l1.bin", random_content(large, 11));
  const auto second = make_offer(a, b, "l2.bin", random_content(large, 12));
  const auto small = make_offer(a, b, "s.bin", random_content(100'000, 13));
  Watch sent[3], received[3];
  start(a, b, first, sent[0], received[0]);
  start(a, b, second, sent[1], received[1]);
  start(a, b, small, sent[2], received[2]);
  // The first large file took the one thread; the other two hash inline.
  CHECK(b.service->stats().hashed_on_own_thread == 1);
  REQUIRE(run_until(io, [&] {
    return std::all_of(std::begin(received), std::end(received),
                       [](const Watch& w) { return w.finished(); }) &&
           std::all_of(std::begin(sent), std::end(sent),
                       [](const Watch& w) { return w.finished(); });
  }));
  check_delivered(first, sent[0], received[0], b.dir.download() / "alice_l1.bin");
  check_delivered(second, sent[1], received[1], b.dir.download() / "alice_l2.bin");
  check_delivered(small, sent[2], received[2], b.dir.download() / "alice_s.bin");
  // Finished transfers give their thread back: the next large file gets one.
  const auto third = make_offer(a, b, "l3.bin", random_content(large, 14));
  Watch sent3, received3;
  start(a, b, third, sent3, received3);
  CHECK(b.service->stats().hashed_on_own_thread == 2);
  REQUIRE(run_until(io, [&] { return sent3.finished() && received3.finished(); }));
  check_delivered(third, sent3, received3, b.dir.download() / "alice_l3.bin");
}

TEST_CASE("a file received into a memory sink: the bytes in memory, nothing on disk") {
  // The larger file is hashed on a thread of its own, which reads the sink's memory.
  for (const std::size_t size : {std::size_t{3'000'001}, std::size_t{9'000'001}}) {
    CAPTURE(size);
    asio::io_context io;
    TransferOptions options;
    options.chunk_size = 8000;
    Peer a(io, options), b(io, options);
    const auto content = random_content(size, 9);
    const auto o = make_offer(a, b, "m.bin", content);
    auto sink = std::make_unique<transfer::MemorySink>(content.size());
    const auto& held = *sink;
    Watch sent, received;
    REQUIRE_FALSE(b.service->expect_file(o.incoming, std::move(sink), received.callbacks()));
    CHECK(b.service->stats().hashed_on_own_thread == (size > 4u << 20 ? 1 : 0));
    REQUIRE_FALSE(a.service->send_file(o.id, o.key, o.path, b.endpoint(), sent.callbacks()));
    REQUIRE(run_until(io, [&] { return sent.finished() && received.finished(); }));
    REQUIRE(received.completed);
    CHECK(received.result.path.empty());
    CHECK(received.result.size == content.size());
    CHECK(held.committed());
    CHECK(std::equal(content.begin(), content.end(), held.data().begin(), held.data().end(),
                     [](char c, std::byte got) { return static_cast<std::byte>(c) == got; }));
    CHECK(listing(b.dir.download()).empty());
    Watch refused;
    CHECK(b.service->expect_file(o.incoming, nullptr, refused.callbacks()) ==
          errc::invalid_argument);
  }
}

TEST_CASE("several transfers at once in both directions") {
  asio::io_context io;
  Peer a(io), b(io);
  std::vector<Offer> offers;
  std::vector<std::pair<Peer*, Peer*>> routes;
  for (int i = 0; i < 3; ++i) {
    offers.push_back(make_offer(a, b, "ab" + std::to_string(i), random_content(3'000'000, i)));
    routes.emplace_back(&a, &b);
  }
  for (int i = 0; i < 2; ++i) {
    offers.push_back(
        make_offer(b, a, "ba" + std::to_string(i), random_content(2'000'000, 10 + i), "bob"));
    routes.emplace_back(&b, &a);
  }
  std::vector<Watch> sent(offers.size()), received(offers.size());
  for (std::size_t i = 0; i < offers.size(); ++i)
    start(*routes[i].first, *routes[i].second, offers[i], sent[i], received[i]);
  CHECK(a.service->active() == 5);
  REQUIRE(run_until(io, [&] {
    for (std::size_t i = 0; i < offers.size(); ++i)
      if (!sent[i].finished() || !received[i].finished()) return false;
    return true;
  }));
  for (std::size_t i = 0; i < offers.size(); ++i) {
    const auto& to = *routes[i].second;
    const auto expected =
        to.dir.download() / ((i < 3 ? "alice_" : "bob_") + offers[i].incoming.file_name);
    check_delivered(offers[i], sent[i], received[i], expected);
  }
}

TEST_CASE("a name collision gets a suffix and the existing file is untouched") {
  asio::io_context io;
  Peer a(io), b(io);
  write_file(b.dir.download() / "alice_clash.txt", {'o', 'l', 'd'});
  for (const char* expected : {"alice_clash (1).txt", "alice_clash (2).txt"}) {
    const auto o = make_offer(a, b, "clash.txt", random_content(5000, 5));
    Watch sent, received;
    start(a, b, o, sent, received);
    REQUIRE(run_until(io, [&] { return sent.finished() && received.finished(); }));
    check_delivered(o, sent, received, b.dir.download() / expected);
  }
  std::ifstream old(b.dir.download() / "alice_clash.txt");
  std::string text;
  old >> text;
  CHECK(text == "old");
}

TEST_CASE("hostile names are stored under a safe name inside the download dir") {
  asio::io_context io;
  Peer a(io), b(io);
  const std::pair<const char*, const char*> cases[] = {
      {"../../escape.txt", "alice_escape.txt"},
      {".hidden", "alice_hidden"},
      {"line\nbreak", "alice_line_break"},
      {"..", "alice_file"},
  };
  for (const auto& [name, expected] : cases) {
    const auto o = make_offer(a, b, name, random_content(3000, 3));
    Watch sent, received;
    start(a, b, o, sent, received);
    REQUIRE(run_until(io, [&] { return sent.finished() && received.finished(); }));
    check_delivered(o, sent, received, b.dir.download() / expected);
  }
  CHECK_FALSE(fs::exists(b.dir.path / "escape.txt"));
  CHECK_FALSE(fs::exists(b.dir.path.parent_path() / "escape.txt"));
  CHECK(listing(b.dir.download()).size() == 4);
}

TEST_CASE("the receiver vanishes mid-transfer; a restarted receiver resumes") {
  asio::io_context io;
  TransferOptions short_timeout;
  short_timeout.idle_timeout = 1s;
  Peer a(io, short_timeout), b(io, short_timeout);
  const auto content = random_content(60'000'000, 60);
  const auto o = make_offer(a, b, "movie.bin", content);
  Watch sent, received;
  start(a, b, o, sent, received);
  REQUIRE(run_until(io, [&] { return received.progress >= 10'000'000 || received.finished(); }));
  REQUIRE_FALSE(received.finished());
  const auto held = received.progress;
  b.service.reset();
  const auto vanished = std::chrono::steady_clock::now();

  REQUIRE(run_until(
      io, [&] { return sent.finished(); }, 30s));
  CHECK(sent.failed);
  CHECK(sent.error == errc::transfer_timeout);
  CHECK(sent.reason.find("receiver") != std::string::npos);
  const auto waited = sent.ended - vanished;
  CHECK(waited >= 900ms);
  CHECK(waited < 5s);
  CHECK_FALSE(received.finished());  // a destroyed service runs no callback
  CHECK_FALSE(fs::exists(b.dir.download() / "alice_movie.bin"));

  // The same file offered again (new id and key) resumes from what was kept.
  b.start(io);
  auto again = o;
  again.id = next_id();
  again.key = key_for(again.id);
  again.incoming.transfer_id = again.id;
  again.incoming.key = again.key;
  Watch sent2, received2;
  start(a, b, again, sent2, received2);
  REQUIRE(run_until(io, [&] { return sent2.finished() && received2.finished(); }));
  check_delivered(again, sent2, received2, b.dir.download() / "alice_movie.bin");
  const auto margin = 64 * transfer::default_chunk_size;
  CHECK(sent2.result.stats.data_bytes_sent <= content.size() - held + margin);
  // The hidden partial file and record are gone once the file is in place.
  CHECK(listing(b.dir.download()) == std::vector<fs::path>{"alice_movie.bin"});
}

TEST_CASE("spoofed and forged datagrams are dropped; the transfer completes intact") {
  asio::io_context io;
  Peer a(io), b(io);
  const auto o = make_offer(a, b, "target.bin", random_content(20'000'000, 20));
  Watch sent, received;
  start(a, b, o, sent, received);

  // Datagrams from another socket: garbage, and well-formed headers that
  // name the real transfer.
  udp::socket attacker(io, udp::endpoint(loopback, 0));
  std::mt19937_64 rng(99);
  std::vector<std::uint8_t> junk(1244);
  const auto spray = [&](int count) {
    for (int i = 0; i < count; ++i) {
      for (auto& x : junk)
        x = static_cast<std::uint8_t>(rng());
      if (i % 2 == 0) {
        const std::uint8_t header[] = {'T', 'F', 1, 1};
        std::memcpy(junk.data(), header, 4);
        for (int k = 0; k < 8; ++k)
          junk[4 + k] = static_cast<std::uint8_t>(o.id >> (56 - 8 * k));
      }
      attacker.send_to(asio::buffer(junk), b.endpoint());
    }
  };
  spray(200);

  // Forged datagrams that claim the sender's own address, through a raw
  // socket (needs root): they reach the engine and fail authentication.
  const int raw = ::socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  int forged = 0;
  if (raw >= 0) {
    std::vector<std::uint8_t> packet(sizeof(iphdr) + sizeof(udphdr) + junk.size());
    for (int i = 0; i < 200; ++i) {
      for (auto& x : junk)
        x = static_cast<std::uint8_t>(rng());
      const std::uint8_t header[] = {'T', 'F', 1, 1};
      std::memcpy(junk.data(), header, 4);
      for (int k = 0; k < 8; ++k)
        junk[4 + k] = static_cast<std::uint8_t>(o.id >> (56 - 8 * k));
      for (int k = 0; k < 8; ++k)
        junk[12 + k] = static_cast<std::uint8_t>(std::uint64_t(1000 + i) >> (56 - 8 * k));
      iphdr ip{};
      ip.version = 4;
      ip.ihl = 5;
      ip.ttl = 64;
      ip.protocol = IPPROTO_UDP;
      ip.saddr = htonl(INADDR_LOOPBACK);
      ip.daddr = htonl(INADDR_LOOPBACK);
      ip.tot_len = htons(static_cast<std::uint16_t>(packet.size()));
      udphdr u{};
      u.source = htons(a.service->local_port());
      u.dest = htons(b.service->local_port());
      u.len = htons(static_cast<std::uint16_t>(sizeof(udphdr) + junk.size()));
      std::memcpy(packet.data(), &ip, sizeof ip);
      std::memcpy(packet.data() + sizeof ip, &u, sizeof u);
      std::memcpy(packet.data() + sizeof ip + sizeof u, junk.data(), junk.size());
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::sendto(raw, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof to) > 0)
        ++forged;
    }
    ::close(raw);
  } else {
    MESSAGE("raw sockets unavailable (" << std::strerror(errno) << "): forged-source part not run");
  }

  REQUIRE(run_until(io, [&] { return sent.finished() && received.finished(); }));
  spray(50);  // after the end too: still no reply, no effect
  io.poll();
  check_delivered(o, sent, received, b.dir.download() / "alice_target.bin");
  const auto stats = b.service->stats();
  CHECK(stats.dropped_wrong_peer >= 1);
  CHECK(stats.dropped_malformed + stats.dropped_wrong_peer + stats.dropped_unknown >= 200);
  if (forged > 0) CHECK(stats.dropped_auth + stats.dropped_replay >= 1);
  // Nothing was ever sent back to the attacker.
  CHECK(attacker.available() == 0);
}

TEST_CASE("a file above the receiver's limit is refused on both sides, nothing written") {
  asio::io_context io;
  TransferOptions small;
  small.max_receive_size = 1000;
  Peer a(io), b(io, small);
  const auto o = make_offer(a, b, "huge.bin", random_content(2000, 1));
  Watch sent, received;
  start(a, b, o, sent, received);
  REQUIRE(run_until(
      io, [&] { return sent.finished() && received.finished(); }, 30s));
  CHECK(received.error == errc::transfer_too_large);
  CHECK(sent.error == errc::transfer_too_large);
  CHECK(listing(b.dir.download()).empty());
}

TEST_CASE("cancel by the sender fails both sides with transfer_aborted") {
  asio::io_context io;
  Peer a(io), b(io);
  const auto o = make_offer(a, b, "c.bin", random_content(50'000'000, 2));
  Watch sent, received;
  start(a, b, o, sent, received);
  REQUIRE(run_until(io, [&] { return received.progress > 0; }));
  a.service->cancel(o.id);
  REQUIRE(run_until(
      io, [&] { return sent.finished() && received.finished(); }, 30s));
  CHECK(sent.error == errc::transfer_aborted);
  CHECK(received.error == errc::transfer_aborted);
  CHECK_FALSE(fs::exists(b.dir.download() / "alice_c.bin"));
}

TEST_CASE("a cancel right behind expect_file still ends the transfer at once") {
  asio::io_context io;
  Peer a(io), b(io);
  const auto o = make_offer(a, b, "early.bin", random_content(5000, 3));
  Watch received;
  // As an app does it: expect_file on the strand (disk work), and a cancel
  // queued meanwhile, which runs before the new transfer reaches the
  // strand. It is not lost, and the transfer does not wait for its timeout.
  asio::post(b.service->get_executor(),
             [&] { REQUIRE_FALSE(b.service->expect_file(o.incoming, received.callbacks())); });
  b.service->cancel(o.id);
  REQUIRE(run_until(
      io, [&] { return received.finished(); }, 2s));
  CHECK(received.error == errc::transfer_aborted);
}

TEST_CASE("offers whose data never comes leave no file behind") {
  asio::io_context io;
  TransferOptions short_timeout;
  short_timeout.idle_timeout = 300ms;
  Peer a(io), b(io, short_timeout);
  // Distinct names: each offer has partial files of its own.
  std::vector<Watch> received(20);
  for (std::size_t i = 0; i < received.size(); ++i) {
    const auto o = make_offer(a, b, "f" + std::to_string(i) + ".bin", random_content(5000, i));
    REQUIRE_FALSE(b.service->expect_file(o.incoming, received[i].callbacks()));
  }
  REQUIRE(run_until(
      io,
      [&] {
        return std::all_of(received.begin(), received.end(),
                           [](const Watch& w) { return w.finished(); });
      },
      30s));
  for (const auto& w : received) {
    CHECK(w.error == errc::transfer_timeout);
  }
  CHECK(listing(b.dir.download()).empty());

  // Stopped before the timeout, here even before the strand took the
  // transfer over: nothing held, nothing kept.
  const auto o = make_offer(a, b, "late.bin", random_content(5000, 99));
  Watch pending;
  REQUIRE_FALSE(b.service->expect_file(o.incoming, pending.callbacks()));
  REQUIRE(run_until(
      io, [&] { return !listing(b.dir.download()).empty(); }, 10s));
  b.service.reset();
  io.poll();
  CHECK(listing(b.dir.download()).empty());
}

TEST_CASE("a declined offer: the sender is told at once, nothing is written") {
  asio::io_context io;
  Peer a(io), b(io);
  const auto o = make_offer(a, b, "pushed.bin", random_content(300'000, 3));
  REQUIRE_FALSE(b.service->decline(o.incoming));
  CHECK(b.service->decline(o.incoming) == errc::invalid_argument);
  CHECK(b.service->active() == 0);
  // The sender starts only after the first ABORT went out unanswered, as a
  // sender whose FileOfferOk arrives late would: its datagrams are answered.
  REQUIRE(run_until(
      io, [&] { return b.service->stats().datagrams_sent >= 1; }, 10s));
  Watch sent;
  const auto started = std::chrono::steady_clock::now();
  REQUIRE_FALSE(a.service->send_file(o.id, o.key, o.path, b.endpoint(), sent.callbacks()));
  REQUIRE(run_until(
      io, [&] { return sent.finished(); }, 30s));
  CHECK(sent.error == errc::transfer_aborted);
  CHECK(sent.reason == "the receiver cancelled the transfer");
  // Well within the 10 s it would take to time out.
  CHECK(sent.ended - started < 5s);
  CHECK(listing(b.dir.download()).empty());
}

TEST_CASE("clear errors: port in use, missing file, duplicate id") {
  asio::io_context io;
  Peer a(io), b(io);
  try {
    FileTransfer clash(io.get_executor(), a.endpoint());
    FAIL("binding a port in use must throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::address_in_use);
  }
  Watch w;
  CHECK(a.service->send_file(1, {}, a.dir.path / "missing", b.endpoint(), w.callbacks()) ==
        errc::no_such_file);
  CHECK(a.service->send_file(2, {}, a.dir.path, b.endpoint(), w.callbacks()) == errc::no_such_file);
  const auto o = make_offer(a, b, "d.bin", random_content(10, 1));
  CHECK_FALSE(a.service->send_file(o.id, o.key, o.path, b.endpoint(), w.callbacks()));
  CHECK(a.service->send_file(o.id, o.key, o.path, b.endpoint(), w.callbacks()) ==
        errc::invalid_argument);
  a.service->cancel(o.id);
  REQUIRE(run_until(
      io, [&] { return w.finished(); }, 10s));
  CHECK(w.error == errc::transfer_aborted);
}

TEST_CASE("incoming_from converts the server's event") {
  protocol::FileIncomingEvent ev;
  ev.transfer_id = 5;
  ev.from = "carol";
  ev.file_name = "x";
  ev.size = 9;
  ev.sender_address = "127.0.0.1";
  ev.sender_udp_port = 4000;
  std::error_code ec;
  const auto in = incoming_from(ev, ec);
  REQUIRE_FALSE(ec);
  CHECK(in.sender_endpoint == udp::endpoint(loopback, 4000));
  CHECK(in.sender_name == "carol");
  ev.sender_address = "::ffff:127.0.0.1";
  CHECK(incoming_from(ev, ec).sender_endpoint == udp::endpoint(loopback, 4000));
  ev.sender_address = "not an address";
  incoming_from(ev, ec);
  CHECK(ec);
}

namespace {

// Callbacks watched from other threads: what ran, whether two ever ran at
// once, and whether any ran (or was still running) once `destroyed` was set,
// which the test does right after the destructor returned.
struct SharedWatch {
  std::mutex mutex;
  std::condition_variable changed;
  int progress_calls = 0;
  bool completed = false;
  bool failed = false;
  std::error_code error;
  std::thread::id thread;
  std::atomic<bool> destroyed{false};
  std::atomic<int> late{0};
  std::atomic<int> running{0};
  // Callbacks running now of every watch that shares it: one FileTransfer's.
  std::atomic<int>* object_running = &running;
  std::atomic<int> overlapped{0};
  // Runs at the end of on_progress; it may destroy the FileTransfer.
  std::function<void()> on_progress;

  TransferCallbacks callbacks() {
    TransferCallbacks c;
    c.on_progress = [this](std::uint64_t, std::uint64_t) {
      record([&] { ++progress_calls; });
      if (on_progress) on_progress();
    };
    c.on_complete = [this](const TransferResult&) {
      record([&] {
        CHECK_FALSE((completed || failed));
        completed = true;
      });
    };
    c.on_failure = [this](std::error_code ec, const std::string&) {
      record([&] {
        CHECK_FALSE((completed || failed));
        failed = true;
        error = ec;
      });
    };
    return c;
  }

  template <class F>
  void record(F update) {
    if (object_running->fetch_add(1) != 0) ++overlapped;
    if (destroyed) ++late;
    {
      std::lock_guard lock(mutex);
      thread = std::this_thread::get_id();
      update();
    }
    changed.notify_all();
    if (destroyed) ++late;
    --*object_running;
  }

  template <class Pred>
  bool wait(Pred done, std::chrono::seconds limit = 120s) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] { return done(*this); });
  }
};

// A caller-owned io_context run by `n` threads until the pool is destroyed.
struct Pool {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::vector<std::thread> threads;
  explicit Pool(int n) {
    for (int i = 0; i < n; ++i)
      threads.emplace_back([this] { io.run(); });
  }
  ~Pool() {
    work.reset();
    for (auto& t : threads)
      t.join();
  }
};

IncomingTransfer incoming_for(const Offer& o, const FileTransfer& from) {
  auto in = o.incoming;
  in.sender_endpoint = {loopback, from.local_port()};
  return in;
}

Offer write_offer(const fs::path& dir, std::size_t size, std::uint64_t seed) {
  Offer o;
  o.id = next_id();
  o.key = key_for(o.id);
  o.path = dir / ("src-" + std::to_string(o.id));
  write_file(o.path, random_content(size, seed));
  o.incoming.transfer_id = o.id;
  o.incoming.key = o.key;
  o.incoming.sender_name = "alice";
  o.incoming.file_name = "t" + std::to_string(o.id) + ".bin";
  o.incoming.size = size;
  o.incoming.sha256 = digest_of(o.path);
  return o;
}

}  // namespace

TEST_CASE("destroyed from another thread while progress callbacks run: none runs afterwards") {
  for (const bool owned : {false, true}) {
    CAPTURE(owned);
    TempDir dir;
    TransferOptions options;
    options.download_dir = dir.download();
    options.progress_interval = 0ms;
    options.idle_timeout = 1s;
    SharedWatch sent, received;
    FileTransfer sender(udp::endpoint(loopback, 0), options);
    // A caller-owned io_context on two threads, or the FileTransfer's own thread.
    std::optional<Pool> pool;
    std::unique_ptr<FileTransfer> receiver;
    if (owned) {
      receiver = std::make_unique<FileTransfer>(udp::endpoint(loopback, 0), options);
    } else {
      pool.emplace(2);
      receiver = std::make_unique<FileTransfer>(pool->io, udp::endpoint(loopback, 0), options);
    }
    std::atomic<bool> arm{false}, entered{false};
    received.on_progress = [&] {
      if (!arm.exchange(false)) return;
      std::unique_lock lock(received.mutex);
      entered = true;
      received.changed.notify_all();
      received.changed.wait_for(lock, 200ms, [&] { return received.destroyed.load(); });
      if (received.destroyed) ++received.late;
    };
    const auto o = write_offer(dir.outbox(), 60'000'000, 61);
    REQUIRE_FALSE(receiver->expect_file(incoming_for(o, sender), received.callbacks()));
    REQUIRE_FALSE(sender.send_file(o.id, o.key, o.path, {loopback, receiver->local_port()},
                                   sent.callbacks()));
    REQUIRE(
        received.wait([](auto& w) { return w.progress_calls >= 3 || w.completed || w.failed; }));
    // The progress callback after `arm` is still running when the destructor
    // is called: the destructor must wait for it. It lingers until the
    // destructor returned, or 200 ms.
    arm = true;
    REQUIRE(received.wait([&](auto& w) { return entered || w.completed || w.failed; }));
    {
      std::lock_guard lock(received.mutex);
      REQUIRE_FALSE((received.completed || received.failed));
    }
    receiver.reset();
    {
      std::lock_guard lock(received.mutex);
      received.destroyed = true;
    }
    received.changed.notify_all();
    // The sender gives up after its idle timeout; the receiver's threads run
    // on all the while.
    REQUIRE(sent.wait([](auto& w) { return w.completed || w.failed; }, 30s));
    CHECK(sent.failed);
    CHECK(sent.error == errc::transfer_timeout);
    CHECK(received.late == 0);
    CHECK(received.overlapped == 0);
    std::lock_guard lock(received.mutex);
    CHECK_FALSE((received.completed || received.failed));
    CHECK(received.progress_calls >= 3);
  }
}

TEST_CASE("destroyed inside its own callback: no callback after, the port is free at once") {
  for (const bool owned : {false, true}) {
    CAPTURE(owned);
    TempDir dir;
    TransferOptions options;
    options.download_dir = dir.download();
    options.progress_interval = 0ms;
    options.idle_timeout = 1s;
    SharedWatch sent, received;
    FileTransfer sender(udp::endpoint(loopback, 0), options);
    std::optional<Pool> pool;
    std::unique_ptr<FileTransfer> receiver;
    if (owned) {
      receiver = std::make_unique<FileTransfer>(udp::endpoint(loopback, 0), options);
    } else {
      pool.emplace(1);
      receiver = std::make_unique<FileTransfer>(pool->io, udp::endpoint(loopback, 0), options);
    }
    const auto port = receiver->local_port();
    received.on_progress = [&] {
      if (!receiver) return;
      receiver.reset();
      received.destroyed = true;
    };
    const auto o = write_offer(dir.outbox(), 20'000'000, 62);
    REQUIRE_FALSE(receiver->expect_file(incoming_for(o, sender), received.callbacks()));
    REQUIRE_FALSE(sender.send_file(o.id, o.key, o.path, {loopback, port}, sent.callbacks()));
    REQUIRE(sent.wait([](auto& w) { return w.completed || w.failed; }, 30s));
    CHECK(sent.error == errc::transfer_timeout);
    CHECK(received.destroyed);
    CHECK(received.late == 0);
    {
      std::lock_guard lock(received.mutex);
      CHECK(received.progress_calls == 1);
      CHECK_FALSE((received.completed || received.failed));
    }
    // It stopped inside the callback: its port can be bound again.
    CHECK_NOTHROW(FileTransfer(udp::endpoint(loopback, port), options));
  }
}

TEST_CASE("every member may be called from threads that do not run its executor") {
  TempDir dir;
  TransferOptions options;
  options.download_dir = dir.download();
  const std::size_t sizes[] = {0, 200'000, 1'500'000, 6'000'000};
  constexpr int callers = 2;
  constexpr auto count = callers * std::size(sizes);
  // Before the FileTransfers, so they outlive every callback.
  std::vector<SharedWatch> sent(count), received(count);
  std::atomic<int> a_running{0}, b_running{0};
  for (std::size_t i = 0; i < count; ++i) {
    sent[i].object_running = &a_running;
    received[i].object_running = &b_running;
  }
  Pool pool(2);
  FileTransfer a(pool.io, udp::endpoint(loopback, 0), options);
  FileTransfer b(pool.io, udp::endpoint(loopback, 0), options);
  std::vector<Offer> offers;
  for (std::size_t i = 0; i < count; ++i)
    offers.push_back(write_offer(dir.outbox(), sizes[i % std::size(sizes)], 300 + i));
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < count; i += callers) {
        if (b.expect_file(incoming_for(offers[i], a), received[i].callbacks())) ++refused;
        if (a.send_file(offers[i].id, offers[i].key, offers[i].path, {loopback, b.local_port()},
                        sent[i].callbacks()))
          ++refused;
        a.cancel(0xdead'0000 + i);  // unknown: ignored
        (void)a.stats();
        (void)b.active();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  CHECK(refused == 0);
  CHECK(b.active() <= count);
  for (std::size_t i = 0; i < count; ++i) {
    CAPTURE(i);
    REQUIRE(sent[i].wait([](auto& w) { return w.completed || w.failed; }));
    REQUIRE(received[i].wait([](auto& w) { return w.completed || w.failed; }));
    CHECK(sent[i].completed);
    CHECK(received[i].completed);
    CHECK(sent[i].overlapped + received[i].overlapped == 0);
    // On a thread of the pool, never on the caller's.
    const auto on_pool = [&](std::thread::id id) {
      return std::any_of(pool.threads.begin(), pool.threads.end(),
                         [&](const std::thread& p) { return p.get_id() == id; });
    };
    CHECK(on_pool(sent[i].thread));
    CHECK(on_pool(received[i].thread));
    const auto stored = dir.download() / ("alice_" + offers[i].incoming.file_name);
    CHECK(digest_of(stored) == offers[i].incoming.sha256);
  }
  CHECK(b.stats().hashed_on_own_thread == callers);
}
