#include "core/credentials.hpp"

#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "core/text.hpp"

namespace tessenger {

Authenticator::~Authenticator() = default;

namespace core {
namespace {

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Length is not secret; the content comparison must not stop early.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

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
    if (!result.passwords.emplace(username, password).second) {
      result.problems.push_back({line_number, fmt::format("duplicate username '{}'", username)});
    }
  }
  return result;
}

TableAuthenticator::TableAuthenticator(std::unordered_map<std::string, std::string> passwords)
    : passwords_(std::move(passwords)) {}

const std::string* TableAuthenticator::find(std::string_view username) const {
  const auto it = passwords_.find(std::string(username));
  return it == passwords_.end() ? nullptr : &it->second;
}

bool TableAuthenticator::exists(std::string_view username) const {
  return find(username) != nullptr;
}

bool TableAuthenticator::verify(std::string_view username, std::string_view password) const {
  const auto* stored = find(username);
  return stored != nullptr && constant_time_equal(*stored, password);
}

}  // namespace core

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
