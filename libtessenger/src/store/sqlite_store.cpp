#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/presence.hpp"
#include "core/store_state.hpp"

namespace tessenger::store {

namespace {

// What went wrong in SQLite on the writer thread, with its result code.
class SqlError : public std::runtime_error {
 public:
  SqlError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

[[noreturn]] void fail(sqlite3* db, int code) {
  throw SqlError(code, sqlite3_errmsg(db));
}

void exec(sqlite3* db, const char* sql) {
  if (const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    fail(db, rc);
  }
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
        rc != SQLITE_OK) {
      fail(db, rc);
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  /// Binds the arguments (views must live until the statement is reset) and
  /// takes the first step; true if it gave a row.
  template <class... Args>
  bool start(const Args&... args) {
    sqlite3_reset(stmt_);
    int index = 0;
    (bind(++index, args), ...);
    return step();
  }
  /// Runs the statement to its end.
  template <class... Args>
  void run(const Args&... args) {
    if (start(args...)) finish();
    sqlite3_reset(stmt_);
  }
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc);
  }
  void finish() {
    while (step()) {
    }
    sqlite3_reset(stmt_);
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const {
    const auto* bytes = sqlite3_column_text(stmt_, column);
    return {reinterpret_cast<const char*>(bytes),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }

 private:
  void bind(int index, std::int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }
  void bind(int index, std::uint64_t value) { bind(index, static_cast<std::int64_t>(value)); }
  void bind(int index, std::uint32_t value) { bind(index, static_cast<std::int64_t>(value)); }
  void bind(int index, bool value) { bind(index, std::int64_t{value ? 1 : 0}); }
  void bind(int index, std::string_view value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_STATIC));
  }
  void bind(int index, const std::string& value) { bind(index, std::string_view(value)); }
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, rc);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Forward migrations: entry N takes the schema from version N to N + 1.
// Messages of a group are keyed by the group's id, those of a direct
// conversation by minus its id, so one primary key orders every
// conversation's messages by id and a page is one range of it.
constexpr std::array migrations = {
    R"sql(
CREATE TABLE groups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  creator TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_id INTEGER NOT NULL);
CREATE TABLE members (
  group_id INTEGER NOT NULL,
  user TEXT NOT NULL,
  joined INTEGER NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (group_id, user)) WITHOUT ROWID;
CREATE TABLE direct (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  low TEXT NOT NULL,
  high TEXT NOT NULL,
  last_id INTEGER NOT NULL,
  UNIQUE (low, high));
CREATE TABLE messages (
  conversation INTEGER NOT NULL,
  id INTEGER NOT NULL,
  sender TEXT NOT NULL,
  time INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (conversation, id)) WITHOUT ROWID;
CREATE TABLE accounts (
  user TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  blocked_until INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE addresses (
  user TEXT NOT NULL,
  address TEXT NOT NULL,
  failures INTEGER NOT NULL,
  blocked_until INTEGER NOT NULL,
  known INTEGER NOT NULL,
  PRIMARY KEY (user, address)) WITHOUT ROWID;
)sql",
    // 2: one id sequence for all messages (renumbered in the order they were
    // sent), what each member may see, and what each user was delivered.
    R"sql(
CREATE TABLE renumbered (
  conversation INTEGER NOT NULL,
  id INTEGER NOT NULL,
  sender TEXT NOT NULL,
  time INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (conversation, id)) WITHOUT ROWID;
INSERT INTO renumbered
  SELECT conversation, row_number() OVER (ORDER BY time, conversation, id), sender, time, text
  FROM messages;
DROP TABLE messages;
ALTER TABLE renumbered RENAME TO messages;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('last_id', (SELECT coalesce(max(id), 0) FROM messages));
ALTER TABLE groups DROP COLUMN last_id;
ALTER TABLE direct DROP COLUMN last_id;
CREATE INDEX direct_by_high ON direct (high);
ALTER TABLE members ADD COLUMN invited_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN joined_after INTEGER NOT NULL DEFAULT 0;
CREATE TABLE cursors (user TEXT PRIMARY KEY, delivered INTEGER NOT NULL) WITHOUT ROWID;
)sql",
};
constexpr int schema_version = static_cast<int>(migrations.size());

