#include "session.hpp"

#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include <tessenger/client.hpp>
#include <tessenger/version.hpp>

#include "commands.hpp"
#include "common/message_text.hpp"
#include "common/texts.hpp"
#include "common/timefmt.hpp"

namespace tessenger::app {
namespace {

// Blocks the calling (input) thread until the client completes the request.
template <class T, class Start>
Result<T> wait_for(Start&& start) {
  // Shared, so the promise outlives a callback still returning from set_value.
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> result) { promise->set_value(std::move(result)); });
  return future.get();
}

// A failure that means the connection is gone, as opposed to a refused command.
bool ends_connection(std::error_code code) {
  if (code.category() != category()) return true;
  return code.value() < 100 || code.value() >= 300 || code == make_error_code(errc::login_timeout);
}

struct Lost {
  std::mutex mutex;
  std::optional<std::pair<std::error_code, std::string>> why;
};

class Session {
 public:
  Session(const SessionConfig& config, LineReader& input, Console& out, Console& err)
      : config_(config), input_(input), out_(out), err_(err), client_(events(), options()) {}

  int run() {
    auto hello = wait_for<protocol::HelloOk>(
        [&](auto done) { client_.connect(config_.host, config_.tcp_port, std::move(done)); });
    if (!hello) {
      err_.line(fmt::format("tessenger-client: cannot connect to {} port {}: {}", config_.host,
                            config_.tcp_port, hello.error().message()));
      return 1;
    }
    out_.line(text::please_login);
    if (!log_in()) return 1;
    return command_loop();
  }

 private:
  ClientEvents events() {
    ClientEvents events;
    events.on_direct_message = [this](const protocol::DirectEvent& e) {
      show_event(fmt::format("{}, {}: {}", format_timestamp(e.timestamp), e.from, e.text));
    };
    events.on_group_message = [this](const protocol::GroupEvent& e) {
      show_event(
          fmt::format("{}, {}, {}: {}", format_timestamp(e.timestamp), e.group, e.from, e.text));
    };
    events.on_invite = [this](const protocol::InviteEvent& e) {
      show_event(fmt::format("{} invited you to group {}; use /joingroup {} to join.", e.from,
                             e.group, e.group));
    };
    events.on_disconnected = [this](std::error_code code, std::string_view reason) {
      {
        std::lock_guard lock(lost_.mutex);
        lost_.why.emplace(code, std::string(reason));
      }
      input_.interrupt();
    };
    return events;
  }

  static ClientOptions options() {
    ClientOptions options;
    options.software = std::string("tessenger-client/") + version_string;
    return options;
  }

  void show_event(const std::string& line) {
    out_.line(line);
    out_.line(text::command_prompt);
  }

  // The connection ended while waiting for input: say why.
  int report_lost() {
    std::lock_guard lock(lost_.mutex);
    if (lost_.why) out_.line(error_text(lost_.why->first, lost_.why->second));
    return 1;
  }

  bool lost() {
    std::lock_guard lock(lost_.mutex);
    return lost_.why.has_value();
  }

  bool log_in() {
    for (;;) {
      out_.write(text::username_prompt);
      std::string username;
      if (input_.read_line(username) != LineReader::Status::line) {
        if (lost()) report_lost();
        return false;
      }
      const auto first = username.find_first_not_of(" \t");
      username.erase(0, first == std::string::npos ? username.size() : first);
      username.erase(username.find_last_not_of(" \t") + 1);

      out_.write(text::password_prompt);
      std::string password;
      LineReader::Status status;
      {
        EchoOff no_echo(input_.fd());
        status = input_.read_line(password);
      }
      if (is_terminal(input_.fd())) out_.line("");
      if (status != LineReader::Status::line) {
        if (lost()) report_lost();
        return false;
      }

      auto result = wait_for<protocol::LoginOk>(
          [&](auto done) { client_.login(username, password, config_.udp_port, std::move(done)); });
      if (result) {
        out_.line(text::welcome);
        out_.line(text::command_prompt);
        return true;
      }
      out_.line(error_text(result.error(), result.detail()));
      const auto code = result.error();
      if (code != errc::invalid_username && code != errc::invalid_password &&
          code != errc::already_logged_in) {
        return false;
      }
    }
  }

