#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <vector>

#include <tessenger/transfer_engine.hpp>

#include "memory_file.hpp"
#include "transfer/background_hasher.hpp"
#include "transfer/sha256.hpp"

using namespace tessenger::transfer;

namespace {

using test::random_bytes;

// Feeds `data` in pieces of pseudo-random sizes up to `max_piece`.
void feed(FileHasher& hasher, std::span<const std::byte> data, std::size_t max_piece,
          std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (!data.empty()) {
    const auto n = std::min<std::size_t>(data.size(), 1 + rng() % max_piece);
    hasher.update(data.first(n));
    data = data.subspan(n);
  }
}

}  // namespace

TEST_CASE("the background hasher's digest is SHA-256 of the bytes in order") {
  const auto data = random_bytes(3'000'017, 1);
  const auto expected = sha256(data);
  // The smallest ring the hasher allows makes the writer wrap and wait often;
  // pieces larger than the ring are split across waits.
  for (const std::size_t ring : {std::size_t{256 * 1024}, std::size_t{4u << 20}}) {
    for (const std::size_t piece :
         {std::size_t{1'201}, std::size_t{65'536}, std::size_t{600'000}}) {
      CAPTURE(ring);
      CAPTURE(piece);
      BackgroundHasher hasher(ring);
      feed(hasher, data, piece, ring + piece);
      CHECK(hasher.finish() == expected);
    }
  }
}

TEST_CASE("the background hasher reads stable bytes in place, in order with copied ones") {
  const auto data = random_bytes(9'000'011, 2);
  const auto expected = sha256(data);
  const std::span<const std::byte> all(data);
  for (const std::size_t piece : {std::size_t{8'000}, std::size_t{3'000'000}}) {
    CAPTURE(piece);
    BackgroundHasher hasher(256 * 1024);
    std::size_t at = 0;
    // Runs of stable pieces, then copied ones, then stable ones again (as a
    // receiver switches between in-order data and catching up).
    for (int run = 0; at < data.size(); ++run) {
      for (int i = 0; i < 40 && at < data.size(); ++i) {
        const auto n = std::min(piece, data.size() - at);
        if (run % 2 == 0) {
          hasher.update_stable(all.subspan(at, n));
        } else {
          hasher.update(all.subspan(at, n));
        }
        at += n;
      }
    }
    CHECK(hasher.finish() == expected);
  }
}

TEST_CASE("the background hasher of nothing gives the empty file's digest") {
  BackgroundHasher hasher;
  CHECK(hasher.finish() == sha256({}));
}

TEST_CASE("a memory sink holds what is written and refuses what is outside it") {
  MemorySink sink(10);
  const auto bytes = random_bytes(4, 4);
  CHECK_FALSE(sink.write(6, bytes));
  std::vector<std::byte> back(4);
  CHECK_FALSE(sink.read(6, back));
  CHECK(back == bytes);
  CHECK(sink.write(7, bytes));
  CHECK(sink.read(11, std::span(back).first(0)));
  CHECK(sink.write(UINT64_MAX, bytes));
  CHECK_FALSE(sink.committed());
  CHECK_FALSE(sink.commit());
  CHECK(sink.committed());
  CHECK(sink.data().size() == 10);
  CHECK(std::equal(bytes.begin(), bytes.end(), sink.data().begin() + 6));
  CHECK(sink.memory().data() == sink.data().data());
  CHECK(sink.memory().size() == 10);
}
