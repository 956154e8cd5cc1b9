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

// A name or file name forwarded to other people must not carry control
// characters: they could rewrite the receiver's terminal.
}  // namespace

Hub::Hub(HubConfig config, HubParts parts)
    : config_(std::move(config)),
      authenticator_(std::move(parts.authenticator)),
      logs_(parts.logs),
      store_(parts.store),
      presence_(parts.presence),
      outbox_(parts.outbox),
      completions_(std::move(parts.post)),
      random_(std::move(parts.random)),
      checker_(parts.checker),
      router_(parts.router),
      log_(std::move(parts.log)) {
  store_.configure({config_.limits, config_.max_attempts, config_.block_duration,
                    config_.history_days, config_.history_max});
}

Hub::Session* Hub::find(SessionId id) {
  const auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

bool Hub::connected(SessionId id, std::string address, const Instant& now) {
  seen(now);
  const auto& limits = config_.limits;
  if (limits.max_connections != 0 && sessions_.size() >= limits.max_connections) {
    counters_.connections_refused.add();
    warn("{}: connection refused: {} connections is the limit ({} refused so far)", address,
         limits.max_connections, ++refused_over_total_);
    return false;
  }
  auto key = address_key(address);
  Peer& peer = peers_[key];
  if (limits.max_connections_per_ip != 0 && peer.connections >= limits.max_connections_per_ip) {
    counters_.connections_refused.add();
    warn(
        "{}: connection refused: {} connections from this address is the limit ({} refused so far)",
        address, limits.max_connections_per_ip, ++peer.refused);
    return false;
  }
  ++peer.connections;
  peer.refused = 0;
  refused_over_total_ = 0;
  Session& session = sessions_[id];
  session.address = std::move(address);
  session.peer_key = std::move(key);
  session.connected_at = now.steady;
  session.last_input = now.steady;
  schedule(id, session, now.steady + std::chrono::seconds(limits.login_timeout_seconds));
  if (peers_.size() >= prune_peers_at_) forget_idle_peers();
  return true;
}

// Addresses with no connection whose failed-login bucket has refilled carry
// no state worth keeping; dropping them keeps the table as small as the set
// of recently active addresses.
void Hub::forget_idle_peers() {
  std::erase_if(peers_, [&](const auto& entry) {
    return entry.second.connections == 0 && entry.second.failed_logins.full(latest_.steady);
  });
  prune_peers_at_ = std::max<std::size_t>(1024, 2 * peers_.size());
}

void Hub::set_legacy(SessionId id) {
  if (Session* session = find(id)) session->legacy = true;
}

void Hub::input(SessionId id, const Instant& now) {
  Session* session = find(id);
  if (session == nullptr || session->stage == Stage::closed) return;
  seen(now);
  session->last_input = now.steady;
  session->ping.reset();
  if (session->probe) resolve_probe(id, *session, true, now);
}

bool Hub::closing(SessionId id) const {
  const auto it = sessions_.find(id);
  return it != sessions_.end() && it->second.closing.has_value();
}

bool Hub::wants_input(SessionId id) const {
  const auto it = sessions_.find(id);
  return it != sessions_.end() && it->second.stage != Stage::logging_in &&
         it->second.stage != Stage::closed;
}

// ---- Deadlines ----

void Hub::schedule(SessionId id, Session& session, SteadyTime at) {
  if (session.due == at) return;
  unschedule(id, session);
  deadlines_.emplace(at, id);
  session.due = at;
}

void Hub::unschedule(SessionId id, Session& session) {
  if (session.due) deadlines_.erase({*session.due, id});
  session.due.reset();
}

std::optional<Hub::SteadyTime> Hub::next_expiry() const {
  auto next = log_.next_summary();
  if (!deadlines_.empty() && (!next || deadlines_.begin()->first < *next)) {
    next = deadlines_.begin()->first;
  }
  return next;
}

void Hub::expire(const Instant& now) {
  seen(now);
  log_.flush(now.steady);
  while (!deadlines_.empty() && deadlines_.begin()->first <= now.steady) {
    const auto id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    Session* session = find(id);
    if (session == nullptr) continue;
    session->due.reset();
    check_deadlines(id, *session, now);
  }
}

// Input is only time-stamped as it arrives; a session's deadline is checked
// (and moved on) when it comes due, so no input ever touches the schedule.
void Hub::check_deadlines(SessionId id, Session& session, const Instant& now) {
  using std::chrono::seconds;
  const auto& limits = config_.limits;
  // A close that waited for results gives up on them after a grace period.
  if (session.stage == Stage::closed) return finish_close(id, session);
  if (session.stage != Stage::online) {
    const auto deadline = session.connected_at + seconds(limits.login_timeout_seconds);
    if (now.steady < deadline) return schedule(id, session, deadline);
    counters_.login_timeouts.add();
    info("{}: no login within {} s; closing the connection", session.address,
         limits.login_timeout_seconds);
    return close_session(id, session, errc::login_timeout,
                         protocol::ShutdownEvent{static_cast<std::uint16_t>(errc::login_timeout),
                                                 "no login within the time limit"});
  }
  if (session.probe && now.steady >= *session.probe) {
    return resolve_probe(id, session, false, now);
  }
  // Sessions of version 1 do not answer pings: TCP keepalive watches them.
  if (session.version < 2 || limits.idle_ping_seconds == 0) {
    if (session.probe) schedule(id, session, *session.probe);
    return;
  }
  SteadyTime next;
  if (session.ping) {
    const auto deadline = *session.ping + seconds(limits.ping_timeout_seconds);
    if (now.steady >= deadline) {
      counters_.ping_timeouts.add();
      info("{}: {} did not answer a ping within {} s; closing the connection", session.address,
           session.username, limits.ping_timeout_seconds);
      return close_session(id, session, errc::timed_out);
    }
    next = deadline;
  } else {
    const auto idle_until = session.last_input + seconds(limits.idle_ping_seconds);
    if (now.steady >= idle_until) {
      session.ping = now.steady;
      counters_.pings_sent.add();
      outbox_.send(id, protocol::Ping{next_ping_id_++, 0});
      next = now.steady + seconds(limits.ping_timeout_seconds);
    } else {
      next = idle_until;
    }
  }
  if (session.probe) next = std::min(next, *session.probe);
  schedule(id, session, next);
}

// ---- Requests ----

void Hub::reply_error(SessionId id, protocol::RequestId request, errc code,
                      std::string_view detail) {
  outbox_.send(id, protocol::Error{request, static_cast<std::uint16_t>(code), std::string(detail)});
}

void Hub::fail_and_close(SessionId id, protocol::RequestId request, errc code) {
  Session* session = find(id);
  if (session == nullptr || session->stage == Stage::closed) return;
  reply_error(id, request, code);
  close_session(id, *session, code);
}

void Hub::handle(SessionId id, const protocol::Message& message, const Instant& now) {
  Session* found = find(id);
  if (found == nullptr || found->stage == Stage::closed) return;
  Session& session = *found;
  const auto type = protocol::type_of(message);
  const auto request = request_id_of(message);
  seen(now);

  // The answer to one of our pings: input() has already taken note.
  if (type == protocol::MessageType::pong && session.version >= 2) return;
  if (!protocol::is_request(type)) {
    fail_and_close(id, 0, errc::unexpected_message);
    return;
  }
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
  // Frames of any spoken version decode, but a session gets only what its
  // version has: a type newer than that is a request it cannot be answered.
  if (protocol::since_version(type) > session.version) {
    counters_.unsupported_requests.add();
    reply_error(id, request, errc::unsupported_request);
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
                 [&](const protocol::GroupCreate& m) { on_group_create(id, session, m, now); },
                 [&](const protocol::GroupJoin& m) { on_group_join(id, session, m); },
                 [&](const protocol::GroupLeave& m) { on_group_leave(id, session, m); },
                 [&](const protocol::GroupDelete& m) { on_group_delete(id, session, m); },
                 [&](const protocol::GroupSend& m) { on_group_send(id, session, m, now); },
                 [&](const protocol::FileOffer& m) { on_file_offer(id, session, m); },
                 [&](const protocol::FileOfferCheck& m) { on_file_offer_check(id, session, m); },
                 [&](const protocol::Logout& m) { on_logout(id, session, m); },
                 [&](const protocol::HistoryQuery& m) { on_history(id, session, m); },
                 [&](const auto&) { reply_error(id, request, errc::unexpected_message); },
             },
             message);
}

