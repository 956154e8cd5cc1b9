// transfer: one /p2pvideo-equivalent transfer over loopback between two
// FileTransfer instances (each on a thread of its own, as two clients
// would be), then iperf3 UDP at the same datagram payload in the same run.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <asio/io_context.hpp>

#include <tessenger/file_transfer.hpp>

#include "event_loop.hpp"
#include "process.hpp"
#include "scenarios.hpp"

namespace bench {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t megabyte = 1'000'000;

// Incompressible content, quickly: xorshift64*.
void write_random_file(const fs::path& path, std::uint64_t size) {
  std::ofstream out(path, std::ios::binary);
  std::vector<std::uint64_t> block(1 << 16);
  std::uint64_t state = 0x9e3779b97f4a7c15ull;
  for (std::uint64_t written = 0; written < size;) {
    for (auto& word : block) {
      state ^= state >> 12;
      state ^= state << 25;
      state ^= state >> 27;
      word = state * 0x2545f4914f6cdd1dull;
    }
    const auto n = std::min<std::uint64_t>(size - written, block.size() * sizeof block[0]);
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    written += n;
  }
  if (!out.flush()) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
}

struct Outcome {
  std::atomic<bool> done{false};
  bool ok = false;
  std::string why;
  tessenger::TransferResult result;
  std::uint64_t finished_ns = 0;

