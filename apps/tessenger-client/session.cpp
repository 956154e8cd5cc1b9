#include "session.hpp"

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>

#include <tessenger/client.hpp>
#include <tessenger/file_transfer.hpp>
#include <tessenger/version.hpp>

#include <tessenger/timestamp.hpp>
#include "commands.hpp"
#include "common/message_text.hpp"
#include "common/texts.hpp"

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

// Running file transfers, so a logout can let them finish first.
class TransferCount {
 public:
  void add() {
    std::lock_guard lock(mutex_);
    ++running_;
  }
  void remove() {
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    idle_.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return running_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int running_ = 0;
};

std::string progress_bar(std::string_view file, std::uint64_t done, std::uint64_t total) {
  constexpr int width = 30;
  const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
  const int filled = percent * width / 100;
  return fmt::format("\r{} [{}{}] {:3}%", file, std::string(static_cast<std::size_t>(filled), '#'),
                     std::string(static_cast<std::size_t>(width - filled), ' '), percent);
}

bool readable_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  return std::ifstream(path, std::ios::binary).good();
}

class Session {
 public:
  Session(const SessionConfig& config, SessionRuntime runtime, LineReader& input, Console& out,
          Console& err)
      : config_(config),
        runtime_(runtime),
        input_(input),
        out_(out),
        err_(err),
        offers_(config.accept_files, config.max_pending_per_sender),
        work_(asio::make_work_guard(runtime.io)),
        client_(runtime.io, events(), options()),
        io_thread_([this] { runtime_.io.run(); }) {}

  ~Session() {
    client_.close();
    // What the closed client still has queued need not run.
    work_.reset();
    runtime_.io.stop();
    io_thread_.join();
    // What this session posted to the transfers' strand runs first; then
    // the transfers stop, and none of their callbacks runs any more.
    std::promise<void> drained;
    asio::post(runtime_.files->get_executor(), [&] { drained.set_value(); });
    drained.get_future().wait();
    runtime_.files.reset();
  }

  int run() {
    auto hello = wait_for<ServerInfo>(
        [&](auto done) { client_.connect(config_.host, config_.tcp_port, std::move(done)); });
    if (!hello) {
      // A TLS error's detail is the whole reason; another detail says what
      // failed around the error.
      const auto why = hello.detail().empty() ? hello.error().message()
                       : hello.error() == errc::tls_error
                           ? hello.detail()
                           : fmt::format("{}: {}", hello.detail(), hello.error().message());
      err_.line(fmt::format("tessenger-client: cannot connect to {} port {}: {}", config_.host,
                            config_.tcp_port, why));
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
      show_event(missed_mark(e.missed) + direct_line(e.timestamp, e.from, e.text));
    };
    events.on_group_message = [this](const protocol::GroupEvent& e) {
      know(e.from);
      show_event(missed_mark(e.missed) + group_line(e.timestamp, e.group, e.from, e.text));
    };
    events.on_missed_end = [this](const protocol::MissedEnd& e) {
      if (e.count != 0) show_event(missed_summary(e.count));
    };
    events.on_invite = [this](const protocol::InviteEvent& e) {
      {
        std::lock_guard lock(offers_mutex_);
        inviters_[e.group] = e.from;
      }
      show_event(fmt::format("{} invited you to group {}; use /joingroup {} to join.", e.from,
                             e.group, e.group));
    };
    events.on_group_notice = [this](const protocol::GroupNoticeEvent& e) {
      show_event(group_notice_text(e));
    };
    events.on_file_incoming = [this](const protocol::FileIncomingEvent& e) { receive(e); };
    events.on_legacy_file = [this](const protocol::LegacyFileEvent& e) { receive_legacy(e); };
    events.on_disconnected = [this](std::error_code code, std::string_view reason) {
      {
        std::lock_guard lock(lost_.mutex);
        lost_.why.emplace(code, std::string(reason));
      }
      input_.interrupt();
    };
    return events;
  }

  ClientOptions options() const {
    ClientOptions options;
    options.software = std::string("tessenger-client/") + version_string;
    options.tls = config_.tls;
    options.tls_ca_file = config_.tls_ca_file;
    return options;
  }

