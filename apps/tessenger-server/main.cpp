// tessenger-server: parses arguments and runs a tessenger::Server until
// SIGINT or SIGTERM.

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/thread_pool.hpp>

#include <tessenger/server.hpp>
#include <tessenger/sqlite_store.hpp>
#include <tessenger/version.hpp>

#include "common/line_reader.hpp"

namespace {

constexpr int exit_usage = 2;

std::optional<long> parse_integer(const std::string& text) {
  long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

spdlog::level::level_enum to_spdlog(tessenger::LogLevel level) {
  switch (level) {
    case tessenger::LogLevel::debug:
      return spdlog::level::debug;
    case tessenger::LogLevel::info:
      return spdlog::level::info;
    case tessenger::LogLevel::warn:
      return spdlog::level::warn;
    case tessenger::LogLevel::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Each connection is a descriptor: take the hard limit, and say so when even
// that is below --max-connections (accept then fails first, and retries).
void raise_descriptor_limit(const tessenger::Limits& limits, spdlog::logger& logger) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  constexpr rlim_t reserved = 64;  // logs, the listener, the console
  if (limits.max_connections != 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < limits.max_connections + reserved) {
    logger.warn(
        "the descriptor limit ({}) is below --max-connections ({}) plus {}; raise "
        "ulimit -n or lower --max-connections",
        limit.rlim_cur, limits.max_connections, reserved);
  }
}

bool is_valid_username(std::string_view name) {
  return !name.empty() && name.size() <= 32 &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.';
         });
}

// `tessenger-server --hash-password USER`: reads a password (not echoed on a
// terminal, where it is asked twice) and prints the credentials line for it.
int hash_password_main(int argc, char** argv) {
  CLI::App app{
      "Reads a password from stdin and prints the credentials line `USER HASH` to append to the "
      "credentials file (HASH: Argon2id)"};
  std::string username;
  app.add_option("--hash-password", username, "the account's username")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : exit_usage;
  }
  if (!is_valid_username(username)) {
    std::cerr << "tessenger-server: invalid username '" << username
              << "': use 1-32 characters of A-Z a-z 0-9 _ - .\n";
    return exit_usage;
  }