std::int64_t wall_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Operation {
 public:
  virtual ~Operation() = default;
  /// A read runs after the batch's commit, so that it only ever sees what
  /// was committed; a write runs inside the batch's transaction.
  virtual bool reads() const noexcept = 0;
  /// On the writer thread.
  virtual void run() = 0;
  /// After the batch committed, or failed.
  virtual void finish(bool committed) = 0;
};

enum class Access { write, read };

template <class T, Access access, class Run>
class Typed final : public Operation {
 public:
  Typed(Run run, Store::Done<T> done) : run_(std::move(run)), done_(std::move(done)) {}
  bool reads() const noexcept override { return access == Access::read; }
  void run() override {
    if constexpr (access == Access::read) {
      try {
        result_ = run_();
        ran_ = true;
      } catch (const SqlError&) {
        ran_ = false;
      }
    } else {
      result_ = run_();
    }
  }
  void finish(bool committed) override {
    const bool ok = access == Access::read ? ran_ : committed;
    if (done_) done_(ok ? std::move(result_) : core::refused(std::move(result_)));
  }

 private:
  Run run_;
  Store::Done<T> done_;
  T result_{};
  bool ran_ = false;
};

class Writer;

class SqliteStoreImpl final : public SqliteStore {
 public:
  explicit SqliteStoreImpl(SqliteStoreOptions options);
  ~SqliteStoreImpl() override;

  /// Starts the writer thread, which opens the file; false (with why) if it could not.
  bool start(std::string& problem);

  void configure(const StorePolicy& policy) override {
    post<bool>([this, policy] {
      state_->configure(policy);
      policy_ = policy;
      return true;
    });
  }
  void create_group(std::string group, std::string creator, std::vector<std::string> invited,
                    Done<StoreOutcome> done) override {
    post<StoreOutcome>(
        [this, group = std::move(group), creator = std::move(creator),
         invited = std::move(invited)]() mutable {
          return state_->create_group(std::move(group), std::move(creator), std::move(invited));
        },
        std::move(done));
  }
  void join_group(std::string group, std::string user, Done<StoreOutcome> done) override {
    post<StoreOutcome>(
        [this, group = std::move(group), user = std::move(user)]() mutable {
          return state_->join_group(std::move(group), std::move(user));
        },
        std::move(done));
  }
  void leave_group(std::string group, std::string user, Done<GroupDeparture> done) override {
    post<GroupDeparture>(
        [this, group = std::move(group), user = std::move(user)]() mutable {
          return state_->leave_group(std::move(group), user);
        },
        std::move(done));
  }
  void delete_group(std::string group, std::string user, Done<GroupRemoval> done) override {
    post<GroupRemoval>(
        [this, group = std::move(group), user = std::move(user)]() mutable {
          return state_->delete_group(std::move(group), user);
        },
        std::move(done));
  }
  void append_group_message(std::string_view group, std::string_view from, std::string_view text,
                            protocol::Timestamp time, Done<StoredGroupMessage> done) override {
    post<StoredGroupMessage>(
        [this, group = std::string(group), from = std::string(from), text = std::string(text),
         time] { return state_->append_group_message(group, from, text, time); },
        std::move(done));
  }
  void append_direct_message(std::string_view from, std::string_view to, std::string_view text,
                             protocol::Timestamp time, Done<StoredMessage> done) override {
    post<StoredMessage>(
        [this, from = std::string(from), to = std::string(to), text = std::string(text), time] {
          return state_->append_direct_message(from, to, text, time);
        },
        std::move(done));
  }
  void missed(std::string user, MessageId after, bool from_cursor, std::size_t limit,
              Done<MissedPage> done) override {
    post<MissedPage, Access::read>(
        [this, user = std::move(user), after, from_cursor, limit] {
          return read_missed(user, from_cursor ? state_->cursor(user) : after, limit);
        },
        std::move(done));
  }
  void delivered(std::vector<std::pair<std::string, MessageId>> cursors) override {
    post<bool>([this, cursors = std::move(cursors)] {
      state_->delivered(cursors);
      return true;
    });
  }
  void history(HistoryRequest request, Done<HistoryResult> done) override {
    post<HistoryResult, Access::read>(
        [this, request = std::move(request)] { return read_history(request); }, std::move(done));
  }
  void is_blocked(std::string user, std::string address, protocol::Timestamp now,
                  Done<bool> done) override {
    post<bool>([this, user = std::move(user), address = std::move(address),
                now] { return state_->is_blocked(user, address, now); },
               std::move(done));
  }
  void login_failed(std::string user, std::string address, protocol::Timestamp now,
                    Done<FailedLogin> done) override {
    post<FailedLogin>(
        [this, user = std::move(user), address = std::move(address), now]() mutable {
          return state_->login_failed(std::move(user), address, now);
        },
        std::move(done));
  }
  void login_succeeded(std::string user, std::string address) override {
    post<bool>([this, user = std::move(user), address = std::move(address)]() mutable {
      state_->login_succeeded(std::move(user), address);
      return true;
    });
  }