  int command_loop() {
    for (;;) {
      std::string line;
      const auto status = input_.read_line(line);
      if (status == LineReader::Status::interrupted && lost()) return report_lost();
      // End of input or a signal: the user is leaving, which is a logout.
      if (status != LineReader::Status::line) return log_out();
      if (auto exit_status = execute(parse_command(line))) return *exit_status;
    }
  }

  // Runs one command; an exit status when the session is over.
  std::optional<int> execute(const Command& command) {
    return std::visit([this](const auto& c) { return run(c); }, command);
  }

  std::optional<int> run(const NoCommand&) { return outcome({}); }
  std::optional<int> run(const InvalidCommand&) { return outcome(text::invalid_command); }
  std::optional<int> run(const Usage& usage) { return outcome(usage.line); }
  std::optional<int> run(const Logout&) { return log_out(); }

  std::optional<int> run(const MsgTo& c) {
    auto text = clean_message(c.text);
    if (auto* problem = std::get_if<TextProblem>(&text)) return outcome(describe(*problem));
    auto result = wait_for<protocol::DirectSent>([&](auto done) {
      client_.send_direct(c.user, std::get<std::string>(std::move(text)), std::move(done));
    });
    if (!result) return failed(result.error(), result.detail());
    return outcome(fmt::format("message sent at {}.", format_timestamp(result->timestamp)));
  }

  std::optional<int> run(const ActiveUser&) {
    auto result =
        wait_for<protocol::ActiveUsers>([&](auto done) { client_.active_users(std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    if (result->users.empty()) return outcome(text::no_other_active_user);
    for (const auto& user : result->users) {
      out_.line(fmt::format("{}, {}, {}, active since {}.", user.username, user.address,
                            user.udp_port, format_timestamp(user.since)));
    }
    return outcome({});
  }

  std::optional<int> run(const CreateGroup& c) {
    auto result = wait_for<protocol::GroupCreated>(
        [&](auto done) { client_.create_group(c.group, c.users, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    return outcome(
        fmt::format("Group chat room has been created, room name: {}, users in this room: {}",
                    result->group, fmt::join(result->members, ", ")));
  }

  std::optional<int> run(const JoinGroup& c) {
    auto result = wait_for<protocol::GroupJoined>(
        [&](auto done) { client_.join_group(c.group, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    return outcome(fmt::format("Joined the group chat: {} successfully.", result->group));
  }

  std::optional<int> run(const GroupMsg& c) {
    auto text = clean_message(c.text);
    if (auto* problem = std::get_if<TextProblem>(&text)) return outcome(describe(*problem));
    auto result = wait_for<protocol::GroupSent>([&](auto done) {
      client_.send_group(c.group, std::get<std::string>(std::move(text)), std::move(done));
    });
    if (!result) return failed(result.error(), result.detail());
    return outcome(
        fmt::format("Group chat message sent at {}.", format_timestamp(result->timestamp)));
  }

  int log_out() {
    auto result =
        wait_for<protocol::LoggedOut>([&](auto done) { client_.logout(std::move(done)); });
    if (!result) {
      out_.line(error_text(result.error(), result.detail()));
      return 1;
    }
    out_.line(fmt::format("Bye, {}!", result->username));
    return 0;
  }

  // Prints a command's outcome (if any) and the prompt; the session goes on.
  std::optional<int> outcome(std::string_view line) {
    if (!line.empty()) out_.line(line);
    out_.line(text::command_prompt);
    return std::nullopt;
  }

  std::optional<int> failed(std::error_code code, const std::string& detail) {
    if (ends_connection(code)) {
      out_.line(error_text(code, detail));
      return 1;
    }
    return outcome(error_text(code, detail));
  }

  const SessionConfig& config_;
  LineReader& input_;
  Console& out_;
  Console& err_;
  Lost lost_;
  Client client_;  // last: its callbacks use the members above until it is destroyed
};

}  // namespace

int run_session(const SessionConfig& config, LineReader& input, Console& out, Console& err) {
  Session session(config, input, out, err);
  return session.run();
}

}  // namespace tessenger::app
