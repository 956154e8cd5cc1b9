#include "offers.hpp"

#include <algorithm>
#include <cctype>

namespace tessenger::app {

std::optional<AcceptFiles> parse_accept_files(std::string_view text) {
  if (text == "all") return AcceptFiles::all;
  if (text == "known") return AcceptFiles::known;
  if (text == "ask") return AcceptFiles::ask;
  return std::nullopt;
}

std::optional<bool> parse_answer(std::string_view line) {
  constexpr std::string_view blanks = " \t";
  const auto first = line.find_first_not_of(blanks);
  if (first == std::string_view::npos) return std::nullopt;
  line = line.substr(first, line.find_last_not_of(blanks) - first + 1);
  std::string word(line);
  std::transform(word.begin(), word.end(), word.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (word == "y" || word == "yes") return true;
  if (word == "n" || word == "no") return false;
  return std::nullopt;
}

OfferPolicy::OfferPolicy(AcceptFiles mode, std::size_t max_pending_per_sender)
    : mode_(mode), max_pending_(max_pending_per_sender) {}

void OfferPolicy::know(std::string_view user) {
  if (!known_.contains(user)) known_.emplace(user);
}

bool OfferPolicy::known(std::string_view user) const {
  return known_.contains(user);
}

OfferPolicy::Verdict OfferPolicy::offer(std::string_view sender) {
  auto it = senders_.find(sender);
  if (it == senders_.end()) it = senders_.emplace(std::string(sender), Sender{}).first;
  auto& s = it->second;
  if (mode_ == AcceptFiles::known && !known(sender)) {
    ++s.declined;
    return Verdict::decline_unknown;
  }
  if (s.pending >= max_pending_) {
    ++s.declined;
    return Verdict::decline_busy;
  }
  ++s.pending;
  return mode_ == AcceptFiles::ask ? Verdict::ask : Verdict::accept;
}

void OfferPolicy::finished(std::string_view sender) {
  const auto it = senders_.find(sender);
  if (it != senders_.end() && it->second.pending > 0) --it->second.pending;
}

std::size_t OfferPolicy::pending(std::string_view sender) const {
  const auto it = senders_.find(sender);
  return it == senders_.end() ? 0 : it->second.pending;
}

std::uint64_t OfferPolicy::declined(std::string_view sender) const {
  const auto it = senders_.find(sender);
  return it == senders_.end() ? 0 : it->second.declined;
}

bool OfferPolicy::worth_a_line(std::uint64_t declined_count) noexcept {
  if (declined_count == 0) return false;
  while (declined_count % 10 == 0)
    declined_count /= 10;
  return declined_count == 1;
}

}  // namespace tessenger::app
