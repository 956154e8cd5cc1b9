#include "session.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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
#include "common/terminal_text.hpp"
#include "common/texts.hpp"
#include "completion.hpp"
#include "terminal.hpp"
#include "tty_format.hpp"

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

enum class Tone { plain, error };

// What the status line shows of one running transfer.
struct TransferView {
  bool upload = true;
  std::string file;
  std::string peer;
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool peer_gone = false;  // the server said the peer's session ended
};

// How a finished transfer went, for its last line on the terminal.
std::string transfer_summary(const TransferResult& result) {
  const std::chrono::duration<double> seconds = result.elapsed;
  const auto rate = seconds.count() > 0 ? static_cast<double>(result.size) / seconds.count() : 0;
  return fmt::format("{} in {} ({})", human_size(result.size), human_duration(seconds),
                     human_rate(rate));
}

// A command line as a refusal names it: cut, so that the line stays short.
std::string quoted_command(std::string_view line) {
  constexpr std::size_t shown = 40;
  if (line.size() <= shown) return fmt::format("\"{}\"", line);
  auto cut = line.substr(0, shown);
  // Whole UTF-8 characters only.
  while (!cut.empty() && (static_cast<unsigned char>(line[cut.size()]) & 0xC0) == 0x80)
    cut.remove_suffix(1);
  return fmt::format("\"{}...\"", cut);
}

// The names Tab completes: online users and this user's groups, as far as
// the replies and events seen tell. Thread safety: safe.
class KnownNames {
 public:
  void add_user(std::string_view name) {
    std::lock_guard lock(mutex_);
    users_.emplace(name);
  }
  void remove_user(std::string_view name) {
    std::lock_guard lock(mutex_);
    users_.erase(std::string(name));
  }
  void set_users(const std::vector<protocol::ActiveUser>& online) {
    std::lock_guard lock(mutex_);
    users_.clear();
    for (const auto& user : online)
      users_.insert(user.username);
  }
  void add_group(std::string_view name) {
    std::lock_guard lock(mutex_);
    groups_.emplace(name);
  }
  void remove_group(std::string_view name) {
    std::lock_guard lock(mutex_);
    groups_.erase(std::string(name));
  }
  CompletionSources sources() const {
    std::lock_guard lock(mutex_);
    return {{users_.begin(), users_.end()}, {groups_.begin(), groups_.end()}};
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::string> users_;
  std::set<std::string> groups_;
};

class Session {
 public:
  Session(const SessionConfig& config, SessionRuntime runtime, LineReader& input, Console& out,
          Console& err)
      : config_(config),
        runtime_(runtime),
        input_(input),
        out_(out),
        err_(err),
        palette_(config.colour),
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
    server_version_ = hello->version;
    out_.line(text::please_login);
    if (!log_in()) return 1;
    if (config_.interactive) {
      start_terminal();
      announce_partial_downloads();
    }
    const int status = command_loop();
    if (terminal_) terminal_->stop();
    return status;
  }

