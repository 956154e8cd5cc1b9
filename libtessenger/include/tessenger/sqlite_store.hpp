#pragma once

// The durable Store: one SQLite file (WAL mode), written by one thread of
// its own that commits every queued operation of a batch in one transaction
// and calls their `done` only after that commit. docs/storage.md describes
// the schema, what survives what, and the start errors.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <tessenger/export.hpp>
#include <tessenger/server_types.hpp>
#include <tessenger/store.hpp>

namespace tessenger {

struct SqliteStoreOptions {
  /// The database; created if missing (its directory must exist).
  std::filesystem::path file;
  /// normal: a commit reaches the OS before `done` (survives a crash of the
  /// process); full: it reaches the disk too (survives a power loss), at the
  /// cost of an fsync per batch.
  enum class Sync { normal, full } sync = Sync::normal;
  /// Failed commits and other problems of the writer thread; called from it.
  LogSink log;
  /// How often the writer removes what StorePolicy's history_days and
  /// history_max no longer keep (in its own short transactions, between batches).
  std::chrono::milliseconds retention_interval = std::chrono::seconds(60);
};

/// Opens (or creates) the database and starts its writer thread. On failure
/// returns null, sets `ec` (errc::service_unavailable) and `problem` to one
/// sentence naming the file and the reason: unreadable, not a database or
/// corrupt, in use by another server, or written by a newer version. An
/// existing file is never replaced by a fresh one.
///
/// A batch whose commit fails (a full disk, an I/O error) keeps nothing:
/// each of its operations ends with errc::service_unavailable (login_failed
/// with nothing blocked), the failure is logged once until a commit succeeds
/// again, and later batches try again. Destroying the store commits what is
/// queued, then closes the file.
TESSENGER_EXPORT std::shared_ptr<Store> open_sqlite_store(const SqliteStoreOptions& options,
                                                          std::error_code& ec,
                                                          std::string& problem);

}  // namespace tessenger
