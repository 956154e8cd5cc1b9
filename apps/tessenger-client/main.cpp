// tessenger-client: argument parsing and wiring; the session is in session.cpp.

#include <charconv>
#include <clocale>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/udp.hpp>

#include <tessenger/file_transfer.hpp>
#include <tessenger/version.hpp>

#include "common/console.hpp"
#include "common/line_reader.hpp"
#include "session.hpp"

namespace {

constexpr int exit_usage = 2;

tessenger::app::LineReader* interruptible_input = nullptr;

extern "C" void on_signal(int) {
  if (interruptible_input) interruptible_input->interrupt();
}

std::optional<std::uint16_t> parse_port(const std::string& text) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Where the interactive history lives: $XDG_STATE_HOME/tessenger, else
// ~/.local/state/tessenger (the XDG base directory rule); empty if neither
// is known.
std::filesystem::path history_dir() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state == '/') {
    return std::filesystem::path(state) / "tessenger";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::filesystem::path(home) / ".local" / "state" / "tessenger";
  }
  return {};
}

// The first line of `file`, without its line end.
std::optional<std::string> first_line(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"TESSENGER chat client"};
  std::string host;
  std::string tcp_port_text;
  std::string udp_port_text;
  std::string download_dir = ".";
  app.add_option("server_ip", host, "server address (IPv4, IPv6 or a host name)")->required();
  app.add_option("tcp_port", tcp_port_text, "server TCP port")->required();
  app.add_option("udp_port", udp_port_text, "UDP port to receive files on (0 picks a free one)")
      ->required();
  app.add_option("--download-dir", download_dir, "where received files are saved")
      ->capture_default_str();
  tessenger::TransferOptions transfer_options;
  app.add_option("--chunk-size", transfer_options.chunk_size,
                 "file bytes per UDP datagram when sending; above 1200 only on a LAN")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, tessenger::transfer::max_chunk_size));
  app.add_option("--max-receive-size", transfer_options.max_receive_size,
                 "refuse incoming files larger than this (bytes, or with a unit: 500MB, 2GiB)")
      ->default_str("16GiB")
      ->transform(CLI::AsSizeValue(true));
  double transfer_timeout_s = 10;
  app.add_option("--transfer-timeout", transfer_timeout_s,
                 "seconds without a word from the peer before a transfer fails")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86'400.0));
  std::string accept_files = "all";
  app.add_option("--accept-files", accept_files,
                 "which offered files to receive: all, known (only from users you have written "
                 "to or share a group with) or ask (on a terminal only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "known", "ask"}));
  std::size_t max_pending_per_sender = 4;
  app.add_option("--max-pending-files", max_pending_per_sender,
                 "offers one sender may have pending (offered, not finished); more are declined")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  bool tls = false;
  std::string ca_file;
  auto* tls_flag = app.add_flag(
      "--tls", tls, "connect with TLS, checking the server's certificate (no fallback to clear)");
  app.add_option("--ca", ca_file,
                 "trust only the CAs in this PEM file instead of the system's (with --tls)")
      ->check(CLI::ExistingFile)
      ->needs(tls_flag);
  bool no_color = false;
  app.add_flag("--no-color", no_color, "no colours on the terminal (as does NO_COLOR=1)");
  std::string user;
  app.add_option("--user", user, "log in as this user instead of asking");
  std::string password_file;
  app.add_option("--password-file", password_file,
                 "read the password from the first line of this file instead of asking (or set "
                 "TESSENGER_PASSWORD); never on the command line, where ps shows it");
  app.set_version_flag("--version", std::string("tessenger-client ") + tessenger::version_string);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : exit_usage;
  }

  const auto tcp_port = parse_port(tcp_port_text);
  if (!tcp_port || *tcp_port == 0) {
    std::cerr << "tessenger-client: invalid tcp_port '" << tcp_port_text
              << "': expected an integer from 1 to 65535\n";
    return exit_usage;
  }
  const auto udp_port = parse_port(udp_port_text);
  if (!udp_port) {
    std::cerr << "tessenger-client: invalid udp_port '" << udp_port_text
              << "': expected an integer from 0 to 65535\n";
    return exit_usage;
  }
  const auto accept_mode = *tessenger::app::parse_accept_files(accept_files);
  // In a pipe there is no one to answer, and the answers would be taken
  // from the script's commands.
  if (accept_mode == tessenger::app::AcceptFiles::ask && !tessenger::app::is_terminal(0)) {
    std::cerr << "tessenger-client: --accept-files ask needs a terminal on stdin; in a pipe use "
                 "all or known\n";
    return exit_usage;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(download_dir, ec)) {
    std::cerr << "tessenger-client: --download-dir '" << download_dir << "' is not a directory\n";
    return exit_usage;
  }

  // Bound before connecting, so a port in use is reported at start-up and
  // the port reported at login is the real one. Transfers run on a thread of
  // their own: file writes and hashing never hold up chat.
  asio::io_context io(1);
  const auto server_address = asio::ip::make_address(host, ec);
  const auto family = !ec && server_address.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4();
  transfer_options.download_dir = download_dir;
  transfer_options.idle_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(transfer_timeout_s * 1000));
  std::optional<tessenger::FileTransfer> files;
  try {
    files.emplace(asio::ip::udp::endpoint(family, *udp_port), transfer_options);
  } catch (const std::system_error& e) {
    std::cerr << "tessenger-client: cannot use UDP port " << *udp_port << ": " << e.code().message()
              << '\n';
    return 1;
  }

  std::optional<std::string> password;
  if (!password_file.empty()) {
    password = first_line(password_file);
    if (!password) {
      std::cerr << "tessenger-client: cannot read a password from --password-file '"
                << password_file << "'\n";
      return exit_usage;
    }
  } else if (const char* env = std::getenv("TESSENGER_PASSWORD")) {
    password = env;
  }

  // Line editing takes UTF-8 from the terminal as the locale says; only
  // the character type, so that dates keep the SPEC's English month names.
  if (std::setlocale(LC_CTYPE, "") == nullptr || MB_CUR_MAX == 1) {
    std::setlocale(LC_CTYPE, "C.UTF-8");
  }

  std::signal(SIGPIPE, SIG_IGN);
  tessenger::app::LineReader input(0);
  interruptible_input = &input;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  tessenger::app::Console out(1);
  tessenger::app::Console err(2);
  tessenger::app::SessionConfig config;
  config.host = host;
  config.tcp_port = *tcp_port;
  config.tls = tls;
  config.tls_ca_file = ca_file;
  config.interactive = tessenger::app::is_terminal(0) && tessenger::app::is_terminal(1);
  config.progress_bar = tessenger::app::is_terminal(1) && !config.interactive;
  // https://no-color.org: set and not empty.
  const char* no_color_env = std::getenv("NO_COLOR");
  config.colour = config.interactive && !no_color && !(no_color_env && *no_color_env);
  config.history_dir = history_dir();
  config.download_dir = download_dir;
  if (!user.empty()) config.username = user;
  config.password = password;
  config.accept_files = accept_mode;
  config.max_pending_per_sender = max_pending_per_sender;
  config.transfer_timeout = transfer_options.idle_timeout;
  const int status = tessenger::app::run_session(config, {io, files}, input, out, err);
  interruptible_input = nullptr;
  return status;
}