  SqliteStats stats() const override {
    const std::lock_guard lock(mutex_);
    return stats_;
  }
  void limit_growth(std::uint32_t pages) override;

 private:
  template <class T, Access access = Access::write, class Run>
  void post(Run run, Done<T> done = {}) {
    auto operation = std::make_unique<Typed<T, access, Run>>(std::move(run), std::move(done));
    {
      const std::lock_guard lock(mutex_);
      queue_.push_back(std::move(operation));
    }
    wake_.notify_one();
  }

  void writer_main(std::promise<std::string> opened);
  void open_database();
  void load();
  void close();
  void write_batch(std::vector<std::unique_ptr<Operation>>& batch);
  MissedPage read_missed(const std::string& user, MessageId after, std::size_t limit);
  HistoryResult read_history(const HistoryRequest& request);
  void enforce_retention();
  void log(LogLevel level, std::string_view text) const {
    if (options_.log.enabled(level)) options_.log.write(level, text);
  }

  const SqliteStoreOptions options_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Writer> writer_;           // the prepared statements; the journal of state_
  std::unique_ptr<core::StoreState> state_;  // the writer thread's, journalled by writer_
  bool failing_ = false;                     // the last batch failed; logged once until one commits
  StorePolicy policy_;                       // the writer thread's copy
  std::chrono::steady_clock::time_point next_retention_{};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Operation>> queue_;
  bool stopping_ = false;
  SqliteStats stats_;
  std::thread thread_;
};

