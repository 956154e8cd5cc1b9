#pragma once

// The server's log files (SPEC §5) behind an interface, so the domain core can
// be tested with an in-memory store.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <tessenger/protocol.hpp>
#include <tessenger/server_types.hpp>

namespace tessenger::core {

/// One line of userlog.txt: a user online now.
struct OnlineRecord {
  std::string username;
  protocol::Timestamp since = 0;
  std::string address;
  std::uint16_t udp_port = 0;
};

class LogStore {
 public:
  virtual ~LogStore() = default;
  /// A user came online; they are last in login order.
  virtual void user_online(std::size_t seq, const OnlineRecord& record) = 0;
  /// A user went offline: the online list must be rewritten at the next flush.
  virtual void user_offline() = 0;
  virtual void direct_message(protocol::Timestamp ts, std::string_view from,
                              std::string_view text) = 0;
  virtual void group_created(std::string_view group) = 0;
  virtual void group_message(std::string_view group, protocol::Timestamp ts, std::string_view from,
                             std::string_view text) = 0;
  /// Writes what is buffered; `online` is every online user in login order.
  virtual void flush(std::span<const OnlineRecord> online) = 0;
};

/// The log files in a directory. Each record becomes one complete line; lines
/// are buffered and written with one write(2) per file per flush, so a crash
/// loses at most the unflushed lines. Message logs are appended to and never
/// truncated: numbering continues from the last complete line found at open,
/// and a torn tail is cut off there (a power loss can leave one, and so can a
/// SIGKILL that lands inside a write(2) spanning several pages).
class FileLogStore final : public LogStore {
 public:
  /// Empties userlog.txt and opens messagelog.txt. Throws std::system_error.
  FileLogStore(std::filesystem::path dir, LogSink sink);
  ~FileLogStore() override;

  void user_online(std::size_t seq, const OnlineRecord& record) override;
  void user_offline() override;
  void direct_message(protocol::Timestamp ts, std::string_view from,
                      std::string_view text) override;
  void group_created(std::string_view group) override;
  void group_message(std::string_view group, protocol::Timestamp ts, std::string_view from,
                     std::string_view text) override;
  void flush(std::span<const OnlineRecord> online) override;

  /// Flushes and fsyncs every file (at shutdown).
  void sync(std::span<const OnlineRecord> online);

 private:
  struct File {
    std::filesystem::path path;
    int fd = -1;
    std::uint64_t seq = 0;  // last sequence number written or buffered
    std::string pending;    // complete lines not yet written
    bool failing = false;   // an error was reported; report again only after recovery
  };
  void open_numbered(File& file);
  void write_pending(File& file);
  void append_message(File& file, protocol::Timestamp ts, std::string_view from,
                      std::string_view text);
  void rewrite_userlog(std::span<const OnlineRecord> online);

  std::filesystem::path dir_;
  LogSink sink_;
  File userlog_;
  bool userlog_dirty_ = false;
  File messages_;
  std::map<std::string, File, std::less<>> groups_;
};

}  // namespace tessenger::core
