#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tessenger::app {

// One parsed command line (SPEC §4). Message texts are the rest of the line,
// untrimmed; they are checked with clean_message() before sending.
struct MsgTo {
  std::string user;
  std::string text;
};
struct ActiveUser {};
struct CreateGroup {
  std::string group;
  std::vector<std::string> users;
};
struct JoinGroup {
  std::string group;
};
struct LeaveGroup {
  std::string group;
};
struct DeleteGroup {
  std::string group;
};
struct GroupMsg {
  std::string group;
  std::string text;
};
/// The newest `count` messages of a conversation (a group this user is in,
/// else the user of that name); the same command again pages further back.
struct History {
  std::string name;
  unsigned count = 20;
};

struct Logout {};
struct P2pVideo {
  std::string user;
  std::string file;  ///< the rest of the line, trimmed: a path may hold spaces
};
/// Wrong use of a known command: print its usage line.
struct Usage {
  std::string_view line;
};
struct InvalidCommand {};
/// A blank line.
struct NoCommand {};

using Command = std::variant<NoCommand, InvalidCommand, Usage, MsgTo, ActiveUser, CreateGroup,
                             JoinGroup, LeaveGroup, DeleteGroup, GroupMsg, History, Logout, P2pVideo>;

/// Parses a line; the leading '/' is optional.
Command parse_command(std::string_view line);

}  // namespace tessenger::app