// Writes every change of the state as rows, with statements prepared once.
// Conversation keys are kept in memory, so a message costs one insert.
class Writer final : public core::StoreJournal {
 public:
  explicit Writer(sqlite3* db)
      : insert_group(
            db, "INSERT INTO groups (name, creator, created) VALUES (?1, ?2, ?3) RETURNING id"),
        insert_member(db,
                      "INSERT INTO members (group_id, user, joined, position, invited_after, "
                      "joined_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        join_member(db,
                    "UPDATE members SET joined = 1, joined_after = ?3 "
                    "WHERE group_id = ?1 AND user = ?2"),
        remove_member(db, "DELETE FROM members WHERE group_id = ?1 AND user = ?2"),
        remove_group(db, "DELETE FROM groups WHERE id = ?1"),
        remove_members(db, "DELETE FROM members WHERE group_id = ?1"),
        remove_messages(db, "DELETE FROM messages WHERE conversation = ?1"),
        insert_direct(db, "INSERT INTO direct (low, high) VALUES (?1, ?2) RETURNING id"),
        insert_message(db,
                       "INSERT INTO messages (conversation, id, sender, time, text) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)"),
        upsert_cursor(db,
                      "INSERT INTO cursors (user, delivered) VALUES (?1, ?2) "
                      "ON CONFLICT (user) DO UPDATE SET delivered = excluded.delivered"),
        set_last_id(db, "UPDATE meta SET value = ?1 WHERE key = 'last_id'"),
        upsert_account(db,
                       "INSERT INTO accounts (user, failures, window_start, blocked_until) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user) DO UPDATE SET "
                       "failures = excluded.failures, window_start = excluded.window_start, "
                       "blocked_until = excluded.blocked_until"),
        upsert_address(db,
                       "INSERT INTO addresses (user, address, failures, blocked_until, known) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user, address) DO UPDATE SET "
                       "failures = excluded.failures, blocked_until = excluded.blocked_until, "
                       "known = excluded.known"),
        remove_address(db, "DELETE FROM addresses WHERE user = ?1 AND address = ?2"),
        page_newest(db,
                    "SELECT id, sender, time, text FROM messages "
                    "WHERE conversation = ?1 AND id > ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4"),
        page_oldest(db,
                    "SELECT id, sender, time, text FROM messages "
                    "WHERE conversation = ?1 AND id > ?2 ORDER BY id LIMIT ?3"),
        missed_in(db,
                  "SELECT id, sender, time, text FROM messages "
                  "WHERE conversation = ?1 AND id > ?2 AND sender <> ?3 ORDER BY id LIMIT ?4"),
        expire_old(db,
                   "DELETE FROM messages WHERE conversation = ?1 AND id IN (SELECT id FROM "
                   "messages WHERE conversation = ?1 ORDER BY id LIMIT ?3) AND time < ?2"),
        expire_over(db,
                    "DELETE FROM messages WHERE conversation = ?1 AND id <= (SELECT id FROM "
                    "messages WHERE conversation = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)") {}

  // Conversation keys (messages.conversation) of groups and of direct pairs.
  std::int64_t group_key(std::string_view group) const {
    const auto it = groups_.find(group);
    return it == groups_.end() ? 0 : it->second;
  }
  std::int64_t direct_key(std::string_view a, std::string_view b) const {
    const auto [low, high] = std::minmax(a, b);
    const auto pairs = direct_.find(low);
    if (pairs == direct_.end()) return 0;
    const auto it = pairs->second.find(high);
    return it == pairs->second.end() ? 0 : it->second;
  }
  /// The keys of `user`'s direct conversations.
  const std::vector<std::int64_t>& direct_of(std::string_view user) const {
    static const std::vector<std::int64_t> none;
    const auto it = direct_of_.find(user);
    return it == direct_of_.end() ? none : it->second;
  }
  void forget_keys() {
    groups_.clear();
    direct_.clear();
    direct_of_.clear();
    touched_.clear();
  }
  void load_group_key(std::string group, std::int64_t id) { groups_.emplace(std::move(group), id); }
  void load_direct_key(const std::string& low, const std::string& high, std::int64_t id) {
    direct_[low].emplace(high, -id);
    direct_of_[low].push_back(-id);
    direct_of_[high].push_back(-id);
  }
  /// Conversations written to since the last call.
  std::unordered_set<std::int64_t> take_touched() { return std::exchange(touched_, {}); }
  std::vector<std::int64_t> every_conversation() const {
    std::vector<std::int64_t> all;
    for (const auto& [name, key] : groups_)
      all.push_back(key);
    for (const auto& [low, pairs] : direct_) {
      for (const auto& [high, key] : pairs)
        all.push_back(key);
    }
    return all;
  }

  /// Writes what the batch left for its end: cursors and the id sequence.
  void end_batch(MessageId last_id) {
    for (const auto& [user, delivered] : cursors_)
      upsert_cursor.run(user, delivered);
    cursors_.clear();
    if (last_id != written_last_id_) set_last_id.run(last_id);
    written_last_id_ = last_id;
  }
  void loaded_last_id(MessageId id) { written_last_id_ = id; }