void Hub::unsupported(SessionId id, protocol::RequestId request) {
  Session* session = find(id);
  if (session == nullptr || session->stage == Stage::closed) return;
  counters_.unsupported_requests.add();
  reply_error(id, request, errc::unsupported_request);
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

  counters_.rate_limited.add();
  const auto& who = session.username.empty() ? std::string_view("a client") : session.username;
  if (++session.refusals == 1) {
    warn("{}: {} is sending faster than {} requests/s; refusing requests", session.address, who,
         limits.message_rate);
  }
  if (limits.max_rate_refusals != 0 && session.refusals >= limits.max_rate_refusals) {
    warn("{}: {} disconnected after {} requests refused for sending too fast", session.address, who,
         session.refusals);
    close_session(id, session, errc::rate_limited,
                  protocol::ShutdownEvent{static_cast<std::uint16_t>(errc::rate_limited),
                                          "sending too fast"});
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
  counters_.failed_logins.add();
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
  const auto version = std::min(hello.max_version, protocol::version);
  if (version < hello.min_version || version < protocol::min_version) {
    fail_and_close(id, hello.request_id, errc::unsupported_version);
    return;
  }
  session.stage = Stage::awaiting_login;
  session.version = version;
  outbox_.negotiated(id, version);
  outbox_.send(id, protocol::HelloOk{hello.request_id, version, config_.software,
                                     static_cast<std::uint32_t>(config_.limits.max_frame_size)});
}

// ---- Login: block check, password, block check again, name claim ----

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
  session.stage = Stage::logging_in;
  session.pending = {login.request_id, login.username,     login.password,
                     login.udp_port,   login.resume_after, false};
  store_.is_blocked(
      login.username, session.peer_key, now.wall, then<bool>(id, [this, id, now](bool blocked) {
        Session* s = find(id);
        if (s == nullptr || s->stage != Stage::logging_in) return;
        if (blocked) {
          info("{}: {} tried to log in while blocked", s->address, s->pending.username);
          return fail_and_close(id, s->pending.request, errc::account_blocked);
        }
        check_password(id, *s, now);
      }));
}

