// transfer_bench: one file over loopback between two TransferService
// instances, each on its own thread, as two clients would run.
//
//   transfer_bench [--size-mb N] [--chunk N]... [--iperf] [--timeout-s N]
//
// Prints goodput (file bytes / time until the receiver has the verified file
// in place) per chunk size and, with --iperf, `iperf3 -u -b 0 -l N` at the
// same datagram size measured in the same run. Exits non-zero if a file
// arrives damaged or not at all, so the loss test can run it as a check.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>

#include <tessenger/transfer_service.hpp>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using udp = asio::ip::udp;

namespace {

struct Options {
  std::uint64_t size_mb = 512;
  std::vector<std::size_t> chunks;
  bool iperf = false;
  int timeout_s = 600;
};

struct Outcome {
  bool ok = false;
  double seconds = 0;
  std::string error;
  tessenger::transfer::Stats sender;
};

void write_random_file(const fs::path& p, std::uint64_t bytes) {
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> block((1 << 20) / 8);
  std::ofstream out(p, std::ios::binary);
  for (std::uint64_t done = 0; done < bytes;) {
    for (auto& x : block)
      x = rng();
    const auto n = std::min<std::uint64_t>(bytes - done, block.size() * 8);
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    done += n;
  }
}

Outcome transfer_once(const fs::path& file, const tessenger::transfer::Digest& sha,
                      const fs::path& download, std::size_t chunk, int timeout_s) {
  const auto loopback = asio::ip::make_address("127.0.0.1");
  asio::io_context io_a, io_b;
  auto guard_a = asio::make_work_guard(io_a);
  auto guard_b = asio::make_work_guard(io_b);
  tessenger::TransferOptions opts;
  opts.download_dir = download;
  opts.chunk_size = chunk;
  opts.progress_interval = 1s;
  auto a = std::make_unique<tessenger::TransferService>(io_a.get_executor(),
                                                        udp::endpoint(loopback, 0), opts);
  auto b = std::make_unique<tessenger::TransferService>(io_b.get_executor(),
                                                        udp::endpoint(loopback, 0), opts);
  std::mutex m;
  std::condition_variable cv;
  int finished = 0;
  Outcome out;
  out.ok = true;
  const auto on_failure = [&](std::error_code, const std::string& why) {
    std::lock_guard lock(m);
    out.ok = false;
    out.error = why;
    ++finished;
    cv.notify_all();
  };

  tessenger::IncomingTransfer in;
  in.transfer_id = 0xbe7c4;
  std::mt19937_64 rng(chunk);
  for (auto& k : in.key)
    k = static_cast<std::uint8_t>(rng());
  in.sender_name = "bench";
  in.file_name = "payload.bin";
  in.size = fs::file_size(file);
  in.sha256 = sha;
  in.sender_endpoint = udp::endpoint(loopback, a->local_port());
  const udp::endpoint to(loopback, b->local_port());

  std::thread ta([&] { io_a.run(); });
  std::thread tb([&] { io_b.run(); });
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point received_at;
  asio::post(io_b, [&] {
    tessenger::TransferCallbacks cb;
    cb.on_complete = [&](const tessenger::TransferResult&) {
      std::lock_guard lock(m);
      received_at = std::chrono::steady_clock::now();
      ++finished;
      cv.notify_all();
    };
    cb.on_failure = on_failure;
    if (b->expect_file(in, cb)) on_failure({}, "expect_file failed");
  });
  asio::post(io_a, [&] {
    tessenger::TransferCallbacks cb;
    cb.on_complete = [&](const tessenger::TransferResult& r) {
      std::lock_guard lock(m);
      out.sender = r.stats;
      ++finished;
      cv.notify_all();
    };
    cb.on_failure = on_failure;
    if (a->send_file(in.transfer_id, in.key, file, to, cb)) on_failure({}, "send_file failed");
  });
  {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, std::chrono::seconds(timeout_s), [&] { return finished >= 2; })) {
      out.ok = false;
      out.error = "timed out";
    }
  }
  asio::post(io_a, [&] { a.reset(); });
  asio::post(io_b, [&] { b.reset(); });
  guard_a.reset();
  guard_b.reset();
  io_a.stop();
  io_b.stop();
  ta.join();
  tb.join();
  if (out.ok) {
    out.seconds = std::chrono::duration<double>(received_at - t0).count();
    const auto stored = download / "bench_payload.bin";
    tessenger::transfer::Digest got{};
    if (tessenger::transfer::sha256_file(stored, got) || got != sha) {
      out.ok = false;
      out.error = "the stored file does not match";
    }
  }
  fs::remove_all(download);
  fs::create_directories(download);
  return out;
}