  void group_created(std::string_view group, std::string_view creator,
                     std::span<const GroupMember> members) override {
    insert_group.start(group, creator, wall_micros());
    const std::int64_t id = insert_group.integer(0);
    insert_group.finish();
    groups_.emplace(std::string(group), id);
    std::int64_t position = 0;
    for (const auto& member : members)
      insert_member.run(id, member.name, member.joined, position++, member.invited_after,
                        member.joined_after);
  }
  void member_joined(std::string_view group, std::string_view user,
                     MessageId joined_after) override {
    join_member.run(group_key(group), user, joined_after);
  }
  void member_removed(std::string_view group, std::string_view user) override {
    remove_member.run(group_key(group), user);
  }
  void group_removed(std::string_view group) override {
    const auto it = groups_.find(group);
    if (it == groups_.end()) return;
    const std::int64_t id = it->second;
    groups_.erase(it);
    remove_group.run(id);
    remove_members.run(id);
    remove_messages.run(id);
  }
  void group_message(std::string_view group, MessageId id, std::string_view from,
                     std::string_view text, protocol::Timestamp time) override {
    const std::int64_t key = group_key(group);
    insert_message.run(key, id, from, std::int64_t{time}, text);
    touched_.insert(key);
  }
  void direct_message(std::string_view from, std::string_view to, MessageId id,
                      std::string_view text, protocol::Timestamp time) override {
    std::int64_t key = direct_key(from, to);
    if (key == 0) {
      const auto [low, high] = std::minmax(from, to);
      insert_direct.start(low, high);
      const std::int64_t row = insert_direct.integer(0);
      insert_direct.finish();
      load_direct_key(std::string(low), std::string(high), row);
      key = -row;
    }
    insert_message.run(key, id, from, std::int64_t{time}, text);
    touched_.insert(key);
  }
  void cursor_changed(std::string_view user, MessageId delivered) override {
    cursors_.insert_or_assign(std::string(user), delivered);
  }
  void account_changed(std::string_view user, const core::AccountRecord& account) override {
    upsert_account.run(user, account.failures, std::int64_t{account.window_start},
                       std::int64_t{account.blocked_until});
  }
  void address_changed(std::string_view user, std::string_view address,
                       const core::AddressRecord& record) override {
    upsert_address.run(user, address, record.failures, std::int64_t{record.blocked_until},
                       record.known);
  }
  void address_forgotten(std::string_view user, std::string_view address) override {
    remove_address.run(user, address);
  }

  Statement insert_group, insert_member, join_member, remove_member, remove_group, remove_members,
      remove_messages, insert_direct, insert_message, upsert_cursor, set_last_id, upsert_account,
      upsert_address, remove_address, page_newest, page_oldest, missed_in, expire_old, expire_over;

 private:
  core::StringMap<std::int64_t> groups_;
  core::StringMap<core::StringMap<std::int64_t>> direct_;  // low -> high -> minus the row's id
  core::StringMap<std::vector<std::int64_t>> direct_of_;
  core::StringMap<MessageId> cursors_;  // changed in this batch
  std::unordered_set<std::int64_t> touched_;
  MessageId written_last_id_ = 0;
};

std::string describe(int code, const std::string& message) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "is in use by another server (it is locked)";
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return fmt::format("is corrupt or not a database ({})", message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
    case SQLITE_AUTH:
      return fmt::format("cannot be opened for reading and writing ({})", message);
    default:
      return fmt::format("cannot be used ({})", message);
  }
}

SqliteStoreImpl::SqliteStoreImpl(SqliteStoreOptions options) : options_(std::move(options)) {}

SqliteStoreImpl::~SqliteStoreImpl() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool SqliteStoreImpl::start(std::string& problem) {
  std::promise<std::string> opened;
  auto result = opened.get_future();
  thread_ =
      std::thread([this, opened = std::move(opened)]() mutable { writer_main(std::move(opened)); });
  problem = result.get();
  if (problem.empty()) return true;
  thread_.join();
  return false;
}

