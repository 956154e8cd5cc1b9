#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tessenger::app {

/// What Tab does to the input line: remove `erase` characters before the
/// cursor, insert `insert`; when several candidates remain and nothing can
/// be added, `choices` lists them (for printing above the input).
struct Completion {
  std::size_t erase = 0;
  std::string insert;
  std::vector<std::string> choices;
};

/// What names can be completed from.
struct CompletionSources {
  std::vector<std::string> users;   ///< online users the client knows of
  std::vector<std::string> groups;  ///< groups the user is in or invited to
};

/// Completes the word before the cursor of a command line: the command
/// name (any case; the leading '/' optional), then by position a user, a
/// group or, for /p2pvideo's FILE, a local path (`~/` is the home
/// directory; a path opened with a quote is closed with it). A unique
/// candidate is completed with a space after it (a '/' after a directory).
/// Without I/O except listing directories for paths.
Completion complete_line(std::string_view before_cursor, const CompletionSources& sources);

}  // namespace tessenger::app