std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// iperf3's receiver-side UDP rate in MB/s, or a negative value.
double iperf_udp(std::size_t datagram) {
  const auto port = std::to_string(free_port());
  // The server says when it listens; the client starts only then.
  FILE* server =
      ::popen(("iperf3 -s -1 --forceflush -B 127.0.0.1 -p " + port + " 2>&1").c_str(), "r");
  if (!server) return -1;
  char line[512];
  bool listening = false;
  while (!listening && std::fgets(line, sizeof line, server))
    listening = std::strstr(line, "Server listening") != nullptr;
  std::string json;
  if (listening) {
    const std::string client = "iperf3 -c 127.0.0.1 -p " + port + " -u -b 0 -l " +
                               std::to_string(datagram) + " -t 5 -J 2>/dev/null";
    if (FILE* f = ::popen(client.c_str(), "r")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        json.append(buf, n);
      ::pclose(f);
    }
  }
  ::pclose(server);
  const auto end = json.find("\"end\"");
  if (end == std::string::npos) return -1;
  const auto sum = json.find("\"sum\"", end);
  const auto key = json.find("\"bits_per_second\"", sum);
  if (sum == std::string::npos || key == std::string::npos) return -1;
  const double bps = std::strtod(json.c_str() + json.find(':', key) + 1, nullptr);
  // Lost datagrams do not count: the rate the receiver actually got.
  const auto lost_key = json.find("\"lost_percent\"", sum);
  const double lost = lost_key == std::string::npos
                          ? 0
                          : std::strtod(json.c_str() + json.find(':', lost_key) + 1, nullptr);
  return bps / 8 / 1e6 * (1 - lost / 100);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--size-mb") {
      o.size_mb = std::stoull(value());
    } else if (arg == "--chunk") {
      o.chunks.push_back(std::stoul(value()));
    } else if (arg == "--iperf") {
      o.iperf = true;
    } else if (arg == "--timeout-s") {
      o.timeout_s = std::stoi(value());
    } else {
      std::fprintf(
          stderr, "usage: transfer_bench [--size-mb N] [--chunk N]... [--iperf] [--timeout-s N]\n");
      return 2;
    }
  }
  if (o.chunks.empty()) o.chunks = {1200, 8000};

  const fs::path dir =
      fs::temp_directory_path() / ("tessenger-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "download");
  const auto file = dir / "payload.bin";
  write_random_file(file, o.size_mb << 20);
  tessenger::transfer::Digest sha{};
  if (tessenger::transfer::sha256_file(file, sha)) {
    std::fprintf(stderr, "cannot hash %s\n", file.c_str());
    return 1;
  }

  int status = 0;
  for (const auto chunk : o.chunks) {
    const auto r = transfer_once(file, sha, dir / "download", chunk, o.timeout_s);
    if (!r.ok) {
      std::printf("chunk %5zu: FAILED: %s\n", chunk, r.error.c_str());
      status = 1;
      continue;
    }
    const double mbps = static_cast<double>(o.size_mb << 20) / 1e6 / r.seconds;
    std::printf("chunk %5zu: %8.1f MB/s goodput (%llu MB in %.2f s, resent %llu bytes, %llu lost)",
                chunk, mbps, static_cast<unsigned long long>(o.size_mb), r.seconds,
                static_cast<unsigned long long>(r.sender.bytes_retransmitted),
                static_cast<unsigned long long>(r.sender.packets_lost));
    if (o.iperf) {
      const auto datagram = chunk + tessenger::transfer::data_overhead;
      const double ip = iperf_udp(datagram);
      if (ip > 0)
        std::printf("; iperf3 -u -l %zu: %.1f MB/s (%.0f%%)", datagram, ip, 100 * mbps / ip);
      else
        std::printf("; iperf3 unavailable");
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  fs::remove_all(dir);
  return status;
}
