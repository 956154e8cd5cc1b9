// What only the SQLite store does: keep everything across a close and a
// reopen, refuse files it must not use with one clear sentence, commit
// batches as one, and refuse a batch it could not commit.

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <latch>
#include <mutex>

#include "store/sqlite_store.hpp"
#include "store_calls.hpp"
#include "temp_dir.hpp"

using tessenger::errc;
using tessenger::store::SqliteStore;
using namespace tessenger::testing;

namespace {

struct Opened {
  std::shared_ptr<SqliteStore> store;
  std::string problem;
};

Opened open_at(const std::filesystem::path& file, tessenger::LogSink log = {}) {
  tessenger::SqliteStoreOptions options;
  options.file = file;
  options.log = std::move(log);
  std::error_code ec;
  Opened opened;
  opened.store = SqliteStore::open(options, ec, opened.problem);
  CHECK(static_cast<bool>(ec) == !opened.store);
  if (opened.store) opened.store->configure(test_policy());
  return opened;
}

std::shared_ptr<SqliteStore> open_ok(const std::filesystem::path& file) {
  auto opened = open_at(file);
  REQUIRE_MESSAGE(opened.store, opened.problem);
  return opened.store;
}

void set_user_version(const std::filesystem::path& file, int version) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  const std::string sql = "PRAGMA user_version = " + std::to_string(version);
  CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

// Opens `file` in a child running as nobody (root ignores permissions), and
// returns the problem it reported.
std::string problem_as_nobody(const std::filesystem::path& file) {
  int pipe_ends[2];
  REQUIRE(::pipe(pipe_ends) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_ends[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    tessenger::SqliteStoreOptions options;
    options.file = file;
    std::error_code ec;
    std::string problem;
    const bool opened = tessenger::open_sqlite_store(options, ec, problem) != nullptr;
    if (!opened && ::write(pipe_ends[1], problem.data(), problem.size()) < 0) ::_exit(3);
    ::_exit(opened ? 1 : 0);
  }
  ::close(pipe_ends[1]);
  std::string problem;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_ends[0], buffer, sizeof buffer)) > 0;)
    problem.append(buffer, static_cast<std::size_t>(n));
  ::close(pipe_ends[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return problem;
}

// Keeps the writer thread busy (in the `done` of a block check, after its
// batch) until release(), so that what is posted meanwhile forms one batch.
class WriterHeld {
 public:
  explicit WriterHeld(tessenger::Store& store) {
    store.is_blocked("nobody", "10.0.0.0", t0, [this](bool) {
      held_.count_down();
      hold_.wait();
    });
    held_.wait();
  }
  ~WriterHeld() { release(); }
  void release() {
    if (!released_.exchange(true)) hold_.count_down();
  }

 private:
  std::latch hold_{1};
  std::latch held_{1};
  std::atomic<bool> released_{false};
};

}  // namespace

