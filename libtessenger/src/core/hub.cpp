#include "core/hub.hpp"

#include <algorithm>

#include "core/text.hpp"

namespace tessenger::core {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// clang 14 does not deduce aggregate template arguments without it.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Repeated refusals are logged at the 1st, 10th, 100th… so a flood cannot
// flood the log too.
bool worth_logging(std::uint64_t count) noexcept {
  while (count % 10 == 0)
    count /= 10;
  return count == 1;
}

protocol::RequestId request_id_of(const protocol::Message& message) {
  return std::visit(
      [](const auto& m) -> protocol::RequestId {
        if constexpr (requires { m.request_id; }) {
          return m.request_id;
        } else {
          return 0;
        }
      },
      message);
}

}  // namespace

Hub::Member* Hub::Group::find(std::string_view name) {
  const auto it =
      std::find_if(members.begin(), members.end(), [&](const Member& m) { return m.name == name; });
  return it == members.end() ? nullptr : &*it;
}

Hub::Hub(HubConfig config, std::shared_ptr<const Authenticator> authenticator, LogStore& logs,
         Outbox& outbox, ServerObserver observer, LogSink log, RandomBytes random,
         PasswordChecker* checker)
    : config_(std::move(config)),
      authenticator_(std::move(authenticator)),
      logs_(logs),
      outbox_(outbox),
      observer_(std::move(observer)),
      log_(std::move(log)),
      random_(std::move(random)),
      checker_(checker) {}

bool Hub::connected(SessionId id, std::string address) {
  const auto& limits = config_.limits;
  if (limits.max_connections != 0 && sessions_.size() >= limits.max_connections) {
    if (worth_logging(++refused_over_total_)) {
      warn("{}: connection refused: {} connections is the limit ({} refused so far)", address,
           limits.max_connections, refused_over_total_);
    }
    return false;
  }
  auto key = address_key(address);
  Peer& peer = peers_[key];
  if (limits.max_connections_per_ip != 0 && peer.connections >= limits.max_connections_per_ip) {
    if (worth_logging(++peer.refused)) {
      warn(
          "{}: connection refused: {} connections from this address is the limit ({} refused so "
          "far)",
          address, limits.max_connections_per_ip, peer.refused);
    }
    return false;
  }
  ++peer.connections;
  peer.refused = 0;
  refused_over_total_ = 0;
  Session& session = sessions_[id];
  session.address = std::move(address);
  session.peer_key = std::move(key);
  if (peers_.size() >= prune_peers_at_) forget_idle_peers();
  return true;
}

// Addresses with no connection whose failed-login bucket has refilled carry
// no state worth keeping; dropping them keeps the table as small as the set
// of recently active addresses.
void Hub::forget_idle_peers() {
  std::erase_if(peers_, [&](const auto& entry) {
    return entry.second.connections == 0 && entry.second.failed_logins.full(latest_);
  });
  prune_peers_at_ = std::max<std::size_t>(1024, 2 * peers_.size());
}

bool Hub::is_online(std::string_view username) const {
  return online_session(username) != 0;
}

SessionId Hub::peer_for(SessionId id, const Session& session, protocol::RequestId request,
                        const std::string& to) {
  if (to == session.username) {
    reply_error(id, request, errc::cannot_message_self);
    return 0;
  }
  const auto target = online_session(to);
  if (target == 0) reply_error(id, request, errc::user_not_online, to);
  return target;
}

SessionId Hub::online_session(std::string_view username) const {
  const auto it = online_by_name_.find(std::string(username));
  return it == online_by_name_.end() ? 0 : it->second;
}

void Hub::reply_error(SessionId id, protocol::RequestId request, errc code,
                      std::string_view detail) {
  outbox_.send(id, protocol::Error{request, static_cast<std::uint16_t>(code), std::string(detail)});
}

void Hub::fail_and_close(SessionId id, protocol::RequestId request, errc code) {
  reply_error(id, request, code);
  outbox_.close(id, code);
}

