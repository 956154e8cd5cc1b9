#pragma once

// Files behind the engine: a read-ahead source, a write-combining sink that
// fills a hidden partial file and puts it in place without ever overwriting,
// and the resume record. POSIX calls only, so it stays free of Asio.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

class FileSource final : public ChunkSource {
 public:
  static std::unique_ptr<FileSource> open(const std::filesystem::path& path, std::error_code& ec);
  ~FileSource() override;
  std::uint64_t size() const { return size_; }
  std::error_code read(std::uint64_t offset, std::span<std::byte> out) override;

 private:
  FileSource(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  std::uint64_t size_;
  std::vector<std::byte> cache_;
  std::uint64_t cache_offset_ = 0;
  std::size_t cache_size_ = 0;
};

/// Where a received file lives until verified, and how it is put in place.
struct ReceivePaths {
  std::filesystem::path dir;      ///< the download dir
  std::string final_name;         ///< safe_file_name(sender, name)
  std::filesystem::path partial;  ///< hidden data file, kept for resume
  std::filesystem::path record;   ///< hidden list of the ranges held
};

/// Paths for a file offered by `sender`: the hidden names are tied to the
/// sender, name, size and SHA-256, so only the same offer resumes.
ReceivePaths receive_paths(const std::filesystem::path& dir, std::string_view sender,
                           std::string_view file_name, std::uint64_t size, const Digest& sha);

/// Paths for a file from a user of the original client, which has no size
/// or hash to tie a partial file to: the hidden names are unique to this
/// reception, so two at once never share one, and none resumes.
ReceivePaths legacy_receive_paths(const std::filesystem::path& dir, std::string_view sender,
                                  std::string_view file_name);

class FileSink final : public ChunkSink {
 public:
  /// Opens (or creates) the partial file. With `resume`, existing content is
  /// kept; otherwise it is truncated.
  static std::unique_ptr<FileSink> open(const ReceivePaths& paths, bool resume,
                                        std::error_code& ec);
  ~FileSink() override;

  std::error_code write(std::uint64_t offset, std::span<const std::byte> data) override;
  std::error_code read(std::uint64_t offset, std::span<std::byte> out) override;
  /// Moves the partial file to the first free name among final_name,
  /// "name (1).ext", ... atomically, never replacing a file; drops the record.
  std::error_code commit() override;
  /// Writes out buffered data, so a record saved afterwards is true.
  std::error_code flush();
  /// Removes the partial file and its record (after a checksum failure).
  void discard();
  const std::filesystem::path& final_path() const { return final_path_; }

 private:
  FileSink(int fd, ReceivePaths paths) : fd_(fd), paths_(std::move(paths)) {}
  int fd_;
  ReceivePaths paths_;
  std::filesystem::path final_path_;
  std::vector<std::byte> pending_;
  std::uint64_t pending_offset_ = 0;
};

/// The resume record: which ranges of the partial file are valid.
std::error_code save_ranges(const std::filesystem::path& record, std::uint64_t size,
                            const Digest& sha, const std::vector<ByteRange>& ranges);
/// Empty if the record is missing, malformed or for another file.
std::vector<ByteRange> load_ranges(const std::filesystem::path& record, std::uint64_t size,
                                   const Digest& sha);

}  // namespace tessenger::transfer
