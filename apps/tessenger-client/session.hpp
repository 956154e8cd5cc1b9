#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <asio/io_context.hpp>

#include <tessenger/file_transfer.hpp>

#include "common/console.hpp"
#include "common/line_reader.hpp"
#include "offers.hpp"

namespace tessenger::app {

struct SessionConfig {
  std::string host;
  std::uint16_t tcp_port = 0;
  /// Draw a progress bar for uploads (stdout is a terminal, stdin is not).
  bool progress_bar = false;
  /// Stdin and stdout are a terminal: after login, line editing, output
  /// above the input, a short prompt, short timestamps (see Terminal).
  /// Otherwise the SPEC's texts, as a script expects them.
  bool interactive = false;
  /// Colours on the interactive terminal (not with NO_COLOR or --no-color).
  bool colour = false;
  /// Where received files go (to announce interrupted downloads there).
  std::filesystem::path download_dir;
  /// Where the interactive history is kept, one file per user; empty: none.
  std::filesystem::path history_dir;
  /// Given for unattended use: not asked for, and a refusal is final.
  std::optional<std::string> username;
  std::optional<std::string> password;
  /// TLS, checked against the system's CAs or only those in tls_ca_file.
  bool tls = false;
  std::string tls_ca_file;
  /// Which offers are received (`ask` needs stdin on a terminal), and how
  /// many may be pending per sender before the next is declined.
  AcceptFiles accept_files = AcceptFiles::all;
  std::size_t max_pending_per_sender = 4;
  /// A question about an offer unanswered for this long has expired: the
  /// sender has given up by then.
  std::chrono::milliseconds transfer_timeout{10'000};
};

/// What the session runs on: `io` is run by one thread the session starts
/// and stops; `files` runs on a thread of its own, and the session destroys
/// it before it ends, so that no transfer callback outlives the session.
struct SessionRuntime {
  asio::io_context& io;
  std::optional<FileTransfer>& files;
};

/// The interactive client: connect, log in, then one command at a time
/// (SPEC §3, §4, §6). Commands are read from `input` only after the previous
/// one's reply has been printed, so a script's output is deterministic;
/// events and transfer outcomes are printed as they arrive.
///
/// Returns the process exit status: 0 after a logout (by command, end of
/// input or `input.interrupt()` from a signal), 1 when the connection failed
/// or ended otherwise, or the login did not succeed. A logout by command or
/// end of input first lets the running file transfers finish; a signal
/// cancels them (the peers are told).
int run_session(const SessionConfig& config, SessionRuntime runtime, LineReader& input,
                Console& out, Console& err);

}  // namespace tessenger::app