void Hub::handle(SessionId id, const protocol::Message& message, const Instant& now) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  const auto type = protocol::type_of(message);
  const auto request = request_id_of(message);

  if (!protocol::is_request(type)) {
    fail_and_close(id, 0, errc::unexpected_message);
    return;
  }
  if (now.steady > latest_) latest_ = now.steady;
  if (!within_rate(id, session, request, now)) return;
  if (session.stage == Stage::awaiting_hello) {
    if (const auto* hello = std::get_if<protocol::Hello>(&message)) {
      on_hello(id, session, *hello);
    } else {
      fail_and_close(id, request, errc::unexpected_message);
    }
    return;
  }
  if (const auto* ping = std::get_if<protocol::Ping>(&message)) {
    outbox_.send(id, protocol::Pong{ping->request_id, ping->payload});
    return;
  }
  if (session.stage == Stage::checking_password) {
    // Unreachable through the adapter, which holds input back meanwhile.
    reply_error(id, request, errc::unexpected_message);
    return;
  }
  if (session.stage == Stage::awaiting_login) {
    if (const auto* login = std::get_if<protocol::Login>(&message)) {
      on_login(id, session, *login, now);
    } else {
      reply_error(
          id, request,
          type == protocol::MessageType::hello ? errc::unexpected_message : errc::not_logged_in);
    }
    return;
  }

  std::visit(Overloaded{
                 [&](const protocol::DirectSend& m) { on_direct(id, session, m, now); },
                 [&](const protocol::ActiveUsersQuery& m) { on_active_users(id, session, m); },
                 [&](const protocol::GroupCreate& m) { on_group_create(id, session, m); },
                 [&](const protocol::GroupJoin& m) { on_group_join(id, session, m); },
                 [&](const protocol::GroupSend& m) { on_group_send(id, session, m, now); },
                 [&](const protocol::FileOffer& m) { on_file_offer(id, session, m); },
                 [&](const protocol::Logout& m) { on_logout(id, session, m); },
                 [&](const auto&) { reply_error(id, request, errc::unexpected_message); },
             },
             message);
}

// One token per request of any kind. A refused request is answered with
// rate_limited and not carried out; a connection that goes on regardless is
// closed.
bool Hub::within_rate(SessionId id, Session& session, protocol::RequestId request,
                      const Instant& now) {
  const auto& limits = config_.limits;
  if (limits.message_rate == 0) return true;
  if (session.requests.full(now.steady)) session.refusals = 0;
  const auto interval = TokenBucket::interval_for(limits.message_rate, std::chrono::seconds(1));
  if (session.requests.try_take(now.steady, interval, limits.message_burst)) return true;

  const auto& who = session.username.empty() ? std::string_view("a client") : session.username;
  if (++session.refusals == 1) {
    warn("{}: {} is sending faster than {} requests/s; refusing requests", session.address, who,
         limits.message_rate);
  }
  if (limits.max_rate_refusals != 0 && session.refusals >= limits.max_rate_refusals) {
    warn("{}: {} disconnected after {} requests refused for sending too fast", session.address, who,
         session.refusals);
    outbox_.send(id, protocol::ShutdownEvent{static_cast<std::uint16_t>(errc::rate_limited),
                                             "sending too fast"});
    outbox_.close(id, errc::rate_limited);
    return false;
  }
  reply_error(id, request, errc::rate_limited);
  return false;
}

TokenBucket::Duration Hub::failed_login_interval() const noexcept {
  const auto& limits = config_.limits;
  return TokenBucket::interval_for(limits.max_failed_logins_per_ip,
                                   std::chrono::seconds(limits.failed_login_window_seconds));
}

void Hub::count_failed_login(const Session& session, const Instant& now) {
  const auto& limits = config_.limits;
  if (limits.max_failed_logins_per_ip == 0) return;
  const auto interval = failed_login_interval();
  auto& bucket = peers_[session.peer_key].failed_logins;
  bucket.take(now.steady, interval);
  if (!bucket.allows(now.steady, interval, limits.max_failed_logins_per_ip)) {
    warn("{}: {} failed logins within {} s; logins from this address refused for now",
         session.address, limits.max_failed_logins_per_ip, limits.failed_login_window_seconds);
  }
}

void Hub::on_hello(SessionId id, Session& session, const protocol::Hello& hello) {
  const auto low = std::max(hello.min_version, protocol::min_version);
  const auto high = std::min(hello.max_version, protocol::version);
  if (low > high) {
    fail_and_close(id, hello.request_id, errc::unsupported_version);
    return;
  }
  session.stage = Stage::awaiting_login;
  outbox_.send(id, protocol::HelloOk{hello.request_id, high, config_.software,
                                     static_cast<std::uint32_t>(config_.limits.max_frame_size)});
}