void SqliteStoreImpl::writer_main(std::promise<std::string> opened) {
  try {
    open_database();
  } catch (const SqlError& e) {
    const int code = db_ != nullptr ? e.code() : SQLITE_CANTOPEN;
    const int system = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
    std::string message = e.what();
    if (system != 0 && (code & 0xff) == SQLITE_CANTOPEN) {
      message += fmt::format(": {}", std::strerror(system));
    }
    close();
    opened.set_value(
        fmt::format("the database {} {}", options_.file.string(), describe(code, message)));
    return;
  } catch (const std::runtime_error& e) {
    close();
    opened.set_value(e.what());
    return;
  }
  opened.set_value({});

  std::vector<std::unique_ptr<Operation>> batch;
  next_retention_ = std::chrono::steady_clock::now() + options_.retention_interval;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, next_retention_, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_ && queue_.empty()) break;
      batch.swap(queue_);
    }
    if (!batch.empty()) write_batch(batch);
    batch.clear();
    enforce_retention();
  }
  const auto totals = stats();
  log(LogLevel::info,
      fmt::format("closing the database {}: {} operations in {} commits, {} batches refused",
                  options_.file.string(), totals.operations, totals.commits,
                  totals.failed_batches));
  close();
}

void SqliteStoreImpl::close() {
  writer_.reset();
  state_.reset();
  sqlite3_close(db_);
  db_ = nullptr;
}

void SqliteStoreImpl::open_database() {
  const int rc =
      sqlite3_open_v2(options_.file.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc);
  sqlite3_extended_result_codes(db_, 1);
  // Held from the first write until close: a second server on the same file
  // fails at its start instead of waiting.
  exec(db_, "PRAGMA locking_mode = EXCLUSIVE");
  {
    Statement mode(db_, "PRAGMA journal_mode = WAL");
    if (!mode.step() || mode.text(0) != "wal") {
      throw SqlError(SQLITE_READONLY, "it cannot be switched to write-ahead logging");
    }
  }
  exec(db_, options_.sync == SqliteStoreOptions::Sync::full ? "PRAGMA synchronous = FULL"
                                                            : "PRAGMA synchronous = NORMAL");
  // Checkpoints run on the writer, inside a commit: fewer, larger ones copy
  // each page that many batches rewrote (the conversations' last leaves) once.
  exec(db_, "PRAGMA wal_autocheckpoint = 16384");
  exec(db_, "PRAGMA cache_size = -65536");
  int version = 0;
  {
    Statement read(db_, "PRAGMA user_version");
    if (read.step()) version = static_cast<int>(read.integer(0));
  }
  if (version > schema_version) {
    throw std::runtime_error(fmt::format(
        "the database {} has schema version {}, newer than the {} this server knows; use the "
        "tessenger-server that wrote it or a newer one",
        options_.file.string(), version, schema_version));
  }
  // Always a write, so that the exclusive lock is taken now.
  exec(db_, "BEGIN IMMEDIATE");
  for (int step = version; step < schema_version; ++step)
    exec(db_, migrations[static_cast<std::size_t>(step)]);
  exec(db_, fmt::format("PRAGMA user_version = {}", schema_version).c_str());
  exec(db_, "COMMIT");
  writer_ = std::make_unique<Writer>(db_);
  state_ = std::make_unique<core::StoreState>(writer_.get());
  load();
}

