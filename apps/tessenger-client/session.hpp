#pragma once

#include <cstdint>
#include <string>

#include "common/console.hpp"
#include "common/line_reader.hpp"

namespace tessenger::app {

struct SessionConfig {
  std::string host;
  std::uint16_t tcp_port = 0;
  std::uint16_t udp_port = 0;  ///< the bound port, reported at login
};

/// The interactive client: connect, log in, then one command at a time
/// (SPEC §3, §4). Commands are read from `input` only after the previous
/// one's reply has been printed, so a script's output is deterministic;
/// events are printed as they arrive.
///
/// Returns the process exit status: 0 after a logout (by command, end of
/// input or `input.interrupt()` from a signal), 1 when the connection failed
/// or ended otherwise.
int run_session(const SessionConfig& config, LineReader& input, Console& out, Console& err);

}  // namespace tessenger::app
