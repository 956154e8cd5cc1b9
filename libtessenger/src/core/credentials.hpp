#pragma once

// The credentials file format (SPEC §3), parsed without I/O so it can be unit
// tested and fuzzed on strings.

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tessenger/server_types.hpp>

namespace tessenger::core {

struct CredentialsProblem {
  std::size_t line = 0;  ///< 1-based
  std::string reason;
};

struct ParsedCredentials {
  /// username -> password, or its Argon2 hash (see is_password_hash)
  std::unordered_map<std::string, std::string> passwords;
  std::vector<CredentialsProblem> problems;
};

/// True if a credentials entry is a password hash (`$argon2id$…` or
/// `$argon2i$…`, as crypto_pwhash_str writes) rather than the password itself.
bool is_password_hash(std::string_view secret) noexcept;

/// Parses `username password` and `username HASH` lines. Blank lines and
/// lines starting with `#` are ignored; malformed lines (including a hash
/// libsodium cannot read) are reported and skipped; a repeated username keeps
/// its first entry.
ParsedCredentials parse_credentials(std::string_view content);

/// An Authenticator over an in-memory username -> password-or-hash table.
/// Immutable once built, so its calls are safe from any thread.
class TableAuthenticator final : public Authenticator {
 public:
  explicit TableAuthenticator(std::unordered_map<std::string, std::string> passwords);
  bool exists(std::string_view username) const override;
  /// Argon2 verification for a hash; for a plain entry, a comparison whose
  /// time depends on neither password's content nor length.
  bool verify(std::string_view username, std::string_view password) const override;
  bool slow(std::string_view username) const override;
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t plain_count() const noexcept { return plain_; }

 private:
  struct Entry {
    std::string secret;
    bool hashed = false;
  };
  const Entry* find(std::string_view username) const;
  std::unordered_map<std::string, Entry> entries_;
  std::size_t plain_ = 0;
};

}  // namespace tessenger::core
