#include "commands.hpp"

#include <algorithm>
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

}  // namespace

Command parse_command(std::string_view line) {
  std::string_view rest = line;
  const auto name_word = next_word(rest);
  if (!name_word) return NoCommand{};
  auto name = *name_word;
  if (name.starts_with('/')) name.remove_prefix(1);

  if (name == "msgto") {
    constexpr std::string_view usage = "Usage: /msgto USER MESSAGE";
    const auto user = next_word(rest);
    if (!user || blank(rest)) return Usage{usage};
    return MsgTo{std::string(*user), std::string(rest)};
  }
  if (name == "activeuser") {
    if (!blank(rest)) return Usage{"Usage: /activeuser"};
    return ActiveUser{};
  }
  if (name == "creategroup") {
    constexpr std::string_view usage = "Usage: /creategroup GROUP USER [USER...]";
    const auto group = next_word(rest);
    CreateGroup command{group ? std::string(*group) : std::string(), {}};
    while (const auto user = next_word(rest))
      command.users.emplace_back(*user);
    if (!group || command.users.empty()) return Usage{usage};
    return command;
  }
  if (name == "joingroup") {
    const auto group = next_word(rest);
    if (!group || !blank(rest)) return Usage{"Usage: /joingroup GROUP"};
    return JoinGroup{std::string(*group)};
  }
  if (name == "leavegroup") {
    const auto group = next_word(rest);
    if (!group || !blank(rest)) return Usage{"Usage: /leavegroup GROUP"};
    return LeaveGroup{std::string(*group)};
  }
  if (name == "deletegroup") {
    const auto group = next_word(rest);
    if (!group || !blank(rest)) return Usage{"Usage: /deletegroup GROUP"};
    return DeleteGroup{std::string(*group)};
  }
  if (name == "groupmsg") {
    const auto group = next_word(rest);
    if (!group || blank(rest)) return Usage{"Usage: /groupmsg GROUP MESSAGE"};
    return GroupMsg{std::string(*group), std::string(rest)};
  }
  if (name == "p2pvideo") {
    const auto user = next_word(rest);
    if (!user || blank(rest)) return Usage{"Usage: /p2pvideo USER FILE"};
    return P2pVideo{std::string(*user),
                    std::string(rest.substr(0, rest.find_last_not_of(blanks) + 1))};
  }
  if (name == "history") {
    constexpr std::string_view usage = "Usage: /history USER|GROUP [N] (N: 1-100, default 20)";
    const auto target = next_word(rest);
    if (!target) return Usage{usage};
    History command{std::string(*target)};
    if (const auto count = next_word(rest)) {
      if (!blank(rest) || count->size() > 3 ||
          !std::all_of(count->begin(), count->end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Usage{usage};
      }
      command.count = static_cast<unsigned>(std::stoul(std::string(*count)));
      if (command.count == 0 || command.count > 100) return Usage{usage};
    }
    return command;
  }
  if (name == "logout") {
    if (!blank(rest)) return Usage{"Usage: /logout"};
    return Logout{};
  }
  return InvalidCommand{};
}

}  // namespace tessenger::app