void Hub::on_login(SessionId id, Session& session, const protocol::Login& login,
                   const Instant& now) {
  // Checked before the password, so an address over its limit learns nothing
  // from its guesses.
  const auto& limits = config_.limits;
  if (limits.max_failed_logins_per_ip != 0 &&
      !peers_[session.peer_key].failed_logins.allows(now.steady, failed_login_interval(),
                                                     limits.max_failed_logins_per_ip)) {
    fail_and_close(id, login.request_id, errc::too_many_failed_logins);
    return;
  }
  if (!authenticator_->exists(login.username)) {
    count_failed_login(session, now);
    reply_error(id, login.request_id, errc::invalid_username);
    return;
  }
  if (accounts_[login.username].blocked_until > now.steady) {
    info("{}: {} tried to log in while blocked", session.address, login.username);
    fail_and_close(id, login.request_id, errc::account_blocked);
    return;
  }
  if (checker_ != nullptr && authenticator_->slow(login.username)) {
    if (limits.max_pending_password_checks != 0 &&
        checks_in_flight_ >= limits.max_pending_password_checks) {
      warn("{}: login as {} refused: {} password checks are already waiting", session.address,
           login.username, checks_in_flight_);
      reply_error(id, login.request_id, errc::rate_limited, "too many logins in progress");
      return;
    }
    ++checks_in_flight_;
    // Counted as failed until it succeeds, so guesses sent side by side
    // cannot outrun the per-address limit.
    count_failed_login(session, now);
    session.stage = Stage::checking_password;
    session.pending = PendingLogin{login.request_id, login.username, login.udp_port};
    checker_->check(id, login.username, login.password);
    return;
  }
  const bool ok = authenticator_->verify(login.username, login.password);
  if (!ok) count_failed_login(session, now);
  finish_login(id, session, login.request_id, login.username, login.udp_port, ok, now);
}

void Hub::password_checked(SessionId id, bool ok, const Instant& now) {
  if (checks_in_flight_ > 0) --checks_in_flight_;
  if (now.steady > latest_) latest_ = now.steady;
  const auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.stage != Stage::checking_password) return;
  Session& session = it->second;
  const auto pending = std::move(*session.pending);
  session.pending.reset();
  session.stage = Stage::awaiting_login;
  if (ok && config_.limits.max_failed_logins_per_ip != 0) {
    peers_[session.peer_key].failed_logins.give_back(failed_login_interval());
  }
  // Guesses checked meanwhile may have blocked the account: then even a
  // right password must not get in.
  if (accounts_[pending.username].blocked_until > now.steady) {
    info("{}: {} tried to log in while blocked", session.address, pending.username);
    fail_and_close(id, pending.request, errc::account_blocked);
    return;
  }
  finish_login(id, session, pending.request, pending.username, pending.udp_port, ok, now);
}

void Hub::finish_login(SessionId id, Session& session, protocol::RequestId request,
                       std::string_view username, std::uint16_t udp_port, bool ok,
                       const Instant& now) {
  auto& account = accounts_[std::string(username)];
  if (!ok) {
    if (++account.failures >= config_.max_attempts) {
      account.failures = 0;
      account.blocked_until = now.steady + config_.block_duration;
      warn("{}: {} blocked after {} failed logins", session.address, username,
           config_.max_attempts);
      fail_and_close(id, request, errc::account_blocked_now);
    } else {
      reply_error(id, request, errc::invalid_password);
    }
    return;
  }
  if (online_session(username) != 0) {
    reply_error(id, request, errc::already_logged_in);
    return;
  }
  account.failures = 0;
  session.stage = Stage::online;
  session.username = username;
  session.udp_port = udp_port;
  online_by_name_.emplace(session.username, id);
  online_.push_back({session.username, now.wall, session.address, session.udp_port});
  logs_.user_online(online_.size(), online_.back());
  outbox_.send(id, protocol::LoginOk{request, session.username});
  info("{} is online", session.username);
  if (observer_.on_login) observer_.on_login(session.username, session.address, session.udp_port);
}

