// Fails each allocation the decoder makes, one at a time, and checks that
// feed() never throws and reports internal_error (nghttp2's failmalloc idea).

#include <doctest/doctest.h>

#include <cstdlib>
#include <new>

#include "helpers.hpp"
#include "samples.hpp"

namespace {

// Allocations left before the next one fails; negative means never fail.
long allocations_left = -1;
long allocations_made = 0;

void* allocate(std::size_t n) {
  if (allocations_left == 0) throw std::bad_alloc();
  if (allocations_left > 0) --allocations_left;
  ++allocations_made;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t n) {
  return allocate(n);
}
void* operator new[](std::size_t n) {
  return allocate(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

using namespace tessenger;
using namespace tessenger::protocol;
using namespace tessenger::protocol::test;

namespace {

struct Run {
  std::size_t messages = 0;
  long allocations = 0;  ///< made inside feed()
  std::error_code error;
  bool threw = false;
};

// Feeds `stream` in chunks of `chunk` bytes, arming the failure only inside feed().
Run run(const Bytes& stream, std::size_t chunk, long fail_after) {
  Decoder decoder;
  Run out;
  std::span<const std::byte> rest(stream);
  while (!rest.empty() && !out.error) {
    const auto piece = rest.first(std::min(chunk, rest.size()));
    allocations_left = fail_after;
    const long before = allocations_made;
    try {
      auto r = decoder.feed(piece);
      out.allocations += allocations_made - before;
      fail_after = allocations_left;
      allocations_left = -1;
      out.error = r.error;
      out.messages += r.message ? 1 : 0;
      rest = rest.subspan(r.consumed);
    } catch (...) {
      allocations_left = -1;
      out.threw = true;
      break;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("feed never throws when an allocation fails") {
  Bytes stream;
  const auto all = samples::one_of_each();
  for (const auto& m : all)
    encode(m, stream);

  for (const std::size_t chunk : {stream.size(), std::size_t{5}}) {
    CAPTURE(chunk);
    const Run clean = run(stream, chunk, -1);
    REQUIRE_FALSE(clean.error);
    REQUIRE(clean.messages == all.size());
    const long total = clean.allocations;
    REQUIRE(total > 0);

    for (long k = 0; k < total; ++k) {
      CAPTURE(k);
      const Run failed = run(stream, chunk, k);
      REQUIRE_FALSE(failed.threw);
      REQUIRE(failed.error == make_error_code(errc::internal_error));
      REQUIRE(failed.messages < all.size());
    }
  }
}
