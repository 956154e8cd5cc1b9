#include "completion.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>

#include "commands.hpp"

namespace tessenger::app {
namespace {

enum class Kind { none, user, group, user_or_group, path };

// What the argument at `index` (0 = the first after the command) is.
Kind argument_kind(std::string_view command, std::size_t index) {
  if (command == "msgto" || command == "p2pvideo") {
    if (index == 0) return Kind::user;
    return command == "p2pvideo" ? Kind::path : Kind::none;
  }
  if (command == "creategroup") return index == 0 ? Kind::none : Kind::user;
  if (command == "joingroup" || command == "leavegroup" || command == "deletegroup" ||
      command == "groupmsg") {
    return index == 0 ? Kind::group : Kind::none;
  }
  if (command == "history") return index == 0 ? Kind::user_or_group : Kind::none;
  return Kind::none;
}

std::string common_prefix(const std::vector<std::string>& words) {
  if (words.empty()) return {};
  std::string prefix = words.front();
  for (const auto& word : words) {
    const auto [a, b] = std::mismatch(prefix.begin(), prefix.end(), word.begin(), word.end());
    prefix.erase(static_cast<std::size_t>(a - prefix.begin()));
  }
  return prefix;
}

bool lower_starts_with(std::string_view word, std::string_view prefix) {
  return word.size() >= prefix.size() && lower(word.substr(0, prefix.size())) == lower(prefix);
}

// Completes `word` to one of `candidates` (prefix match; any case when
// `fold_case`, replacing the typed word with the candidate's spelling).
Completion complete_word(std::string_view word, std::vector<std::string> candidates,
                         bool fold_case) {
  std::vector<std::string> matching;
  for (auto& candidate : candidates) {
    if (fold_case ? lower_starts_with(candidate, word) : candidate.starts_with(word)) {
      matching.push_back(std::move(candidate));
    }
  }
  std::sort(matching.begin(), matching.end());
  matching.erase(std::unique(matching.begin(), matching.end()), matching.end());
  Completion result;
  if (matching.empty()) return result;
  if (matching.size() == 1) {
    result.erase = fold_case ? word.size() : 0;
    result.insert = (fold_case ? matching[0] : matching[0].substr(word.size())) + " ";
    return result;
  }
  auto keys = matching;
  if (fold_case) {
    for (auto& key : keys)
      key = lower(key);
  }
  const auto prefix = common_prefix(keys);
  if (prefix.size() > word.size()) {
    result.erase = fold_case ? word.size() : 0;
    result.insert = fold_case ? prefix : prefix.substr(word.size());
    return result;
  }
  result.choices = std::move(matching);
  return result;
}

// Completes a local path; `typed` is FILE as typed so far, maybe opened
// with a quote and starting with "~/".
Completion complete_path(std::string_view typed) {
  std::optional<char> quote;
  if (!typed.empty() && (typed[0] == '"' || typed[0] == '\'')) {
    quote = typed[0];
    typed.remove_prefix(1);
  }
  const auto slash = typed.rfind('/');
  const std::string dir_typed(slash == std::string_view::npos ? "" : typed.substr(0, slash + 1));
  const std::string base(slash == std::string_view::npos ? typed : typed.substr(slash + 1));
  std::string dir = dir_typed.empty() ? "." : dir_typed;
  if (dir.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    dir = std::string(home ? home : "") + dir.substr(1);
  }
  std::vector<std::string> names;
  std::vector<std::string> directories;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    // Hidden files only when asked for by their leading dot.
    if (name.starts_with('.') && !base.starts_with('.')) continue;
    if (!name.starts_with(base)) continue;
    std::error_code type_ec;
    if (entry.is_directory(type_ec)) directories.push_back(name);
    names.push_back(std::move(name));
  }
  Completion result;
  if (names.empty()) return result;
  if (names.size() == 1) {
    const bool directory = !directories.empty();
    result.insert = names[0].substr(base.size());
    if (directory) {
      result.insert += '/';
    } else if (quote) {
      result.insert += *quote;
    }
    return result;
  }
  std::sort(names.begin(), names.end());
  if (const auto prefix = common_prefix(names); prefix.size() > base.size()) {
    result.insert = prefix.substr(base.size());
    return result;
  }
  for (auto& name : names) {
    const bool directory =
        std::find(directories.begin(), directories.end(), name) != directories.end();
    result.choices.push_back(directory ? name + "/" : name);
  }
  return result;
}

}  // namespace

Completion complete_line(std::string_view before_cursor, const CompletionSources& sources) {
  constexpr std::string_view blanks = " \t";
  const auto start = before_cursor.find_first_not_of(blanks);
  if (start == std::string_view::npos) return {};
  std::string_view line = before_cursor.substr(start);
  const auto command_end = line.find_first_of(blanks);
  if (command_end == std::string_view::npos) {
    // The command name itself; offered with a slash unless typed without.
    const bool slash = line.starts_with('/');
    std::vector<std::string> names;
    for (const auto& info : command_table())
      names.push_back((slash ? "/" : "") + std::string(info.name));
    return complete_word(line, std::move(names), true);
  }
  auto command = lower(line.substr(0, command_end));
  if (command.starts_with('/')) command.erase(0, 1);
  std::string_view rest = line.substr(command_end);

  // The arguments typed before the word being completed.
  std::size_t index = 0;
  for (;;) {
    const auto word_start = rest.find_first_not_of(blanks);
    if (word_start == std::string_view::npos) {
      rest = {};
      break;
    }
    rest.remove_prefix(word_start);
    const auto kind = argument_kind(command, index);
    // FILE is the rest of the line: it may hold blanks.
    if (kind == Kind::path) return complete_path(rest);
    const auto word_end = rest.find_first_of(blanks);
    if (word_end == std::string_view::npos) break;
    rest.remove_prefix(word_end);
    ++index;
  }
  switch (argument_kind(command, index)) {
    case Kind::user:
      return complete_word(rest, sources.users, false);
    case Kind::group:
      return complete_word(rest, sources.groups, false);
    case Kind::user_or_group: {
      auto names = sources.users;
      names.insert(names.end(), sources.groups.begin(), sources.groups.end());
      return complete_word(rest, std::move(names), false);
    }
    case Kind::path:
      return complete_path(rest);
    case Kind::none:
      break;
  }
  if (command == "help" && index == 0) {
    std::vector<std::string> names;
    for (const auto& info : command_table())
      names.emplace_back(info.name);
    return complete_word(rest, std::move(names), true);
  }
  return {};
}

}  // namespace tessenger::app