// Slow checks run a few at a time (max_pending_password_checks); the rest
// wait in one queue per account, served in turn, and each account and each
// address may hold only a few places, running or waiting: guesses against
// one account, from any number of addresses, never starve another's login.
void Hub::check_password(SessionId id, Session& session, const Instant& now) {
  const auto& limits = config_.limits;
  auto& pending = session.pending;
  if (checker_ == nullptr || !authenticator_->slow(pending.username)) {
    const bool ok = authenticator_->verify(pending.username, pending.password);
    pending.password.clear();
    return password_result(id, ok, now);
  }
  const auto over = [](std::uint32_t held, std::size_t cap) { return cap != 0 && held >= cap; };
  const auto waiting_cap = limits.max_pending_password_checks * 4;
  if (over(checks_.per_account[pending.username], limits.max_password_checks_per_account) ||
      over(checks_.per_address[session.peer_key], limits.max_password_checks_per_address) ||
      (waiting_cap != 0 && checks_.waiting >= waiting_cap)) {
    warn("{}: login as {} refused: too many password checks for this account or address",
         session.address, pending.username);
    counters_.rate_limited.add();
    reply_error(id, pending.request, errc::rate_limited, "too many logins in progress");
    return end_login(id, session);
  }
  // Counted as failed until it succeeds, so guesses sent side by side
  // cannot outrun the per-address limit.
  count_failed_login(session, now);
  pending.counted = true;
  ++checks_.per_account[pending.username];
  ++checks_.per_address[session.peer_key];
  checks_.held.emplace(id, std::pair{pending.username, session.peer_key});
  auto& queue = checks_.queues[pending.username];
  if (queue.empty()) checks_.turns.push_back(pending.username);
  queue.push_back(id);
  ++checks_.waiting;
  start_checks();
}

void Hub::start_checks() {
  const auto cap = config_.limits.max_pending_password_checks;
  while (!checks_.turns.empty() && (cap == 0 || checks_.running < cap)) {
    auto account = std::move(checks_.turns.front());
    checks_.turns.pop_front();
    auto& queue = checks_.queues[account];
    const auto id = queue.front();
    queue.pop_front();
    --checks_.waiting;
    if (queue.empty()) {
      checks_.queues.erase(account);
    } else {
      checks_.turns.push_back(std::move(account));
    }
    Session* session = find(id);
    if (session == nullptr || session->stage != Stage::logging_in) {
      release_check(id);
      continue;
    }
    ++checks_.running;
    checker_->check(id, session->pending.username, std::exchange(session->pending.password, {}));
  }
}

void Hub::release_check(SessionId id) {
  const auto it = checks_.held.find(id);
  if (it == checks_.held.end()) return;
  const auto& [account, address] = it->second;
  if (--checks_.per_account[account] == 0) checks_.per_account.erase(account);
  if (--checks_.per_address[address] == 0) checks_.per_address.erase(address);
  checks_.held.erase(it);
}

void Hub::password_checked(SessionId id, bool ok, const Instant& now) {
  if (checks_.running > 0) --checks_.running;
  release_check(id);
  seen(now);
  password_result(id, ok, now);
  start_checks();
}

void Hub::password_result(SessionId id, bool ok, const Instant& now) {
  Session* session = find(id);
  if (session == nullptr || session->stage != Stage::logging_in) return;
  if (ok && session->pending.counted && config_.limits.max_failed_logins_per_ip != 0) {
    peers_[session->peer_key].failed_logins.give_back(failed_login_interval());
  }
  // Guesses checked meanwhile may have blocked the account: then a right
  // password does not get in, and a wrong one is not counted again.
  store_.is_blocked(
      session->pending.username, session->peer_key, now.wall,
      then<bool>(id, [this, id, ok, now](bool blocked) {
        Session* s = find(id);
        if (s == nullptr || s->stage != Stage::logging_in) return;
        if (blocked) {
          info("{}: {} tried to log in while blocked", s->address, s->pending.username);
          return fail_and_close(id, s->pending.request, errc::account_blocked);
        }
        if (ok) return claim_name(id, now);
        if (!s->pending.counted) count_failed_login(*s, now);
        store_.login_failed(
            s->pending.username, s->peer_key, now.wall,
            then<FailedLogin>(id, [this, id](FailedLogin failed) {
              Session* f = find(id);
              if (f == nullptr || f->stage != Stage::logging_in) return;
              if (failed.account_blocked) {
                counters_.blocks.add();
                warn(
                    "{}: {} blocked for every address it has not logged in from: more than {} "
                    "failed logins from all addresses within {} s",
                    f->address, f->pending.username, config_.limits.max_account_failures,
                    config_.block_duration.count());
              }
              if (failed.blocked_now) {
                counters_.blocks.add();
                warn("{}: {} blocked for this address after {} failed logins", f->address,
                     f->pending.username, config_.max_attempts);
              }
              if (failed.blocked_now || failed.account_blocked) {
                return fail_and_close(id, f->pending.request, errc::account_blocked_now);
              }
              reply_error(id, f->pending.request, errc::invalid_password);
              end_login(id, *f);
            }));
      }));
}

void Hub::claim_name(SessionId id, const Instant& now) {
  Session* session = find(id);
  if (session == nullptr || session->stage != Stage::logging_in) return;
  PresenceEntry entry{
      {session->pending.username, now.wall, session->address, session->pending.udp_port}, {{}, id}};
  presence_.claim(std::move(entry),
                  then<ClaimOutcome>(id, [this, id, now, username = session->pending.username](
                                             ClaimOutcome claimed) {
                    Session* s = find(id);
                    const bool ours = claimed.code == errc{} && !claimed.holder;
                    if (s == nullptr || s->stage != Stage::logging_in) {
                      // Gone while the claim was decided: give the name back.
                      if (ours) presence_.release(username, id);
                      return;
                    }
                    if (claimed.code != errc{}) {
                      reply_error(id, s->pending.request, claimed.code);
                      return end_login(id, *s);
                    }
                    if (claimed.holder) return name_taken(id, *claimed.holder, now);
                    auto& pending = s->pending;
                    s->stage = Stage::online;
                    s->username = pending.username;
                    s->udp_port = pending.udp_port;
                    s->last_input = now.steady;
                    const auto online = presence_.online();
                    // In a cluster, another node's login may already follow this one.
                    logs_.user_online(online.size(), presence_.find(s->username)->record);
                    store_.login_succeeded(s->username, s->peer_key);
                    counters_.logins.add();
                    counters_.online.set(online.size());
                    outbox_.send(id, protocol::LoginOk{pending.request, s->username});
                    outbox_.resume(id);
                    info("{} is online", s->username);
                    replay_missed(id, pending.resume_after, pending.resume_after == 0);
                    unschedule(id, *s);
                    check_deadlines(id, *s, now);
                    if (observer_.on_login)
                      observer_.on_login(s->username, s->address, s->udp_port);
                  }));
}

