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
  std::unordered_map<std::string, std::string> passwords;  ///< username -> password
  std::vector<CredentialsProblem> problems;
};

/// Parses `username password` lines. Blank lines and lines starting with `#`
/// are ignored; malformed lines are reported and skipped; a repeated username
/// keeps its first entry.
ParsedCredentials parse_credentials(std::string_view content);

/// An Authenticator over an in-memory username -> password table.
class TableAuthenticator final : public Authenticator {
 public:
  explicit TableAuthenticator(std::unordered_map<std::string, std::string> passwords);
  bool exists(std::string_view username) const override;
  bool verify(std::string_view username, std::string_view password) const override;
  std::size_t size() const noexcept { return passwords_.size(); }

 private:
  const std::string* find(std::string_view username) const;
  std::unordered_map<std::string, std::string> passwords_;
};

}  // namespace tessenger::core
