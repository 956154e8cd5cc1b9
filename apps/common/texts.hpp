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

/// What the CLI prints when a group this user is in changes.
std::string group_notice_text(const protocol::GroupNoticeEvent& notice);

}  // namespace tessenger::app