// A second login to an online account: a session that can answer pings is
// probed first, so that a peer that vanished without closing (a dropped
// network) does not keep its user out until TCP notices.
void Hub::name_taken(SessionId id, const PresenceEntry& holder, const Instant& now) {
  Session* session = find(id);
  Session* live = holder.where.local() ? find(holder.where.session) : nullptr;
  if (live == nullptr || live->stage != Stage::online || live->version < 2) {
    reply_error(id, session->pending.request, errc::already_logged_in);
    end_login(id, *session);
    return;
  }
  live->waiting.push_back(id);
  if (live->probe) return;
  counters_.login_probes.add();
  live->probe = now.steady + config_.probe_timeout;
  outbox_.send(holder.where.session, protocol::Ping{next_ping_id_++, 0});
  if (!live->due || *live->due > *live->probe) schedule(holder.where.session, *live, *live->probe);
}

void Hub::resolve_probe(SessionId id, Session& session, bool alive, const Instant& now) {
  session.probe.reset();
  auto waiting = std::exchange(session.waiting, {});
  if (alive) {
    for (const auto other : waiting) {
      Session* login = find(other);
      if (login == nullptr || login->stage != Stage::logging_in) continue;
      reply_error(other, login->pending.request, errc::already_logged_in);
      end_login(other, *login);
      if (session.version >= 2) {
        outbox_.send(id, protocol::LoginAttemptEvent{login->address, now.wall});
      }
    }
    return;
  }
  info("{}: {} did not answer within {} ms while another login waited; closing it", session.address,
       session.username, config_.probe_timeout.count());
  counters_.ping_timeouts.add();
  close_session(id, session, errc::timed_out);
  for (const auto other : waiting)
    claim_name(other, now);
}

// The login is over without a session: input flows again.
void Hub::end_login(SessionId id, Session& session) {
  session.stage = Stage::awaiting_login;
  session.pending.password.clear();
  outbox_.resume(id);
}

// ---- Commands ----

const PresenceEntry* Hub::online_peer(const std::string& user) {
  const auto* target = presence_.find(user);
  if (target == nullptr || !target->where.local()) return target;
  // A name is claimed before its login completes: until the LoginOk has gone
  // out, its user is not online for anyone else.
  const Session* local = find(target->where.session);
  return local != nullptr && local->stage == Stage::online ? target : nullptr;
}

const PresenceEntry* Hub::peer_for(SessionId id, const Session& session,
                                   protocol::RequestId request, const std::string& to) {
  if (to == session.username) {
    reply_error(id, request, errc::cannot_message_self);
    return nullptr;
  }
  const auto* target = online_peer(to);
  if (target == nullptr) reply_error(id, request, errc::user_not_online, to);
  return target;
}

void Hub::deliver(std::span<const std::string> users, const protocol::Message& message,
                  bool forward) {
  const auto since = protocol::since_version(protocol::type_of(message));
  recipients_.clear();
  remote_.clear();
  for (const auto& user : users) {
    const auto* entry = presence_.find(user);
    if (entry == nullptr) continue;
    if (!entry->where.local()) {
      if (router_ != nullptr && forward) remote_[entry->where.node].push_back(user);
      continue;
    }
    // Only sessions whose login has completed get users' events.
    const Session* session = find(entry->where.session);
    if (session == nullptr || session->stage != Stage::online || session->version < since) continue;
    recipients_.push_back(entry->where.session);
  }
  outbox_.send_to_many(recipients_, message);
  for (const auto& [node, names] : remote_)
    router_->forward(node, names, message);
}

void Hub::deliver(const std::string& user, const protocol::Message& message) {
  deliver(std::span<const std::string>(&user, 1), message);
}

void Hub::on_direct(SessionId id, Session& session, const protocol::DirectSend& request,
                    const Instant& now) {
  info("{} issued msgto command", session.username);
  auto text = clean_text(request.text, config_.limits.max_text);
  if (!text) {
    reply_error(id, request.request_id, errc::invalid_text);
    return;
  }
  if (request.to == session.username) {
    reply_error(id, request.request_id, errc::cannot_message_self);
    return;
  }
  // A known user who is offline gets it at login; a session older than
  // version 3 cannot be told so, and is refused as before.
  const bool online = online_peer(request.to) != nullptr;
  if (!online && (session.version < 3 || !authenticator_->exists(request.to))) {
    reply_error(id, request.request_id, errc::user_not_online, request.to);
    return;
  }
  store_.append_direct_message(
      session.username, request.to, *text, now.wall,
      then<StoredMessage>(
          id, [this, id, request_id = request.request_id, from = session.username, to = request.to,
               body = std::string(*text), wall = now.wall](StoredMessage stored) {
            if (!stored.outcome.ok()) {
              counters_.store_failures.add();
              return reply_error(id, request_id, stored.outcome.code, stored.outcome.detail);
            }
            auto& event = std::get<protocol::DirectEvent>(direct_event_);
            event.from = from;
            event.timestamp = wall;
            event.text = body;
            if (router_ == nullptr)
              deliver_message(std::span<const std::string>(&to, 1), direct_event_, stored.id);
            outbox_.send(
                id, protocol::DirectSent{request_id, wall, stored.id, online_peer(to) == nullptr});
            logs_.direct_message(wall, from, body);
            counters_.direct_messages.add();
            if (observer_.on_direct_message) observer_.on_direct_message(from, to, body);
          }));
}

