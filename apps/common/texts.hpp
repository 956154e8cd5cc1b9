#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include <tessenger/protocol.hpp>

namespace tessenger::app {

/// The CLI's fixed texts (SPEC §3, §4). Scripts rely on them byte for byte.
namespace text {
inline constexpr std::string_view please_login = "Please login";
inline constexpr std::string_view username_prompt = "Username: ";
inline constexpr std::string_view password_prompt = "Password: ";
inline constexpr std::string_view welcome = "Welcome to TESSENGER!";
inline constexpr std::string_view command_prompt =
    "Enter one of the following commands (/msgto, /activeuser, /creategroup, /joingroup, "
    "/groupmsg, /logout, /p2pvideo):";
inline constexpr std::string_view invalid_command = "Error. Invalid command!";
inline constexpr std::string_view no_other_active_user = "no other active user";
inline constexpr std::string_view inviting_too_fast =
    "You are inviting users too fast; please wait a minute and try again.";
}  // namespace text

/// What the CLI prints for a refused request: the SPEC text for each
/// tessenger::errc, with `detail` (the user or group the server named)
/// where the text has one; a clear sentence for anything else.
std::string error_text(std::error_code code, std::string_view detail);

/// A direct message as the recipient sees it: `TS, SENDER: MESSAGE`.
std::string direct_line(protocol::Timestamp time, std::string_view from, std::string_view text);
/// A group message: `TS, GROUP, SENDER: MESSAGE`.
std::string group_line(protocol::Timestamp time, std::string_view group, std::string_view from,
                       std::string_view text);
/// Before a message sent while this user was away: `[missed] `; else nothing.
std::string missed_mark(bool missed);
/// After the messages sent while this user was away.
std::string missed_summary(std::uint32_t count);
/// To the sender of a message stored for a known user who is offline.
std::string stored_for_offline(std::string_view user);
/// After a page of /history.
std::string history_footer(std::string_view name, bool group, std::size_t shown, bool more);

/// What the CLI prints when a group this user is in changes.
std::string group_notice_text(const protocol::GroupNoticeEvent& notice);

}  // namespace tessenger::app
