#include "legacy/translator.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

#include <tessenger/errc.hpp>
#include <tessenger/timestamp.hpp>

#include "protocol/utf8.hpp"

namespace tessenger::legacy {
namespace {

// What the original client looks for in every read: a disconnect on the
// first three, a split into five fields on the last.
constexpr std::array<std::string_view, 4> trigger_words{"blocked", "error", "Bye", "p2pvideo"};
constexpr std::string_view word_joiner = "\u2060";

constexpr std::string_view invalid_command = "Invalid command!";
constexpr std::string_view invalid_text =
    "Invalid message: it is empty, too long or holds control characters.";
constexpr std::string_view too_fast = "You are sending messages too fast.";
constexpr std::string_view unavailable =
    "The server cannot do that right now. Please try again later.";

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Whitespace-separated words; `rest` is what follows the first `words`
// words, leading blanks removed (a message keeps its inner spacing).
struct Words {
  std::vector<std::string_view> list;
  std::string_view rest_after(std::size_t n, std::string_view text) const {
    if (list.size() <= n) return {};
    return text.substr(static_cast<std::size_t>(list[n].data() - text.data()));
  }
};

Words words_of(std::string_view text) {
  Words w;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i]))
      ++i;
    const auto start = i;
    while (i < text.size() && !is_space(text[i]))
      ++i;
    if (i > start) w.list.push_back(text.substr(start, i - start));
  }
  return w;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

Output one(std::string text, bool close = false) {
  Output out;
  out.writes = split(text);
  out.close = close;
  return out;
}

}  // namespace

bool starts_legacy(std::byte first) noexcept {
  const auto c = std::to_integer<unsigned>(first);
  return c >= 0x20 && c <= 0x7e;
}

std::string neutralise(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    out.push_back(text[i]);
    const auto rest = text.substr(i);
    if (std::any_of(trigger_words.begin(), trigger_words.end(),
                    [&](std::string_view word) { return rest.starts_with(word); })) {
      out.append(word_joiner);
    }
  }
  return out;
}

bool has_disconnect_word(std::string_view text) noexcept {
  return std::any_of(trigger_words.begin(), trigger_words.end() - 1,
                     [&](std::string_view word) { return text.find(word) != text.npos; });
}

std::vector<std::string> split(std::string_view text, std::size_t limit) {
  std::vector<std::string> parts;
  while (text.size() > limit) {
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
      --cut;
    if (cut == 0) cut = limit;  // not UTF-8 at all: any cut will do
    parts.emplace_back(text.substr(0, cut));
    text.remove_prefix(cut);
  }
  parts.emplace_back(text);
  return parts;
}

std::string date(protocol::Timestamp timestamp) {
  return format_timestamp(timestamp);
}

Translator::Translator(std::uint32_t max_attempts) : max_attempts_(max_attempts) {}

protocol::Message Translator::hello() {
  return protocol::Hello{next(), 1, 1, "legacy-text"};
}

protocol::Message Translator::canned(std::string text) {
  const auto id = next();
  canned_.emplace(id, std::move(text));
  return protocol::Ping{id, 0};
}

protocol::Message Translator::on_text(std::string_view bytes) {
  const bool valid = protocol::valid_utf8(bytes);
  if (!logged_in()) return login(valid ? bytes : std::string_view());
  return valid ? command(bytes) : canned(std::string(invalid_command));
}

// `USERNAME PASSWORD UDPPORT`. Anything else is a login as nobody, which the
// hub refuses as an unknown user and counts like one.
protocol::Message Translator::login(std::string_view text) {
  const auto words = words_of(text);
  protocol::Login request{next(), {}, {}, 0};
  std::uint16_t port = 0;
  if (words.list.size() == 3) {
    const auto digits = words.list[2];
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec == std::errc{} && end == digits.data() + digits.size()) {
      request.username = words.list[0];
      request.password = words.list[1];
      request.udp_port = port;
    }
  }
  pending_.emplace(request.request_id, Pending{Kind::login, request.username, {}});
  return request;
}

