#pragma once

// The server's log files (SPEC §5) behind an interface, so the domain core can
// be tested with an in-memory store.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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

/// Records are buffered by the caller's thread (the server's strand); flush()
/// hands them over to be written. One caller thread at a time.
class LogStore {
 public:
  /// Called once the lines of a flush are written; must not throw.
  using Done = std::function<void()>;

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
  /// The group is gone: what the store keeps for it may be forgotten once its
  /// lines are written. Its file stays; a group of that name later continues
  /// its numbering.
  virtual void group_removed(std::string_view group) = 0;
  /// Hands over what is buffered; `online` is every online user in login
  /// order. `done` (may be empty) runs once these lines and those of every
  /// earlier flush are written, in the order of the flushes, on whatever
  /// thread wrote them, or inside this call if there was nothing to write.
  virtual void flush(std::span<const OnlineRecord> online, Done done) = 0;
};

/// The log files in a directory, written on a thread of its own so that no
/// disk I/O runs on the caller's thread. Each record becomes one complete
/// line; the lines of a flush (and of flushes queued behind it) go out with
/// one write(2) per file, so a crash loses at most the unwritten lines and
/// never tears one. Message logs are appended to and never truncated:
/// numbering continues from the last complete line found at first open, and
/// a torn tail is cut off there (a power loss can leave one, and so can a
/// SIGKILL that lands inside a write(2) spanning several pages).
///
/// At most `max_open_groups` group logs are open at once (least recently
/// written closed first); a group's numbering is kept in memory while it is
/// closed, so reopening it reads nothing.
///
/// If a file cannot be written (disk full, EIO), the error goes to the sink
/// once per episode, its lines are kept and retried at each later flush, and
/// `done` still runs: the lines are then not on disk. Beyond 16 MiB of such
/// lines in all, the oldest are dropped, which is reported too. The sink is
/// called on the writer thread (and in the constructor, on the caller's).
class FileLogStore final : public LogStore {
 public:
  static constexpr std::size_t default_max_open_groups = 32;
  /// A server should stop reading from its connections while queued_bytes()
  /// is above this: a disk that fast keeps up is behind by 8 MiB only when it
  /// stalls, and the memory stays bounded.
  static constexpr std::size_t recommended_max_queued_bytes = 8 * 1024 * 1024;

  /// Empties userlog.txt, opens messagelog.txt and starts the writer thread.
  /// Throws std::system_error.
  FileLogStore(std::filesystem::path dir, LogSink sink,
               std::size_t max_open_groups = default_max_open_groups);
  /// Writes every flushed batch (and the message lines recorded since the
  /// last flush), runs their `done`s, joins the writer and closes the files.
  /// A `done` must not be the last owner of this store.
  ~FileLogStore() override;
  FileLogStore(const FileLogStore&) = delete;
  FileLogStore& operator=(const FileLogStore&) = delete;

  void user_online(std::size_t seq, const OnlineRecord& record) override;
  void user_offline() override;
  void direct_message(protocol::Timestamp ts, std::string_view from,
                      std::string_view text) override;
  void group_created(std::string_view group) override;
  void group_message(std::string_view group, protocol::Timestamp ts, std::string_view from,
                     std::string_view text) override;
  void group_removed(std::string_view group) override;
  void flush(std::span<const OnlineRecord> online, Done done) override;

  /// Flushes, waits until everything is written and fsyncs every file written
  /// since the last sync (at shutdown; blocks the caller).
  void sync(std::span<const OnlineRecord> online);

  /// Bytes handed over by flush() and not yet written. Safe from any thread.
  std::size_t queued_bytes() const noexcept { return queued_bytes_.load(); }

 private:
  // What the caller's thread collects between two flushes. Message lines lack
  // their SEQ: the writer numbers them, since only it knows the files.
  struct Batch {
    bool rewrite_userlog = false;
    std::string userlog;  // lines to append, or the whole list if rewritten
    std::string messages;
    std::map<std::string, std::string, std::less<>> groups;  // a key alone: create the file
    std::vector<std::string> removed;
    bool sync = false;
    std::size_t bytes = 0;
    Done done;
  };
  struct File {
    std::filesystem::path path;
    int fd = -1;
    std::uint64_t seq = 0;  // last sequence number written or pending
    std::string pending;    // complete lines not yet written
    bool failing = false;   // an error was reported; report again only after recovery
  };
  // Kept for every group seen since start (or since it was removed), open or
  // not, so it stays small: the name is the map's key.
  struct Group {
    std::uint64_t seq = 0;
    int fd = -1;
    bool numbered = false;  // seq read from the file; until then `pending` has no SEQs
    bool failing = false;
    bool unsynced = false;
    std::string pending;
    std::list<Group*>::iterator lru;  // valid while fd >= 0
  };
  using Groups = std::map<std::string, Group, std::less<>>;

  void append_body(std::string& out, protocol::Timestamp ts, std::string_view from,
                   std::string_view text);

  // The writer thread's side.
  void run();
  void write_batches(std::vector<Batch>& batches);
  void write_group(Groups::iterator group, std::string_view bodies);
  bool open_group(Groups::iterator group);
  void close_group(Group& group);
  void rewrite_userlog();
  void open_numbered(File& file);
  bool write_lines(int fd, const std::filesystem::path& path, std::string& pending, bool& failing);
  void keep_leftover(const std::filesystem::path& path, std::string& pending, std::size_t had);
  void fsync_all();
  std::filesystem::path group_path(std::string_view group) const;

  const std::filesystem::path dir_;
  const LogSink sink_;
  const std::size_t max_open_groups_;

  Batch batch_;  // the caller's thread only

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Batch> queue_;
  bool writing_ = false;
  bool stopping_ = false;
  std::atomic<std::size_t> queued_bytes_{0};

  // The writer thread only (and the constructor, before it starts).
  File userlog_;
  std::string userlog_rewrite_;  // the whole list, while a rewrite is due
  bool userlog_rewrite_due_ = false;
  bool userlog_unsynced_ = false;
  File messages_;
  bool messages_unsynced_ = false;
  Groups groups_;
  std::list<Group*> open_groups_;                       // most recently written first
  std::set<std::string, std::less<>> leftover_groups_;  // with lines a failed write left
  std::size_t leftover_bytes_ = 0;

  std::thread writer_;
};

}  // namespace tessenger::core
