// Finding 3 of the second security review: one user created 256 groups
// inviting every other online user in 2.9 s, and afterwards none of them
// could create a group. Invitations must not use up the invited user's
// quota, a creator's invitations are rate-limited, and groups nobody is in
// any more go away.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <tessenger/clock.hpp>

#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::ServerConfig;
using tessenger::testing::code_of;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;

namespace {

const std::vector<std::string> victims{"bob", "carol", "dave", "erin"};

std::unique_ptr<WireClient> online(const TestServer& server, const std::string& user,
                                   const std::string& password) {
  auto client = std::make_unique<WireClient>(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(client->login(user, password, 9, 2)));
  return client;
}

}  // namespace

TEST_CASE("invitation spam neither fills the victims' quotas nor leaves groups behind") {
  ServerConfig config;
  config.limits.message_rate = 0;  // the invitation limit alone is under test
  // Time stands still, so however slow the build the attack has one instant.
  config.clock = std::make_shared<tessenger::ManualClock>();
  TestServer server(config);
  auto attacker = online(server, "alice", "pa");
  std::vector<std::unique_ptr<WireClient>> victim;
  for (const auto& [name, password] :
       {std::pair{"bob", "pb"}, {"carol", "pc"}, {"dave", "pd"}, {"erin", "pe"}}) {
    victim.push_back(online(server, name, password));
  }

  // The attack: as many groups inviting everyone as the server allows.
  const auto quota = config.limits.max_groups_per_user;
  std::vector<std::string> created;
  int refused = 0;
  for (std::size_t i = 0; i < quota; ++i) {
    const auto group = "spam" + std::to_string(i);
    attacker->send(p::GroupCreate{static_cast<p::RequestId>(10 + i), group, victims});
    const auto reply = attacker->next();
    REQUIRE(reply);
    if (std::holds_alternative<p::GroupCreated>(*reply)) {
      created.push_back(group);
    } else {
      CHECK(code_of(*reply) == errc::rate_limited);
      ++refused;
    }
  }
  const auto per_minute = config.limits.max_invitations_per_minute;
  MESSAGE(created.size() << " of " << quota << " groups created, " << refused
                         << " refused; invitations sent: " << created.size() * victims.size()
                         << " (limit " << per_minute << "/min, one creation may overdraw)");
  CHECK(created.size() * victims.size() == per_minute);
  CHECK(refused > 0);

  // Every victim still has its whole quota.
  for (std::size_t v = 0; v < victim.size(); ++v) {
    CAPTURE(victims[v]);
    for (std::size_t i = 0; i < quota; ++i) {
      victim[v]->send(
          p::GroupCreate{static_cast<p::RequestId>(1000 + i), victims[v] + std::to_string(i), {}});
    }
    for (std::size_t i = 0; i < quota; ++i) {
      // Invitations arrived before; skip them to reach the replies.
      auto reply = victim[v]->next();
      while (reply && std::holds_alternative<p::InviteEvent>(*reply))
        reply = victim[v]->next();
      REQUIRE(reply);
      REQUIRE(std::holds_alternative<p::GroupCreated>(*reply));
    }
  }

  // Two victims decline; then the attacker leaves and its groups are gone.
  for (std::size_t v = 0; v < 2; ++v) {
    for (const auto& group : created) {
      victim[v]->send(p::GroupLeave{1, group});
      CHECK(victim[v]->expect<p::GroupLeft>() == p::GroupLeft{1, group, true});
    }
  }
  for (const auto& group : created) {
    attacker->send(p::GroupLeave{2, group});
    CHECK(attacker->expect<p::GroupLeft>() == p::GroupLeft{2, group, false});
  }
  for (std::size_t v = 2; v < victim.size(); ++v) {
    for (const auto& group : created) {
      CHECK(victim[v]->expect<p::GroupNoticeEvent>() ==
            p::GroupNoticeEvent{group, "alice", p::GroupChange::closed});
    }
    victim[v]->send(p::GroupJoin{3, created.front()});
    CHECK(code_of(*victim[v]->next()) == errc::group_not_found);
  }
  // The names are free: the groups do not exist any more.
  attacker->send(p::GroupCreate{4, created.front(), {}});
  CHECK(std::holds_alternative<p::GroupCreated>(*attacker->next()));
}
