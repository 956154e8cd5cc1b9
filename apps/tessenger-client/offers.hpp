#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace tessenger::app {

/// Which incoming files the client takes (`--accept-files`).
enum class AcceptFiles {
  all,    ///< every file is pushed, as SPEC §6 and the original do
  known,  ///< only from users this session has a tie with (OfferPolicy::know)
  ask,    ///< the user answers each offer (only with stdin on a terminal)
};

/// "all", "known" or "ask"; nothing for anything else.
std::optional<AcceptFiles> parse_accept_files(std::string_view text);

/// A reply to an offer's question: y, yes, n or no (any case, blanks
/// around); nothing for any other line, which is a command as usual.
std::optional<bool> parse_answer(std::string_view line);

/// The decisions about incoming file offers, without I/O: whether to take,
/// ask about or decline each one, how many each sender has pending (offered
/// and not yet finished), and which declines deserve a line of output.
///
/// Thread safety: none; the caller serialises.
class OfferPolicy {
 public:
  enum class Verdict {
    accept,           ///< receive it
    ask,              ///< ask the user; the offer is pending meanwhile
    decline_unknown,  ///< `known` and the sender is not
    decline_busy,     ///< the sender already has the maximum pending
  };

  explicit OfferPolicy(AcceptFiles mode, std::size_t max_pending_per_sender = 4);

  /// `user` is someone this session has a tie with: a direct message was
  /// sent to them, they were put into a group this user created, or they
  /// share a group this user is in (they created the group this user joined
  /// or wrote in one). Receiving a direct message alone is no tie: any user
  /// can send one.
  void know(std::string_view user);
  bool known(std::string_view user) const;

  /// Decides an offer from `sender`. accept and ask count as pending for
  /// `sender` until finished() is called for it.
  Verdict offer(std::string_view sender);
  /// An accepted or asked offer from `sender` is over (received, failed,
  /// declined by the user).
  void finished(std::string_view sender);
  std::size_t pending(std::string_view sender) const;

  /// How many offers from `sender` were declined in all, counting the one
  /// just declined; a line is worth printing for the 1st, 10th, 100th...
  /// so that a flood of offers makes a handful of lines.
  std::uint64_t declined(std::string_view sender) const;
  static bool worth_a_line(std::uint64_t declined_count) noexcept;

  AcceptFiles mode() const noexcept { return mode_; }
  std::size_t max_pending_per_sender() const noexcept { return max_pending_; }

 private:
  struct Sender {
    std::size_t pending = 0;
    std::uint64_t declined = 0;
  };

  AcceptFiles mode_;
  std::size_t max_pending_;
  std::set<std::string, std::less<>> known_;
  std::map<std::string, Sender, std::less<>> senders_;
};

}  // namespace tessenger::app