  // Events that arrive with the login's reply (what was missed) wait for
  // the welcome, so that they follow it on the screen.
  void show_event(const std::string& line) {
    {
      std::lock_guard lock(early_mutex_);
      if (!welcomed_) {
        early_.push_back(line);
        return;
      }
    }
    out_.line(line);
    out_.line(text::command_prompt);
  }

  void welcome() {
    out_.line(text::welcome);
    out_.line(text::command_prompt);
    std::vector<std::string> early;
    {
      std::lock_guard lock(early_mutex_);
      welcomed_ = true;
      early.swap(early_);
    }
    for (const auto& line : early) {
      out_.line(line);
      out_.line(text::command_prompt);
    }
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

      auto result = wait_for<LoggedIn>([&](auto done) {
        client_.login(username, password, runtime_.files->local_port(), std::move(done));
      });
      if (result) {
        username_ = result->username;
        welcome();
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
      // End of input or a signal: the user is leaving, which is a logout;
      // a script's end lets its transfers finish, a signal does not wait.
      if (status == LineReader::Status::end_of_input) transfers_.wait_idle();
      if (status != LineReader::Status::line) return log_out();
      if (const auto answer = parse_answer(line); answer && answer_offer(*answer)) continue;
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
  std::optional<int> run(const Logout&) {
    transfers_.wait_idle();
    return log_out();
  }

  std::optional<int> run(const MsgTo& c) {
    auto text = clean_message(c.text);
    if (auto* problem = std::get_if<TextProblem>(&text)) return outcome(describe(*problem));
    auto result = wait_for<DirectMessageSent>([&](auto done) {
      client_.send_direct(c.user, std::get<std::string>(std::move(text)), std::move(done));
    });
    if (!result) return failed(result.error(), result.detail());
    know(c.user);
    if (result->stored) return outcome(stored_for_offline(c.user));
    return outcome(fmt::format("message sent at {}.", format_timestamp(result->timestamp)));
  }

  // The newest page first; the same command again reads the page before the
  // last one shown, until the start of the conversation.
  std::optional<int> run(const History& c) {
    auto& position = history_positions_[c.name];
    protocol::HistoryQuery query;
    query.name = c.name;
    query.limit = static_cast<std::uint16_t>(c.count);
    query.direction =
        position == 0 ? protocol::HistoryDirection::latest : protocol::HistoryDirection::before;
    query.anchor = position;
    auto result = wait_for<ConversationHistory>(
        [&](auto done) { client_.history(std::move(query), std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    const bool group = result->kind == protocol::ConversationKind::group;
    for (const auto& entry : result->entries) {
      out_.line(group ? group_line(entry.timestamp, c.name, entry.from, entry.text)
                      : direct_line(entry.timestamp, entry.from, entry.text));
    }
    position = result->more && !result->entries.empty() ? result->entries.front().id : 0;
    return outcome(history_footer(c.name, group, result->entries.size(), result->more));
  }

  std::optional<int> run(const ActiveUser&) {
    auto result = wait_for<OnlineUsers>([&](auto done) { client_.active_users(std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    if (result->users.empty()) return outcome(text::no_other_active_user);
    for (const auto& user : result->users) {
      out_.line(fmt::format("{}, {}, {}, active since {}.", user.username, user.address,
                            user.udp_port, format_timestamp(user.since)));
    }
    return outcome({});
  }

  std::optional<int> run(const CreateGroup& c) {
    auto result = wait_for<NewGroup>(
        [&](auto done) { client_.create_group(c.group, c.users, std::move(done)); });
    // Refused for inviting too many users too fast (the detail names the group).
    if (!result && result.error() == errc::rate_limited && !result.detail().empty()) {
      return outcome(text::inviting_too_fast);
    }
    if (!result) return failed(result.error(), result.detail());
    for (const auto& member : result->members)
      know(member);
    return outcome(
        fmt::format("Group chat room has been created, room name: {}, users in this room: {}",
                    result->group, fmt::join(result->members, ", ")));
  }

  std::optional<int> run(const JoinGroup& c) {
    auto result =
        wait_for<JoinedGroup>([&](auto done) { client_.join_group(c.group, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    {
      std::lock_guard lock(offers_mutex_);
      if (const auto it = inviters_.find(result->group); it != inviters_.end()) {
        offers_.know(it->second);
      }
    }
    return outcome(fmt::format("Joined the group chat: {} successfully.", result->group));
  }

  std::optional<int> run(const LeaveGroup& c) {
    auto result =
        wait_for<LeftGroup>([&](auto done) { client_.leave_group(c.group, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    if (result->declined) {
      return outcome(fmt::format("You have declined the invitation to group {}.", result->group));
    }
    return outcome(fmt::format("You have left the group chat: {}.", result->group));
  }

  std::optional<int> run(const DeleteGroup& c) {
    auto result =
        wait_for<DeletedGroup>([&](auto done) { client_.delete_group(c.group, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    return outcome(fmt::format("Group chat {} has been deleted.", result->group));
  }

  std::optional<int> run(const GroupMsg& c) {
    auto text = clean_message(c.text);
    if (auto* problem = std::get_if<TextProblem>(&text)) return outcome(describe(*problem));
    auto result = wait_for<GroupMessageSent>([&](auto done) {
      client_.send_group(c.group, std::get<std::string>(std::move(text)), std::move(done));
    });
    if (!result) return failed(result.error(), result.detail());
    return outcome(
        fmt::format("Group chat message sent at {}.", format_timestamp(result->timestamp)));
  }

  std::optional<int> run(const P2pVideo& c) {
    const std::filesystem::path path(c.file);
    transfer::Digest digest{};
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!readable_file(path) || ec || transfer::sha256_file(path, digest)) {
      return outcome(error_text(make_error_code(errc::no_such_file), c.file));
    }
    auto offer = wait_for<FileOfferAccepted>([&](auto done) {
      client_.offer_file(c.user, path.filename().string(), size, digest, std::move(done));
    });
    if (!offer) return failed(offer.error(), offer.detail());
    const auto address = asio::ip::make_address(offer->peer_address, ec);
    if (ec) {
      return outcome(fmt::format("Cannot send {} to {}: bad address '{}'.", c.file, c.user,
                                 offer->peer_address));
    }

    TransferCallbacks callbacks;
    if (config_.progress_bar) {
      callbacks.on_progress = [this, file = c.file](std::uint64_t done, std::uint64_t total) {
        out_.write(progress_bar(file, done, total));
      };
    }
    callbacks.on_complete = [this, file = c.file](const TransferResult&) {
      finish_transfer(fmt::format("{} has been uploaded.", file));
    };
    callbacks.on_failure = [this, file = c.file, user = c.user](std::error_code,
                                                                const std::string& reason) {
      finish_transfer(fmt::format("Upload of {} to {} failed: {}", file, user, reason));
    };
    transfers_.add();
    const asio::ip::udp::endpoint peer(address, offer->peer_udp_port);
    if (offer->legacy) {
      out_.line(
          fmt::format("{} uses the original client: {} goes over its legacy protocol, "
                      "unverified: nothing can tell whether it arrives whole.",
                      c.user, c.file));
    }
    // The outcome is printed on the files strand, where the transfer's own
    // callbacks run, so "uploaded" can never come before it.
    std::promise<void> started;
    asio::post(runtime_.files->get_executor(), [&] {
      const auto error =
          offer->legacy
              ? runtime_.files->send_legacy_file(path, peer, username_, std::move(callbacks))
              : runtime_.files->send_file(offer->transfer_id, offer->key, path, peer,
                                          std::move(callbacks));
      if (error) transfers_.remove();
      if (offer->legacy && error == errc::invalid_argument) {
        outcome(
            fmt::format("Cannot send {} to {}: the original client cannot take a file of "
                        "that name.",
                        c.file, c.user));
      } else {
        outcome(error ? error_text(error, c.file) : std::string());
      }
      started.set_value();
    });
    started.get_future().wait();
    return std::nullopt;
  }

  void know(std::string_view user) {
    std::lock_guard lock(offers_mutex_);
    offers_.know(user);
  }

  // Runs on the client's strand.
  void receive(const protocol::FileIncomingEvent& event) {
    std::error_code ec;
    auto incoming = incoming_from(event, ec);
    if (ec) {
      show_event(fmt::format("Cannot receive {} from {}: bad address '{}'.", event.file_name,
                             event.from, event.sender_address));
      return;
    }
    OfferPolicy::Verdict verdict;
    std::uint64_t declined = 0;
    {
      std::lock_guard lock(offers_mutex_);
      verdict = offers_.offer(incoming.sender_name);
      declined = offers_.declined(incoming.sender_name);
      if (verdict == OfferPolicy::Verdict::ask) {
        questions_.push_back({incoming, std::chrono::steady_clock::now()});
      }
    }
    switch (verdict) {
      case OfferPolicy::Verdict::accept:
        start_receiving(std::move(incoming));
        return;
      case OfferPolicy::Verdict::ask:
        show_event(fmt::format("{} wants to send you {} ({} bytes). Accept? (y/n)",
                               incoming.sender_name, incoming.file_name, incoming.size));
        return;
      case OfferPolicy::Verdict::decline_unknown:
      case OfferPolicy::Verdict::decline_busy:
        // No file, no disk work: the sender is told, and fails at once.
        runtime_.files->decline(incoming);
        if (OfferPolicy::worth_a_line(declined)) {
          show_event(decline_line(incoming.file_name, incoming.sender_name, verdict, declined));
        }
        return;
    }
  }

  // Runs on the client's strand. The original client sends at once and
  // waits for nobody: in `ask` mode, a known user's file is taken unasked
  // and any other declined.
  void receive_legacy(const protocol::LegacyFileEvent& event) {
    std::error_code ec;
    auto incoming = legacy_incoming_from(event, ec);
    if (ec) {
      show_event(fmt::format("Cannot receive {} from {}: bad address '{}'.", event.file_name,
                             event.from, event.sender_address));
      return;
    }
    const auto& from = incoming.sender_name;
    OfferPolicy::Verdict verdict;
    std::uint64_t declined = 0;
    {
      std::lock_guard lock(offers_mutex_);
      verdict = offers_.offer(from);
      if (verdict == OfferPolicy::Verdict::ask && !offers_.known(from)) {
        offers_.finished(from);
        show_event(
            fmt::format("Declined {} from {}: it comes over the legacy protocol, which "
                        "cannot wait for an answer; only known users' files are taken.",
                        incoming.file_name, from));
        return;
      }
      declined = offers_.declined(from);
    }
    if (verdict == OfferPolicy::Verdict::decline_unknown ||
        verdict == OfferPolicy::Verdict::decline_busy) {
      // The original sender cannot be told: its datagrams are dropped.
      if (OfferPolicy::worth_a_line(declined)) {
        show_event(decline_line(incoming.file_name, from, verdict, declined));
      }
      return;
    }
    show_event(
        fmt::format("{} is sending you {} over the legacy protocol of the original "
                    "client: it comes unverified and may be incomplete.",
                    from, incoming.file_name));
    auto callbacks = receive_callbacks(incoming.file_name, from);
    transfers_.add();
    // At once: the sender is sending already (the FileTransfer holds what came early).
    asio::post(runtime_.files->get_executor(), [this, incoming = std::move(incoming),
                                                callbacks = std::move(callbacks)]() mutable {
      if (const auto error = runtime_.files->expect_legacy_file(incoming, std::move(callbacks))) {
        finish_receive(incoming.sender_name,
                       fmt::format("Receiving {} from {} failed: {}", incoming.file_name,
                                   incoming.sender_name, error.message()));
      }
    });
  }

  std::string decline_line(const std::string& file, const std::string& from,
                           OfferPolicy::Verdict verdict, std::uint64_t declined) const {
    auto why =
        verdict == OfferPolicy::Verdict::decline_busy
            ? fmt::format("{} already has {} files waiting", from, config_.max_pending_per_sender)
            : fmt::format("{} is not a known user (--accept-files known)", from);
    if (declined > 1) why += fmt::format("; {} files from {} declined so far", declined, from);
    return fmt::format("Declined {} from {}: {}.", file, from, why);
  }

  // The user's answer to the oldest question; false if none is waiting.
  bool answer_offer(bool yes) {
    std::optional<Question> question;
    {
      std::lock_guard lock(offers_mutex_);
      if (questions_.empty()) return false;
      question = std::move(questions_.front());
      questions_.pop_front();
    }
    const auto& incoming = question->incoming;
    const bool expired =
        std::chrono::steady_clock::now() - question->asked >= config_.transfer_timeout;
    if (yes && !expired) {
      start_receiving(incoming);
      outcome({});
      return true;
    }
    {
      std::lock_guard lock(offers_mutex_);
      offers_.finished(incoming.sender_name);
    }
    if (expired) {
      outcome(fmt::format("The offer of {} from {} has expired.", incoming.file_name,
                          incoming.sender_name));
      return true;
    }
    runtime_.files->decline(incoming);
    outcome(fmt::format("Declined {} from {}.", incoming.file_name, incoming.sender_name));
    return true;
  }

  // Counts as pending for its sender until its outcome is printed.
  void start_receiving(IncomingTransfer incoming) {
    auto callbacks = receive_callbacks(incoming.file_name, incoming.sender_name);
    transfers_.add();
    // Opening the partial file is disk work: not on the chat strand.
    asio::post(runtime_.files->get_executor(), [this, incoming = std::move(incoming),
                                                callbacks = std::move(callbacks)]() mutable {
      if (const auto error = runtime_.files->expect_file(incoming, std::move(callbacks))) {
        finish_receive(incoming.sender_name,
                       fmt::format("Receiving {} from {} failed: {}", incoming.file_name,
                                   incoming.sender_name, error.message()));
      }
    });
  }

  // What a receiving transfer prints when it ends.
  TransferCallbacks receive_callbacks(const std::string& file, const std::string& from) {
    TransferCallbacks callbacks;
    callbacks.on_complete = [this, file, from](const TransferResult&) {
      finish_receive(from, fmt::format("Received {} from {}", file, from));
    };
    callbacks.on_failure = [this, file, from](std::error_code, const std::string& reason) {
      finish_receive(from, fmt::format("Receiving {} from {} failed: {}", file, from, reason));
    };
    return callbacks;
  }

  void finish_receive(const std::string& from, const std::string& line) {
    {
      std::lock_guard lock(offers_mutex_);
      offers_.finished(from);
    }
    finish_transfer(line);
  }

  // A transfer's last word; runs on the files strand.
  void finish_transfer(const std::string& line) {
    // Clear a progress bar left on the line.
    if (config_.progress_bar) out_.write("\r\x1b[K");
    show_event(line);
    transfers_.remove();
  }

  int log_out() {
    auto result = wait_for<SessionEnded>([&](auto done) { client_.logout(std::move(done)); });
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
  SessionRuntime runtime_;
  LineReader& input_;
  Console& out_;
  Console& err_;
  Lost lost_;
  TransferCount transfers_;
  struct Question {
    IncomingTransfer incoming;
    std::chrono::steady_clock::time_point asked;
  };
  std::mutex offers_mutex_;
  OfferPolicy offers_;                           // under offers_mutex_
  std::map<std::string, std::string> inviters_;  // group -> who invited; under offers_mutex_
  std::map<std::string, protocol::MessageId> history_positions_;  // oldest id shown; 0: none
  std::string username_;  // once logged in; the input thread's
  std::mutex early_mutex_;
  bool welcomed_ = false;           // under early_mutex_
  std::vector<std::string> early_;  // under early_mutex_
  std::deque<Question> questions_;  // oldest first; under offers_mutex_
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // After the members its callbacks use; the thread last, so it starts once
  // everything is in place and is joined first.
  Client client_;
  std::thread io_thread_;
};

}  // namespace

int run_session(const SessionConfig& config, SessionRuntime runtime, LineReader& input,
                Console& out, Console& err) {
  Session session(config, runtime, input, out, err);
  return session.run();
}

}  // namespace tessenger::app
