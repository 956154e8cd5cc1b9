// The payload the append scripts publish to other nodes, decoded without
// Redis: the bytes below are laid out as the scripts' struct.pack calls
// lay them out.

#include <doctest/doctest.h>

#include <string>

#include "cluster/redis_store.hpp"

using tessenger::cluster::ClusterMessage;
using tessenger::cluster::ClusterMessageKind;
using tessenger::cluster::decode_cluster_message;

namespace {

std::string be(std::uint64_t value, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  return out;
}

std::string lp(const std::string& text) {
  return be(text.size(), 4) + text;
}

std::string payload(std::uint8_t kind, std::uint64_t id, std::uint64_t time,
                    const std::string& group, const std::string& from, const std::string& text,
                    const std::vector<std::string>& to) {
  std::string out =
      be(kind, 1) + be(id, 8) + be(time, 8) + lp(group) + lp(from) + lp(text) + be(to.size(), 4);
  for (const auto& user : to)
    out += lp(user);
  return out;
}

}  // namespace

TEST_CASE("cluster message: a group and a direct message decode to their fields") {
  const std::string text("hello \0 \xe2\x82\xac", 11);
  const auto group = decode_cluster_message(
      payload(2, 0x0102030405060708, 1'800'000'000'000'000, "team", "alice", text, {"bob", "c"}));
  REQUIRE(group);
  CHECK(*group == ClusterMessage{ClusterMessageKind::group,
                                 0x0102030405060708,
                                 1'800'000'000'000'000,
                                 "team",
                                 "alice",
                                 text,
                                 {"bob", "c"}});
  const auto direct = decode_cluster_message(payload(1, 7, 9, "", "alice", "", {"bob"}));
  REQUIRE(direct);
  CHECK(direct->kind == ClusterMessageKind::direct);
  CHECK(direct->group.empty());
  CHECK(direct->text.empty());
  CHECK(direct->to == std::vector<std::string>{"bob"});
}

TEST_CASE("cluster message: truncated, oversized and unknown payloads are refused") {
  const auto good = payload(2, 42, 1000, "team", "alice", "hi there", {"bob", "carol"});
  REQUIRE(decode_cluster_message(good));
  // Every proper prefix is truncated somewhere: in a number, a length or a string.
  for (std::size_t size = 0; size < good.size(); ++size) {
    CHECK_MESSAGE(!decode_cluster_message(good.substr(0, size)), "size ", size);
  }
  CHECK_FALSE(decode_cluster_message(good + "x"));
  CHECK_FALSE(decode_cluster_message(payload(3, 42, 1000, "team", "alice", "hi", {"bob"})));
  CHECK_FALSE(decode_cluster_message(payload(0, 42, 1000, "team", "alice", "hi", {"bob"})));
  // A length or count beyond the payload is refused, not allocated.
  auto long_text = be(2, 1) + be(42, 8) + be(1000, 8) + lp("team") + lp("alice") +
                   be(0xffffffff, 4) + "hi" + be(0, 4);
  CHECK_FALSE(decode_cluster_message(long_text));
  auto many = be(2, 1) + be(42, 8) + be(1000, 8) + lp("team") + lp("alice") + lp("hi") +
              be(0xffffffff, 4) + lp("bob");
  CHECK_FALSE(decode_cluster_message(many));
}
