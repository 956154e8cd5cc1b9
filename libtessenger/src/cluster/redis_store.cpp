#include "cluster/redis_store.hpp"

// Key layout (P is RedisStoreOptions::prefix, default "tess:"):
//
//   P seq                 string  the newest message id ever given (INCR in the append scripts)
//   P groups              set     the names of the groups (SCARD: Limits::max_groups)
//   P creator:<g>         string  the group's creator; exists exactly while the group does
//   P group:<g>           hash    member -> "position joined invited_after joined_after"
//                                 (position 0: the creator, then the invited in order)
//   P joined:<u>          hash    group -> joined_after, the groups u has joined (HLEN: quota)
//   P gm:<g>              stream  the group's messages
//   P dm:<n>:<low>:<high> stream  a direct conversation; low/high: the two names sorted
//                                 bytewise, n: the length of low (so no name can fake a key)
//   P peers:<u>           hash    other user -> the key of their direct stream
//   P streams             set     the keys of every conversation stream (for retention)
//   P cursor:<u>          string  the newest message id delivered to u
//   P account:<u>         hash    failures, window_start, blocked_until (account-wide)
//   P addr:<u>            hash    address -> "failures blocked_until known"
//   P retention           string  which node runs this period's retention (SET NX PX)
//   P online:<u>          hash    field node: where u is online (written by presence, read here)
//   P node:<node>         channel what the append scripts publish to a node
//
// A stream entry is message <id> with entry id "<id>-1" and the fields
// f (sender), t (time, µs) and x (text), so an id range of a conversation
// is one XRANGE. Retention: history_max trims on append (XADD MAXLEN =,
// one entry at a time); history_days runs every retention_interval on one
// node (the one that takes P retention), a batch of conversations per call.

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

#include <asio/dispatch.hpp>
#include <asio/steady_timer.hpp>

#include "cluster/redis_scripts.hpp"
#include "core/store_state.hpp"

namespace tessenger::cluster {

namespace {

// --- Replies of the scripts ---------------------------------------------

// Reads a script's reply (an array) element by element; any element of the
// wrong kind marks the whole reply bad, so a caller checks ok() once.
class ReplyReader {
 public:
  explicit ReplyReader(const RedisReply& reply)
      : reply_(reply), ok_(reply.kind == RedisReply::Kind::array) {}

  bool ok() const noexcept { return ok_; }
  bool more() const noexcept { return ok_ && next_ < reply_.elements.size(); }

  const RedisReply& next() {
    static const RedisReply none;
    if (!more()) {
      ok_ = false;
      return none;
    }
    return reply_.elements[next_++];
  }
  std::string text() {
    const RedisReply& element = next();
    if (element.kind != RedisReply::Kind::string && element.kind != RedisReply::Kind::status) {
      ok_ = false;
      return {};
    }
    return element.text;
  }
  std::int64_t integer() { return number_of(next()); }
  /// A stream entry id "<message id>-1" as the message id.
  MessageId entry_id(const RedisReply& element) {
    const auto& text = element.text;
    MessageId id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (element.kind != RedisReply::Kind::string || ec != std::errc{} || end == text.data()) {
      ok_ = false;
    }
    return id;
  }
  std::int64_t number_of(const RedisReply& element) {
    if (element.kind == RedisReply::Kind::integer) return element.integer;
    std::int64_t value = 0;
    const auto& text = element.text;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (element.kind != RedisReply::Kind::string || ec != std::errc{} ||
        end != text.data() + text.size()) {
      ok_ = false;
    }
    return value;
  }
  /// The elements of a nested array (none, and not ok, if it is not one).
  const std::vector<RedisReply>& array() {
    static const std::vector<RedisReply> none;
    const RedisReply& element = next();
    if (element.kind != RedisReply::Kind::array) {
      ok_ = false;
      return none;
    }
    return element.elements;
  }

