#include "core/log_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <future>
#include <system_error>

#include <fmt/format.h>

#include "core/timefmt.hpp"

namespace tessenger::core {
namespace {

// Lines a failing disk refused, kept for a retry: a disk that stays full must
// not grow memory without limit.
constexpr std::size_t max_leftover_bytes = 16 * 1024 * 1024;
constexpr std::size_t tail_window = 64 * 1024;
constexpr std::string_view separator = "; ";

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
  if (ec != std::errc{} || std::string_view(end, 2) != separator) return 0;
  return seq;
}

// Prefixes each line of `bodies` with the next sequence number.
void number_lines(std::uint64_t& seq, std::string_view bodies, std::string& out) {
  std::size_t start = 0;
  while (start < bodies.size()) {
    auto end = bodies.find('\n', start);
    end = end == std::string_view::npos ? bodies.size() : end + 1;
    char digits[20];
    const auto digits_end = std::to_chars(digits, digits + sizeof digits, ++seq).ptr;
    out.append(digits, digits_end).append(separator).append(bodies.substr(start, end - start));
    start = end;
  }
}

void append_userlog_line(std::string& out, std::size_t seq, const OnlineRecord& record) {
  fmt::format_to(std::back_inserter(out), "{}; {}; {}; {}; {}\n", seq,
                 format_timestamp_cached(record.since), record.username, record.address,
                 record.udp_port);
}

}  // namespace

FileLogStore::FileLogStore(std::filesystem::path dir, LogSink sink, std::size_t max_open_groups)
    : dir_(std::move(dir)),
      sink_(std::move(sink)),
      max_open_groups_(std::max<std::size_t>(max_open_groups, 1)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  userlog_.path = dir_ / "userlog.txt";
  userlog_.fd = open_file(userlog_.path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  messages_.path = dir_ / "messagelog.txt";
  try {
    open_numbered(messages_);
  } catch (...) {
    ::close(userlog_.fd);
    throw;
  }
  writer_ = std::thread([this] { run(); });
}

FileLogStore::~FileLogStore() {
  {
    std::lock_guard lock(mutex_);
    // A rewrite of the online list needs the list, which only flush() has.
    batch_.rewrite_userlog = false;
    batch_.userlog.clear();
    if (!batch_.messages.empty() || !batch_.groups.empty()) queue_.push_back(std::move(batch_));
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
  for (const int fd : {userlog_.fd, messages_.fd}) {
    if (fd >= 0) ::close(fd);
  }
  for (auto* group : open_groups_)
    ::close(group->fd);
}

// --- The caller's thread -----------------------------------------------------

void FileLogStore::user_online(std::size_t seq, const OnlineRecord& record) {
  if (batch_.rewrite_userlog) return;  // the flush rewrites the whole list anyway
  append_userlog_line(batch_.userlog, seq, record);
}

void FileLogStore::user_offline() {
  batch_.rewrite_userlog = true;
  batch_.userlog.clear();
}

// Runs for every message: appended piece by piece, because parsing a format
// string at run time cost more than all the rest of handling the message.
void FileLogStore::append_body(std::string& out, protocol::Timestamp ts, std::string_view from,
                               std::string_view text) {
  out.append(format_timestamp_cached(ts)).append(separator).append(from);
  out.append(separator).append(text).push_back('\n');
}

void FileLogStore::direct_message(protocol::Timestamp ts, std::string_view from,
                                  std::string_view text) {
  append_body(batch_.messages, ts, from, text);
}

void FileLogStore::group_created(std::string_view group) {
  if (batch_.groups.find(group) == batch_.groups.end()) batch_.groups.emplace(group, "");
}

void FileLogStore::group_message(std::string_view group, protocol::Timestamp ts,
                                 std::string_view from, std::string_view text) {
  auto it = batch_.groups.find(group);
  if (it == batch_.groups.end()) it = batch_.groups.emplace(group, "").first;
  append_body(it->second, ts, from, text);
}

void FileLogStore::group_removed(std::string_view group) {
  batch_.removed.emplace_back(group);
}

void FileLogStore::flush(std::span<const OnlineRecord> online, Done done) {
  if (batch_.rewrite_userlog) {
    std::size_t seq = 0;
    for (const auto& record : online)
      append_userlog_line(batch_.userlog, ++seq, record);
  }
  const bool empty = !batch_.rewrite_userlog && batch_.userlog.empty() && batch_.messages.empty() &&
                     batch_.groups.empty() && batch_.removed.empty();
  std::size_t bytes = batch_.userlog.size() + batch_.messages.size();
  for (const auto& [name, bodies] : batch_.groups)
    bytes += bodies.size();
  {
    std::unique_lock lock(mutex_);
    if (empty) {
      if (!done) return;
      if (queue_.empty() && !writing_) {
        lock.unlock();
        done();
        return;
      }
    }
    batch_.bytes = bytes;
    batch_.done = std::move(done);
    queued_bytes_ += bytes;
    queue_.push_back(std::move(batch_));
  }
  batch_ = Batch{};
  wake_.notify_one();
}

void FileLogStore::sync(std::span<const OnlineRecord> online) {
  flush(online, {});
  // Shared with the writer, which may still be inside set_value() when the
  // wait below returns.
  auto synced = std::make_shared<std::promise<void>>();
  auto future = synced->get_future();
  {
    std::lock_guard lock(mutex_);
    Batch batch;
    batch.sync = true;
    batch.done = [synced] { synced->set_value(); };
    queue_.push_back(std::move(batch));
  }
  wake_.notify_one();
  future.wait();
}

// --- The writer thread -------------------------------------------------------

void FileLogStore::run() {
  std::vector<Batch> work;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      writing_ = false;
      wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;
      work.swap(queue_);
      writing_ = true;
    }
    std::size_t bytes = 0;
    for (const auto& batch : work)
      bytes += batch.bytes;
    try {
      write_batches(work);
    } catch (const std::exception& e) {
      if (sink_.enabled(LogLevel::error)) {
        sink_.write(LogLevel::error, fmt::format("writing the logs failed: {}", e.what()));
      }
    }
    queued_bytes_ -= bytes;
    for (auto& batch : work) {
      if (batch.done) batch.done();
    }
    work.clear();
  }
}

