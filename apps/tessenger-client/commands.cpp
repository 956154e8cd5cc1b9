#include "commands.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <optional>

namespace tessenger::app {
namespace {

constexpr std::string_view blanks = " \t";

// Splits off the first word; `rest` keeps everything after the blanks that
// follow it, so a message keeps its inner spacing.
std::optional<std::string_view> next_word(std::string_view& rest) {
  const auto start = rest.find_first_not_of(blanks);
  if (start == std::string_view::npos) {
    rest = {};
    return std::nullopt;
  }
  rest.remove_prefix(start);
  const auto end = std::min(rest.find_first_of(blanks), rest.size());
  const auto word = rest.substr(0, end);
  rest.remove_prefix(end);
  const auto after = rest.find_first_not_of(blanks);
  rest.remove_prefix(after == std::string_view::npos ? rest.size() : after);
  return word;
}

bool blank(std::string_view text) {
  return text.find_first_not_of(blanks) == text.npos;
}

// The SPEC's seven first, then the others; /history is the store's.
constexpr std::array<CommandInfo, 11> commands{{
    {"msgto", "/msgto USER MESSAGE", "send USER a private message"},
    {"activeuser", "/activeuser", "list the other users who are online"},
    {"creategroup", "/creategroup GROUP USER [USER...]", "create group GROUP, invite the USERs"},
    {"joingroup", "/joingroup GROUP", "join GROUP, which you were invited to"},
    {"groupmsg", "/groupmsg GROUP MESSAGE", "send a message to the members of GROUP"},
    {"logout", "/logout", "log out; --force cancels running transfers"},
    {"p2pvideo", "/p2pvideo USER FILE", "send FILE to USER, peer to peer"},
    {"leavegroup", "/leavegroup GROUP", "leave GROUP, or decline its invitation"},
    {"deletegroup", "/deletegroup GROUP", "delete GROUP, which you created"},
    {"history", "/history USER|GROUP [N]",
     "show the newest N (1-100, default 20) messages of a conversation; repeat to page back"},
    {"help", "/help [COMMAND]", "list the commands, or explain one"},
}};

std::string usage_of(std::string_view name) {
  return "Usage: " + std::string(find_command(name)->usage);
}

// FILE as the filesystem sees it: quotes around it removed, "~/" expanded.
std::string local_path(std::string_view file) {
  if (file.size() >= 2 && (file.front() == '"' || file.front() == '\'') &&
      file.back() == file.front()) {
    file = file.substr(1, file.size() - 2);
  }
  if (file.starts_with("~/")) {
    if (const char* home = std::getenv("HOME")) return home + std::string(file.substr(1));
  }
  return std::string(file);
}

}  // namespace

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  return result;
}

std::span<const CommandInfo> command_table() {
  return commands;
}

const CommandInfo* find_command(std::string_view name) {
  auto key = lower(name);
  if (key.starts_with('/')) key.erase(0, 1);
  const auto it = std::find_if(commands.begin(), commands.end(),
                               [&](const CommandInfo& info) { return info.name == key; });
  return it == commands.end() ? nullptr : &*it;
}

Command parse_command(std::string_view line) {
  std::string_view rest = line;
  const auto name_word = next_word(rest);
  if (!name_word) return NoCommand{};
  auto name_text = lower(*name_word);
  std::string_view name = name_text;
  if (name.starts_with('/')) name.remove_prefix(1);

  if (name == "msgto") {
    const auto user = next_word(rest);
    if (!user || blank(rest)) return Usage{usage_of(name)};
    return MsgTo{std::string(*user), std::string(rest)};
  }
  if (name == "activeuser") {
    if (!blank(rest)) return Usage{usage_of(name)};
    return ActiveUser{};
  }
  if (name == "creategroup") {
    const auto group = next_word(rest);
    CreateGroup command{group ? std::string(*group) : std::string(), {}};
    while (const auto user = next_word(rest))
      command.users.emplace_back(*user);
    if (!group || command.users.empty()) return Usage{usage_of(name)};
    return command;
  }
  if (name == "joingroup") {
    const auto group = next_word(rest);
    if (!group || !blank(rest)) return Usage{usage_of(name)};
    return JoinGroup{std::string(*group)};
  }
  if (name == "leavegroup") {
    const auto group = next_word(rest);
    if (!group || !blank(rest)) return Usage{usage_of(name)};
    return LeaveGroup{std::string(*group)};
  }
  if (name == "deletegroup") {
    const auto group = next_word(rest);
    if (!group || !blank(rest)) return Usage{usage_of(name)};
    return DeleteGroup{std::string(*group)};
  }
  if (name == "groupmsg") {
    const auto group = next_word(rest);
    if (!group || blank(rest)) return Usage{usage_of(name)};
    return GroupMsg{std::string(*group), std::string(rest)};
  }
  if (name == "p2pvideo") {
    const auto user = next_word(rest);
    if (!user || blank(rest)) return Usage{usage_of(name)};
    const auto file = rest.substr(0, rest.find_last_not_of(blanks) + 1);
    return P2pVideo{std::string(*user), std::string(file), local_path(file)};
  }
  if (name == "history") {
    const auto target = next_word(rest);
    if (!target) return Usage{usage_of(name)};
    History command{std::string(*target)};
    if (const auto count = next_word(rest)) {
      if (!blank(rest) || count->size() > 3 ||
          !std::all_of(count->begin(), count->end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Usage{usage_of(name)};
      }
      command.count = static_cast<unsigned>(std::stoul(std::string(*count)));
      if (command.count == 0 || command.count > 100) return Usage{usage_of(name)};
    }
    return command;
  }
  if (name == "logout") {
    if (blank(rest)) return Logout{};
    const auto option = next_word(rest);
    if (*option == "--force" && blank(rest)) return Logout{true};
    return Usage{usage_of(name)};
  }
  if (name == "help") {
    const auto topic = next_word(rest);
    if (!blank(rest)) return Usage{usage_of(name)};
    return Help{topic ? std::string(*topic) : std::string()};
  }
  return InvalidCommand{};
}

}  // namespace tessenger::app