 private:
  const RedisReply& reply_;
  bool ok_;
  std::size_t next_ = 0;
};

// The refusals a script names, by the errc's name.
constexpr std::array<std::pair<std::string_view, errc>, 9> script_errors{{
    {"group_exists", errc::group_exists},
    {"limit_reached", errc::limit_reached},
    {"group_not_found", errc::group_not_found},
    {"not_invited", errc::not_invited},
    {"already_joined", errc::already_joined},
    {"not_group_member", errc::not_group_member},
    {"not_group_creator", errc::not_group_creator},
    {"group_not_found_for_message", errc::group_not_found_for_message},
    {"group_not_joined", errc::group_not_joined},
}};

// The first elements of a reply: "ok", or a refusal and its subject;
// nullopt when the reply is not one of the scripts'.
std::optional<StoreOutcome> outcome_of(ReplyReader& reader) {
  const auto status = reader.text();
  if (!reader.ok()) return std::nullopt;
  if (status == "ok") return StoreOutcome{};
  const auto known = std::find_if(script_errors.begin(), script_errors.end(),
                                  [&](const auto& entry) { return entry.first == status; });
  if (known == script_errors.end()) return std::nullopt;
  auto detail = reader.text();
  if (!reader.ok()) return std::nullopt;
  return StoreOutcome{known->second, std::move(detail)};
}

std::string number(std::int64_t value) {
  return std::to_string(value);
}

protocol::Timestamp wall_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct RedisStore::Impl : std::enable_shared_from_this<Impl> {
  Impl(RedisConnection& connection_, asio::any_io_executor executor_, RedisStoreOptions options_)
      : connection(connection_),
        executor(executor_),
        options(std::move(options_)),
        retention_timer(executor_) {}

  RedisConnection& connection;
  asio::any_io_executor executor;
  RedisStoreOptions options;
  StorePolicy policy;
  std::array<std::string, script_count> shas;  // empty until loaded: EVAL the source
  asio::steady_timer retention_timer;
  bool retention_armed = false;
  bool closed = false;

  /// Runs `script` with the prefix and `args`; `then` gets its reply, or
  /// null when Redis or the connection failed (each is refused as
  /// service_unavailable by the caller).
  void run(Script script, std::vector<std::string> args,
           std::function<void(const RedisReply*)> then) {
    const auto index = static_cast<std::size_t>(script);
    args.insert(args.begin(), options.prefix);
    std::vector<std::string> command;
    command.reserve(args.size() + 3);
    if (shas[index].empty()) {
      command = {"EVAL", script_source(script), "0"};
    } else {
      command = {"EVALSHA", shas[index], "0"};
    }
    const bool by_sha = !shas[index].empty();
    // The arguments are kept only while a NOSCRIPT (Redis restarted and
    // forgot the script) may ask for them again.
    std::vector<std::string> kept = by_sha ? args : std::vector<std::string>{};
    std::move(args.begin(), args.end(), std::back_inserter(command));
    connection.command(
        std::move(command), [self = shared_from_this(), script, kept = std::move(kept),
                             then = std::move(then)](std::error_code ec, RedisReply reply) mutable {
          if (!ec && reply.is_error() && reply.text.starts_with("NOSCRIPT")) {
            std::vector<std::string> again{"EVAL", script_source(script), "0"};
            std::move(kept.begin(), kept.end(), std::back_inserter(again));
            self->connection.command(
                std::move(again),
                [then = std::move(then)](std::error_code again_ec, RedisReply again_reply) {
                  then(again_ec || again_reply.is_error() ? nullptr : &again_reply);
                });
            return;
          }
          then(ec || reply.is_error() ? nullptr : &reply);
        });
  }

  /// Runs `script`; `parse` turns a good reply into T (setting `ok` false
  /// if it was not what the script returns); `done` gets T or its refusal.
  template <class T, class Parse>
  void answer(Script script, std::vector<std::string> args, Store::Done<T> done, Parse parse) {
    run(script, std::move(args),
        [done = std::move(done), parse = std::move(parse)](const RedisReply* reply) {
          if (reply == nullptr) return done(core::refused(T{}));
          ReplyReader reader(*reply);
          auto outcome = outcome_of(reader);
          if (!outcome) return done(core::refused(T{}));
          T result = parse(std::move(*outcome), reader);
          done(reader.ok() ? std::move(result) : core::refused(T{}));
        });
  }

  std::string direct_key(std::string_view a, std::string_view b) const {
    const auto [low, high] = std::minmax(a, b);
    return std::string(options.prefix)
        .append("dm:")
        .append(std::to_string(low.size()))
        .append(":")
        .append(low)
        .append(":")
        .append(high);
  }

  std::string history_max() const { return std::to_string(policy.history_max); }

