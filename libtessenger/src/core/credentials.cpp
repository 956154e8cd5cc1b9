#include "core/credentials.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "core/text.hpp"

namespace tessenger {

Authenticator::~Authenticator() = default;

bool Authenticator::slow(std::string_view) const {
  return false;
}

namespace core {
namespace {

void init_sodium() {
  if (::sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
}

using Digest = std::array<unsigned char, crypto_generichash_BYTES>;

// Keyed with a secret of this process, so digests of guesses reveal nothing.
Digest digest(std::string_view text) {
  static const auto key = [] {
    init_sodium();
    std::array<unsigned char, crypto_generichash_KEYBYTES> k{};
    ::randombytes_buf(k.data(), k.size());
    return k;
  }();
  Digest out{};
  ::crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), key.data(), key.size());
  return out;
}

// Comparing fixed-size digests in constant time hides where two passwords
// differ and also how long the stored one is.
bool constant_time_equal(std::string_view a, std::string_view b) {
  const auto da = digest(a);
  const auto db = digest(b);
  return ::sodium_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace

bool is_password_hash(std::string_view secret) noexcept {
  return secret.starts_with("$argon2id$") || secret.starts_with("$argon2i$");
}

ParsedCredentials parse_credentials(std::string_view content) {
  ParsedCredentials result;
  std::size_t line_number = 0;
  while (!content.empty()) {
    ++line_number;
    const auto end = content.find('\n');
    std::string_view line = content.substr(0, end);
    content = end == std::string_view::npos ? std::string_view{} : content.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;

    const auto space = line.find(' ');
    if (space == std::string_view::npos) {
      result.problems.push_back({line_number, "expected 'username password'"});
      continue;
    }
    const auto username = line.substr(0, space);
    const auto password = line.substr(space + 1);
    if (!is_valid_username(username)) {
      result.problems.push_back(
          {line_number, "invalid username (1-32 characters of A-Z a-z 0-9 _ - .)"});
      continue;
    }
    if (password.empty() || password.find_first_of(" \t") != std::string_view::npos) {
      result.problems.push_back(
          {line_number, "expected exactly one space between username and password"});
      continue;
    }
    if (std::any_of(password.begin(), password.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      result.problems.push_back({line_number, "the password holds a control character"});
      continue;
    }
    // Reading the parameters costs no hashing; a bad hash would only ever
    // refuse its user, so it is reported now.
    if (is_password_hash(password) &&
        ::crypto_pwhash_str_needs_rehash(std::string(password).c_str(),
                                         crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                         crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0) {
      result.problems.push_back({line_number, "malformed Argon2 password hash"});
      continue;
    }
    if (!result.passwords.emplace(username, password).second) {
      result.problems.push_back({line_number, fmt::format("duplicate username '{}'", username)});
    }
  }
  return result;
}

TableAuthenticator::TableAuthenticator(std::unordered_map<std::string, std::string> passwords) {
  init_sodium();
  entries_.reserve(passwords.size());
  for (auto& [username, secret] : passwords) {
    const bool hashed = is_password_hash(secret);
    if (!hashed) ++plain_;
    entries_.emplace(username, Entry{std::move(secret), hashed});
  }
}

const TableAuthenticator::Entry* TableAuthenticator::find(std::string_view username) const {
  const auto it = entries_.find(std::string(username));
  return it == entries_.end() ? nullptr : &it->second;
}

bool TableAuthenticator::exists(std::string_view username) const {
  return find(username) != nullptr;
}

bool TableAuthenticator::slow(std::string_view username) const {
  const auto* entry = find(username);
  return entry != nullptr && entry->hashed;
}

bool TableAuthenticator::verify(std::string_view username, std::string_view password) const {
  const auto* entry = find(username);
  if (entry == nullptr) return false;
  if (!entry->hashed) return constant_time_equal(entry->secret, password);
  return ::crypto_pwhash_str_verify(entry->secret.c_str(), password.data(), password.size()) == 0;
}

}  // namespace core

std::string hash_password(std::string_view password) {
  core::init_sodium();
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (::crypto_pwhash_str(out.data(), password.data(), password.size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("out of memory while hashing the password");
  }
  return out.data();
}

std::shared_ptr<const Authenticator> load_credentials_file(const std::filesystem::path& path,
                                                           const LogSink& sink) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::system_error(std::make_error_code(std::errc::no_such_file_or_directory),
                            fmt::format("cannot read credentials file '{}'", path.string()));
  }
  std::ostringstream content;
  content << in.rdbuf();
  auto parsed = core::parse_credentials(content.str());
  if (sink.enabled(LogLevel::warn)) {
    for (const auto& problem : parsed.problems) {
      sink.write(LogLevel::warn, fmt::format("{}:{}: {}; line skipped", path.string(), problem.line,
                                             problem.reason));
    }
  }
  return std::make_shared<core::TableAuthenticator>(std::move(parsed.passwords));
}

}  // namespace tessenger
