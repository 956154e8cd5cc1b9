#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "transfer/gap_tracker.hpp"

using tessenger::transfer::ByteRange;
using tessenger::transfer::GapTracker;

TEST_CASE("ranges merge and report only new bytes") {
  GapTracker g;
  std::vector<ByteRange> added;
  CHECK(g.add(10, 20, &added) == 10);
  CHECK(added == std::vector<ByteRange>{{10, 20}});
  CHECK(g.contiguous() == 0);
  added.clear();
  CHECK(g.add(30, 40, &added) == 10);
  CHECK(g.range_count() == 2);
  added.clear();
  CHECK(g.add(5, 45, &added) == 20);
  CHECK(added == std::vector<ByteRange>{{5, 10}, {20, 30}, {40, 45}});
  CHECK(g.range_count() == 1);
  CHECK(g.total() == 40);
  CHECK(g.add(5, 45) == 0);
  CHECK(g.add(0, 5) == 5);
  CHECK(g.contiguous() == 45);
  CHECK(g.range_count() == 1);
}

TEST_CASE("touching ranges become one; empty adds do nothing") {
  GapTracker g;
  g.add(0, 10);
  g.add(20, 30);
  CHECK(g.add(10, 20) == 10);
  CHECK(g.range_count() == 1);
  CHECK(g.contiguous() == 30);
  CHECK(g.add(7, 7) == 0);
  CHECK(g.add(9, 3) == 0);
}

TEST_CASE("contains and find") {
  GapTracker g;
  g.add(100, 200);
  CHECK(g.contains(100, 200));
  CHECK(g.contains(150, 160));
  CHECK_FALSE(g.contains(99, 150));
  CHECK_FALSE(g.contains(150, 201));
  CHECK(g.contains(5, 5));
  CHECK(g.find(100) == ByteRange{100, 200});
  CHECK(g.find(199) == ByteRange{100, 200});
  CHECK_FALSE(g.find(200));
  CHECK_FALSE(g.find(99));
  g.add(300, 400);
  CHECK(g.disjoint(0, 100));
  CHECK(g.disjoint(200, 300));
  CHECK(g.disjoint(250, 260));
  CHECK(g.disjoint(400, 1000));
  CHECK_FALSE(g.disjoint(99, 101));
  CHECK_FALSE(g.disjoint(199, 201));
  CHECK_FALSE(g.disjoint(150, 160));
  CHECK_FALSE(g.disjoint(50, 1000));
  CHECK_FALSE(g.disjoint(299, 300 + 1));
}

TEST_CASE("offsets above 4 GiB") {
  GapTracker g;
  const std::uint64_t base = 5ull << 30;
  g.add(base, base + 1200);
  g.add(0, base);
  CHECK(g.contiguous() == base + 1200);
  CHECK(g.total() == base + 1200);
}

TEST_CASE("random pushes drain to the whole range, same as a bitmap") {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    constexpr std::uint64_t size = 5000;
    std::vector<bool> bitmap(size);
    GapTracker g;
    std::uint64_t fresh_total = 0;
    for (int i = 0; i < 2000; ++i) {
      const auto b = rng() % size;
      const auto e = std::min<std::uint64_t>(size, b + 1 + rng() % 40);
      std::uint64_t expect = 0;
      for (auto x = b; x < e; ++x) {
        if (!bitmap[x]) ++expect;
        bitmap[x] = true;
      }
      CHECK(g.disjoint(b, e) == (expect == e - b));
      std::vector<ByteRange> added;
      const auto fresh = g.add(b, e, &added);
      CHECK(fresh == expect);
      std::uint64_t sum = 0;
      for (const auto& r : added)
        sum += r.end - r.begin;
      CHECK(sum == fresh);
      fresh_total += fresh;
    }
    CHECK(g.total() == fresh_total);
    std::uint64_t prefix = 0;
    while (prefix < size && bitmap[prefix])
      ++prefix;
    CHECK(g.contiguous() == prefix);
    for (const auto& [b, e] : g.ranges()) {
      for (auto x = b; x < e; ++x)
        REQUIRE(bitmap[x]);
      if (b > 0) CHECK_FALSE(bitmap[b - 1]);
      if (e < size) CHECK_FALSE(bitmap[e]);
    }
    g.add(0, size);
    CHECK(g.contiguous() == size);
    CHECK(g.range_count() == 1);
  }
}
