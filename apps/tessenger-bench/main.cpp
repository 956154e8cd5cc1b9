// tessenger-bench: drives a real tessenger-server (or the baseline relay)
// with synthetic users from one thread and reports throughput, latency,
// memory and the CPU both sides used.

#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include <tessenger/version.hpp>

#include "process.hpp"
#include "scenarios.hpp"

namespace {

constexpr int exit_usage = 2;
constexpr int exit_failed = 1;

void add_pairs_options(CLI::App& command, bench::PairsOptions& o) {
  command.add_option("--pairs", o.pairs, "disjoint sender -> recipient pairs")
      ->capture_default_str();
  command.add_option("--window", o.window, "messages a sender may have in flight")
      ->capture_default_str();
  command.add_option("--duration", o.duration_s, "measured seconds")->capture_default_str();
  command.add_option("--warmup", o.warmup_s, "seconds of load before measuring")
      ->capture_default_str();
  command.add_option("--rate", o.rate, "fixed total messages/s instead of a window (open loop)");
  command.add_option("--payload", o.payload, "message text bytes")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"TESSENGER benchmark: runs one scenario against a tessenger-server"};
  app.fallthrough();
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("tessenger-bench ") + tessenger::version_string);

  bench::ServerUnderTest::Options server;
  bool json = false;
  std::string credentials_out;
  std::size_t credentials_users = 0;
  app.add_option("--server", server.attach, "attach to a running server at HOST:PORT");
  app.add_option("--server-pid", server.attach_pid, "its pid, to measure its CPU and memory");
  app.add_option("--server-binary", server.binary,
                 "tessenger-server to start (default: the one built next to this binary)");
  app.add_option("--server-arg", server.extra_args, "extra argument for the started server")
      ->allow_extra_args(false);
  app.add_option("--store", server.store, "the started server's store")
      ->check(CLI::IsMember({"memory", "sqlite"}))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object instead of a table");
  auto* credentials = app.add_option("--write-credentials", credentials_out,
                                     "write the bench's accounts to FILE and exit (for --server)");
  app.add_option("--users", credentials_users, "accounts to write with --write-credentials")
      ->needs(credentials);

  bench::LoginOptions login;
  auto* login_cmd = app.add_subcommand("login", "N users log in, C at a time, and stay S seconds");
  login_cmd->add_option("--users", login.users, "users")->capture_default_str();
  login_cmd->add_option("--concurrency", login.concurrency, "logins in flight")
      ->capture_default_str();
  login_cmd->add_option("--hold", login.hold_s, "seconds to hold every session")
      ->capture_default_str();

  bench::PairsOptions pairs;
  auto* pairs_cmd = app.add_subcommand("pairs", "one-to-one messages between disjoint pairs");
  add_pairs_options(*pairs_cmd, pairs);

  bench::PairsOptions relay;
  auto* relay_cmd =
      app.add_subcommand("baseline-relay", "the pairs workload against a trivial frame relay");
  add_pairs_options(*relay_cmd, relay);

  bench::FanoutOptions fanout;
  auto* fanout_cmd = app.add_subcommand("fanout", "one sender to a group of joined members");
  fanout_cmd->add_option("--members", fanout.members, "joined receiving members")
      ->capture_default_str();
  fanout_cmd->add_option("--window", fanout.window, "messages in flight")->capture_default_str();
  fanout_cmd->add_option("--duration", fanout.duration_s, "measured seconds")
      ->capture_default_str();
  fanout_cmd->add_option("--warmup", fanout.warmup_s, "seconds of load before measuring")
      ->capture_default_str();
  fanout_cmd->add_option("--payload", fanout.payload, "message text bytes")->capture_default_str();

  bench::TransferOptions transfer;
  auto* transfer_cmd = app.add_subcommand("transfer", "one file transfer over loopback vs iperf3");
  transfer_cmd->add_option("--size", transfer.size_mb, "file size in MB")->capture_default_str();
  transfer_cmd->add_option("--chunk-size", transfer.chunk_size, "file bytes per datagram")
      ->capture_default_str();
  transfer_cmd
      ->add_option("--rounds", transfer.rounds,
                   "transfers into memory, each followed by iperf3; medians are reported")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100u));
  transfer_cmd->add_flag("!--no-iperf3", transfer.iperf3,
                         "skip the iperf3 comparison (e.g. on a link that drops datagrams)");

  bench::HistoryOptions history;
  auto* history_cmd = app.add_subcommand(
      "history", "pages of 50 from conversations of 1,000,000 and 1,000 messages (SQLite)");
  history_cmd->add_option("--messages", history.messages, "messages in the large conversation")
      ->capture_default_str();
  history_cmd->add_option("--small", history.small, "messages in the small one")
      ->capture_default_str();
  history_cmd->add_option("--pages", history.pages, "pages read from each")->capture_default_str();
  history_cmd->add_option("--page", history.page, "messages per page (1-100)")
      ->capture_default_str();
  history_cmd->add_option("--restarts", history.restarts, "server starts to time")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : exit_usage;
  }

  try {
    if (!credentials_out.empty()) {
      bench::write_credentials(credentials_out, credentials_users);
      return 0;
    }
    bench::Report report;
    if (login_cmd->parsed()) {
      report = bench::run_login(server, login);
    } else if (pairs_cmd->parsed()) {
      report = bench::run_pairs(server, pairs);
    } else if (relay_cmd->parsed()) {
      report = bench::run_baseline_relay(relay);
    } else if (fanout_cmd->parsed()) {
      report = bench::run_fanout(server, fanout);
    } else if (transfer_cmd->parsed()) {
      report = bench::run_transfer(transfer);
    } else if (history_cmd->parsed()) {
      report = bench::run_history(server, history);
    } else {
      std::cerr << app.help();
      return exit_usage;
    }
    const auto text = json ? bench::to_json(report) : bench::to_table(report);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return report.succeeded ? 0 : exit_failed;
  } catch (const std::exception& e) {
    std::cerr << "tessenger-bench: " << e.what() << '\n';
    return exit_failed;
  }
}