TEST_CASE("sqlite: groups, memberships, blocks, known addresses and ids survive a reopen") {
  TempDir dir{"tessenger-store"};
  const auto file = dir / "tessenger.db";
  tessenger::MessageId group_id = 0;
  tessenger::MessageId direct_id = 0;
  {
    auto store = open_ok(file);
    Calls c{*store};
    REQUIRE(c.create("g", "alice", {"bob", "carol"}).ok());
    REQUIRE(c.join("g", "bob").ok());
    REQUIRE(c.create("h", "alice", {"dave"}).ok());
    REQUIRE(c.create("gone", "erin").ok());
    REQUIRE(c.leave("gone", "erin").removed);
    c.say("g", "alice");
    group_id = c.say("g", "bob").id;
    c.tell("bob", "alice");
    direct_id = c.tell("alice", "bob").id;
    for (int i = 0; i < 3; ++i)
      c.fail("alice", "10.0.0.1", t0);
    store->login_succeeded("bob", "192.0.2.7");
    for (int i = 0; i < 6; ++i)
      c.fail("bob", "10.9.9." + std::to_string(i), t0);
  }
  auto store = open_ok(file);
  Calls c{*store};
  CHECK(c.create("g", "zed").code == errc::group_exists);
  CHECK(c.join("g", "bob").code == errc::already_joined);
  CHECK(c.join("g", "carol").ok());
  CHECK(c.join("gone", "erin").code == errc::group_not_found);
  const auto next = c.say("g", "alice");
  // One id sequence, continued after the reopen.
  CHECK(group_id < direct_id);
  CHECK(next.id == direct_id + 1);
  CHECK(next.recipients == std::vector<std::string>{"bob", "carol"});
  CHECK(c.tell("bob", "alice").id == next.id + 1);
  CHECK(c.tell("alice", "zoe").id == next.id + 2);
  // alice's quota still counts g and h: a third group is refused.
  CHECK(c.create("third", "alice").code == errc::limit_reached);
  // A block is still in force; bob's account-wide one spares his known address.
  CHECK(c.blocked("alice", "10.0.0.1", t0 + second));
  CHECK_FALSE(c.blocked("alice", "10.0.0.2", t0 + second));
  CHECK(c.blocked("bob", "10.1.1.1", t0 + second));
  CHECK_FALSE(c.blocked("bob", "192.0.2.7", t0 + second));
  CHECK_FALSE(c.blocked("alice", "10.0.0.1", t0 + 10 * second));
  // The membership order is kept: the creator first, then the invited.
  const auto left = c.leave("h", "alice");
  CHECK(left.removed);
  REQUIRE(left.remaining.size() == 1);
  CHECK(left.remaining[0].name == "dave");
}

TEST_CASE("sqlite: a missing database is created, in a directory that exists") {
  TempDir dir{"tessenger-store"};
  CHECK(open_ok(dir / "new.db"));
  CHECK(std::filesystem::exists(dir / "new.db"));
  const auto missing = open_at(dir / "no-such-dir" / "tessenger.db");
  CHECK_FALSE(missing.store);
  CHECK(missing.problem.find("no-such-dir/tessenger.db cannot be opened") != std::string::npos);
}

TEST_CASE("sqlite: a file that is not a database is refused and left as it was") {
  TempDir dir{"tessenger-store"};
  const std::string garbage(8192, 'x');
  dir.write("tessenger.db", garbage);
  const auto opened = open_at(dir / "tessenger.db");
  CHECK_FALSE(opened.store);
  CHECK(opened.problem == "the database " + (dir / "tessenger.db").string() +
                              " is corrupt or not a database (file is not a database)");
  std::ifstream in(dir / "tessenger.db", std::ios::binary);
  const std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(kept == garbage);
}

TEST_CASE("sqlite: a second store on the same file fails at once while the first is open") {
  TempDir dir{"tessenger-store"};
  const auto file = dir / "tessenger.db";
  {
    auto first = open_ok(file);
    REQUIRE(Calls{*first}.create("g", "alice").ok());
    const auto second = open_at(file);
    CHECK_FALSE(second.store);
    CHECK(second.problem ==
          "the database " + file.string() + " is in use by another server (it is locked)");
  }
  auto again = open_ok(file);
  CHECK(Calls{*again}.create("g", "bob").code == errc::group_exists);
}

TEST_CASE("sqlite: a database of a newer schema is refused") {
  TempDir dir{"tessenger-store"};
  const auto file = dir / "tessenger.db";
  open_ok(file);
  set_user_version(file, 99);
  const auto opened = open_at(file);
  CHECK_FALSE(opened.store);
  CHECK(opened.problem == "the database " + file.string() +
                              " has schema version 99, newer than the 2 this server knows; use "
                              "the tessenger-server that wrote it or a newer one");
}

TEST_CASE("sqlite: a read-only directory and an unreadable file are refused") {
  TempDir dir{"tessenger-store"};
  std::filesystem::create_directory(dir / "ro");
  ::chmod((dir / "ro").c_str(), 0555);
  CHECK(problem_as_nobody(dir / "ro" / "tessenger.db")
            .starts_with("the database " + (dir / "ro" / "tessenger.db").string() +
                         " cannot be opened for reading and writing"));

  std::filesystem::create_directory(dir / "rw");
  ::chmod((dir / "rw").c_str(), 0777);
  const auto file = dir / "rw" / "tessenger.db";
  open_ok(file);
  ::chmod(file.c_str(), 0);
  CHECK(problem_as_nobody(file).starts_with("the database " + file.string() +
                                            " cannot be opened for reading and writing"));
}

