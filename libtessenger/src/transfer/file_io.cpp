#include "transfer/file_io.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "transfer/sha256.hpp"

namespace tessenger::transfer {

namespace {

constexpr std::size_t read_ahead = 256 << 10;
constexpr std::size_t write_combine = 1 << 20;
constexpr unsigned max_name_attempts = 10'000;
constexpr std::string_view record_magic = "tessenger-resume 1";

std::error_code last_error() {
  return {errno, std::system_category()};
}

std::error_code pread_all(int fd, std::uint64_t offset, std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const auto n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) return std::make_error_code(std::errc::io_error);  // the file shrank
    done += static_cast<std::size_t>(n);
  }
  return {};
}

std::error_code pwrite_all(int fd, std::uint64_t offset, std::span<const std::byte> data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const auto n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

std::unique_ptr<FileSource> FileSource::open(const std::filesystem::path& path,
                                             std::error_code& ec) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ec = st.st_mode == 0 ? last_error() : std::make_error_code(std::errc::not_supported);
    ::close(fd);
    return nullptr;
  }
  ec.clear();
  return std::unique_ptr<FileSource>(new FileSource(fd, static_cast<std::uint64_t>(st.st_size)));
}

FileSource::~FileSource() {
  ::close(fd_);
}

std::error_code FileSource::read(std::uint64_t offset, std::span<std::byte> out) {
  if (out.size() > read_ahead) return pread_all(fd_, offset, out);
  if (offset < cache_offset_ || offset + out.size() > cache_offset_ + cache_size_) {
    if (cache_.empty()) cache_.resize(read_ahead);
    const auto n = static_cast<std::size_t>(
        std::min<std::uint64_t>(read_ahead, size_ > offset ? size_ - offset : 0));
    if (n < out.size()) return std::make_error_code(std::errc::io_error);
    if (const auto ec = pread_all(fd_, offset, std::span(cache_).first(n))) {
      cache_size_ = 0;
      return ec;
    }
    cache_offset_ = offset;
    cache_size_ = n;
  }
  std::memcpy(out.data(), cache_.data() + (offset - cache_offset_), out.size());
  return {};
}

namespace {

// The paths of a reception whose hidden names are keyed by a hash of the
// sender, the name and `more`.
ReceivePaths keyed_paths(const std::filesystem::path& dir, std::string_view prefix,
                         std::string_view sender, std::string_view file_name,
                         std::initializer_list<std::string> more) {
  Sha256 h;
  const auto feed = [&h](std::string_view s) {
    h.update(std::as_bytes(std::span(s.data(), s.size())));
    h.update(std::as_bytes(std::span("\0", 1)));
  };
  feed(sender);
  feed(file_name);
  for (const auto& part : more)
    feed(part);
  const auto key = std::string(prefix) + to_hex(h.finish()).substr(0, 32);
  return {dir, safe_file_name(sender, file_name), dir / (key + ".part"), dir / (key + ".ranges")};
}

}  // namespace

ReceivePaths receive_paths(const std::filesystem::path& dir, std::string_view sender,
                           std::string_view file_name, std::uint64_t size, const Digest& sha) {
  return keyed_paths(dir, ".tessenger-", sender, file_name, {std::to_string(size), to_hex(sha)});
}

ReceivePaths legacy_receive_paths(const std::filesystem::path& dir, std::string_view sender,
                                  std::string_view file_name) {
  static std::atomic<std::uint64_t> counter{0};
  // Unique across receptions of this process and across processes sharing the dir.
  return keyed_paths(dir, ".tessenger-legacy-", sender, file_name,
                     {std::to_string(::getpid()), std::to_string(counter.fetch_add(1)),
                      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())});
}

std::unique_ptr<FileSink> FileSink::open(const ReceivePaths& paths, bool resume,
                                         std::error_code& ec) {
  const int flags = O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC);
  const int fd = ::open(paths.partial.c_str(), flags, 0644);
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  ec.clear();
  return std::unique_ptr<FileSink>(new FileSink(fd, paths));
}