  tessenger::TransferCallbacks callbacks() {
    tessenger::TransferCallbacks c;
    c.on_complete = [this](const tessenger::TransferResult& r) {
      result = r;
      ok = true;
      finished_ns = now_ns();
      done = true;
    };
    c.on_failure = [this](std::error_code ec, const std::string& reason) {
      why = fmt::format("{} ({})", reason, ec.message());
      finished_ns = now_ns();
      done = true;
    };
    return c;
  }
};

sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  auto address = loopback_address(0);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// iperf3's server takes a moment to listen, and its client does not retry.
// Probing with a connection would use up the one client `-s -1` serves, so
// the kernel's socket tables are read instead.
bool wait_listening(std::uint16_t port, std::chrono::seconds limit) {
  const auto suffix = fmt::format(":{:04X}", port);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream in(table);
      std::string line;
      std::getline(in, line);  // the column names
      while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        fields >> slot >> local >> remote >> state;
        if (local.ends_with(suffix) && state == "0A") return true;  // 0A: LISTEN
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool wait_for(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      stop_child(pid, std::chrono::seconds(1));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Receiver-side goodput of `iperf3 -u -b 0 -l chunk` sending `bytes`: what
// arrived divided by how long it took, from the server's JSON report.
std::optional<double> iperf3_goodput(const fs::path& dir, std::size_t chunk, std::uint64_t bytes) {
  const auto port_number = free_port();
  const auto port = std::to_string(port_number);
  const auto report = dir / "iperf3-server.json";
  fs::remove(report);  // spawn_child appends: only this run's report may be read
  const pid_t server = spawn_child({"iperf3", "-s", "-1", "-J", "-p", port}, report, "/dev/null");
  if (!wait_listening(port_number, std::chrono::seconds(5))) {
    stop_child(server, std::chrono::seconds(1));
    return std::nullopt;
  }
  const pid_t client = spawn_child({"iperf3", "-c", "127.0.0.1", "-p", port, "-u", "-b", "0", "-l",
                                    std::to_string(chunk), "-n", std::to_string(bytes)},
                                   dir / "iperf3-client.txt", "/dev/null");
  const bool client_ok = wait_for(client, std::chrono::seconds(120));
  const bool server_ok = wait_for(server, std::chrono::seconds(10));
  if (!client_ok || !server_ok) return std::nullopt;

  std::ifstream in(report);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // "sum_received": {... "seconds": S, "bytes": B, ...}; a full JSON parser is
  // not worth a dependency for two numbers.
  const auto at = text.find("\"sum_received\"");
  if (at == std::string::npos) return std::nullopt;
  const auto number = [&](std::string_view key) -> std::optional<double> {
    const auto k = text.find(fmt::format("\"{}\":", key), at);
    if (k == std::string::npos) return std::nullopt;
    return std::strtod(text.c_str() + k + key.size() + 3, nullptr);
  };
  const auto seconds = number("seconds");
  const auto received = number("bytes");
  if (!seconds || !received || *seconds <= 0) return std::nullopt;
  return *received / *seconds / static_cast<double>(megabyte);
}

// Writes `size` bytes to a new file in 1 MiB writes, as the receiver's file
// sink does: the storage's own rate, for reference. The caller keeps the file
// until the transfer into a file is done, so that one too gets pages the page
// cache has not used recently, as a real download would.
double fresh_write_rate(const fs::path& path, std::uint64_t size) {
  std::vector<std::byte> block(1 << 20, std::byte{0x5a});
  std::ofstream out(path, std::ios::binary);
  const auto start = now_ns();
  for (std::uint64_t written = 0; written < size;) {
    const auto n = std::min<std::uint64_t>(size - written, block.size());
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    written += n;
  }
  out.flush();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
  return static_cast<double>(size) * 1e3 / static_cast<double>(now_ns() - start);
}

enum class Into { memory, file };

struct Run {
  double seconds = 0;
  bool intact = false;
  std::vector<std::string> notes;
  std::chrono::nanoseconds sender_cpu{};
  std::chrono::nanoseconds receiver_cpu{};
  std::chrono::nanoseconds process_cpu{};
};

// One transfer between two FileTransfer instances, each on a thread of
// its own as two clients would be, into memory or into the download dir.
Run transfer_once(const fs::path& source, const tessenger::transfer::Digest& digest,
                  std::uint64_t size, const tessenger::TransferOptions& settings, Into into) {
  const auto loopback = asio::ip::make_address_v4("127.0.0.1");
  asio::io_context sender_io(1);
  asio::io_context receiver_io(1);
  tessenger::FileTransfer sender(sender_io.get_executor(), {loopback, 0}, settings);
  tessenger::FileTransfer receiver(receiver_io.get_executor(), {loopback, 0}, settings);

  tessenger::transfer::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(i * 37 + 11);
  constexpr std::uint64_t transfer_id = 0x7e55e11;
  const tessenger::IncomingTransfer incoming{
      transfer_id, key, "bencher", "video.bin", size, digest, {loopback, sender.local_port()}};

  Outcome sent;
  Outcome received;
  // Allocated (and its pages touched) before the clock starts.
  auto memory =
      into == Into::memory ? std::make_unique<tessenger::transfer::MemorySink>(size) : nullptr;
  const auto* held = memory.get();
  const auto ec = into == Into::memory
                      ? receiver.expect_file(incoming, std::move(memory), received.callbacks())
                      : receiver.expect_file(incoming, received.callbacks());
  if (ec) throw std::runtime_error(fmt::format("expect_file: {}", ec.message()));
  const auto cpu_start = self_cpu();
  const auto start = now_ns();
  if (const auto sent_ec = sender.send_file(transfer_id, key, source,
                                            {loopback, receiver.local_port()}, sent.callbacks())) {
    throw std::runtime_error(fmt::format("send_file: {}", sent_ec.message()));
  }
  // Both sides keep running until both are done: a receiver that has the
  // whole file still answers a sender whose last acknowledgements were lost.
  const auto both_done = [&] { return sent.done && received.done; };
  Run run;
  std::thread receiving([&] {
    pthread_setname_np(pthread_self(), "bench-receiver");
    const auto start_cpu = thread_cpu();
    while (!both_done())
      receiver_io.run_one_for(std::chrono::milliseconds(100));
    run.receiver_cpu = thread_cpu() - start_cpu;
  });
  // This thread is the sending peer while the transfer runs.
  pthread_setname_np(pthread_self(), "bench-sender");
  const auto sender_start_cpu = thread_cpu();
  while (!both_done())
    sender_io.run_one_for(std::chrono::milliseconds(100));
  run.sender_cpu = thread_cpu() - sender_start_cpu;
  pthread_setname_np(pthread_self(), "tessenger-bench");
  receiving.join();
  run.process_cpu = self_cpu() - cpu_start;
  run.seconds = static_cast<double>(std::max(sent.finished_ns, received.finished_ns) - start) / 1e9;

  if (received.ok) {
    tessenger::transfer::Digest arrived{};
    if (held) {
      arrived = tessenger::transfer::sha256(held->data());
      run.intact = held->committed() && arrived == digest;
    } else {
      run.intact =
          !tessenger::transfer::sha256_file(received.result.path, arrived) && arrived == digest;
    }
  }
  const auto where = into == Into::memory ? "into memory" : "into a file";
  if (!sent.ok) run.notes.push_back(fmt::format("{}: sender failed: {}", where, sent.why));
  if (!received.ok)
    run.notes.push_back(fmt::format("{}: receiver failed: {}", where, received.why));
  if (sent.ok) {
    const auto& stats = sent.result.stats;
    // Bytes resent that had arrived after all: losses declared that were not.
    const auto duplicates = received.ok ? received.result.stats.duplicate_bytes : 0;
    run.notes.push_back(fmt::format(
        "{}: {} datagrams sent, {} declared lost, {} bytes resent, {} of them "
        "duplicates at the receiver",
        where, stats.datagrams_sent, stats.packets_lost, stats.bytes_retransmitted, duplicates));
  }
  return run;
}

}  // namespace

Report run_transfer(const TransferOptions& options) {
  if (options.size_mb == 0) throw std::runtime_error("--size must be > 0");
  if (options.chunk_size == 0 || options.chunk_size > tessenger::transfer::max_chunk_size) {
    throw std::runtime_error(
        fmt::format("--chunk-size: 1..{}", tessenger::transfer::max_chunk_size));
  }
  if (options.rounds == 0) throw std::runtime_error("--rounds must be > 0");
  const std::uint64_t size = options.size_mb * megabyte;
  TempDir dir;
  const auto source = dir.path() / "video.bin";
  const auto downloads = dir.path() / "downloads";
  fs::create_directory(downloads);
  write_random_file(source, size);
  tessenger::transfer::Digest digest{};
  if (tessenger::transfer::sha256_file(source, digest)) throw std::runtime_error("cannot hash");

  tessenger::TransferOptions settings;
  settings.chunk_size = options.chunk_size;
  settings.download_dir = downloads;

  // The machine's speed drifts from minute to minute, so the transfer into
  // memory and iperf3 alternate, and each round's ratio is taken between
  // neighbours.
  const auto goodput = [&](const Run& run) {
    return static_cast<double>(size) / run.seconds / static_cast<double>(megabyte);
  };
  std::vector<Run> memory_runs;
  std::vector<double> iperf3_goodputs, ratios;
  std::vector<std::string> round_notes;
  bool all_intact = true;
  for (unsigned round = 1; round <= options.rounds; ++round) {
    memory_runs.push_back(transfer_once(source, digest, size, settings, Into::memory));
    const auto& run = memory_runs.back();
    all_intact = all_intact && run.intact;
    const double run_goodput = goodput(run);
    std::optional<double> iperf3;
    // iperf3 now and then fails to start or to report; one retry.
    for (int attempt = 0; options.iperf3 && !iperf3 && attempt < 2; ++attempt)
      iperf3 = iperf3_goodput(dir.path(), options.chunk_size, size);
    if (iperf3) {
      iperf3_goodputs.push_back(*iperf3);
      ratios.push_back(run_goodput / *iperf3);
    }
    round_notes.push_back(
        iperf3 ? fmt::format("round {}: into memory {:.0f} MB/s, iperf3 {:.0f} MB/s ({:.0f} %)",
                             round, run_goodput, *iperf3, 100 * ratios.back())
               : fmt::format("round {}: into memory {:.0f} MB/s", round, run_goodput));
  }
  const double write_rate = fresh_write_rate(dir.path() / "storage-probe.bin", size);
  const auto file = transfer_once(source, digest, size, settings, Into::file);
  fs::remove(dir.path() / "storage-probe.bin");
  all_intact = all_intact && file.intact;

  const auto median = [](std::vector<double> values) -> Value {
    if (values.empty()) return Unknown{};
    std::sort(values.begin(), values.end());
    const auto n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  };
  // The median over the transfers into memory of `figure(run)`.
  const auto median_of = [&](auto figure) {
    std::vector<double> values;
    for (const auto& run : memory_runs)
      values.push_back(figure(run));
    return median(values);
  };
  const auto median_share = [&](std::chrono::nanoseconds Run::*cpu) {
    return median_of([cpu](const Run& run) {
      return 100 * std::chrono::duration<double>(run.*cpu).count() / run.seconds;
    });
  };
  const auto iperf3_median = median(iperf3_goodputs);
  Report report{"transfer", {}, {}};
  report.add("server_cpu_percent", "server CPU", Unknown{}, "%");
  report.add("bench_cpu_percent", "bench CPU (into memory)", median_share(&Run::process_cpu), "%");
  report.add("sender_cpu_percent", "sending peer's thread", median_share(&Run::sender_cpu), "%");
  report.add("receiver_cpu_percent", "receiving peer's thread", median_share(&Run::receiver_cpu),
             "%");
  report.add("duration_s", "transfer took (into memory)",
             median_of([](const Run& run) { return run.seconds; }), "s");
  report.add("goodput_mb_per_s", "goodput into memory", median_of(goodput), "MB/s");
  report.add("iperf3_goodput_mb_per_s", "iperf3 UDP goodput", iperf3_median, "MB/s");
  report.add("ratio", "ratio to iperf3 (median of rounds)", median(ratios));
  report.add("file_goodput_mb_per_s", "goodput into a file", goodput(file), "MB/s");
  const auto* iperf3_value = std::get_if<double>(&iperf3_median);
  report.add("file_ratio", "its ratio to iperf3",
             iperf3_value ? Value{goodput(file) / *iperf3_value} : Value{Unknown{}});
  report.add("file_write_mb_per_s", "fresh file write, same size", write_rate, "MB/s");
  report.add("intact", "intact (every run)", all_intact);
  report.succeeded = all_intact;
  report.notes.push_back(fmt::format("{} MB ({} bytes) in {}-byte chunks; MB = 10^6 bytes",
                                     options.size_mb, size, options.chunk_size));
  report.notes.insert(report.notes.end(), round_notes.begin(), round_notes.end());
  const Run& last_memory_run = memory_runs.back();
  for (const Run* run : {&last_memory_run, &file})
    report.notes.insert(report.notes.end(), run->notes.begin(), run->notes.end());
  if (options.iperf3 && iperf3_goodputs.size() < memory_runs.size())
    report.notes.push_back("iperf3 did not run in every round (is it installed?)");
  return report;
}

}  // namespace bench