void Hub::on_active_users(SessionId id, const Session& session,
                          const protocol::ActiveUsersQuery& request) {
  info("{} issued activeuser command", session.username);
  protocol::ActiveUsers reply{request.request_id, {}};
  const auto online = presence_.online();
  reply.users.reserve(online.size());
  for (const auto& record : online) {
    // The original listed the caller too; its users expect that.
    if (record.username == session.username && !session.legacy) continue;
    reply.users.push_back({record.username, record.address, record.udp_port, record.since});
    if (reply.users.size() == config_.limits.max_list_entries) break;
  }
  outbox_.send(id, reply);
}

void Hub::on_group_create(SessionId id, Session& session, const protocol::GroupCreate& request,
                          const Instant& now) {
  info("{} issued creategroup command", session.username);
  if (!is_valid_group_name(request.group, config_.limits.max_group_name)) {
    reply_error(id, request.request_id, errc::invalid_group_name, request.group);
    return;
  }
  std::vector<std::string> invited;
  for (const auto& name : request.members) {
    if (name == session.username ||
        std::find(invited.begin(), invited.end(), name) != invited.end()) {
      continue;
    }
    if (!is_valid_username(name, config_.limits.max_username) || presence_.find(name) == nullptr) {
      reply_error(id, request.request_id, errc::user_not_online, name);
      return;
    }
    invited.push_back(name);
  }
  if (invited.size() + 1 > config_.limits.max_group_members) {
    warn("{}: {} tried to create group {} with {} members; the limit is {}", session.address,
         session.username, request.group, invited.size() + 1, config_.limits.max_group_members);
    reply_error(id, request.request_id, errc::limit_reached, request.group);
    return;
  }
  if (!within_invitation_rate(session, invited.size(), now)) {
    reply_error(id, request.request_id, errc::rate_limited, request.group);
    return;
  }
  store_.create_group(
      request.group, session.username, invited,
      then<StoreOutcome>(id, [this, id, request_id = request.request_id, group = request.group,
                              creator = session.username, address = session.address,
                              invited](StoreOutcome outcome) {
        if (!outcome.ok()) {
          if (outcome.code == errc::limit_reached) {
            warn("{}: {} tried to create group {}: limit reached for {}", address, creator, group,
                 outcome.detail);
          }
          return reply_error(id, request_id, outcome.code, outcome.detail);
        }
        protocol::GroupCreated reply{request_id, group, {}};
        reply.members.reserve(invited.size() + 1);
        reply.members.push_back(creator);
        reply.members.insert(reply.members.end(), invited.begin(), invited.end());
        logs_.group_created(group);
        outbox_.send(id, reply);
        deliver(invited, protocol::InviteEvent{group, creator});
        info("{} created group {}", creator, group);
        if (observer_.on_group_created) observer_.on_group_created(group, creator, invited);
      }));
}

// Invitations cost the creator one token each. A creation is allowed while
// any token is left and may spend more than are left, so a large group can
// still be made; the creator then waits until the debt is paid.
bool Hub::within_invitation_rate(const Session& session, std::size_t invitations,
                                 const Instant& now) {
  const auto per_minute = config_.limits.max_invitations_per_minute;
  if (per_minute == 0 || invitations == 0) return true;
  if (invitations_.size() >= prune_invitations_at_) {
    std::erase_if(invitations_, [&](const auto& entry) { return entry.second.full(now.steady); });
    prune_invitations_at_ = std::max<std::size_t>(1024, invitations_.size() * 2);
  }
  auto& bucket = invitations_[session.username];
  const auto interval = TokenBucket::interval_for(per_minute, std::chrono::minutes(1));
  if (!bucket.allows(now.steady, interval, per_minute)) {
    counters_.rate_limited.add();
    warn("{}: {} is inviting faster than {} users/min; refusing group creations", session.address,
         session.username, per_minute);
    return false;
  }
  for (std::size_t i = 0; i < invitations; ++i)
    bucket.take(now.steady, interval);
  return true;
}

void Hub::on_group_join(SessionId id, Session& session, const protocol::GroupJoin& request) {
  info("{} issued joingroup command", session.username);
  store_.join_group(
      request.group, session.username,
      then<StoreOutcome>(id, [this, id, request_id = request.request_id, group = request.group,
                              user = session.username](StoreOutcome outcome) {
        if (!outcome.ok()) {
          return reply_error(id, request_id, outcome.code, outcome.detail);
        }
        outbox_.send(id, protocol::GroupJoined{request_id, group});
        if (observer_.on_group_joined) observer_.on_group_joined(group, user);
      }));
}

