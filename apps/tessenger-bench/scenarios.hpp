#pragma once

// The scenarios of tessenger-bench. Definitions follow the benchmark issue
// exactly so that figures compare with other servers measured the same way.

#include <cstddef>
#include <cstdint>
#include <string>

#include "process.hpp"
#include "report.hpp"

namespace bench {

struct LoginOptions {
  std::size_t users = 10'000;
  std::size_t concurrency = 8;
  double hold_s = 5;
};

struct PairsOptions {
  std::size_t pairs = 50;
  std::size_t window = 64;
  double duration_s = 10;
  double warmup_s = 2;
  double rate = 0;  ///< total messages/s; 0 = closed loop with `window`
  std::size_t payload = 32;
};

struct FanoutOptions {
  std::size_t members = 50;
  std::size_t window = 16;
  double duration_s = 10;
  double warmup_s = 2;
  std::size_t payload = 32;
};

struct TransferOptions {
  std::size_t size_mb = 512;
  std::size_t chunk_size = 1200;
  bool iperf3 = true;   ///< also measure iperf3 at the same datagram payload
  unsigned rounds = 3;  ///< transfers into memory, each followed by iperf3
};

struct HistoryOptions {
  std::size_t messages = 1'000'000;  ///< in the large conversation
  std::size_t small = 1'000;         ///< in the small one
  std::size_t pages = 2'000;         ///< pages read from each
  std::size_t page = 50;
  unsigned restarts = 3;  ///< server starts timed; the median is reported
};

Report run_login(const ServerUnderTest::Options& server, const LoginOptions& options);
Report run_pairs(const ServerUnderTest::Options& server, const PairsOptions& options);
Report run_fanout(const ServerUnderTest::Options& server, const FanoutOptions& options);
/// The pairs workload against a frame relay forked from this process.
Report run_baseline_relay(const PairsOptions& options);
Report run_transfer(const TransferOptions& options);
/// Pages of history from a conversation of `messages` and one of `small`
/// (SQLite), and the time a server takes to serve with them stored.
Report run_history(const ServerUnderTest::Options& server, const HistoryOptions& options);

}  // namespace bench