protocol::Message Translator::command(std::string_view text) {
  const auto words = words_of(text);
  const auto& w = words.list;
  if (w.empty()) return canned(std::string(invalid_command));
  const auto verb = w[0];
  const auto id = next();
  if (verb == "msgto" && w.size() >= 3) {
    pending_.emplace(id, Pending{Kind::msgto, std::string(w[1]), {}});
    return protocol::DirectSend{id, std::string(w[1]),
                                std::string(trim(words.rest_after(2, text)))};
  }
  if (verb == "activeuser" && w.size() == 1) {
    pending_.emplace(id, Pending{Kind::activeuser, {}, {}});
    return protocol::ActiveUsersQuery{id};
  }
  if (verb == "creategroup" && w.size() >= 3) {
    const std::string group(w[1]);
    // The original required the creator among the members.
    if (std::find(w.begin() + 2, w.end(), username_) == w.end()) {
      return canned(
          fmt::format("invaid group name: {} or not include yourself in group", neutralise(group)));
    }
    protocol::GroupCreate request{id, group, {}};
    for (auto it = w.begin() + 2; it != w.end(); ++it) {
      if (*it != username_) request.members.emplace_back(*it);
    }
    pending_.emplace(id, Pending{Kind::creategroup, group, {}});
    return request;
  }
  if (verb == "joingroup" && w.size() == 2) {
    pending_.emplace(id, Pending{Kind::joingroup, std::string(w[1]), {}});
    return protocol::GroupJoin{id, std::string(w[1])};
  }
  if (verb == "groupmsg" && w.size() >= 3) {
    pending_.emplace(id, Pending{Kind::groupmsg, std::string(w[1]), {}});
    return protocol::GroupSend{id, std::string(w[1]), std::string(trim(words.rest_after(2, text)))};
  }
  if (verb == "logout" && w.size() == 1) {
    pending_.emplace(id, Pending{Kind::logout, {}, {}});
    return protocol::Logout{id};
  }
  if (verb == "p2pvideo" && w.size() == 3) {
    // The answer repeats the file and our name to the original client,
    // which cannot be given them neutralised (it opens the file by name).
    if (has_disconnect_word(w[2]) || has_disconnect_word(username_)) {
      return canned(
          "This file cannot be sent from this client: its name (or yours) holds a word the "
          "client reserves. Rename the file and try again.");
    }
    pending_.emplace(id, Pending{Kind::p2pvideo, std::string(w[1]), std::string(w[2])});
    return protocol::FileOffer{id, std::string(w[1]), std::string(w[2]), 0, {}};
  }
  return canned(std::string(invalid_command));
}

Output Translator::render(const protocol::Message& message) {
  using namespace protocol;
  // Replies name their request; events do not.
  auto take = [this](RequestId id) -> std::optional<Pending> {
    const auto it = pending_.find(id);
    if (it == pending_.end()) return std::nullopt;
    auto pending = std::move(it->second);
    pending_.erase(it);
    return pending;
  };
  if (const auto* pong = std::get_if<Pong>(&message)) {
    const auto it = canned_.find(pong->request_id);
    if (it == canned_.end()) return {};
    auto out = one(std::move(it->second));
    canned_.erase(it);
    return out;
  }
  if (const auto* e = std::get_if<Error>(&message)) {
    // A refused Ping (rate limited) still owes its text's place.
    canned_.erase(e->request_id);
    const auto pending = take(e->request_id);
    if (!pending) {
      if (e->code == static_cast<std::uint16_t>(errc::rate_limited))
        return one(std::string(too_fast));
      if (e->code == static_cast<std::uint16_t>(errc::unsupported_request))
        return one(std::string(invalid_command));
      return {};
    }
    return pending->kind == Kind::login ? login_error(*e) : error(*pending, *e);
  }
  if (const auto* ok = std::get_if<LoginOk>(&message)) {
    take(ok->request_id);
    username_ = ok->username;
    unknown_users_ = 0;
    return one("Welcome to TESSENGER!");
  }
  if (const auto* sent = std::get_if<DirectSent>(&message)) {
    take(sent->request_id);
    return one(fmt::format("message sent at {}", date(sent->timestamp)));
  }
  if (const auto* users = std::get_if<ActiveUsers>(&message)) {
    take(users->request_id);
    if (users->users.empty()) return one("no other active user");
    std::string text;
    for (const auto& u : users->users) {
      if (!text.empty()) text += ".\n";
      text += fmt::format("{}, {}, {}, {}", neutralise(u.username), u.address, u.udp_port,
                          date(u.since));
    }
    return one(std::move(text));
  }
  if (const auto* created = std::get_if<GroupCreated>(&message)) {
    take(created->request_id);
    return one(fmt::format("Group chat created {}", neutralise(created->group)));
  }
  if (const auto* joined = std::get_if<GroupJoined>(&message)) {
    take(joined->request_id);
    return one(fmt::format("Joined the group chat:{} successfully.", neutralise(joined->group)));
  }
  if (const auto* sent = std::get_if<GroupSent>(&message)) {
    take(sent->request_id);
    return one(fmt::format("Group chat message sent at.{}", date(sent->timestamp)));
  }
  if (const auto* out = std::get_if<LoggedOut>(&message)) {
    take(out->request_id);
    return one(fmt::format("Bye, {}!", out->username), true);
  }
  if (const auto* ok = std::get_if<FileOfferLegacy>(&message)) {
    const auto pending = take(ok->request_id);
    if (!pending) return {};
    // Exactly five whitespace-separated fields: the client splits them.
    return one(fmt::format("p2pvideo {} {} {} {}", ok->peer_address, ok->peer_udp_port,
                           pending->file, username_));
  }
  if (const auto* event = std::get_if<DirectEvent>(&message)) {
    return one(fmt::format("{}, {}: {}", date(event->timestamp), neutralise(event->from),
                           neutralise(event->text)));
  }
  if (const auto* event = std::get_if<GroupEvent>(&message)) {
    return one(fmt::format("{}, {}, {}: {}", date(event->timestamp), neutralise(event->group),
                           neutralise(event->from), neutralise(event->text)));
  }
  if (const auto* event = std::get_if<InviteEvent>(&message)) {
    return one(fmt::format("{} invited you to group {}; use joingroup {} to join.",
                           neutralise(event->from), neutralise(event->group),
                           neutralise(event->group)));
  }
  if (const auto* event = std::get_if<ShutdownEvent>(&message)) {
    switch (static_cast<errc>(event->code)) {
      case errc::login_timeout:
        return one("No login within the time limit. Closing connection.");
      case errc::server_shutdown:
        return one("The server is shutting down. Closing connection.");
      case errc::rate_limited:
        return one("You sent too much too fast. Closing connection.");
      default:
        return one("Closing connection.");
    }
  }
  // HelloOk, and what a version 1 session is never sent.
  return {};
}