void Hub::on_group_leave(SessionId id, Session& session, const protocol::GroupLeave& request) {
  info("{} issued leavegroup command", session.username);
  store_.leave_group(
      request.group, session.username,
      then<GroupDeparture>(id, [this, id, request_id = request.request_id, group = request.group,
                                user = session.username](GroupDeparture departure) {
        if (!departure.outcome.ok()) {
          return reply_error(id, request_id, departure.outcome.code, departure.outcome.detail);
        }
        outbox_.send(id, protocol::GroupLeft{request_id, group, departure.declined});
        if (departure.declined) {
          info("{} declined the invitation to group {}", user, group);
        } else {
          info("{} left group {}", user, group);
        }
        std::vector<std::string> told;
        for (const auto& member : departure.remaining) {
          if (departure.removed || member.joined) told.push_back(member.name);
        }
        if (departure.removed) {
          // Only invitations were left: they lapse with the group.
          deliver(told, protocol::GroupNoticeEvent{group, user, protocol::GroupChange::closed});
          logs_.group_removed(group);
          info("group {} removed: no member left", group);
        } else if (!departure.declined) {
          deliver(told, protocol::GroupNoticeEvent{group, user, protocol::GroupChange::left});
        }
      }));
}

void Hub::on_group_delete(SessionId id, Session& session, const protocol::GroupDelete& request) {
  info("{} issued deletegroup command", session.username);
  store_.delete_group(
      request.group, session.username,
      then<GroupRemoval>(id, [this, id, request_id = request.request_id, group = request.group,
                              user = session.username](GroupRemoval removal) {
        if (!removal.outcome.ok()) {
          return reply_error(id, request_id, removal.outcome.code, removal.outcome.detail);
        }
        outbox_.send(id, protocol::GroupDeleted{request_id, group});
        deliver(removal.members,
                protocol::GroupNoticeEvent{group, user, protocol::GroupChange::deleted});
        logs_.group_removed(group);
        info("{} deleted group {}", user, group);
      }));
}

void Hub::on_group_send(SessionId id, Session& session, const protocol::GroupSend& request,
                        const Instant& now) {
  info("{} issued groupmsg command", session.username);
  const auto text = clean_text(request.text, config_.limits.max_text);
  if (!text) {
    reply_error(id, request.request_id, errc::invalid_text);
    return;
  }
  store_.append_group_message(
      request.group, session.username, *text, now.wall,
      then<StoredGroupMessage>(
          id, [this, id, request_id = request.request_id, group = request.group,
               from = session.username, body = std::string(*text),
               wall = now.wall](StoredGroupMessage stored) {
            if (!stored.outcome.ok()) {
              return reply_error(id, request_id, stored.outcome.code, stored.outcome.detail);
            }
            auto& event = std::get<protocol::GroupEvent>(group_event_);
            event.group = group;
            event.from = from;
            event.timestamp = wall;
            event.text = body;
            if (router_ == nullptr) deliver_message(stored.recipients, group_event_, stored.id);
            outbox_.send(id, protocol::GroupSent{request_id, wall, stored.id});
            logs_.group_message(group, wall, from, body);
            counters_.group_messages.add();
            counters_.group_deliveries.add(recipients_.size());
            if (observer_.on_group_message) observer_.on_group_message(group, from, body);
          }));
}

void Hub::on_file_offer(SessionId id, Session& session, const protocol::FileOffer& request) {
  info("{} issued p2pvideo command", session.username);
  if (!is_safe_text(request.file_name)) {
    reply_error(id, request.request_id, errc::invalid_argument, "file name");
    return;
  }
  const auto* receiver = file_receiver(id, session, request.request_id, request.to);
  if (receiver == nullptr) return;
  const Session* local = receiver->where.local() ? find(receiver->where.session) : nullptr;
  if (session.legacy || (local != nullptr && local->legacy)) {
    return legacy_file_offer(id, session, request, *receiver, local);
  }
  std::uint64_t transfer_id = 0;
  while (transfer_id == 0) {
    random_({reinterpret_cast<std::uint8_t*>(&transfer_id), sizeof transfer_id});
  }
  protocol::TransferKey key{};
  random_(key);
  const auto address = receiver->record.address;
  const auto udp_port = receiver->record.udp_port;
  if (receiver->where.local()) {
    if (Session* other = find(receiver->where.session)) tie(*other, transfer_id, session.username);
  }
  tie(session, transfer_id, request.to);
  deliver(request.to, protocol::FileIncomingEvent{transfer_id, session.username, request.file_name,
                                                  request.size, request.sha256, session.address,
                                                  session.udp_port, key});
  outbox_.send(id, protocol::FileOfferOk{request.request_id, transfer_id, address, udp_port, key});
}

// Files to or from a user of the original client travel in its datagram
// format, which a native client speaks from version 3 on; the receiver's
// address is the one the server saw, as for native offers.
void Hub::legacy_file_offer(SessionId id, const Session& session,
                            const protocol::FileOffer& request, const PresenceEntry& receiver,
                            const Session* local) {
  const auto native_receiver = local == nullptr || !local->legacy;
  if ((!session.legacy && session.version < 3) ||
      (native_receiver && (local == nullptr || local->version < 3))) {
    reply_error(
        id, request.request_id, errc::invalid_argument,
        session.legacy ? "receiver cannot take legacy files" : "receiver uses the legacy protocol");
    return;
  }
  if (native_receiver) {
    deliver(request.to, protocol::LegacyFileEvent{session.username, request.file_name,
                                                  session.address, session.udp_port});
  }
  outbox_.send(id, protocol::FileOfferLegacy{request.request_id, receiver.record.address,
                                             receiver.record.udp_port});
}

