#include "terminal.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cwchar>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <histedit.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "tty_format.hpp"

namespace tessenger::app {
namespace {

// The terminal thread's wake-up pipe, for the SIGWINCH handler.
std::atomic<int> resize_fd{-1};
std::atomic<bool> resized{false};

extern "C" void on_resize(int) {
  resized = true;
  const char byte = 'r';
  if (const int fd = resize_fd.load(); fd >= 0) {
    [[maybe_unused]] const auto n = ::write(fd, &byte, 1);
  }
}

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const auto n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// The prompt without the '\1'-delimited escape sequences libedit does not count.
std::string visible(std::string_view prompt) {
  std::string shown;
  bool escaped = false;
  for (const char c : prompt) {
    if (c == '\1') {
      escaped = !escaped;
    } else if (!escaped) {
      shown.push_back(c);
    }
  }
  return shown;
}

}  // namespace

struct Terminal::Impl {
  Impl(int in, int out, int interrupt, Options opts)
      : in_fd(in), out_fd(out), interrupt_fd(interrupt), options(std::move(opts)) {
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe");
    }
    prompt_width = display_width(visible(options.prompt));
    in_file = ::fdopen(::dup(in_fd), "r");
    out_file = ::fdopen(::dup(out_fd), "w");
    err_file = ::fdopen(::dup(out_fd), "w");
    if (in_file == nullptr || out_file == nullptr || err_file == nullptr) {
      throw std::system_error(errno, std::generic_category(), "fdopen");
    }
    resize_fd = wake[1];
    struct sigaction action {};
    action.sa_handler = on_resize;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGWINCH, &action, &old_resize);
    thread = std::thread([this] { run(); });
  }

  ~Impl() {
    stop();
    ::sigaction(SIGWINCH, &old_resize, nullptr);
    resize_fd = -1;
    ::close(wake[0]);
    ::close(wake[1]);
    std::fclose(in_file);
    std::fclose(out_file);
    std::fclose(err_file);
  }

  void wake_up() {
    const char byte = 'w';
    [[maybe_unused]] const auto n = ::write(wake[1], &byte, 1);
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake_up();
    if (thread.joinable()) thread.join();
  }

  // --- the terminal thread ---------------------------------------------

  void run() {
    setup();
    bool watching_interrupt = true;
    for (;;) {
      pollfd fds[3] = {{in_fd, POLLIN, 0}, {wake[0], POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
      const int ready = ::poll(fds, watching_interrupt ? 3 : 2, recheck ? 0 : -1);
      recheck = false;
      if (ready < 0 && errno == EINTR) continue;
      if (fds[1].revents != 0) {
        char drain[64];
        while (::read(wake[0], drain, sizeof drain) > 0) {
        }
      }
      // The interrupt pipe stays readable once written: look at it once.
      if (watching_interrupt && fds[2].revents != 0) {
        watching_interrupt = false;
        end_input(LineReader::Status::interrupted);
      }
      if (resized.exchange(false)) el_resize(el);
      std::vector<std::string> batch;
      std::optional<std::string> new_status;
      bool stop_now = false;
      {
        std::lock_guard lock(mutex);
        batch.swap(output);
        if (status_changed) new_status = status_text;
        status_changed = false;
        stop_now = stopping;
      }
      if (stop_now) {
        finish(batch);
        return;
      }
      if (new_status) status_line = *new_status;
      if (!batch.empty() || new_status) redraw(batch);
      if (!ended && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && fill()) {
        // Every key read, and any libedit pushed back (the key that ends
        // an incremental search is run after it).
        for (;;) {
          would_block = false;
          at_key_start = true;
          read_key();
          if (would_block || ended) break;
        }
      }
    }
  }

  // Reads what the terminal has; false (and the input ends) if it is gone.
  bool fill() {
    char chunk[4096];
    const auto n = ::read(in_fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      end_input(LineReader::Status::end_of_input);
      return false;
    }
    pending.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  // Waits for more input within a key (an escape sequence's next byte, an
  // incremental search's next letter); false if the input ends meanwhile.
  bool wait_for_input() {
    for (;;) {
      pollfd fds[3] = {{in_fd, POLLIN, 0}, {wake[0], POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
      if (::poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (fds[2].revents != 0) {
        end_input(LineReader::Status::interrupted);
        return false;
      }
      if (fds[1].revents != 0) {
        char drain[64];
        while (::read(wake[0], drain, sizeof drain) > 0) {
        }
        // Output waits until the key is done; the main loop looks then.
        recheck = true;
        std::lock_guard lock(mutex);
        if (stopping) return false;
      }
      if (fds[0].revents != 0) return fill();
    }
  }

  // libedit's source of characters: the bytes fill() read, decoded as the
  // locale says. At the start of a key with nothing read, 0 ("would
  // block"): el_gets() returns and this thread goes back to poll().
  static int read_char(EditLine* el, wchar_t* out) {
    void* data = nullptr;
    el_get(el, EL_CLIENTDATA, &data);
    auto& self = *static_cast<Impl*>(data);
    for (;;) {
      if (self.pending.empty()) {
        if (self.at_key_start) {
          self.would_block = true;
          return 0;
        }
        if (!self.wait_for_input()) return 0;
        continue;
      }
      std::mbstate_t state{};
      const auto n = std::mbrtowc(out, self.pending.data(), self.pending.size(), &state);
      if (n == static_cast<std::size_t>(-2)) {
        // Part of a character: the rest is on its way.
        if (!self.wait_for_input()) return 0;
        continue;
      }
      std::size_t used = n;
      if (n == static_cast<std::size_t>(-1)) {
        // Not in the locale's encoding: the byte as it is, which the
        // message check then refuses with a clear error.
        *out = static_cast<wchar_t>(static_cast<unsigned char>(self.pending[0]));
        used = 1;
      } else if (n == 0) {
        used = 1;
      }
      self.pending.erase(0, used);
      self.at_key_start = false;
      return 1;
    }
  }

  static unsigned char complete_key(EditLine* el, int) {
    void* data = nullptr;
    el_get(el, EL_CLIENTDATA, &data);
    auto& self = *static_cast<Impl*>(data);
    if (!self.options.complete) return CC_ERROR;
    const LineInfo* info = el_line(el);
    const auto result = self.options.complete(
        std::string_view(info->buffer, static_cast<std::size_t>(info->cursor - info->buffer)));
    if (result.erase > 0) el_deletestr(el, static_cast<int>(result.erase));
    if (!result.insert.empty() && el_insertstr(el, result.insert.c_str()) != 0) return CC_ERROR;
    if (!result.choices.empty()) {
      std::string listing;
      for (const auto& choice : result.choices)
        listing += (listing.empty() ? "" : "  ") + choice;
      self.redraw({listing});
      return CC_NORM;
    }
    return result.erase > 0 || !result.insert.empty() ? CC_REFRESH : CC_ERROR;
  }

  static char* prompt_of(EditLine* el) {
    void* data = nullptr;
    el_get(el, EL_CLIENTDATA, &data);
    return static_cast<Impl*>(data)->options.prompt.data();
  }

  void setup() {
    el = el_init_fd("tessenger", in_file, out_file, err_file, in_fd, out_fd, out_fd);
    history = ::history_init();
    HistEvent event;
    ::history(history, &event, H_SETSIZE, 1000);
    ::history(history, &event, H_SETUNIQUE, 1);
    if (!options.history_file.empty()) {
      ::history(history, &event, H_LOAD, options.history_file.c_str());
    }
    el_set(el, EL_CLIENTDATA, this);
    el_set(el, EL_GETCFN, read_char);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_HIST, ::history, history);
    el_set(el, EL_PROMPT_ESC, prompt_of, '\1');
    el_set(el, EL_ADDFN, "tessenger-complete", "complete the word before the cursor", complete_key);
    el_set(el, EL_BIND, "^I", "tessenger-complete", nullptr);
    // As in readline and most shells.
    el_set(el, EL_BIND, "^R", "em-inc-search-prev", nullptr);
    el_set(el, EL_BIND, "^W", "ed-delete-prev-word", nullptr);
    el_set(el, EL_BIND, "^U", "vi-kill-line-prev", nullptr);
    for (const char* home : {"\033[H", "\033[1~", "\033OH"})
      el_set(el, EL_BIND, home, "ed-move-to-beg", nullptr);
    for (const char* end_key : {"\033[F", "\033[4~", "\033OF"})
      el_set(el, EL_BIND, end_key, "ed-move-to-end", nullptr);
    el_set(el, EL_BIND, "\033[3~", "ed-delete-next-char", nullptr);
    el_set(el, EL_BIND, "\033[1;5D", "ed-prev-word", nullptr);
    el_set(el, EL_BIND, "\033[1;5C", "em-next-word", nullptr);
    // Unbuffered: el_gets() handles one key and returns, so this thread can
    // print between keys. Setting it draws the prompt.
    el_set(el, EL_UNBUFFERED, 1);
  }

  void read_key() {
    int count = 0;
    const char* buffer = el_gets(el, &count);
    if (buffer == nullptr) return;
    std::string_view line(buffer, static_cast<std::size_t>(count));
    // Ctrl-D on an empty line: the command thread decides (a logout that
    // may refuse while transfers run), so editing goes on.
    if (line == "\x04") {
      {
        std::lock_guard lock(mutex);
        lines.push_back(std::nullopt);
      }
      changed.notify_all();
      restart_line();
      return;
    }
    if (line.empty() || (line.back() != '\n' && line.back() != '\r')) return;
    line.remove_suffix(1);
    entered(std::string(line));
    restart_line();
  }

  // A fresh, empty input line with its prompt (libedit keeps the finished
  // line otherwise); switching unbuffered mode off and on resets it.
  void restart_line() {
    el_set(el, EL_UNBUFFERED, 0);
    el_set(el, EL_UNBUFFERED, 1);
  }

  void entered(std::string line) {
    if (line.find_first_not_of(" \t") != std::string::npos) {
      HistEvent event;
      ::history(history, &event, H_ENTER, line.c_str());
      if (!options.history_file.empty()) {
        ::history(history, &event, H_SAVE, options.history_file.c_str());
      }
    }
    {
      std::lock_guard lock(mutex);
      lines.push_back(std::move(line));
    }
    changed.notify_all();
  }

  void end_input(LineReader::Status why) {
    {
      std::lock_guard lock(mutex);
      if (end == LineReader::Status::line || why == LineReader::Status::interrupted) end = why;
    }
    ended = true;
    changed.notify_all();
  }

  int columns() const {
    winsize size{};
    if (::ioctl(out_fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return 80;
    return size.ws_col;
  }

  // The screen row of the cursor, counted from the prompt's row.
  int cursor_row() const {
    const LineInfo* info = el_line(el);
    const std::string_view before(info->buffer,
                                  static_cast<std::size_t>(info->cursor - info->buffer));
    return static_cast<int>((prompt_width + display_width(before)) /
                            static_cast<std::size_t>(columns()));
  }

  // Moves to where the status line (or the prompt) starts and clears from
  // there to the end of the screen.
  std::string erase_input() const {
    std::string out = "\r";
    const int up = cursor_row() + (status_shown ? 1 : 0);
    if (up > 0) out += fmt::format("\x1b[{}A", up);
    out += "\x1b[J";
    return out;
  }

  // Prints `batch` above the input, then the status line and the input
  // line with the cursor where it was.
  void redraw(const std::vector<std::string>& batch) {
    auto out = erase_input();
    for (const auto& line : batch) {
      out += line;
      out += "\r\n";
    }
    status_shown = !status_line.empty();
    if (status_shown) {
      out += fit_width(status_line, static_cast<std::size_t>(columns() - 1));
      out += "\r\n";
    }
    std::fflush(out_file);
    write_all(out_fd, out);
    el_set(el, EL_REFRESH);
  }

  void finish(const std::vector<std::string>& batch) {
    auto out = erase_input();
    for (const auto& line : batch) {
      out += line;
      out += "\r\n";
    }
    std::fflush(out_file);
    write_all(out_fd, out);
    el_set(el, EL_UNBUFFERED, 0);
    el_end(el);
    ::history_end(history);
    // Keys typed after the end belong to no one, least of all the shell.
    ::tcflush(in_fd, TCIFLUSH);
  }

  int in_fd;
  int out_fd;
  int interrupt_fd;
  Options options;
  std::size_t prompt_width = 0;
  int wake[2] = {-1, -1};
  std::FILE* in_file = nullptr;
  std::FILE* out_file = nullptr;
  std::FILE* err_file = nullptr;
  struct sigaction old_resize {};

  // The terminal thread's own.
  EditLine* el = nullptr;
  History* history = nullptr;
  std::string status_line;
  bool status_shown = false;
  bool ended = false;
  std::string pending;  // read from the terminal, not yet given to libedit
  bool at_key_start = false;
  bool would_block = false;
  bool recheck = false;  // woken within a key: look at the output again

  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::optional<std::string>> lines;       // entered, not yet read; nullopt: Ctrl-D
  LineReader::Status end = LineReader::Status::line;  // line: not ended
  std::vector<std::string> output;                    // to print
  std::string status_text;
  bool status_changed = false;
  bool stopping = false;

  std::thread thread;  // last: starts once everything is in place
};

Terminal::Terminal(int in_fd, int out_fd, int interrupt_fd, Options options)
    : impl_(std::make_unique<Impl>(in_fd, out_fd, interrupt_fd, std::move(options))) {}

Terminal::~Terminal() = default;

void Terminal::print(std::string line) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->output.push_back(std::move(line));
  }
  impl_->wake_up();
}

void Terminal::status(std::string line) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->status_text == line) return;
    impl_->status_text = std::move(line);
    impl_->status_changed = true;
  }
  impl_->wake_up();
}

LineReader::Status Terminal::read_line(std::string& line) {
  std::unique_lock lock(impl_->mutex);
  impl_->changed.wait(
      lock, [&] { return !impl_->lines.empty() || impl_->end != LineReader::Status::line; });
  if (impl_->end == LineReader::Status::interrupted || impl_->lines.empty()) return impl_->end;
  auto next = std::move(impl_->lines.front());
  impl_->lines.pop_front();
  if (!next) return LineReader::Status::end_of_input;
  line = std::move(*next);
  return LineReader::Status::line;
}

void Terminal::stop() {
  impl_->stop();
}

}  // namespace tessenger::app