// Everything queued goes out at once: a writer that fell behind catches up
// with one write(2) per file instead of one per batch.
void FileLogStore::write_batches(std::vector<Batch>& batches) {
  std::string userlog_lines;
  std::string message_bodies;
  std::map<std::string, std::string, std::less<>> group_bodies;
  bool sync = false;
  for (auto& batch : batches) {
    if (batch.rewrite_userlog) {
      leftover_bytes_ -= userlog_.pending.size();
      userlog_.pending.clear();
      userlog_lines.clear();
      userlog_rewrite_ = std::move(batch.userlog);
      userlog_rewrite_due_ = true;
    } else if (userlog_rewrite_due_) {
      userlog_rewrite_ += batch.userlog;
    } else {
      userlog_lines += batch.userlog;
    }
    message_bodies += batch.messages;
    for (auto& [name, bodies] : batch.groups) {
      if (const auto it = group_bodies.find(name); it != group_bodies.end()) {
        it->second += bodies;
      } else {
        group_bodies.emplace(name, std::move(bodies));
      }
    }
    sync = sync || batch.sync;
  }
  for (const auto& name : leftover_groups_)
    group_bodies.try_emplace(name);

  if (userlog_rewrite_due_) {
    rewrite_userlog();
  } else if (!userlog_lines.empty() || !userlog_.pending.empty()) {
    const auto had = userlog_.pending.size();
    userlog_.pending += userlog_lines;
    write_lines(userlog_.fd, userlog_.path, userlog_.pending, userlog_.failing);
    keep_leftover(userlog_.path, userlog_.pending, had);
    userlog_unsynced_ = true;
  }

  if (!message_bodies.empty() || !messages_.pending.empty()) {
    const auto had = messages_.pending.size();
    number_lines(messages_.seq, message_bodies, messages_.pending);
    write_lines(messages_.fd, messages_.path, messages_.pending, messages_.failing);
    keep_leftover(messages_.path, messages_.pending, had);
    messages_unsynced_ = true;
  }

  for (const auto& [name, bodies] : group_bodies) {
    auto it = groups_.find(name);
    if (it == groups_.end()) it = groups_.emplace(name, Group{}).first;
    write_group(it, bodies);
  }

  for (auto& batch : batches) {
    for (const auto& name : batch.removed) {
      // A group whose lines still wait for a retry stays known, so that they
      // are not lost. A removed group's lines are not fsynced at shutdown.
      const auto it = groups_.find(name);
      if (it == groups_.end() || !it->second.pending.empty()) continue;
      if (it->second.fd >= 0) close_group(it->second);
      groups_.erase(it);
    }
  }
  if (sync) fsync_all();
}