void SqliteStoreImpl::load() {
  state_->clear();
  writer_->forget_keys();
  std::map<std::int64_t, std::vector<GroupMember>> members;
  Statement read_members(db_,
                         "SELECT group_id, user, joined, invited_after, joined_after FROM members "
                         "ORDER BY group_id, position");
  for (bool row = read_members.start(); row; row = read_members.step()) {
    members[read_members.integer(0)].push_back({read_members.text(1), read_members.integer(2) != 0,
                                                static_cast<MessageId>(read_members.integer(3)),
                                                static_cast<MessageId>(read_members.integer(4))});
  }
  Statement groups(db_, "SELECT id, name, creator FROM groups");
  for (bool row = groups.start(); row; row = groups.step()) {
    writer_->load_group_key(groups.text(1), groups.integer(0));
    state_->load_group(groups.text(1), groups.text(2), std::move(members[groups.integer(0)]));
  }
  Statement direct(db_, "SELECT id, low, high FROM direct");
  for (bool row = direct.start(); row; row = direct.step())
    writer_->load_direct_key(direct.text(1), direct.text(2), direct.integer(0));
  Statement cursors(db_, "SELECT user, delivered FROM cursors");
  for (bool row = cursors.start(); row; row = cursors.step())
    state_->load_cursor(cursors.text(0), static_cast<MessageId>(cursors.integer(1)));
  Statement last_id(db_, "SELECT value FROM meta WHERE key = 'last_id'");
  if (last_id.start()) {
    state_->load_last_id(static_cast<MessageId>(last_id.integer(0)));
    writer_->loaded_last_id(static_cast<MessageId>(last_id.integer(0)));
  }
  last_id.finish();
  Statement accounts(db_, "SELECT user, failures, window_start, blocked_until FROM accounts");
  for (bool row = accounts.start(); row; row = accounts.step()) {
    state_->load_account(accounts.text(0), {static_cast<std::uint32_t>(accounts.integer(1)),
                                            accounts.integer(2), accounts.integer(3)});
  }
  Statement addresses(db_, "SELECT user, address, failures, blocked_until, known FROM addresses");
  for (bool row = addresses.start(); row; row = addresses.step()) {
    state_->load_address(addresses.text(0), addresses.text(1),
                         {static_cast<std::uint32_t>(addresses.integer(2)), addresses.integer(3),
                          addresses.integer(4) != 0});
  }
}

void SqliteStoreImpl::write_batch(std::vector<std::unique_ptr<Operation>>& batch) {
  const auto changes_before = sqlite3_total_changes64(db_);
  std::string error;
  try {
    exec(db_, "BEGIN");
    for (auto& operation : batch) {
      if (!operation->reads()) operation->run();
    }
    writer_->end_batch(state_->last_id());
    exec(db_, "COMMIT");
  } catch (const SqlError& e) {
    error = e.what();
  }
  const bool committed = error.empty();
  if (!committed) {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    // The rows are the truth: what the state did in the failed batch is undone.
    try {
      load();
    } catch (const SqlError& e) {
      error += fmt::format("; reading it back failed too ({})", e.what());
    }
    if (!failing_) {
      log(LogLevel::error,
          fmt::format("cannot write the database {}: {}; refusing what it could not keep until "
                      "a write succeeds",
                      options_.file.string(), error));
    }
    failing_ = true;
  } else if (failing_ && sqlite3_total_changes64(db_) != changes_before) {
    // Only a batch that wrote rows shows that writing works again.
    log(LogLevel::info, fmt::format("writing the database {} again", options_.file.string()));
    failing_ = false;
  }
  {
    const std::lock_guard lock(mutex_);
    if (committed) {
      ++stats_.commits;
      stats_.operations += batch.size();
    } else {
      ++stats_.failed_batches;
    }
  }
  for (auto& operation : batch) {
    if (operation->reads()) operation->run();
  }
  for (auto& operation : batch)
    operation->finish(committed);
}

MissedPage SqliteStoreImpl::read_missed(const std::string& user, MessageId after,
                                        std::size_t limit) {
  std::vector<MissedMessage> candidates;
  const auto collect = [&](std::int64_t key, const std::string& group, MessageId floor) {
    auto& query = writer_->missed_in;
    for (bool row = query.start(key, std::max(after, floor), user, std::int64_t(limit + 1)); row;
         row = query.step()) {
      candidates.push_back({static_cast<MessageId>(query.integer(0)), group, query.text(1),
                            query.integer(2), query.text(3)});
    }
  };
  for (const auto key : writer_->direct_of(user))
    collect(key, {}, 0);
  for (const auto& [group, joined_after] : state_->joined_groups(user))
    collect(writer_->group_key(group), group, joined_after);
  return core::oldest_missed(after, std::move(candidates), limit);
}

