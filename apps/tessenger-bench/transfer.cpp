// transfer: one /p2pvideo-equivalent transfer over loopback, next to iperf3.

#include <stdexcept>

#include "scenarios.hpp"

namespace bench {

Report run_transfer(const TransferOptions&) {
  throw std::runtime_error(
      "transfer: not available in this build (libtessenger has no TransferService)");
}

}  // namespace bench