FileSink::~FileSink() {
  flush();
  ::close(fd_);
}

std::error_code FileSink::flush() {
  if (pending_.empty()) return {};
  const auto ec = pwrite_all(fd_, pending_offset_, pending_);
  pending_.clear();
  return ec;
}

std::error_code FileSink::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (!pending_.empty() && offset == pending_offset_ + pending_.size() &&
      pending_.size() + data.size() <= write_combine) {
    pending_.insert(pending_.end(), data.begin(), data.end());
    return {};
  }
  if (const auto ec = flush()) return ec;
  if (data.size() >= write_combine) return pwrite_all(fd_, offset, data);
  if (pending_.capacity() < write_combine) pending_.reserve(write_combine);
  pending_offset_ = offset;
  pending_.assign(data.begin(), data.end());
  return {};
}

std::error_code FileSink::read(std::uint64_t offset, std::span<std::byte> out) {
  if (const auto ec = flush()) return ec;
  return pread_all(fd_, offset, out);
}

std::error_code FileSink::commit() {
  if (const auto ec = flush()) return ec;
  for (unsigned n = 0; n < max_name_attempts; ++n) {
    const auto target = paths_.dir / numbered_name(paths_.final_name, n);
    // RENAME_NOREPLACE fails with EEXIST rather than replace: no race can
    // overwrite a file that appeared after we looked.
    if (::renameat2(AT_FDCWD, paths_.partial.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) ==
        0) {
      final_path_ = target;
      std::error_code ignored;
      std::filesystem::remove(paths_.record, ignored);
      return {};
    }
    if (errno == EEXIST) continue;
    if (errno != EINVAL && errno != ENOSYS) return last_error();
    // No RENAME_NOREPLACE on this file system: link() refuses to replace too.
    if (::link(paths_.partial.c_str(), target.c_str()) == 0) {
      ::unlink(paths_.partial.c_str());
      final_path_ = target;
      std::error_code ignored;
      std::filesystem::remove(paths_.record, ignored);
      return {};
    }
    if (errno == EEXIST) continue;
    return last_error();
  }
  return std::make_error_code(std::errc::file_exists);
}

void FileSink::discard() {
  pending_.clear();
  std::error_code ignored;
  std::filesystem::remove(paths_.partial, ignored);
  std::filesystem::remove(paths_.record, ignored);
}

std::error_code save_ranges(const std::filesystem::path& record, std::uint64_t size,
                            const Digest& sha, const std::vector<ByteRange>& ranges) {
  std::ostringstream text;
  text << record_magic << '\n' << size << ' ' << to_hex(sha) << '\n';
  for (const auto& r : ranges)
    text << r.begin << ' ' << r.end << '\n';
  const std::string body = text.str();
  auto tmp = record;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return last_error();
  auto ec = pwrite_all(fd, 0, std::as_bytes(std::span(body.data(), body.size())));
  ::close(fd);
  // Replacing atomically: a crash leaves the old record or the new, never half.
  if (!ec && ::rename(tmp.c_str(), record.c_str()) != 0) ec = last_error();
  if (ec) ::unlink(tmp.c_str());
  return ec;
}

std::vector<ByteRange> load_ranges(const std::filesystem::path& record, std::uint64_t size,
                                   const Digest& sha) {
  std::ifstream in(record);
  std::string line;
  if (!std::getline(in, line) || line != record_magic) return {};
  std::uint64_t recorded_size = 0;
  std::string recorded_sha;
  if (!(in >> recorded_size >> recorded_sha) || recorded_size != size ||
      recorded_sha != to_hex(sha))
    return {};
  std::vector<ByteRange> ranges;
  ByteRange r;
  std::uint64_t floor = 0;
  while (in >> r.begin >> r.end) {
    if (r.begin >= r.end || r.end > size || r.begin < floor) return {};
    floor = r.end;
    ranges.push_back(r);
  }
  if (!in.eof()) return {};
  return ranges;
}

}  // namespace tessenger::transfer