  const bool terminal = tessenger::app::is_terminal(0);
  tessenger::app::LineReader reader(0);
  const auto ask = [&](const char* prompt, std::string& answer) {
    if (terminal) std::cerr << prompt << std::flush;
    const tessenger::app::EchoOff echo_off(0);
    const bool got = reader.read_line(answer) == tessenger::app::LineReader::Status::line;
    if (terminal) std::cerr << '\n';
    return got;
  };
  std::string password;
  if (!ask("Password: ", password) || password.empty()) {
    std::cerr << "tessenger-server: no password given\n";
    return 1;
  }
  if (password.size() > tessenger::Limits{}.max_password) {
    std::cerr << "tessenger-server: the password is longer than "
              << tessenger::Limits{}.max_password << " bytes\n";
    return 1;
  }
  if (terminal) {
    std::string again;
    if (!ask("Repeat password: ", again) || again != password) {
      std::cerr << "tessenger-server: the passwords differ\n";
      return 1;
    }
  }
  std::cout << username << ' ' << tessenger::hash_password(password) << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with("--hash-password")) {
      return hash_password_main(argc, argv);
    }
  }
  CLI::App app{"TESSENGER chat server"};
  app.footer("To hash a password for the credentials file: tessenger-server --hash-password USER");
  std::string address;
  std::string port_text;
  std::string attempts_text;
  tessenger::ServerConfig config;
  std::string credentials = "credentials.txt";
  std::string data_dir = ".";
  long block_seconds = 10;
  bool verbose = false;
  bool quiet = false;

  app.add_option("server_ip", address, "IPv4 or IPv6 address to listen on")->required();
  app.add_option("tcp_port", port_text, "TCP port (0 picks a free one)")->required();
  app.add_option("max_attempts", attempts_text,
                 "consecutive failed logins before a temporary block (1-1000)")
      ->required();
  app.add_option("--credentials", credentials, "credentials file")->capture_default_str();
  app.add_option("--data-dir", data_dir, "directory for the log files and tessenger.db")
      ->capture_default_str();
  std::string store_kind = "sqlite";
  app.add_option("--store", store_kind,
                 "where groups, memberships, blocks and messages are kept: sqlite (tessenger.db "
                 "in --data-dir) or memory (lost at exit)")
      ->check(CLI::IsMember({"sqlite", "memory"}))
      ->capture_default_str();
  auto* cluster_option = app.add_option(
      "--cluster", config.cluster,
      "join a cluster of nodes sharing this Redis (redis://HOST:PORT[/DB] or unix:///PATH): "
      "users, groups and messages are kept there instead (docs/cluster.md)");
  app.add_option("--node-name", config.node_name,
                 "this node's name in the cluster, unique in it (default: ADDRESS:PORT)")
      ->needs(cluster_option);
  std::string sync = "normal";
  app.add_option("--sync", sync,
                 "sqlite: normal (an acknowledged message survives a crash of the server) or "
                 "full (a power loss too; an fsync per commit)")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  std::uint32_t history_days = 0;
  app.add_option("--history-days", history_days,
                 "remove stored messages older than this many days (0: keep them all)")
      ->capture_default_str();
  std::uint64_t history_max = 0;
  app.add_option("--history-max", history_max,
                 "keep at most this many messages per conversation (0: all)")
      ->capture_default_str();
  std::string tls_certificate;
  std::string tls_key;
  auto* certificate_option =
      app.add_option("--tls-cert", tls_certificate,
                     "serve TLS with this PEM certificate (chain); see scripts/make-dev-cert.sh")
          ->check(CLI::ExistingFile);
  auto* key_option = app.add_option("--tls-key", tls_key, "the certificate's PEM private key")
                         ->check(CLI::ExistingFile);
  certificate_option->needs(key_option);
  key_option->needs(certificate_option);
  bool no_legacy = false;
  app.add_flag("--no-legacy", no_legacy,
               "refuse the original Python client's text protocol (docs/legacy.md)");
  app.add_flag("--allow-legacy-plaintext", config.allow_legacy_plaintext,
               "with TLS on, still let the original client (which cannot speak TLS) log in, its "
               "password in clear");
  app.add_option("--block-seconds", block_seconds, "how long a blocked account stays blocked")
      ->check(CLI::Range(1L, 86400L))
      ->capture_default_str();
  app.add_option("--login-timeout", config.limits.login_timeout_seconds,
                 "seconds a connection may take to log in")
      ->group("Limits")
      ->check(CLI::Range(1u, 3600u))
      ->capture_default_str();
  app.add_option("--idle-ping-seconds", config.limits.idle_ping_seconds,
                 "ping a session silent this long (protocol 2; older clients: TCP keepalive); "
                 "0: never")
      ->group("Limits")
      ->check(CLI::Range(0u, 86400u))
      ->capture_default_str();
  app.add_option("--ping-timeout-seconds", config.limits.ping_timeout_seconds,
                 "close a pinged session that has not answered within this time")
      ->group("Limits")
      ->check(CLI::Range(1u, 3600u))
      ->capture_default_str();
  app.add_option("--max-groups", config.limits.max_groups, "groups on the server in total")
      ->group("Limits")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}))
      ->capture_default_str();
  auto& limits = config.limits;
  const auto limit_group = "Limits";
  app.add_option("--max-connections", limits.max_connections,
                 "live connections in total (0: no limit)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option("--max-connections-per-ip", limits.max_connections_per_ip,
                 "live connections from one IPv4 address or IPv6 /64 (0: no limit)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option(
         "--max-failed-logins-per-ip", limits.max_failed_logins_per_ip,
         "failed logins one address may make on any accounts within the window (0: no limit)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option("--failed-login-window", limits.failed_login_window_seconds,
                 "seconds in which --max-failed-logins-per-ip refill")
      ->group(limit_group)
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  app.add_option("--message-rate", limits.message_rate,
                 "requests per second one connection may keep up (0: no limit)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option("--message-burst", limits.message_burst,
                 "requests one connection may send at once")
      ->group(limit_group)
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  app.add_option("--max-rate-refusals", limits.max_rate_refusals,
                 "requests refused for speed before the connection is closed (0: never)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option("--max-write-queue", limits.max_pending_write_bytes,
                 "bytes queued for a client that does not read before it is disconnected")
      ->group(limit_group)
      ->check(CLI::Range(std::size_t{64 * 1024}, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-incomplete-frame-bytes", limits.max_incomplete_frame_bytes,
                 "bytes that frames not yet received whole may hold, all connections together; "
                 "past it the slowest senders are disconnected (0: no limit)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option("--max-groups-per-user", limits.max_groups_per_user,
                 "groups one user may have joined (invitations do not count)")
      ->group(limit_group)
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-invitations-per-minute", limits.max_invitations_per_minute,
                 "users one account may invite to groups per minute (0: no limit)")
      ->group(limit_group)
      ->capture_default_str();
  app.add_option("--max-group-members", limits.max_group_members, "members of one group")
      ->group(limit_group)
      ->check(CLI::Range(std::size_t{1}, limits.max_list_entries))
      ->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "also log debug messages");
  app.add_flag("-q,--quiet", quiet, "log warnings and errors only");
  app.set_version_flag("--version", std::string("tessenger-server ") + tessenger::version_string);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : exit_usage;
  }

  const auto attempts = parse_integer(attempts_text);
  if (!attempts || *attempts < 1 || *attempts > 1000) {
    std::cerr << "tessenger-server: invalid max_attempts '" << attempts_text
              << "': expected an integer from 1 to 1000\n";
    return exit_usage;
  }
  const auto port = parse_integer(port_text);
  if (!port || *port < 0 || *port > 65535) {
    std::cerr << "tessenger-server: invalid tcp_port '" << port_text
              << "': expected an integer from 0 to 65535\n";
    return exit_usage;
  }

  auto logger = spdlog::stdout_logger_mt("tessenger");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  logger->set_level(verbose ? spdlog::level::debug
                    : quiet ? spdlog::level::warn
                            : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  raise_descriptor_limit(config.limits, *logger);

  config.bind_address = address;
  config.port = static_cast<std::uint16_t>(*port);
  config.max_attempts = static_cast<std::uint32_t>(*attempts);
  config.block_duration = std::chrono::seconds(block_seconds);
  config.credentials_file = credentials;
  config.data_dir = data_dir;
  config.tls_certificate = tls_certificate;
  config.legacy = !no_legacy;
  config.tls_private_key = tls_key;
  config.software = std::string("tessenger-server/") + tessenger::version_string;
  config.history_days = history_days;
  config.history_max = history_max;
  config.log.min_level = verbose ? tessenger::LogLevel::debug
                         : quiet ? tessenger::LogLevel::warn
                                 : tessenger::LogLevel::info;
  config.log.write = [logger](tessenger::LogLevel level, std::string_view text) {
    logger->log(to_spdlog(level), "{}", text);
  };

  // Outlives the server, which must be gone before the store closes.
  if (store_kind == "sqlite" && config.cluster.empty()) {
    tessenger::SqliteStoreOptions options;
    options.file = std::filesystem::path(data_dir) / "tessenger.db";
    options.sync = sync == "full" ? tessenger::SqliteStoreOptions::Sync::full
                                  : tessenger::SqliteStoreOptions::Sync::normal;
    options.log = config.log;
    std::error_code ec;
    // As the log files do; if this fails, opening says why.
    std::filesystem::create_directories(data_dir, ec);
    std::string problem;
    config.store = tessenger::open_sqlite_store(options, ec, problem);
    if (!config.store) {
      std::cerr << "tessenger-server: " << problem << '\n';
      return 1;
    }
  }

  asio::io_context io(1);
  // Argon2id checks (tenths of a second each) run here, not on the server's
  // thread, so a login never stalls the chat.
  asio::thread_pool password_checks(1);
  config.offload = [&password_checks](std::function<void()> task) {
    asio::post(password_checks, std::move(task));
  };
  tessenger::Server server(io, config);
  std::error_code ec;
  std::string what;
  server.start(ec, &what);
  if (ec) {
    std::cerr << "tessenger-server: " << what << '\n';
    return 1;
  }
  const bool v6 = server.local_endpoint().address().is_v6();
  std::printf("TESSENGER server listening on %s%s%s:%u\n", v6 ? "[" : "", address.c_str(),
              v6 ? "]" : "", server.local_port());
  std::fflush(stdout);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code error, int signal_number) {
    if (error) return;
    logger->info("received signal {}, shutting down", signal_number);
    server.stop();
  });
  io.run();
  password_checks.join();
  logger->info("server stopped");
  return 0;
}