void Hub::on_direct(SessionId id, Session& session, const protocol::DirectSend& request,
                    const Instant& now) {
  info("{} issued msgto command", session.username);
  const auto text = clean_text(request.text, config_.limits.max_text);
  if (!text) {
    reply_error(id, request.request_id, errc::invalid_text);
    return;
  }
  const auto target = peer_for(id, session, request.request_id, request.to);
  if (target == 0) return;
  auto& event = std::get<protocol::DirectEvent>(direct_event_);
  event.from = session.username;
  event.timestamp = now.wall;
  event.text = *text;
  outbox_.send(target, direct_event_);
  outbox_.send(id, protocol::DirectSent{request.request_id, now.wall});
  logs_.direct_message(now.wall, session.username, *text);
  if (observer_.on_direct_message) observer_.on_direct_message(session.username, request.to, *text);
}

void Hub::on_active_users(SessionId id, const Session& session,
                          const protocol::ActiveUsersQuery& request) {
  info("{} issued activeuser command", session.username);
  protocol::ActiveUsers reply{request.request_id, {}};
  reply.users.reserve(online_.size());
  for (const auto& record : online_) {
    if (record.username == session.username) continue;
    reply.users.push_back({record.username, record.address, record.udp_port, record.since});
    if (reply.users.size() == config_.limits.max_list_entries) break;
  }
  outbox_.send(id, reply);
}

void Hub::on_group_create(SessionId id, Session& session, const protocol::GroupCreate& request) {
  info("{} issued creategroup command", session.username);
  if (!is_valid_group_name(request.group, config_.limits.max_group_name)) {
    reply_error(id, request.request_id, errc::invalid_group_name, request.group);
    return;
  }
  if (groups_.contains(request.group)) {
    reply_error(id, request.request_id, errc::group_exists, request.group);
    return;
  }
  Group group;
  group.members.push_back({session.username, true});
  for (const auto& name : request.members) {
    if (name == session.username || group.find(name) != nullptr) continue;
    if (!is_valid_username(name, config_.limits.max_username) || online_session(name) == 0) {
      reply_error(id, request.request_id, errc::user_not_online, name);
      return;
    }
    group.members.push_back({name, false});
  }
  if (group.members.size() > config_.limits.max_group_members) {
    warn("{}: {} tried to create group {} with {} members; the limit is {}", session.address,
         session.username, request.group, group.members.size(), config_.limits.max_group_members);
    reply_error(id, request.request_id, errc::limit_reached, request.group);
    return;
  }
  for (const auto& member : group.members) {
    if (groups_per_user_[member.name] >= config_.limits.max_groups_per_user) {
      warn("{}: {} tried to create group {}, but {} is in {} groups already (the limit)",
           session.address, session.username, request.group, member.name,
           config_.limits.max_groups_per_user);
      reply_error(id, request.request_id, errc::limit_reached, member.name);
      return;
    }
  }
  for (const auto& member : group.members)
    ++groups_per_user_[member.name];

  protocol::GroupCreated reply{request.request_id, request.group, {}};
  reply.members.reserve(group.members.size());
  for (const auto& member : group.members)
    reply.members.push_back(member.name);
  std::vector<std::string> invited(reply.members.begin() + 1, reply.members.end());

  logs_.group_created(request.group);
  outbox_.send(id, reply);
  const protocol::InviteEvent invitation{request.group, session.username};
  recipients_.clear();
  for (const auto& name : invited)
    recipients_.push_back(online_session(name));
  outbox_.send_to_many(recipients_, invitation);
  groups_.emplace(request.group, std::move(group));
  info("{} created group {}", session.username, request.group);
  if (observer_.on_group_created) {
    observer_.on_group_created(request.group, session.username, invited);
  }
}

void Hub::on_group_join(SessionId id, Session& session, const protocol::GroupJoin& request) {
  info("{} issued joingroup command", session.username);
  const auto it = groups_.find(request.group);
  if (it == groups_.end()) {
    reply_error(id, request.request_id, errc::group_not_found, request.group);
    return;
  }
  Member* member = it->second.find(session.username);
  if (member == nullptr) {
    reply_error(id, request.request_id, errc::not_invited, request.group);
    return;
  }
  if (member->joined) {
    reply_error(id, request.request_id, errc::already_joined, request.group);
    return;
  }
  member->joined = true;
  outbox_.send(id, protocol::GroupJoined{request.request_id, request.group});
  if (observer_.on_group_joined) observer_.on_group_joined(request.group, session.username);
}