HistoryResult SqliteStoreImpl::read_history(const HistoryRequest& request) {
  const auto scope = state_->history_scope(request);
  HistoryResult result{scope.outcome, scope.kind, {}, false};
  if (!scope.outcome.ok()) return result;
  const std::int64_t key = scope.kind == protocol::ConversationKind::group
                               ? writer_->group_key(request.name)
                               : writer_->direct_key(request.user, request.name);
  if (key == 0) return result;
  const auto limit = core::history_limit(request);
  // One more than the page shows whether further messages exist.
  const auto wanted = static_cast<std::int64_t>(limit + 1);
  const auto floor = static_cast<std::int64_t>(scope.visible_after);
  const auto read = [&](Statement& query, bool row) {
    for (; row; row = query.step()) {
      result.entries.push_back({static_cast<MessageId>(query.integer(0)), query.text(1),
                                query.integer(2), query.text(3)});
    }
    result.more = result.entries.size() > limit;
    if (result.more) result.entries.resize(limit);
  };
  if (request.direction == protocol::HistoryDirection::after) {
    auto& query = writer_->page_oldest;
    read(query,
         query.start(key, std::max(floor, static_cast<std::int64_t>(request.anchor)), wanted));
  } else {
    const std::int64_t before = request.direction == protocol::HistoryDirection::before
                                    ? static_cast<std::int64_t>(request.anchor)
                                    : std::numeric_limits<std::int64_t>::max();
    auto& query = writer_->page_newest;
    read(query, query.start(key, floor, before, wanted));
    std::reverse(result.entries.begin(), result.entries.end());
  }
  return result;
}

// Bounded steps, so a large backlog never stalls the writer: each pass
// removes at most a few thousand rows per conversation and the next pass
// goes on.
void SqliteStoreImpl::enforce_retention() {
  constexpr std::int64_t step = 2000;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_retention_) return;
  next_retention_ = now + options_.retention_interval;
  if (policy_.history_days == 0 && policy_.history_max == 0) return;
  const auto cutoff = wall_micros() - std::int64_t{policy_.history_days} * 86'400'000'000;
  try {
    exec(db_, "BEGIN");
    if (policy_.history_days != 0) {
      for (const auto key : writer_->every_conversation())
        writer_->expire_old.run(key, cutoff, step);
    }
    if (policy_.history_max != 0) {
      for (const auto key : writer_->take_touched())
        writer_->expire_over.run(key, static_cast<std::int64_t>(policy_.history_max));
    }
    exec(db_, "COMMIT");
  } catch (const SqlError& e) {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    log(LogLevel::warn,
        fmt::format("removing old messages from {} failed: {}", options_.file.string(), e.what()));
  }
}

void SqliteStoreImpl::limit_growth(std::uint32_t pages) {
  std::promise<void> applied;
  auto result = applied.get_future();
  post<bool>([this, pages, &applied] {
    Statement count(db_, "PRAGMA page_count");
    count.step();
    const std::int64_t limit = pages == 0 ? std::int64_t{0xfffffffe} : count.integer(0) + pages;
    count.finish();
    Statement set(db_, fmt::format("PRAGMA max_page_count = {}", limit).c_str());
    set.finish();
    applied.set_value();
    return true;
  });
  result.wait();
}

}  // namespace

std::shared_ptr<SqliteStore> SqliteStore::open(const SqliteStoreOptions& options,
                                               std::error_code& ec, std::string& problem) {
  auto store = std::make_shared<SqliteStoreImpl>(options);
  if (!store->start(problem)) {
    ec = make_error_code(errc::service_unavailable);
    return nullptr;
  }
  ec.clear();
  problem.clear();
  return store;
}

}  // namespace tessenger::store

namespace tessenger {

std::shared_ptr<Store> open_sqlite_store(const SqliteStoreOptions& options, std::error_code& ec,
                                         std::string& problem) {
  return store::SqliteStore::open(options, ec, problem);
}

}  // namespace tessenger
