#include "common/texts.hpp"

#include <fmt/format.h>

#include <tessenger/errc.hpp>
#include <tessenger/timestamp.hpp>

namespace tessenger::app {

std::string error_text(std::error_code code, std::string_view detail) {
  if (code.category() != category()) return fmt::format("Error: {}.", code.message());
  switch (static_cast<errc>(code.value())) {
    case errc::invalid_username:
      return "Invalid username. Please try again.";
    case errc::invalid_password:
      return "Invalid password. Please try again.";
    case errc::account_blocked_now:
      return "Invalid password. Your account has been blocked. Please try again later.";
    case errc::account_blocked:
      return "Your account is blocked due to multiple login failures. Please try again later.";
    case errc::already_logged_in:
      return "This account is already logged in.";
    case errc::user_not_online:
      return fmt::format("{} is not online.", detail);
    case errc::cannot_message_self:
      return "You cannot message yourself.";
    case errc::group_exists:
      return fmt::format("a group chat (Name: {}) already exists", detail);
    case errc::group_not_found:
      return fmt::format("Groupchat {} doesn't exist.", detail);
    case errc::not_invited:
      return fmt::format("You are not invited to group {}.", detail);
    case errc::already_joined:
      return fmt::format("You have already joined Groupchat {}.", detail);
    case errc::group_not_found_for_message:
      return "The group chat does not exist.";
    case errc::not_group_member:
      return "You are not in this group chat.";
    case errc::group_not_joined:
      return "Please join the group before sending messages.";
    case errc::invalid_group_name:
      return "Invalid group name: use 1-32 letters and digits.";
    case errc::invalid_username_format:
      return fmt::format("Invalid username: {}.", detail);
    case errc::invalid_text:
      return "Invalid message: use 1-4096 bytes of UTF-8 text on one line.";
    case errc::no_such_file:
      return fmt::format("No such file: {}", detail);
    case errc::rate_limited:
      return "You are sending messages too fast.";
    case errc::not_group_creator:
      return fmt::format("Only the creator of group {} can delete it.", detail);
    case errc::login_timeout:
      return "Login timed out. Please connect again.";
    case errc::service_unavailable:
      return "The service is temporarily unavailable.";
    case errc::server_shutdown:
      return "The server is shutting down. Bye!";
    case errc::peer_closed:
      return "The server closed the connection.";
    default:
      break;
  }
  if (detail.empty()) return fmt::format("Error: {}.", code.message());
  return fmt::format("Error: {} ({}).", code.message(), detail);
}

std::string direct_line(protocol::Timestamp time, std::string_view from, std::string_view text) {
  return fmt::format("{}, {}: {}", format_timestamp(time), from, text);
}

std::string group_line(protocol::Timestamp time, std::string_view group, std::string_view from,
                       std::string_view text) {
  return fmt::format("{}, {}, {}: {}", format_timestamp(time), group, from, text);
}

std::string missed_mark(bool missed) {
  return missed ? "[missed] " : "";
}

std::string missed_summary(std::uint32_t count) {
  return count == 1 ? "1 message arrived while you were away."
                    : fmt::format("{} messages arrived while you were away.", count);
}

std::string stored_for_offline(std::string_view user) {
  return fmt::format("{} is offline; the message will be delivered when they log in.", user);
}

std::string history_footer(std::string_view name, bool group, std::size_t shown, bool more) {
  const auto where = group ? fmt::format("group chat {}", name) : fmt::format("{}", name);
  if (shown == 0) return fmt::format("No earlier messages with {}.", where);
  const auto count = shown == 1 ? std::string("1 message") : fmt::format("{} messages", shown);
  if (more) {
    return fmt::format("{} with {} shown; /history {} again for earlier ones.", count, where, name);
  }
  return fmt::format("{} with {} shown: the start of the conversation.", count, where);
}

std::string group_notice_text(const protocol::GroupNoticeEvent& notice) {
  switch (notice.change) {
    case protocol::GroupChange::left:
      return fmt::format("{} left the group chat: {}.", notice.user, notice.group);
    case protocol::GroupChange::deleted:
      return fmt::format("{} deleted the group chat: {}.", notice.user, notice.group);
    case protocol::GroupChange::closed:
      break;
  }
  return fmt::format("Group chat {} has closed: its last member, {}, left.", notice.group,
                     notice.user);
}

}  // namespace tessenger::app
