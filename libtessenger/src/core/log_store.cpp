#include "core/log_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "core/timefmt.hpp"

namespace tessenger::core {
namespace {

// A disk that stays full must not grow memory without limit.
constexpr std::size_t max_pending_bytes = 16 * 1024 * 1024;
constexpr std::size_t tail_window = 64 * 1024;

[[noreturn]] void throw_errno(const std::filesystem::path& path, const char* what) {
  throw std::system_error(errno, std::generic_category(),
                          fmt::format("cannot {} '{}'", what, path.string()));
}

int open_file(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(path, "open");
  return fd;
}

std::uint64_t parse_seq(std::string_view line) {
  std::uint64_t seq = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), seq);
  if (ec != std::errc{} || std::string_view(end, 2) != "; ") return 0;
  return seq;
}

}  // namespace

FileLogStore::FileLogStore(std::filesystem::path dir, LogSink sink)
    : dir_(std::move(dir)), sink_(std::move(sink)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  userlog_.path = dir_ / "userlog.txt";
  userlog_.fd = open_file(userlog_.path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  messages_.path = dir_ / "messagelog.txt";
  open_numbered(messages_);
}

FileLogStore::~FileLogStore() {
  for (auto* file : {&userlog_, &messages_}) {
    if (file->fd >= 0) ::close(file->fd);
  }
  for (auto& [name, file] : groups_) {
    if (file.fd >= 0) ::close(file.fd);
  }
}

// Finds the last sequence number and cuts off a torn last line: the kernel
// may stop a write(2) short at a page boundary when the process is killed,
// and a power loss can lose any tail.
void FileLogStore::open_numbered(File& file) {
  file.fd = open_file(file.path, O_RDWR | O_CREAT | O_APPEND);
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) throw_errno(file.path, "stat");
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) return;

  const auto window = std::min<std::uint64_t>(size, tail_window);
  std::vector<char> tail(window);
  const auto got = ::pread(file.fd, tail.data(), window, static_cast<off_t>(size - window));
  if (got != static_cast<ssize_t>(window)) throw_errno(file.path, "read");
  std::string_view text(tail.data(), tail.size());

  if (text.back() != '\n') {
    const auto last_newline = text.rfind('\n');
    const auto keep = last_newline == std::string_view::npos ? 0 : last_newline + 1;
    size = size - window + keep;
    if (::ftruncate(file.fd, static_cast<off_t>(size)) != 0) throw_errno(file.path, "truncate");
    if (sink_.enabled(LogLevel::warn)) {
      sink_.write(LogLevel::warn,
                  fmt::format("{}: removed an incomplete last line", file.path.string()));
    }
    text = text.substr(0, keep);
  }
  if (text.empty()) return;
  text.remove_suffix(1);
  const auto start = text.rfind('\n');
  file.seq = parse_seq(start == std::string_view::npos ? text : text.substr(start + 1));
  if (file.seq == 0 && sink_.enabled(LogLevel::warn)) {
    sink_.write(LogLevel::warn, fmt::format("{}: last line has no sequence number; numbering "
                                            "restarts at 1",
                                            file.path.string()));
  }
}