void Hub::tie(Session& session, std::uint64_t transfer_id, const std::string& peer) {
  // Enough for every transfer a person runs at once; older ones have ended.
  constexpr std::size_t remembered = 64;
  if (session.transfers.size() == remembered) session.transfers.pop_front();
  session.transfers.push_back({transfer_id, peer});
}

const PresenceEntry* Hub::file_receiver(SessionId id, const Session& session,
                                        protocol::RequestId request, const std::string& to) {
  const auto* receiver = peer_for(id, session, request, to);
  if (receiver == nullptr) return nullptr;
  // Port 0 at login: a client that takes no files (a bot, say).
  if (receiver->record.udp_port == 0) {
    reply_error(id, request, errc::invalid_argument, "receiver takes no files");
    return nullptr;
  }
  return receiver;
}

void Hub::on_file_offer_check(SessionId id, Session& session,
                              const protocol::FileOfferCheck& request) {
  if (file_receiver(id, session, request.request_id, request.to) == nullptr) return;
  outbox_.send(id, protocol::FileOfferChecked{request.request_id, request.to});
}

void Hub::on_logout(SessionId id, Session& session, const protocol::Logout& request) {
  // The goodbye follows the replies to every request sent before it.
  close_session(id, session, errc::peer_closed,
                protocol::LoggedOut{request.request_id, session.username});
}

// ---- Ends ----

void Hub::go_offline(SessionId id, Session& session) {
  if (session.stage != Stage::online) return;
  // The other sides of this user's transfers stop now rather than time out.
  for (const auto& transfer : std::exchange(session.transfers, {})) {
    deliver(transfer.peer, protocol::TransferCancelledEvent{transfer.id, session.username});
  }
  presence_.release(session.username, id);
  counters_.online.set(presence_.online().size());
  logs_.user_offline();
  session.stage = Stage::awaiting_login;
  info("{} logged out", session.username);
  if (observer_.on_logout) observer_.on_logout(session.username);
}

void Hub::close_session(SessionId id, Session& session, errc reason,
                        std::optional<protocol::Message> farewell) {
  if (session.stage == Stage::closed) return;
  const auto waiting = end_session(id, session);
  // Requests accepted before the close still get their replies: the
  // connection closes once the last of their results has come back.
  session.closing = {reason, std::move(farewell)};
  if (session.inflight == 0) {
    finish_close(id, session);
  } else {
    schedule(id, session, latest_.steady + config_.probe_timeout);
  }
  admit_waiting(waiting);
}

std::vector<SessionId> Hub::end_session(SessionId id, Session& session) {
  go_offline(id, session);
  unschedule(id, session);
  session.stage = Stage::closed;
  session.ping.reset();
  session.probe.reset();
  return std::exchange(session.waiting, {});
}

// Logins that waited for a session's probe may have the name now.
void Hub::admit_waiting(const std::vector<SessionId>& waiting) {
  const Instant now = latest_;
  for (const auto other : waiting)
    claim_name(other, now);
}

void Hub::finish_close(SessionId id, Session& session) {
  auto closing = std::exchange(session.closing, {});
  if (!closing) return;
  unschedule(id, session);
  if (closing->farewell) outbox_.send(id, *closing->farewell);
  outbox_.close(id, closing->reason);
}

void Hub::settle(SessionId id) {
  Session* session = find(id);
  if (session == nullptr) return;
  if (session->inflight > 0) --session->inflight;
  if (session->inflight == 0 && session->stage == Stage::closed) finish_close(id, *session);
}

void Hub::disconnected(SessionId id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  if (session.stage != Stage::closed) admit_waiting(end_session(id, session));
  unschedule(id, session);
  const auto peer = peers_.find(session.peer_key);
  if (peer != peers_.end() && --peer->second.connections == 0 &&
      peer->second.failed_logins.full(latest_.steady)) {
    peers_.erase(peer);
  }
  sessions_.erase(it);
}

void Hub::close(SessionId id, errc reason) {
  if (Session* session = find(id)) close_session(id, *session, reason);
}

void Hub::protocol_error(SessionId id, std::error_code error) {
  const auto code =
      error.category() == category() ? static_cast<errc>(error.value()) : errc::malformed_frame;
  fail_and_close(id, 0, code);
}

void Hub::shutdown() {
  const protocol::ShutdownEvent notice{static_cast<std::uint16_t>(errc::server_shutdown),
                                       "server shutting down"};
  recipients_.clear();
  for (const auto& [id, session] : sessions_) {
    if (session.stage != Stage::closed) recipients_.push_back(id);
  }
  outbox_.send_to_many(recipients_, notice);
  for (const auto id : std::vector<SessionId>(recipients_)) {
    if (Session* session = find(id)) close_session(id, *session, errc::server_shutdown);
  }
}

void Hub::deliver_message(std::span<const std::string> users, protocol::Message& event,
                          MessageId message_id) {
  std::visit(
      [&](auto& e) {
        if constexpr (requires { e.missed; }) {
          e.id = message_id;
          e.missed = false;
        }
      },
      event);
  recipients_.clear();
  for (const auto& user : users) {
    const auto* entry = presence_.find(user);
    if (entry == nullptr || !entry->where.local()) continue;
    Session* session = find(entry->where.session);
    if (session == nullptr || session->stage != Stage::online) continue;
    if (session->replay.running) {
      session->replay.held_back = std::max(session->replay.held_back, message_id);
      continue;
    }
    if (message_id <= session->sent_through) continue;
    session->sent_through = message_id;
    delivered_.insert_or_assign(user, message_id);
    recipients_.push_back(entry->where.session);
  }
  outbox_.send_to_many(recipients_, event);
}