Output Translator::login_error(const protocol::Error& e) {
  switch (static_cast<errc>(e.code)) {
    case errc::invalid_username:
      if (++unknown_users_ >= max_attempts_) {
        return one("Invalid details provided. Maximum attempts reached. Closing connection.", true);
      }
      return one("Invalid username. Please try again.");
    case errc::invalid_password:
      unknown_users_ = 0;
      return one("Invalid password. Please try again.");
    case errc::account_blocked_now:
      return one("Invalid details. Your account has been blocked. Please try again later.");
    case errc::account_blocked:
      return one("Your account is blocked due to multiple login failures. Please try again later.");
    case errc::already_logged_in:
      return one("error: You account already logined!", true);
    case errc::too_many_failed_logins:
      return one(
          "Too many failed logins from your address: logins from it are blocked for now. "
          "Please try again later.");
    case errc::rate_limited:
      return one("Too many logins at once. Please try again later.");
    default:
      return one(std::string(unavailable));
  }
}

Output Translator::error(const Pending& pending, const protocol::Error& e) {
  const auto code = static_cast<errc>(e.code);
  const auto subject = neutralise(pending.subject);
  if (code == errc::rate_limited) return one(std::string(too_fast));
  if (code == errc::invalid_text) return one(std::string(invalid_text));
  if (code == errc::service_unavailable) return one(std::string(unavailable));
  switch (pending.kind) {
    case Kind::msgto:
      if (code == errc::user_not_online) return one(fmt::format("user {} not online", subject));
      if (code == errc::cannot_message_self) return one("You cannot message yourself.");
      break;
    case Kind::creategroup:
      switch (code) {
        case errc::invalid_group_name:
          return one(
              fmt::format("invaid group name: {} or not include yourself in group", subject));
        case errc::group_exists:
          return one(fmt::format(
              "Failed to create the group chat {0}: {0} exists or conflict with other user name",
              subject));
        case errc::user_not_online:
          return one(fmt::format("Failed to create the group chat {}: user {} not online", subject,
                                 neutralise(e.detail)));
        case errc::limit_reached:
          return one(
              fmt::format("Failed to create the group chat {}: a limit was reached.", subject));
        default:
          break;
      }
      break;
    case Kind::joingroup:
      switch (code) {
        case errc::group_not_found:
          return one(fmt::format("Groupchat {} doesn\u2019t exist.", subject));
        case errc::already_joined:
          return one(fmt::format("You have already joined Groupchat {}", subject));
        case errc::not_invited:
          return one(fmt::format("You are not invited to group {}.", subject));
        case errc::limit_reached:
          return one("You are in as many groups as allowed.");
        default:
          break;
      }
      break;
    case Kind::groupmsg:
      switch (code) {
        case errc::group_not_found_for_message:
          return one("The group chat does not exist.");
        case errc::group_not_joined:
          return one("Please join the group before sending message");
        case errc::not_group_member:
          return one("You are not in this group chat.");
        default:
          break;
      }
      break;
    case Kind::p2pvideo:
      if (code == errc::user_not_online) return one("receiver not exists");
      if (code == errc::cannot_message_self) return one("You cannot send a file to yourself.");
      if (code == errc::invalid_argument)
        return one(fmt::format("{} cannot receive files from this client.", subject));
      break;
    default:
      break;
  }
  return one(std::string(unavailable));
}

}  // namespace tessenger::legacy