void FileLogStore::write_group(Groups::iterator it, std::string_view bodies) {
  auto& group = it->second;
  if (group.numbered && bodies.empty() && group.pending.empty()) return;
  const auto had = group.pending.size();
  const auto path = group_path(it->first);
  if (!group.numbered) {
    group.pending += bodies;
    if (open_group(it)) {
      const auto unnumbered = std::move(group.pending);
      group.pending.clear();
      number_lines(group.seq, unnumbered, group.pending);
    }
  } else {
    number_lines(group.seq, bodies, group.pending);
    if (group.fd >= 0) {
      open_groups_.splice(open_groups_.begin(), open_groups_, group.lru);
    } else {
      open_group(it);
    }
  }
  if (group.fd >= 0 && !group.pending.empty()) {
    write_lines(group.fd, path, group.pending, group.failing);
    group.unsynced = true;
  }
  keep_leftover(path, group.pending, had);
  if (group.pending.empty()) {
    leftover_groups_.erase(it->first);
  } else {
    leftover_groups_.insert(it->first);
  }
}

// Opens a group's log, closing the least recently written one if as many as
// allowed are open. Numbering is read from the file the first time only.
bool FileLogStore::open_group(Groups::iterator it) {
  auto& group = it->second;
  if (open_groups_.size() >= max_open_groups_) close_group(*open_groups_.back());
  const auto path = group_path(it->first);
  try {
    if (group.numbered) {
      group.fd = open_file(path, O_WRONLY | O_CREAT | O_APPEND);
    } else {
      File file;
      file.path = path;
      open_numbered(file);
      group.fd = file.fd;
      group.seq = file.seq;
      group.numbered = true;
    }
  } catch (const std::system_error& e) {
    if (!group.failing && sink_.enabled(LogLevel::error)) sink_.write(LogLevel::error, e.what());
    group.failing = true;
    return false;
  }
  open_groups_.push_front(&group);
  group.lru = open_groups_.begin();
  return true;
}

void FileLogStore::close_group(Group& group) {
  ::close(group.fd);
  group.fd = -1;
  open_groups_.erase(group.lru);
}

std::filesystem::path FileLogStore::group_path(std::string_view group) const {
  return dir_ / fmt::format("{}_messagelog.txt", group);
}

// Finds the last sequence number and cuts off a torn last line: the kernel
// may stop a write(2) short at a page boundary when the process is killed,
// and a power loss can lose any tail.
void FileLogStore::open_numbered(File& file) {
  file.fd = open_file(file.path, O_RDWR | O_CREAT | O_APPEND);
  try {
    struct stat st {};
    if (::fstat(file.fd, &st) != 0) throw_errno(file.path, "stat");
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size == 0) return;

    const auto window = std::min<std::uint64_t>(size, tail_window);
    std::string tail(window, '\0');
    const auto got = ::pread(file.fd, tail.data(), window, static_cast<off_t>(size - window));
    if (got != static_cast<ssize_t>(window)) throw_errno(file.path, "read");
    std::string_view text = tail;

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
  } catch (...) {
    ::close(file.fd);
    file.fd = -1;
    throw;
  }
}