TEST_CASE("sqlite: what is queued while a batch is written is committed as one batch") {
  TempDir dir{"tessenger-store"};
  auto store = open_ok(dir / "tessenger.db");
  Calls{*store}.create("g", "alice");  // configure and this: committed before what follows
  const auto before = store->stats();

  WriterHeld held(*store);
  std::atomic<int> answered{0};
  std::promise<void> all;
  constexpr int queued = 100;
  for (int i = 0; i < queued; ++i) {
    store->append_group_message("g", "alice", "text", t0, [&](tessenger::StoredGroupMessage m) {
      CHECK(m.outcome.ok());
      if (++answered == queued) all.set_value();
    });
  }
  held.release();
  all.get_future().wait();
  const auto after = store->stats();
  CHECK(after.commits - before.commits == 2);
  CHECK(after.operations - before.operations == queued + 1);
  CHECK(Calls{*store}.say("g", "alice").id == queued + 1);
}

TEST_CASE(
    "sqlite: a batch whose commit fails is refused whole, logged once, then writing resumes") {
  TempDir dir{"tessenger-store"};
  const auto file = dir / "tessenger.db";
  std::mutex mutex;
  std::vector<std::string> errors;
  tessenger::LogSink log;
  log.write = [&](tessenger::LogLevel level, std::string_view text) {
    const std::lock_guard lock(mutex);
    if (level == tessenger::LogLevel::error) errors.emplace_back(text);
  };
  tessenger::MessageId last = 0;
  {
    auto store = open_at(file, log).store;
    REQUIRE(store);
    Calls c{*store};
    REQUIRE(c.create("g", "alice", {"bob"}).ok());
    last = c.say("g", "alice").id;
    store->limit_growth(2);
    const std::string big(16 * 1024, 'm');
    int refused = 0;
    for (int i = 0; i < 20 && refused < 3; ++i) {
      const auto stored = c.say("g", "alice", big);
      if (stored.outcome.code == errc::service_unavailable) {
        ++refused;
      } else {
        REQUIRE(stored.outcome.ok());
        last = stored.id;
      }
    }
    REQUIRE(refused == 3);
    // A join that needs no new page is refused too when its batch fails,
    // and not kept.
    {
      WriterHeld held(*store);
      auto join = std::make_shared<std::promise<tessenger::StoreOutcome>>();
      store->join_group("g", "bob", [join](tessenger::StoreOutcome o) { join->set_value(o); });
      auto direct = std::make_shared<std::promise<tessenger::StoredMessage>>();
      store->append_direct_message("alice", "bob", big, t0,
                                   [direct](tessenger::StoredMessage m) { direct->set_value(m); });
      held.release();
      CHECK(join->get_future().get().code == errc::service_unavailable);
      CHECK(direct->get_future().get().outcome.code == errc::service_unavailable);
    }
    {
      const std::lock_guard lock(mutex);
      REQUIRE(errors.size() == 1);
      CHECK(errors[0].starts_with("cannot write the database " + file.string() +
                                  ": database or disk is full"));
    }
    CHECK(store->stats().failed_batches == 4);

    store->limit_growth(0);
    CHECK(c.join("g", "bob").ok());
    const auto resumed = c.say("g", "alice", big);
    CHECK(resumed.outcome.ok());
    CHECK(resumed.id == last + 1);
    last = resumed.id;
    const auto direct = c.tell("alice", "bob");
    CHECK(direct.id == last + 1);
    last = direct.id;
  }
  auto store = open_ok(file);
  Calls c{*store};
  CHECK(c.join("g", "bob").code == errc::already_joined);
  CHECK(c.say("g", "bob").id == last + 1);
  const std::lock_guard lock(mutex);
  CHECK(errors.size() == 1);
}