void Hub::deliver_stored(const StoredDelivery& message) {
  protocol::Message& event = message.group.empty() ? direct_event_ : group_event_;
  if (message.group.empty()) {
    auto& direct = std::get<protocol::DirectEvent>(event);
    direct.from = message.from;
    direct.timestamp = message.time;
    direct.text = message.text;
  } else {
    auto& group = std::get<protocol::GroupEvent>(event);
    group.group = message.group;
    group.from = message.from;
    group.timestamp = message.time;
    group.text = message.text;
  }
  deliver_message(message.to, event, message.id);
  if (!message.group.empty()) counters_.group_deliveries.add(recipients_.size());
}

void Hub::catch_up() {
  for (auto& [id, session] : sessions_) {
    if (session.stage != Stage::online || session.replay.running) continue;
    replay_missed(id, session.sent_through, session.sent_through == 0);
  }
}

void Hub::flush_cursors() {
  if (delivered_.empty()) return;
  std::vector<std::pair<std::string, MessageId>> cursors(delivered_.begin(), delivered_.end());
  delivered_.clear();
  store_.delivered(std::move(cursors));
}

// ---- What a user missed while away ----

// Pages small enough that a session's queue stays far below its limit; the
// next is read once the socket has taken most of the last.
constexpr std::size_t replay_page = 100;

void Hub::replay_missed(SessionId id, MessageId after, bool from_cursor) {
  Session* session = find(id);
  if (session == nullptr || session->stage != Stage::online) return;
  session->replay.running = true;
  store_.missed(
      session->username, after, from_cursor, replay_page,
      then<MissedPage>(id, [this, id](MissedPage page) { replayed(id, std::move(page)); }));
}

void Hub::replayed(SessionId id, MissedPage page) {
  Session* session = find(id);
  if (session == nullptr || session->stage != Stage::online) return;
  if (!page.outcome.ok()) {
    counters_.store_failures.add();
    warn("{}: {}'s missed messages could not be read; they stay stored", session->address,
         session->username);
    session->replay = {};
    return;
  }
  session->sent_through = std::max(session->sent_through, page.after);
  for (auto& missed : page.messages) {
    if (missed.id <= session->sent_through) continue;
    if (missed.group.empty()) {
      outbox_.send(id, protocol::DirectEvent{std::move(missed.from), missed.time,
                                             std::move(missed.text), missed.id, true});
    } else {
      outbox_.send(id, protocol::GroupEvent{std::move(missed.group), std::move(missed.from),
                                            missed.time, std::move(missed.text), missed.id, true});
    }
    session->sent_through = missed.id;
    ++session->replay.count;
  }
  if (session->sent_through != 0)
    delivered_.insert_or_assign(session->username, session->sent_through);
  if (!page.more && session->replay.held_back <= session->sent_through) {
    return end_replay(id, *session);
  }
  if (outbox_.backlog(id) > config_.limits.max_pending_write_bytes / 4) {
    session->replay.waiting_for_drain = true;
    outbox_.notify_drained(id);
    return;
  }
  replay_missed(id, session->sent_through, false);
}

void Hub::drained(SessionId id) {
  Session* session = find(id);
  if (session == nullptr || !session->replay.waiting_for_drain) return;
  session->replay.waiting_for_drain = false;
  replay_missed(id, session->sent_through, false);
}

void Hub::end_replay(SessionId id, Session& session) {
  const auto count = session.replay.count;
  session.replay = {};
  if (count != 0) info("{} received {} messages sent while away", session.username, count);
  if (session.version >= protocol::since_version(protocol::MessageType::missed_end)) {
    outbox_.send(id, protocol::MissedEnd{count});
  }
}

// ---- History ----

void Hub::on_history(SessionId id, Session& session, const protocol::HistoryQuery& request) {
  info("{} issued history command", session.username);
  if (request.limit == 0 || request.limit > protocol::max_history_page) {
    reply_error(id, request.request_id, errc::invalid_argument, "history page size");
    return;
  }
  store_.history(
      {session.username, request.kind, request.name, request.direction, request.anchor,
       request.limit},
      then<HistoryResult>(id, [this, id, request_id = request.request_id, name = request.name,
                               direction = request.direction](HistoryResult result) {
        if (!result.outcome.ok()) {
          return reply_error(id, request_id, result.outcome.code, result.outcome.detail);
        }
        protocol::HistoryPage page{request_id, result.kind, name, std::move(result.entries),
                                   result.more};
        // Long messages may not all fit in one frame: the page keeps those
        // nearest its anchor, and says that more exist.
        auto& entries = page.entries;
        const auto size_of = [](const protocol::HistoryEntry& e) {
          return 8 + 2 + e.from.size() + 8 + 2 + e.text.size();
        };
        std::size_t total = 16 + name.size();
        std::size_t fitting = 0;
        const bool from_newest = direction != protocol::HistoryDirection::after;
        for (std::size_t i = 0; i < entries.size(); ++i) {
          const auto& entry = from_newest ? entries[entries.size() - 1 - i] : entries[i];
          total += size_of(entry);
          if (total > config_.limits.max_frame_size) break;
          ++fitting;
        }
        if (fitting < entries.size()) {
          const auto cut = static_cast<std::ptrdiff_t>(entries.size() - fitting);
          if (from_newest) {
            entries.erase(entries.begin(), entries.begin() + cut);
          } else {
            entries.erase(entries.end() - cut, entries.end());
          }
          page.more = true;
        }
        outbox_.send(id, page);
      }));
}

}  // namespace tessenger::core