 private:
  ClientEvents events() {
    ClientEvents events;
    events.on_direct_message = [this](const protocol::DirectEvent& e) {
      names_.add_user(e.from);
      if (screen()) return show_chat(e.timestamp, {}, e.from, {}, e.text, e.missed);
      show_event(missed_mark(e.missed) + direct_line(e.timestamp, e.from, e.text));
    };
    events.on_group_message = [this](const protocol::GroupEvent& e) {
      know(e.from);
      names_.add_user(e.from);
      names_.add_group(e.group);
      if (screen()) return show_chat(e.timestamp, e.group, e.from, {}, e.text, e.missed);
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
      names_.add_user(e.from);
      names_.add_group(e.group);
      show_event(fmt::format("{} invited you to group {}; use /joingroup {} to join.", e.from,
                             e.group, e.group));
    };
    events.on_group_notice = [this](const protocol::GroupNoticeEvent& e) {
      if (e.change != protocol::GroupChange::left) names_.remove_group(e.group);
      show_event(group_notice_text(e));
    };
    events.on_file_incoming = [this](const protocol::FileIncomingEvent& e) { receive(e); };
    events.on_transfer_cancelled = [this](const protocol::TransferCancelledEvent& e) {
      {
        std::lock_guard lock(views_mutex_);
        const auto it = views_.find(e.transfer_id);
        // Finished already, or never this session's.
        if (it == views_.end() || it->second.peer != e.user) return;
        it->second.peer_gone = true;
      }
      runtime_.files->cancel(e.transfer_id);
    };
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

  // The interactive terminal once it runs, else nullptr (any thread).
  Terminal* screen() const { return screen_.load(); }

  // One line of output, from any thread: the SPEC's plain line in a pipe;
  // on the terminal above the input, errors in red.
  void say(std::string_view line, Tone tone = Tone::plain) {
    auto* terminal = screen();
    if (terminal == nullptr) return out_.line(line);
    const auto safe = terminal_safe(line);
    terminal->print(tone == Tone::error ? palette_.error(safe) : safe);
  }

  // In a pipe every outcome and event ends with the command prompt; the
  // terminal has its short prompt on the input line instead.
  void prompt() {
    if (screen() == nullptr) out_.line(text::command_prompt);
  }

  // Events that arrive with the login's reply (what was missed) wait for
  // the welcome, so that they follow it on the screen.
  void show_event(std::string_view line, Tone tone = Tone::plain) {
    {
      std::lock_guard lock(early_mutex_);
      if (!welcomed_) {
        early_.emplace_back(line);
        return;
      }
    }
    say(line, tone);
    prompt();
  }

  // A message on the terminal: "HH:MM [group] from -> to: text", after a
  // line with the date when the day changed.
  void show_chat(protocol::Timestamp timestamp, std::string_view group, std::string_view from,
                 std::string_view to, std::string_view text, bool missed = false) {
    auto* terminal = screen();
    auto line = palette_.dim(missed_mark(missed) + ShortTime::short_time(timestamp)) + " ";
    if (!group.empty()) line += "[" + terminal_safe(group) + "] ";
    line += palette_.user(terminal_safe(from));
    if (!to.empty()) line += " -> " + palette_.user(terminal_safe(to));
    line += ": " + terminal_safe(text);
    // The date line and its message stay together and in order.
    std::lock_guard lock(times_mutex_);
    if (auto day = times_.day_change(timestamp); !day.empty()) {
      terminal->print(palette_.dim(day));
    }
    terminal->print(std::move(line));
  }

  void start_terminal() {
    Terminal::Options options;
    options.prompt = palette_.prompt(terminal_safe(me_));
    if (!config_.history_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(config_.history_dir, ec);
      // Commands hold messages: for this user's eyes only.
      std::filesystem::permissions(config_.history_dir, std::filesystem::perms::owner_all, ec);
      options.history_file = config_.history_dir / ("history-" + me_);
      if (!std::filesystem::exists(options.history_file, ec)) {
        std::ofstream(options.history_file).close();
        std::filesystem::permissions(
            options.history_file,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
      }
    }
    options.complete = [this](std::string_view before_cursor) {
      return complete_line(before_cursor, names_.sources());
    };
    terminal_ =
        std::make_unique<Terminal>(input_.fd(), 1, input_.interrupt_fd(), std::move(options));
    screen_ = terminal_.get();
    // The names Tab completes start with who is online now.
    client_.active_users([this](Result<OnlineUsers> result) {
      if (!result) return;
      for (const auto& user : result->users)
        names_.add_user(user.username);
    });
  }

  // Downloads interrupted in an earlier session left their partial files
  // (FileTransfer names them .tessenger-*.part); the same offer resumes them.
  void announce_partial_downloads() {
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(config_.download_dir, ec)) {
      const auto name = entry.path().filename().string();
      if (!name.starts_with(".tessenger-") || !name.ends_with(".part")) continue;
      ++count;
      std::error_code size_ec;
      bytes += entry.file_size(size_ec);
    }
    if (count == 0) return;
    say(fmt::format(
        "{} interrupted download{} ({}) in {}: each resumes when its sender sends the "
        "same file again.",
        count, count == 1 ? "" : "s", human_size(bytes), config_.download_dir.string()));
  }

  void welcome() {
    out_.line(text::welcome);
    out_.line(text::command_prompt);
    if (config_.interactive) out_.line("Type /help for what each command does.");
    std::vector<std::string> early;
    {
      std::lock_guard lock(early_mutex_);
      welcomed_ = true;
      early.swap(early_);
    }
    for (const auto& line : early)
      show_event(line);
  }

  // The connection ended while waiting for input: say why.
  int report_lost() {
    std::lock_guard lock(lost_.mutex);
    if (lost_.why) say(error_text(lost_.why->first, lost_.why->second), Tone::error);
    return 1;
  }

  bool lost() {
    std::lock_guard lock(lost_.mutex);
    return lost_.why.has_value();
  }

  // The end of input or a signal at a prompt: the line the prompt began
  // is ended first, so what follows starts on a fresh line.
  bool login_input_ended() {
    if (is_terminal(input_.fd())) out_.line("");
    if (lost()) report_lost();
    return false;
  }

  bool log_in() {
    for (;;) {
      std::string username;
      if (config_.username) {
        username = *config_.username;
      } else {
        out_.write(text::username_prompt);
        if (input_.read_line(username) != LineReader::Status::line) return login_input_ended();
      }
      const auto first = username.find_first_not_of(" \t");
      username.erase(0, first == std::string::npos ? username.size() : first);
      username.erase(username.find_last_not_of(" \t") + 1);

      std::string password;
      if (config_.password) {
        password = *config_.password;
      } else {
        out_.write(text::password_prompt);
        LineReader::Status status;
        {
          EchoOff no_echo(input_.fd());
          status = input_.read_line(password);
        }
        if (status != LineReader::Status::line) return login_input_ended();
        if (is_terminal(input_.fd())) out_.line("");
      }

      auto result = wait_for<LoggedIn>([&](auto done) {
        client_.login(username, password, runtime_.files->local_port(), std::move(done));
      });
      if (result) {
        me_ = result->username;
        welcome();
        return true;
      }
      out_.line(error_text(result.error(), result.detail()));
      const auto code = result.error();
      if (code != errc::invalid_username && code != errc::invalid_password &&
          code != errc::already_logged_in) {
        return false;
      }
      // Given on the command line: asking again would get the same answer.
      if (config_.username && config_.password) return false;
    }
  }

  LineReader::Status next_line(std::string& line) {
    return terminal_ ? terminal_->read_line(line) : input_.read_line(line);
  }

  int command_loop() {
    for (;;) {
      std::string line;
      const auto status = next_line(line);
      if (status == LineReader::Status::interrupted && lost()) return report_lost();
      // End of input or a signal: the user is leaving, which is a logout.
      // A script's end lets its transfers finish; Ctrl-D on the terminal is
      // /logout (which asks while transfers run); a signal cancels them.
      if (status == LineReader::Status::end_of_input) {
        if (!terminal_) {
          transfers_.wait_idle();
          return log_out();
        }
        if (auto exit_status = run(Logout{})) return *exit_status;
        continue;
      }
      if (status != LineReader::Status::line) {
        cancel_transfers();
        return log_out();
      }
      if (const auto answer = parse_answer(line); answer && answer_offer(*answer)) continue;
      current_line_ = line;
      if (auto exit_status = execute(parse_command(line))) return *exit_status;
    }
  }

  // Cancels every running transfer (the peers are told) and waits for
  // their last lines.
  void cancel_transfers() {
    std::vector<std::uint64_t> ids;
    {
      std::lock_guard lock(views_mutex_);
      for (const auto& [id, view] : views_)
        ids.push_back(id);
    }
    for (const auto id : ids)
      runtime_.files->cancel(id);
    transfers_.wait_idle();
  }

  // Runs one command; an exit status when the session is over.
  std::optional<int> execute(const Command& command) {
    return std::visit([this](const auto& c) { return run(c); }, command);
  }

  std::optional<int> run(const NoCommand&) { return outcome({}); }
  std::optional<int> run(const InvalidCommand&) {
    return outcome(terminal_ ? fmt::format("{} Type /help for the commands.", text::invalid_command)
                             : std::string(text::invalid_command),
                   Tone::error);
  }
  std::optional<int> run(const Usage& usage) { return outcome(usage.line, Tone::error); }
  std::optional<int> run(const Logout& logout) {
    if (terminal_ && !logout.force) {
      if (const auto running = running_transfers(); !running.empty()) {
        return outcome(fmt::format("A transfer is running ({}). Wait for it to end, or use "
                                   "/logout --force to cancel it and log out.",
                                   running),
                       Tone::error);
      }
    }
    if (logout.force) cancel_transfers();
    transfers_.wait_idle();
    return log_out();
  }

  std::optional<int> run(const Help& help) {
    if (!help.topic.empty()) {
      const auto* info = find_command(help.topic);
      if (info == nullptr) {
        return outcome(fmt::format("No command {}. /help lists them all.", help.topic),
                       Tone::error);
      }
      say(fmt::format("Usage: {}", info->usage));
      return outcome(fmt::format("  {}", info->summary));
    }
    std::size_t width = 0;
    for (const auto& info : command_table())
      width = std::max(width, info.usage.size());
    for (const auto& info : command_table())
      say(fmt::format("{:<{}}  {}", info.usage, width, info.summary));
    say(text::command_prompt);
    return outcome({});
  }

  // The running transfers, as "clip.mp4 to bob, a.txt from carol".
  std::string running_transfers() {
    std::vector<std::string> parts;
    std::lock_guard lock(views_mutex_);
    for (const auto& [id, view] : views_)
      parts.push_back(fmt::format("{} {} {}", view.file, view.upload ? "to" : "from", view.peer));
    return fmt::format("{}", fmt::join(parts, ", "));
  }

  std::optional<int> run(const MsgTo& c) {
    auto text = clean_message(c.text);
    if (auto* problem = std::get_if<TextProblem>(&text)) {
      return outcome(describe(*problem), Tone::error);
    }
    const auto body = std::get<std::string>(text);
    auto result = wait_for<DirectMessageSent>(
        [&](auto done) { client_.send_direct(c.user, body, std::move(done)); });
    if (!result) {
      if (result.error() == errc::user_not_online) names_.remove_user(c.user);
      return failed(result.error(), result.detail());
    }
    know(c.user);
    names_.add_user(c.user);
    if (result->stored) return outcome(stored_for_offline(c.user));
    // On the terminal the message itself, as the others see it, is the receipt.
    if (terminal_) {
      show_chat(result->timestamp, {}, me_, c.user, body);
      return std::nullopt;
    }
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
      say(group ? group_line(entry.timestamp, c.name, entry.from, entry.text)
                : direct_line(entry.timestamp, entry.from, entry.text));
    }
    position = result->more && !result->entries.empty() ? result->entries.front().id : 0;
    return outcome(history_footer(c.name, group, result->entries.size(), result->more));
  }