TEST_CASE("sqlite: history, what was delivered and the id sequence survive a reopen") {
  TempDir dir("tessenger-sqlite");
  const auto file = dir / "tessenger.db";
  tessenger::MessageId first = 0;
  tessenger::MessageId last = 0;
  {
    auto store = open_ok(file);
    Calls c{*store};
    REQUIRE(c.create("team", "alice", {"bob"}).ok());
    REQUIRE(c.join("team", "bob").ok());
    first = c.tell("alice", "bob", "one \xf0\x9f\x98\x80").id;
    c.say("team", "alice", "two");
    last = c.tell("bob", "alice", "three").id;
    store->delivered({{"bob", first}});
  }
  auto store = open_ok(file);
  Calls c{*store};
  const auto page = c.history("bob", "alice");
  REQUIRE(page.entries.size() == 2);
  CHECK(page.entries[0].text == "one \xf0\x9f\x98\x80");
  CHECK(page.entries[1].id == last);
  CHECK(c.history("bob", "team").entries.size() == 1);
  const auto missed = c.missed_since_delivered("bob");
  CHECK(missed.after == first);
  REQUIRE(missed.messages.size() == 1);
  CHECK(missed.messages[0].group == "team");
  CHECK(c.tell("carol", "dave").id == last + 1);
}

TEST_CASE("sqlite: a version 1 database is migrated: one id sequence, in the order sent") {
  TempDir dir("tessenger-sqlite");
  const auto file = dir / "tessenger.db";
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    // The schema and rows a version 1 server wrote: ids per conversation.
    const char* v1 = R"sql(
CREATE TABLE groups (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
  creator TEXT NOT NULL, created INTEGER NOT NULL, last_id INTEGER NOT NULL);
CREATE TABLE members (group_id INTEGER NOT NULL, user TEXT NOT NULL, joined INTEGER NOT NULL,
  position INTEGER NOT NULL, PRIMARY KEY (group_id, user)) WITHOUT ROWID;
CREATE TABLE direct (id INTEGER PRIMARY KEY AUTOINCREMENT, low TEXT NOT NULL, high TEXT NOT NULL,
  last_id INTEGER NOT NULL, UNIQUE (low, high));
CREATE TABLE messages (conversation INTEGER NOT NULL, id INTEGER NOT NULL, sender TEXT NOT NULL,
  time INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (conversation, id)) WITHOUT ROWID;
CREATE TABLE accounts (user TEXT PRIMARY KEY, failures INTEGER NOT NULL,
  window_start INTEGER NOT NULL, blocked_until INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE addresses (user TEXT NOT NULL, address TEXT NOT NULL, failures INTEGER NOT NULL,
  blocked_until INTEGER NOT NULL, known INTEGER NOT NULL, PRIMARY KEY (user, address)) WITHOUT ROWID;
INSERT INTO groups VALUES (1, 'team', 'alice', 0, 2);
INSERT INTO members VALUES (1, 'alice', 1, 0), (1, 'bob', 1, 1);
INSERT INTO direct VALUES (1, 'alice', 'bob', 2);
INSERT INTO messages VALUES (1, 1, 'alice', 10, 'g1'), (-1, 1, 'bob', 20, 'd1'),
  (1, 2, 'bob', 30, 'g2'), (-1, 2, 'alice', 40, 'd2');
PRAGMA user_version = 1;
)sql";
    REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = open_ok(file);
  Calls c{*store};
  const auto group = c.history("bob", "team");
  REQUIRE(group.entries.size() == 2);
  CHECK(group.entries[0].id == 1);
  CHECK(group.entries[0].text == "g1");
  CHECK(group.entries[1].id == 3);
  const auto direct = c.history("alice", "bob");
  REQUIRE(direct.entries.size() == 2);
  CHECK(direct.entries[0].id == 2);
  CHECK(direct.entries[1].id == 4);
  CHECK(direct.entries[1].text == "d2");
  CHECK(c.tell("alice", "bob").id == 5);
  // Nothing was recorded as delivered in version 1: all of it is missed.
  CHECK(c.missed_since_delivered("bob").messages.size() == 3);
}