void Hub::on_group_send(SessionId id, Session& session, const protocol::GroupSend& request,
                        const Instant& now) {
  info("{} issued groupmsg command", session.username);
  const auto it = groups_.find(request.group);
  if (it == groups_.end()) {
    reply_error(id, request.request_id, errc::group_not_found_for_message, request.group);
    return;
  }
  Group& group = it->second;
  const Member* sender = group.find(session.username);
  if (sender == nullptr) {
    reply_error(id, request.request_id, errc::not_group_member, request.group);
    return;
  }
  if (!sender->joined) {
    reply_error(id, request.request_id, errc::group_not_joined, request.group);
    return;
  }
  const auto text = clean_text(request.text, config_.limits.max_text);
  if (!text) {
    reply_error(id, request.request_id, errc::invalid_text);
    return;
  }
  recipients_.clear();
  for (const auto& member : group.members) {
    if (!member.joined || member.name == session.username) continue;
    if (const auto target = online_session(member.name); target != 0) {
      recipients_.push_back(target);
    }
  }
  auto& event = std::get<protocol::GroupEvent>(group_event_);
  event.group = request.group;
  event.from = session.username;
  event.timestamp = now.wall;
  event.text = *text;
  outbox_.send_to_many(recipients_, group_event_);
  outbox_.send(id, protocol::GroupSent{request.request_id, now.wall});
  logs_.group_message(request.group, now.wall, session.username, *text);
  if (observer_.on_group_message) {
    observer_.on_group_message(request.group, session.username, *text);
  }
}

void Hub::on_file_offer(SessionId id, Session& session, const protocol::FileOffer& request) {
  info("{} issued p2pvideo command", session.username);
  const auto target = peer_for(id, session, request.request_id, request.to);
  if (target == 0) return;
  const Session& receiver = sessions_.at(target);
  std::uint64_t transfer_id = 0;
  while (transfer_id == 0) {
    random_({reinterpret_cast<std::uint8_t*>(&transfer_id), sizeof transfer_id});
  }
  protocol::TransferKey key{};
  random_(key);
  outbox_.send(target, protocol::FileIncomingEvent{transfer_id, session.username, request.file_name,
                                                   request.size, request.sha256, session.address,
                                                   session.udp_port, key});
  outbox_.send(id, protocol::FileOfferOk{request.request_id, transfer_id, receiver.address,
                                         receiver.udp_port, key});
}

void Hub::on_logout(SessionId id, Session& session, const protocol::Logout& request) {
  outbox_.send(id, protocol::LoggedOut{request.request_id, session.username});
  go_offline(session);
  outbox_.close(id, errc::peer_closed);
}

void Hub::go_offline(Session& session) {
  if (session.stage != Stage::online) return;
  online_by_name_.erase(session.username);
  std::erase_if(online_, [&](const OnlineRecord& r) { return r.username == session.username; });
  logs_.user_offline();
  session.stage = Stage::awaiting_login;
  info("{} logged out", session.username);
  if (observer_.on_logout) observer_.on_logout(session.username);
}

void Hub::disconnected(SessionId id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  go_offline(it->second);
  const auto peer = peers_.find(it->second.peer_key);
  if (peer != peers_.end() && --peer->second.connections == 0 &&
      peer->second.failed_logins.full(latest_)) {
    peers_.erase(peer);
  }
  sessions_.erase(it);
}

void Hub::login_timeout(SessionId id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.stage == Stage::online) return;
  info("{}: no login within {} s; closing the connection", it->second.address,
       config_.limits.login_timeout_seconds);
  outbox_.send(id, protocol::ShutdownEvent{static_cast<std::uint16_t>(errc::login_timeout),
                                           "no login within the time limit"});
  outbox_.close(id, errc::login_timeout);
}

void Hub::protocol_error(SessionId id, std::error_code error) {
  if (!sessions_.contains(id)) return;
  const auto code =
      error.category() == category() ? static_cast<errc>(error.value()) : errc::malformed_frame;
  fail_and_close(id, 0, code);
}

void Hub::shutdown() {
  const protocol::ShutdownEvent notice{static_cast<std::uint16_t>(errc::server_shutdown),
                                       "server shutting down"};
  recipients_.clear();
  for (const auto& [id, session] : sessions_)
    recipients_.push_back(id);
  outbox_.send_to_many(recipients_, notice);
  for (const auto id : recipients_)
    outbox_.close(id, errc::server_shutdown);
}

}  // namespace tessenger::core
