// Feeds arbitrary text to the credentials-file parser and checks:
// - no crash, leak or undefined behaviour (the sanitizers);
// - every entry it keeps is a valid username with a non-empty secret free of
//   blanks, and every problem names a line that exists;
// - writing the entries back as a file and parsing that gives the same table
//   with no problems;
// - the authenticator built from it answers for every entry (plain entries
//   are verified; hashes are not, as their cost comes from the input).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/credentials.hpp"
#include "core/text.hpp"

namespace {

[[noreturn]] void violated(const char* property) {
  std::fprintf(stderr, "fuzz_credentials: property violated: %s\n", property);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view content(reinterpret_cast<const char*>(data), size);
  const auto parsed = tessenger::core::parse_credentials(content);

  const auto lines = static_cast<std::size_t>(std::count(content.begin(), content.end(), '\n')) + 1;
  for (const auto& problem : parsed.problems) {
    if (problem.line == 0 || problem.line > lines)
      violated("problem on a line that does not exist");
    if (problem.reason.empty()) violated("problem without a reason");
  }

  std::string rewritten;
  for (const auto& [username, secret] : parsed.passwords) {
    if (!tessenger::core::is_valid_username(username)) violated("kept an invalid username");
    if (secret.empty() || std::any_of(secret.begin(), secret.end(), [](char c) {
          return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
        })) {
      violated("kept a secret that is empty or has blanks or control characters");
    }
    rewritten += username + " " + secret + "\n";
  }
  const auto again = tessenger::core::parse_credentials(rewritten);
  if (!again.problems.empty()) violated("its own entries do not parse again");
  if (again.passwords != parsed.passwords) violated("entries change when written back");

  const tessenger::core::TableAuthenticator table(parsed.passwords);
  std::size_t plain = 0;
  for (const auto& [username, secret] : parsed.passwords) {
    if (!table.exists(username)) violated("an entry does not exist");
    if (table.slow(username) != tessenger::core::is_password_hash(secret)) {
      violated("slow() disagrees with the entry");
    }
    if (!table.slow(username)) {
      ++plain;
      if (!table.verify(username, secret)) violated("a plain password does not verify");
      if (table.verify(username, secret + "x")) violated("a wrong password verifies");
    }
  }
  if (table.plain_count() != plain) violated("plain_count is wrong");
  return 0;
}
