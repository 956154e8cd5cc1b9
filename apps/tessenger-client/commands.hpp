#pragma once

#include <span>
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

struct Logout {
  bool force = false;  ///< `--force`: cancel running transfers rather than wait
};
struct P2pVideo {
  std::string user;
  /// The rest of the line, trimmed: a path may hold spaces. Quotes around
  /// it are removed and a leading `~/` is the home directory (see `path`).
  std::string file;
  std::string path;
};
/// `/help` (topic empty) or `/help CMD`.
struct Help {
  std::string topic;
};
/// Wrong use of a known command: print its usage line.
struct Usage {
  std::string line;
};
struct InvalidCommand {};
/// A blank line.
struct NoCommand {};

using Command =
    std::variant<NoCommand, InvalidCommand, Usage, MsgTo, ActiveUser, CreateGroup, JoinGroup,
                 LeaveGroup, DeleteGroup, GroupMsg, History, Logout, P2pVideo, Help>;

/// Parses a line; the leading '/' is optional and the command's name may
/// be in any case (`/ACTIVEUSER`).
Command parse_command(std::string_view line);

/// One command as `/help` shows it.
struct CommandInfo {
  std::string_view name;     ///< without the '/'
  std::string_view usage;    ///< e.g. "/msgto USER MESSAGE"
  std::string_view summary;  ///< one line of what it does
};

/// Every command the client knows, in the order `/help` lists them.
std::span<const CommandInfo> command_table();
/// The command called `name` (any case, '/' optional), or nullptr.
const CommandInfo* find_command(std::string_view name);

/// `text` in ASCII lower case.
std::string lower(std::string_view text);

}  // namespace tessenger::app