void FileLogStore::write_pending(File& file) {
  std::size_t written = 0;
  while (written < file.pending.size()) {
    const auto n = ::write(file.fd, file.pending.data() + written, file.pending.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int error = n < 0 ? errno : EIO;
    // Keep only whole lines on disk: cut back a partly written line.
    const auto last_newline = file.pending.rfind('\n', written == 0 ? 0 : written - 1);
    const std::size_t keep =
        (written == 0 || last_newline == std::string::npos) ? 0 : last_newline + 1;
    if (keep < written) {
      struct stat st {};
      if (::fstat(file.fd, &st) == 0) {
        [[maybe_unused]] const int rc =
            ::ftruncate(file.fd, st.st_size - static_cast<off_t>(written - keep));
      }
    }
    file.pending.erase(0, keep);
    if (!file.failing && sink_.enabled(LogLevel::error)) {
      sink_.write(LogLevel::error, fmt::format("cannot write '{}': {}; will retry",
                                               file.path.string(), std::strerror(error)));
    }
    file.failing = true;
    if (file.pending.size() > max_pending_bytes) {
      const auto cut = file.pending.find('\n', file.pending.size() - max_pending_bytes);
      file.pending.erase(0, cut == std::string::npos ? file.pending.size() : cut + 1);
      if (sink_.enabled(LogLevel::error)) {
        sink_.write(LogLevel::error,
                    fmt::format("'{}': dropped log lines, disk still failing", file.path.string()));
      }
    }
    return;
  }
  if (file.failing && sink_.enabled(LogLevel::info)) {
    sink_.write(LogLevel::info, fmt::format("'{}' is writable again", file.path.string()));
  }
  file.failing = false;
  file.pending.clear();
}

void FileLogStore::user_online(std::size_t seq, const OnlineRecord& record) {
  if (userlog_dirty_) return;  // the next flush rewrites the whole list anyway
  fmt::format_to(std::back_inserter(userlog_.pending), "{}; {}; {}; {}; {}\n", seq,
                 format_timestamp_cached(record.since), record.username, record.address,
                 record.udp_port);
}

void FileLogStore::user_offline() {
  userlog_dirty_ = true;
  userlog_.pending.clear();
}

// Runs for every message: appended piece by piece, because parsing a format
// string at run time cost more than all the rest of handling the message.
void FileLogStore::append_message(File& file, protocol::Timestamp ts, std::string_view from,
                                  std::string_view text) {
  char seq[20];
  const auto seq_end = std::to_chars(seq, seq + sizeof seq, ++file.seq).ptr;
  constexpr std::string_view separator = "; ";
  auto& line = file.pending;
  line.append(seq, seq_end).append(separator).append(format_timestamp_cached(ts));
  line.append(separator).append(from).append(separator).append(text).push_back('\n');
}

void FileLogStore::direct_message(protocol::Timestamp ts, std::string_view from,
                                  std::string_view text) {
  append_message(messages_, ts, from, text);
}

void FileLogStore::group_created(std::string_view group) {
  if (groups_.find(group) != groups_.end()) return;
  File file;
  file.path = dir_ / fmt::format("{}_messagelog.txt", group);
  try {
    open_numbered(file);
  } catch (const std::system_error& e) {
    if (sink_.enabled(LogLevel::error)) sink_.write(LogLevel::error, e.what());
    file.failing = true;
  }
  groups_.emplace(std::string(group), std::move(file));
}

void FileLogStore::group_message(std::string_view group, protocol::Timestamp ts,
                                 std::string_view from, std::string_view text) {
  auto it = groups_.find(group);
  if (it == groups_.end()) {
    group_created(group);
    it = groups_.find(group);
  }
  append_message(it->second, ts, from, text);
}

void FileLogStore::rewrite_userlog(std::span<const OnlineRecord> online) {
  std::string content;
  std::size_t seq = 0;
  for (const auto& record : online) {
    fmt::format_to(std::back_inserter(content), "{}; {}; {}; {}; {}\n", ++seq,
                   format_timestamp_cached(record.since), record.username, record.address,
                   record.udp_port);
  }
  // Replace the file atomically so a reader never sees a half-written list.
  const auto temp = dir_ / "userlog.txt.tmp";
  try {
    const int fd = open_file(temp, O_WRONLY | O_CREAT | O_TRUNC);
    File staged{temp, fd, 0, std::move(content), false};
    write_pending(staged);
    const bool complete = staged.pending.empty() && !staged.failing;
    ::close(fd);
    if (!complete) return;
    if (::rename(temp.c_str(), userlog_.path.c_str()) != 0) throw_errno(userlog_.path, "replace");
    ::close(userlog_.fd);
    userlog_.fd = open_file(userlog_.path, O_WRONLY | O_APPEND);
    userlog_dirty_ = false;
  } catch (const std::system_error& e) {
    if (sink_.enabled(LogLevel::error)) sink_.write(LogLevel::error, e.what());
  }
}

void FileLogStore::flush(std::span<const OnlineRecord> online) {
  if (userlog_dirty_) {
    rewrite_userlog(online);
  } else if (!userlog_.pending.empty()) {
    write_pending(userlog_);
  }
  if (!messages_.pending.empty()) write_pending(messages_);
  for (auto& [name, file] : groups_) {
    if (!file.pending.empty() && file.fd >= 0) write_pending(file);
  }
}

void FileLogStore::sync(std::span<const OnlineRecord> online) {
  flush(online);
  for (auto* file : {&userlog_, &messages_})
    ::fsync(file->fd);
  for (auto& [name, file] : groups_) {
    if (file.fd >= 0) ::fsync(file.fd);
  }
}

}  // namespace tessenger::core
