#pragma once

// The SQLite store's class, for the tests that look inside: how it commits,
// and a way to make its file full.

#include <cstdint>
#include <memory>

#include <tessenger/sqlite_store.hpp>

namespace tessenger::store {

struct SqliteStats {
  std::uint64_t commits = 0;     ///< batches committed
  std::uint64_t operations = 0;  ///< operations in committed batches
  std::uint64_t failed_batches = 0;
};

class SqliteStore : public Store {
 public:
  /// As open_sqlite_store().
  static std::shared_ptr<SqliteStore> open(const SqliteStoreOptions& options, std::error_code& ec,
                                           std::string& problem);

  virtual SqliteStats stats() const = 0;
  /// Lets the file grow by at most `pages` more pages (SQLITE_FULL past
  /// them), or by any number with 0; returns once the writer has done it.
  virtual void limit_growth(std::uint32_t pages) = 0;
};

}  // namespace tessenger::store