  void schedule_retention() {
    if (retention_armed || closed || policy.history_days == 0) return;
    retention_armed = true;
    retention_timer.expires_after(options.retention_interval);
    retention_timer.async_wait([weak = weak_from_this()](std::error_code ec) {
      const auto self = weak.lock();
      if (!self || ec || self->closed) return;
      self->retention_armed = false;
      const auto cutoff = wall_micros() - std::int64_t{self->policy.history_days} * 86'400'000'000;
      self->retain("0", cutoff);
    });
  }

  // One batch of conversations per call, until the scan is through; a
  // failure waits for the next period.
  void retain(std::string cursor, protocol::Timestamp cutoff) {
    const auto lock_ms = std::max<std::int64_t>(1, options.retention_interval.count());
    run(Script::retention, {std::move(cursor), number(cutoff), options.node, number(lock_ms)},
        [weak = weak_from_this(), cutoff](const RedisReply* reply) {
          const auto self = weak.lock();
          if (!self || self->closed) return;
          std::string next;
          if (reply != nullptr) {
            ReplyReader reader(*reply);
            if (outcome_of(reader)) next = reader.text();
            if (!reader.ok()) next.clear();
          }
          if (!next.empty() && next != "0") return self->retain(std::move(next), cutoff);
          self->schedule_retention();
        });
  }
};

RedisStore::RedisStore(RedisConnection& connection, asio::any_io_executor executor,
                       RedisStoreOptions options)
    : impl_(std::make_shared<Impl>(connection, std::move(executor), std::move(options))) {}

RedisStore::~RedisStore() {
  // Pending operations keep the state alive until they complete; the
  // retention timer only holds it weakly.
  asio::dispatch(impl_->executor, [impl = impl_] {
    impl->closed = true;
    impl->retention_timer.cancel();
  });
}

void RedisStore::start(std::function<void(std::error_code)> done) {
  asio::dispatch(impl_->executor, [impl = impl_, done = std::move(done)]() mutable {
    auto remaining = std::make_shared<std::size_t>(script_count);
    auto first_error = std::make_shared<std::error_code>();
    auto shared_done = std::make_shared<std::function<void(std::error_code)>>(std::move(done));
    for (std::size_t i = 0; i < script_count; ++i) {
      impl->connection.command(
          {"SCRIPT", "LOAD", script_source(static_cast<Script>(i))},
          [impl, i, remaining, first_error, shared_done](std::error_code ec, RedisReply reply) {
            if (!ec && reply.kind == RedisReply::Kind::string) {
              impl->shas[i] = reply.text;
            } else if (!*first_error) {
              *first_error = ec ? ec : make_error_code(errc::service_unavailable);
            }
            if (--*remaining == 0) (*shared_done)(*first_error);
          });
    }
  });
}

void RedisStore::configure(const StorePolicy& policy) {
  asio::dispatch(impl_->executor, [impl = impl_, policy] {
    impl->policy = policy;
    impl->schedule_retention();
  });
}

void RedisStore::create_group(std::string group, std::string creator,
                              std::vector<std::string> invited, Done<StoreOutcome> done) {
  asio::dispatch(
      impl_->executor, [impl = impl_, group = std::move(group), creator = std::move(creator),
                        invited = std::move(invited), done = std::move(done)]() mutable {
        std::vector<std::string> args{std::move(group), std::move(creator),
                                      number(impl->policy.limits.max_groups),
                                      number(impl->policy.limits.max_groups_per_user)};
        std::move(invited.begin(), invited.end(), std::back_inserter(args));
        impl->answer<StoreOutcome>(Script::create_group, std::move(args), std::move(done),
                                   [](StoreOutcome outcome, ReplyReader&) { return outcome; });
      });
}

void RedisStore::join_group(std::string group, std::string user, Done<StoreOutcome> done) {
  asio::dispatch(impl_->executor, [impl = impl_, group = std::move(group), user = std::move(user),
                                   done = std::move(done)]() mutable {
    impl->answer<StoreOutcome>(
        Script::join_group,
        {std::move(group), std::move(user), number(impl->policy.limits.max_groups_per_user)},
        std::move(done), [](StoreOutcome outcome, ReplyReader&) { return outcome; });
  });
}

void RedisStore::leave_group(std::string group, std::string user, Done<GroupDeparture> done) {
  asio::dispatch(impl_->executor, [impl = impl_, group = std::move(group), user = std::move(user),
                                   done = std::move(done)]() mutable {
    impl->answer<GroupDeparture>(Script::leave_group, {std::move(group), std::move(user)},
                                 std::move(done), [](StoreOutcome outcome, ReplyReader& reader) {
                                   GroupDeparture departure{std::move(outcome), false, false, {}};
                                   if (!departure.outcome.ok()) return departure;
                                   departure.declined = reader.integer() != 0;
                                   departure.removed = reader.integer() != 0;
                                   while (reader.more()) {
                                     GroupMember member;
                                     member.name = reader.text();
                                     member.joined = reader.integer() != 0;
                                     member.invited_after =
                                         static_cast<MessageId>(reader.integer());
                                     member.joined_after = static_cast<MessageId>(reader.integer());
                                     departure.remaining.push_back(std::move(member));
                                   }
                                   return departure;
                                 });
  });
}

void RedisStore::delete_group(std::string group, std::string user, Done<GroupRemoval> done) {
  asio::dispatch(impl_->executor, [impl = impl_, group = std::move(group), user = std::move(user),
                                   done = std::move(done)]() mutable {
    impl->answer<GroupRemoval>(Script::delete_group, {std::move(group), std::move(user)},
                               std::move(done), [](StoreOutcome outcome, ReplyReader& reader) {
                                 GroupRemoval removal{std::move(outcome), {}};
                                 while (removal.outcome.ok() && reader.more())
                                   removal.members.push_back(reader.text());
                                 return removal;
                               });
  });
}

void RedisStore::append_group_message(std::string_view group, std::string_view from,
                                      std::string_view text, protocol::Timestamp time,
                                      Done<StoredGroupMessage> done) {
  // The views live only during the call: copied before leaving the thread.
  asio::dispatch(
      impl_->executor, [impl = impl_,
                        args = std::vector<std::string>{std::string(group), std::string(from),
                                                        std::string(text), number(time)},
                        done = std::move(done)]() mutable {
        args.push_back(impl->options.node);
        args.push_back(impl->history_max());
        impl->answer<StoredGroupMessage>(Script::append_group, std::move(args), std::move(done),
                                         [](StoreOutcome outcome, ReplyReader& reader) {
                                           StoredGroupMessage stored{std::move(outcome), 0, {}};
                                           if (!stored.outcome.ok()) return stored;
                                           stored.id = static_cast<MessageId>(reader.integer());
                                           while (reader.more())
                                             stored.recipients.push_back(reader.text());
                                           return stored;
                                         });
      });
}

void RedisStore::append_direct_message(std::string_view from, std::string_view to,
                                       std::string_view text, protocol::Timestamp time,
                                       Done<StoredMessage> done) {
  asio::dispatch(
      impl_->executor, [impl = impl_,
                        args = std::vector<std::string>{std::string(from), std::string(to),
                                                        std::string(text), number(time)},
                        done = std::move(done)]() mutable {
        args.push_back(impl->options.node);
        args.push_back(impl->history_max());
        args.push_back(impl->direct_key(args[0], args[1]));
        impl->answer<StoredMessage>(Script::append_direct, std::move(args), std::move(done),
                                    [](StoreOutcome outcome, ReplyReader& reader) {
                                      StoredMessage stored{std::move(outcome), 0};
                                      if (stored.outcome.ok()) {
                                        stored.id = static_cast<MessageId>(reader.integer());
                                      }
                                      return stored;
                                    });
      });
}

void RedisStore::missed(std::string user, MessageId after, bool from_cursor, std::size_t limit,
                        Done<MissedPage> done) {
  // Lua counts in doubles: a page of a billion is as good as no limit.
  const auto capped = std::min<std::size_t>(limit, std::size_t{1} << 30);
  asio::dispatch(impl_->executor, [impl = impl_, user = std::move(user), after, from_cursor, capped,
                                   done = std::move(done)]() mutable {
    impl->answer<MissedPage>(Script::missed,
                             {std::move(user), number(static_cast<std::int64_t>(after)),
                              from_cursor ? "1" : "0", number(static_cast<std::int64_t>(capped))},
                             std::move(done), [capped](StoreOutcome outcome, ReplyReader& reader) {
                               const auto read_after = static_cast<MessageId>(reader.integer());
                               std::vector<MissedMessage> candidates;
                               while (reader.more()) {
                                 const auto& fields = reader.array();
                                 if (fields.size() != 5) {
                                   reader.next();  // past the end: marks the reply bad
                                   break;
                                 }
                                 MissedMessage message;
                                 message.id = reader.entry_id(fields[0]);
                                 message.group = fields[1].text;
                                 message.from = fields[2].text;
                                 message.time = reader.number_of(fields[3]);
                                 message.text = fields[4].text;
                                 candidates.push_back(std::move(message));
                               }
                               auto page =
                                   core::oldest_missed(read_after, std::move(candidates), capped);
                               page.outcome = std::move(outcome);
                               return page;
                             });
  });
}

void RedisStore::delivered(std::vector<std::pair<std::string, MessageId>> cursors) {
  if (cursors.empty()) return;
  asio::dispatch(impl_->executor, [impl = impl_, cursors = std::move(cursors)]() mutable {
    std::vector<std::string> args;
    args.reserve(cursors.size() * 2);
    for (auto& [user, id] : cursors) {
      args.push_back(std::move(user));
      args.push_back(number(static_cast<std::int64_t>(id)));
    }
    // Nobody waits for it: a cursor Redis did not keep only means those
    // messages come again at the next login (the client drops duplicates by id).
    impl->run(Script::delivered, std::move(args), [](const RedisReply*) {});
  });
}

void RedisStore::history(HistoryRequest request, Done<HistoryResult> done) {
  asio::dispatch(impl_->executor, [impl = impl_, request = std::move(request),
                                   done = std::move(done)]() mutable {
    using protocol::ConversationKind;
    using protocol::HistoryDirection;
    const char* kind = request.kind == ConversationKind::direct  ? "d"
                       : request.kind == ConversationKind::group ? "g"
                                                                 : "a";
    const char* direction = request.direction == HistoryDirection::before  ? "b"
                            : request.direction == HistoryDirection::after ? "a"
                                                                           : "l";
    auto key = impl->direct_key(request.user, request.name);
    const auto limit = core::history_limit(request);
    impl->answer<HistoryResult>(
        Script::history,
        {std::move(request.user), kind, std::move(request.name), direction,
         number(static_cast<std::int64_t>(request.anchor)),
         number(static_cast<std::int64_t>(limit)), std::move(key)},
        std::move(done), [](StoreOutcome outcome, ReplyReader& reader) {
          HistoryResult result{std::move(outcome), ConversationKind::group, {}, false};
          if (!result.outcome.ok()) return result;
          result.kind = reader.text() == "g" ? ConversationKind::group : ConversationKind::direct;
          result.more = reader.integer() != 0;
          while (reader.more()) {
            const auto& fields = reader.array();
            if (fields.size() != 4) {
              reader.next();
              break;
            }
            result.entries.push_back({reader.entry_id(fields[0]), fields[1].text,
                                      reader.number_of(fields[2]), fields[3].text});
          }
          return result;
        });
  });
}

void RedisStore::is_blocked(std::string user, std::string address, protocol::Timestamp now,
                            Done<bool> done) {
  asio::dispatch(
      impl_->executor, [impl = impl_, user = std::move(user), address = std::move(address), now,
                        done = std::move(done)]() mutable {
        impl->answer<bool>(Script::is_blocked, {std::move(user), std::move(address), number(now)},
                           std::move(done),
                           [](StoreOutcome, ReplyReader& reader) { return reader.integer() != 0; });
      });
}

void RedisStore::login_failed(std::string user, std::string address, protocol::Timestamp now,
                              Done<FailedLogin> done) {
  asio::dispatch(
      impl_->executor, [impl = impl_, user = std::move(user), address = std::move(address), now,
                        done = std::move(done)]() mutable {
        const auto& policy = impl->policy;
        const auto period =
            std::chrono::duration_cast<std::chrono::microseconds>(policy.block_duration).count();
        impl->answer<FailedLogin>(
            Script::login_failed,
            {std::move(user), std::move(address), number(now), number(period),
             number(policy.limits.max_account_failures), number(policy.max_attempts)},
            std::move(done), [](StoreOutcome, ReplyReader& reader) {
              FailedLogin result;
              result.blocked_now = reader.integer() != 0;
              result.account_blocked = reader.integer() != 0;
              return result;
            });
      });
}

void RedisStore::login_succeeded(std::string user, std::string address) {
  asio::dispatch(impl_->executor,
                 [impl = impl_, user = std::move(user), address = std::move(address)]() mutable {
                   impl->run(Script::login_succeeded, {std::move(user), std::move(address)},
                             [](const RedisReply*) {});
                 });
}

}  // namespace tessenger::cluster