// One write(2) for all of `pending` (more only if the kernel takes less).
// On failure, whole lines written stay and are erased from `pending`; a
// partly written line is cut back off the file.
bool FileLogStore::write_lines(int fd, const std::filesystem::path& path, std::string& pending,
                               bool& failing) {
  std::size_t written = 0;
  while (written < pending.size()) {
    const auto n = ::write(fd, pending.data() + written, pending.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int error = n < 0 ? errno : EIO;
    const auto last_newline = pending.rfind('\n', written == 0 ? 0 : written - 1);
    const std::size_t keep =
        (written == 0 || last_newline == std::string::npos) ? 0 : last_newline + 1;
    if (keep < written) {
      struct stat st {};
      if (::fstat(fd, &st) == 0) {
        [[maybe_unused]] const int rc =
            ::ftruncate(fd, st.st_size - static_cast<off_t>(written - keep));
      }
    }
    pending.erase(0, keep);
    if (!failing && sink_.enabled(LogLevel::error)) {
      sink_.write(LogLevel::error, fmt::format("cannot write '{}': {}; will retry", path.string(),
                                               std::strerror(error)));
    }
    failing = true;
    return false;
  }
  if (failing && sink_.enabled(LogLevel::info)) {
    sink_.write(LogLevel::info, fmt::format("'{}' is writable again", path.string()));
  }
  failing = false;
  pending.clear();
  return true;
}

// Accounts for what a write left in `pending` (which held `had` bytes of
// leftovers before) and drops the oldest lines beyond the bound.
void FileLogStore::keep_leftover(const std::filesystem::path& path, std::string& pending,
                                 std::size_t had) {
  leftover_bytes_ = leftover_bytes_ - had + pending.size();
  if (leftover_bytes_ <= max_leftover_bytes || pending.empty()) return;
  const auto excess = leftover_bytes_ - max_leftover_bytes;
  const auto newline =
      excess >= pending.size() ? std::string::npos : pending.find('\n', excess - 1);
  const auto cut = newline == std::string::npos ? pending.size() : newline + 1;
  pending.erase(0, cut);
  leftover_bytes_ -= cut;
  if (sink_.enabled(LogLevel::error)) {
    sink_.write(LogLevel::error,
                fmt::format("'{}': dropped log lines, disk still failing", path.string()));
  }
}

void FileLogStore::rewrite_userlog() {
  // Replace the file atomically so a reader never sees a half-written list.
  const auto temp = dir_ / "userlog.txt.tmp";
  try {
    const int fd = open_file(temp, O_WRONLY | O_CREAT | O_TRUNC);
    auto content = userlog_rewrite_;
    const bool complete = write_lines(fd, temp, content, userlog_.failing);
    ::close(fd);
    if (!complete) return;
    if (::rename(temp.c_str(), userlog_.path.c_str()) != 0) throw_errno(userlog_.path, "replace");
    ::close(userlog_.fd);
    userlog_.fd = -1;
    userlog_.fd = open_file(userlog_.path, O_WRONLY | O_APPEND);
    userlog_rewrite_due_ = false;
    userlog_rewrite_.clear();
    userlog_unsynced_ = true;
  } catch (const std::system_error& e) {
    if (sink_.enabled(LogLevel::error)) sink_.write(LogLevel::error, e.what());
  }
}

void FileLogStore::fsync_all() {
  if (userlog_unsynced_ && userlog_.fd >= 0) ::fsync(userlog_.fd);
  if (messages_unsynced_) ::fsync(messages_.fd);
  userlog_unsynced_ = messages_unsynced_ = false;
  for (auto it = groups_.begin(); it != groups_.end(); ++it) {
    auto& group = it->second;
    if (!group.unsynced || (group.fd < 0 && !open_group(it))) continue;
    ::fsync(group.fd);
    group.unsynced = false;
  }
}

}  // namespace tessenger::core