  std::optional<int> run(const ActiveUser&) {
    auto result = wait_for<OnlineUsers>([&](auto done) { client_.active_users(std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    names_.set_users(result->users);
    if (result->users.empty()) return outcome(text::no_other_active_user);
    for (const auto& user : result->users) {
      say(fmt::format("{}, {}, {}, active since {}.", user.username, user.address, user.udp_port,
                      format_timestamp(user.since)));
    }
    return outcome({});
  }

  std::optional<int> run(const CreateGroup& c) {
    auto result = wait_for<NewGroup>(
        [&](auto done) { client_.create_group(c.group, c.users, std::move(done)); });
    // Refused for inviting too many users too fast (the detail names the group).
    if (!result && result.error() == errc::rate_limited && !result.detail().empty()) {
      return outcome(text::inviting_too_fast, Tone::error);
    }
    if (!result) return failed(result.error(), result.detail());
    names_.add_group(result->group);
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
    names_.add_group(result->group);
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
    names_.remove_group(result->group);
    if (result->declined) {
      return outcome(fmt::format("You have declined the invitation to group {}.", result->group));
    }
    return outcome(fmt::format("You have left the group chat: {}.", result->group));
  }

  std::optional<int> run(const DeleteGroup& c) {
    auto result =
        wait_for<DeletedGroup>([&](auto done) { client_.delete_group(c.group, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    names_.remove_group(result->group);
    return outcome(fmt::format("Group chat {} has been deleted.", result->group));
  }

  std::optional<int> run(const GroupMsg& c) {
    auto text = clean_message(c.text);
    if (auto* problem = std::get_if<TextProblem>(&text)) {
      return outcome(describe(*problem), Tone::error);
    }
    const auto body = std::get<std::string>(text);
    auto result = wait_for<GroupMessageSent>(
        [&](auto done) { client_.send_group(c.group, body, std::move(done)); });
    if (!result) return failed(result.error(), result.detail());
    if (terminal_) {
      show_chat(result->timestamp, c.group, me_, {}, body);
      return std::nullopt;
    }
    return outcome(
        fmt::format("Group chat message sent at {}.", format_timestamp(result->timestamp)));
  }

  std::optional<int> run(const P2pVideo& c) {
    const std::filesystem::path path(c.path);
    transfer::Digest digest{};
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!readable_file(path) || ec) {
      return outcome(error_text(make_error_code(errc::no_such_file), c.file), Tone::error);
    }
    // Hashing a large file takes a while: first make sure it can be sent.
    if (server_version_ >= 3) {
      auto ready = wait_for<FileReceiverReady>(
          [&](auto done) { client_.check_file_receiver(c.user, std::move(done)); });
      if (!ready) return failed(ready.error(), ready.detail());
    }
    if (transfer::sha256_file(path, digest)) {
      return outcome(error_text(make_error_code(errc::no_such_file), c.file), Tone::error);
    }
    auto offer = wait_for<FileOfferAccepted>([&](auto done) {
      client_.offer_file(c.user, path.filename().string(), size, digest, std::move(done));
    });
    if (!offer) return failed(offer.error(), offer.detail());
    const auto address = asio::ip::make_address(offer->peer_address, ec);
    if (ec) {
      return outcome(fmt::format("Cannot send {} to {}: bad address '{}'.", c.file, c.user,
                                 offer->peer_address),
                     Tone::error);
    }

    const auto id = offer->legacy ? local_transfer_id() : offer->transfer_id;
    const auto name = path.filename().string();
    TransferCallbacks callbacks;
    if (terminal_) {
      callbacks.on_progress = [this, id](std::uint64_t done, std::uint64_t total) {
        progress(id, done, total);
      };
    } else if (config_.progress_bar) {
      callbacks.on_progress = [this, file = c.file](std::uint64_t done, std::uint64_t total) {
        out_.write(progress_bar(file, done, total));
      };
    }
    callbacks.on_complete = [this, id, file = c.file, user = c.user](const TransferResult& r) {
      finish_transfer(id, screen() ? fmt::format("{} has been uploaded to {}: {}.", file, user,
                                                 transfer_summary(r))
                                   : fmt::format("{} has been uploaded.", file));
    };
    callbacks.on_failure = [this, id, file = c.file, user = c.user](std::error_code,
                                                                    const std::string& reason) {
      finish_transfer(id,
                      fmt::format("Upload of {} to {} failed: {}", file, user,
                                  failure_reason(id, user, reason)),
                      Tone::error);
    };
    add_transfer(id, {true, name, c.user, 0, size});
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
          offer->legacy ? runtime_.files->send_legacy_file(path, peer, me_, std::move(callbacks))
                        : runtime_.files->send_file(offer->transfer_id, offer->key, path, peer,
                                                    std::move(callbacks));
      if (error) remove_transfer(id);
      if (offer->legacy && error == errc::invalid_argument) {
        outcome(fmt::format("Cannot send {} to {}: the original client cannot take a file of "
                            "that name.",
                            c.file, c.user),
                Tone::error);
      } else if (error) {
        outcome(error_text(error, c.file), Tone::error);
      } else if (screen()) {
        say(fmt::format("Sending {} ({}) to {}.", name, human_size(size), c.user));
      } else {
        outcome({});
      }
      started.set_value();
    });
    started.get_future().wait();
    return std::nullopt;
  }

  // Why a transfer failed: the library's reason, unless the server said
  // the peer went away.
  std::string failure_reason(std::uint64_t id, const std::string& peer, const std::string& reason) {
    std::lock_guard lock(views_mutex_);
    const auto it = views_.find(id);
    if (it != views_.end() && it->second.peer_gone) {
      return fmt::format("{} logged out or lost the connection.", peer);
    }
    return reason;
  }

  // Legacy transfers have no id from the server: theirs come from a range
  // the server's random ids are unlikely to meet.
  std::uint64_t local_transfer_id() { return next_local_id_++; }

  void add_transfer(std::uint64_t id, TransferView view) {
    transfers_.add();
    {
      std::lock_guard lock(views_mutex_);
      views_[id] = std::move(view);
    }
    show_status(true);
  }

  void remove_transfer(std::uint64_t id) {
    {
      std::lock_guard lock(views_mutex_);
      views_.erase(id);
    }
    show_status(true);
    transfers_.remove();
  }

  // Runs on the files strand, for every acknowledged or received chunk.
  void progress(std::uint64_t id, std::uint64_t done, std::uint64_t total) {
    {
      std::lock_guard lock(views_mutex_);
      const auto it = views_.find(id);
      if (it == views_.end()) return;
      it->second.done = done;
      it->second.total = total;
    }
    show_status(false);
  }

  // The status line: every running transfer with its bytes, rate and ETA;
  // redrawn at most 5 times a second unless `now`.
  void show_status(bool now) {
    auto* terminal = screen();
    if (terminal == nullptr) return;
    std::vector<std::string> parts;
    {
      std::lock_guard lock(views_mutex_);
      const auto clock = std::chrono::steady_clock::now();
      if (!now && clock - last_status_ < std::chrono::milliseconds(200)) return;
      last_status_ = clock;
      for (const auto& [id, view] : views_) {
        const std::chrono::duration<double> elapsed = clock - view.started;
        const double rate =
            elapsed.count() > 0.2 ? static_cast<double>(view.done) / elapsed.count() : 0;
        parts.push_back(transfer_status(view.upload, terminal_safe(view.file),
                                        terminal_safe(view.peer), view.done, view.total, rate));
      }
    }
    const auto line = fmt::format("{}", fmt::join(parts, " | "));
    terminal->status(line.empty() ? line : palette_.dim(line));
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
    names_.add_user(incoming.sender_name);
    switch (verdict) {
      case OfferPolicy::Verdict::accept:
        start_receiving(std::move(incoming));
        return;
      case OfferPolicy::Verdict::ask:
        show_event(fmt::format("{} wants to send you {} ({}). Accept? (y/n)", incoming.sender_name,
                               incoming.file_name, human_size(incoming.size)));
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
    const auto id = local_transfer_id();
    auto callbacks = receive_callbacks(id, incoming.file_name, from);
    // Its size is unknown: no status line, only the outcome.
    callbacks.on_progress = nullptr;
    add_transfer(id, {false, incoming.file_name, from, 0, 0});
    // At once: the sender is sending already (the FileTransfer holds what came early).
    asio::post(runtime_.files->get_executor(), [this, id, incoming = std::move(incoming),
                                                callbacks = std::move(callbacks)]() mutable {
      if (const auto error = runtime_.files->expect_legacy_file(incoming, std::move(callbacks))) {
        finish_receive(id, incoming.sender_name,
                       fmt::format("Receiving {} from {} failed: {}", incoming.file_name,
                                   incoming.sender_name, error.message()),
                       Tone::error);
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
    const auto id = incoming.transfer_id;
    auto callbacks = receive_callbacks(id, incoming.file_name, incoming.sender_name);
    if (screen()) {
      say(fmt::format("{} is sending you {} ({}).", incoming.sender_name, incoming.file_name,
                      human_size(incoming.size)));
    }
    add_transfer(id, {false, incoming.file_name, incoming.sender_name, 0, incoming.size});
    // Opening the partial file is disk work: not on the chat strand.
    asio::post(runtime_.files->get_executor(), [this, incoming = std::move(incoming),
                                                callbacks = std::move(callbacks)]() mutable {
      if (const auto error = runtime_.files->expect_file(incoming, std::move(callbacks))) {
        finish_receive(incoming.transfer_id, incoming.sender_name,
                       fmt::format("Receiving {} from {} failed: {}", incoming.file_name,
                                   incoming.sender_name, error.message()),
                       Tone::error);
      }
    });
  }

  // What a receiving transfer shows and prints when it ends.
  TransferCallbacks receive_callbacks(std::uint64_t id, const std::string& file,
                                      const std::string& from) {
    TransferCallbacks callbacks;
    if (screen()) {
      callbacks.on_progress = [this, id](std::uint64_t done, std::uint64_t total) {
        progress(id, done, total);
      };
    }
    callbacks.on_complete = [this, id, file, from](const TransferResult& r) {
      finish_receive(id, from,
                     screen() ? fmt::format("Received {} from {}: saved as {}, {}.", file, from,
                                            r.path.string(), transfer_summary(r))
                              : fmt::format("Received {} from {}", file, from));
    };
    callbacks.on_failure = [this, id, file, from](std::error_code, const std::string& reason) {
      finish_receive(id, from,
                     fmt::format("Receiving {} from {} failed: {}", file, from,
                                 failure_reason(id, from, reason)),
                     Tone::error);
    };
    return callbacks;
  }

  void finish_receive(std::uint64_t id, const std::string& from, const std::string& line,
                      Tone tone = Tone::plain) {
    {
      std::lock_guard lock(offers_mutex_);
      offers_.finished(from);
    }
    finish_transfer(id, line, tone);
  }

  // A transfer's last word; runs on the files strand.
  void finish_transfer(std::uint64_t id, const std::string& line, Tone tone = Tone::plain) {
    // Clear a progress bar left on the line.
    if (config_.progress_bar) out_.write("\r\x1b[K");
    show_event(line, tone);
    remove_transfer(id);
  }

  int log_out() {
    auto result = wait_for<SessionEnded>([&](auto done) { client_.logout(std::move(done)); });
    if (!result) {
      say(error_text(result.error(), result.detail()), Tone::error);
      return 1;
    }
    say(fmt::format("Bye, {}!", result->username));
    return 0;
  }

  // Prints a command's outcome (if any) and the prompt; the session goes on.
  std::optional<int> outcome(std::string_view line, Tone tone = Tone::plain) {
    if (!line.empty()) say(line, tone);
    prompt();
    return std::nullopt;
  }

  std::optional<int> failed(std::error_code code, const std::string& detail) {
    if (ends_connection(code)) {
      say(error_text(code, detail), Tone::error);
      return 1;
    }
    // On the terminal, where several pasted lines run one after another, a
    // refusal for sending too fast names the line it refused.
    if (terminal_ && code == errc::rate_limited) {
      return outcome(
          fmt::format("{} Not sent: {}", error_text(code, detail), quoted_command(current_line_)),
          Tone::error);
    }
    return outcome(error_text(code, detail), Tone::error);
  }

  const SessionConfig& config_;
  SessionRuntime runtime_;
  LineReader& input_;
  Console& out_;
  Console& err_;
  Palette palette_;
  std::string me_;                   // the logged-in user; set before the terminal starts
  std::uint8_t server_version_ = 0;  // the negotiated protocol version
  std::string current_line_;         // the command being run (the input thread's)
  std::unique_ptr<Terminal> terminal_;
  std::atomic<Terminal*> screen_{nullptr};  // terminal_, for the other threads
  std::mutex times_mutex_;
  ShortTime times_;  // under times_mutex_
  KnownNames names_;
  Lost lost_;
  TransferCount transfers_;
  std::atomic<std::uint64_t> next_local_id_{std::uint64_t{1} << 63};
  std::mutex views_mutex_;
  std::map<std::uint64_t, TransferView> views_;        // running transfers; under views_mutex_
  std::chrono::steady_clock::time_point last_status_;  // under views_mutex_
  struct Question {
    IncomingTransfer incoming;
    std::chrono::steady_clock::time_point asked;
  };
  std::mutex offers_mutex_;
  OfferPolicy offers_;                           // under offers_mutex_
  std::map<std::string, std::string> inviters_;  // group -> who invited; under offers_mutex_
  std::map<std::string, protocol::MessageId> history_positions_;  // oldest id shown; 0: none
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
