// The client's decisions about incoming files (--accept-files and the
// per-sender limit), without sockets.

#include <doctest/doctest.h>

#include <vector>

#include "offers.hpp"

using namespace tessenger::app;
using Verdict = OfferPolicy::Verdict;

TEST_CASE("--accept-files values and the answers to a question") {
  CHECK(parse_accept_files("all") == AcceptFiles::all);
  CHECK(parse_accept_files("known") == AcceptFiles::known);
  CHECK(parse_accept_files("ask") == AcceptFiles::ask);
  CHECK_FALSE(parse_accept_files("none"));
  CHECK_FALSE(parse_accept_files("ALL"));
  for (const char* yes : {"y", "Y", "yes", " YES ", "\tYes"})
    CHECK(parse_answer(yes) == true);
  for (const char* no : {"n", "N", "no", " No "})
    CHECK(parse_answer(no) == false);
  for (const char* other : {"", " ", "ye", "yess", "/msgto bob y", "nope", "y n"}) {
    CAPTURE(other);
    CHECK_FALSE(parse_answer(other));
  }
}

TEST_CASE("all: every sender's offers are taken up to the per-sender limit") {
  OfferPolicy policy(AcceptFiles::all, 4);
  for (int i = 0; i < 4; ++i)
    CHECK(policy.offer("mallory") == Verdict::accept);
  CHECK(policy.pending("mallory") == 4);
  CHECK(policy.offer("mallory") == Verdict::decline_busy);
  CHECK(policy.declined("mallory") == 1);
  // Another sender is not held up by mallory's flood.
  CHECK(policy.offer("alice") == Verdict::accept);
  // Once one of mallory's ends, there is room for one more.
  policy.finished("mallory");
  CHECK(policy.pending("mallory") == 3);
  CHECK(policy.offer("mallory") == Verdict::accept);
  CHECK(policy.offer("mallory") == Verdict::decline_busy);
  CHECK(policy.declined("mallory") == 2);
  // Finishing more than is pending, or for a stranger, changes nothing.
  for (int i = 0; i < 10; ++i)
    policy.finished("mallory");
  policy.finished("nobody");
  CHECK(policy.pending("mallory") == 0);
  CHECK(policy.pending("nobody") == 0);
}

TEST_CASE("known: only users this session has a tie with") {
  OfferPolicy policy(AcceptFiles::known, 4);
  CHECK(policy.offer("carol") == Verdict::decline_unknown);
  CHECK(policy.pending("carol") == 0);
  policy.know("carol");
  CHECK(policy.known("carol"));
  CHECK_FALSE(policy.known("Carol"));
  CHECK(policy.offer("carol") == Verdict::accept);
  CHECK(policy.offer("dave") == Verdict::decline_unknown);
  CHECK(policy.declined("dave") == 1);
  // The per-sender limit holds for known users too.
  for (int i = 0; i < 3; ++i)
    CHECK(policy.offer("carol") == Verdict::accept);
  CHECK(policy.offer("carol") == Verdict::decline_busy);
}

TEST_CASE("ask: each offer is a question, pending until answered") {
  OfferPolicy policy(AcceptFiles::ask, 2);
  CHECK(policy.offer("alice") == Verdict::ask);
  CHECK(policy.offer("alice") == Verdict::ask);
  CHECK(policy.offer("alice") == Verdict::decline_busy);
  policy.finished("alice");  // answered no
  CHECK(policy.offer("alice") == Verdict::ask);
}

TEST_CASE("a flood of declines is worth a line at the 1st, 10th, 100th...") {
  std::vector<std::uint64_t> lines;
  for (std::uint64_t n = 0; n <= 20'000; ++n) {
    if (OfferPolicy::worth_a_line(n)) lines.push_back(n);
  }
  CHECK(lines == std::vector<std::uint64_t>{1, 10, 100, 1000, 10'000});

  // 300 offers from one sender, none finished: 4 taken, 296 declined, 3 lines.
  OfferPolicy policy(AcceptFiles::all, 4);
  int accepted = 0;
  int printed = 0;
  for (int i = 0; i < 300; ++i) {
    if (policy.offer("mallory") == Verdict::accept) {
      ++accepted;
    } else if (OfferPolicy::worth_a_line(policy.declined("mallory"))) {
      ++printed;
    }
  }
  CHECK(accepted == 4);
  CHECK(policy.declined("mallory") == 296);
  CHECK(printed == 3);
}
