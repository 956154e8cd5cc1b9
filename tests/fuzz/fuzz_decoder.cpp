// Feeds arbitrary bytes to the frame decoder and checks three properties:
// - no crash, leak or undefined behaviour (the sanitizers);
// - split invariance: any chunking of the input yields the same messages and
//   the same error as feeding it whole;
// - canonical round trip: every decoded message re-encodes, in its frame's
//   version, to exactly the bytes of its frame, and decoding those gives the
//   same message back;
// - an unknown type is skipped and reported the same way, however split.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include <tessenger/protocol.hpp>

using namespace tessenger::protocol;

namespace {

[[noreturn]] void violated(const char* property) {
  std::fprintf(stderr, "fuzz_decoder: property violated: %s\n", property);
  std::abort();
}

struct Decoded {
  std::vector<Message> messages;
  std::vector<UnknownMessage> unknown;
  std::error_code error;
};

// Feeds the input in chunks of the sizes `next_chunk` picks.
template <class NextChunk>
Decoded decode(std::span<const std::byte> input, NextChunk next_chunk) {
  Decoder decoder;
  Decoded out;
  while (!input.empty() && !out.error) {
    auto chunk = input.first(std::min(next_chunk(), input.size()));
    input = input.subspan(chunk.size());
    while (!chunk.empty()) {
      auto r = decoder.feed(chunk);
      if (r.consumed > chunk.size()) violated("consumed more than given");
      if (r.consumed == 0 && !r.error) violated("no progress without an error");
      if (r.message) out.messages.push_back(std::move(*r.message));
      if (r.unknown) out.unknown.push_back(*r.unknown);
      if (r.error) {
        out.error = r.error;
        if (decoder.feed(chunk).error != r.error) violated("decoder came back to life");
        break;
      }
      chunk = chunk.subspan(r.consumed);
    }
  }
  return out;
}

void check_round_trip(const Message& message, std::uint8_t frame_version,
                      std::span<const std::byte> frame) {
  const auto encoded = encode(message, frame_version);
  if (!std::equal(encoded.begin(), encoded.end(), frame.begin(), frame.end())) {
    violated("re-encoding differs from the frame");
  }
  Message again;
  if (decode_payload(type_of(message), std::span(encoded).subspan(header_size), {}, again,
                     frame_version)) {
    violated("re-encoded frame does not decode");
  }
  if (again != message) violated("decode(encode(m)) != m");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = std::as_bytes(std::span(data, size));

  // Whole input: every frame is decoded in place, so its bytes are known.
  Decoded whole;
  {
    Decoder decoder;
    auto rest = input;
    while (!rest.empty()) {
      auto r = decoder.feed(rest);
      if (r.message) {
        check_round_trip(*r.message, r.version, rest.first(r.consumed));
        whole.messages.push_back(std::move(*r.message));
      }
      if (r.unknown) {
        if (r.unknown->request_id.has_value() != is_request(MessageType{r.unknown->type})) {
          violated("an unknown request without its id, or another type with one");
        }
        whole.unknown.push_back(*r.unknown);
      }
      if (r.error) {
        whole.error = r.error;
        break;
      }
      if (r.consumed == 0) violated("no progress without an error");
      rest = rest.subspan(r.consumed);
    }
  }

  // Chunk sizes from a generator seeded by the input, so a crash reproduces
  // from the input file alone.
  std::uint64_t state = 0xcbf29ce484222325ull;
  for (const auto b : input)
    state = (state ^ std::to_integer<std::uint64_t>(b)) * 0x100000001b3ull;
  const auto next_chunk = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    // Mostly small pieces, sometimes large ones that hold several frames.
    return (state & 7) == 0 ? static_cast<std::size_t>(state >> 3) % 4096 + 1
                            : static_cast<std::size_t>(state >> 3) % 16 + 1;
  };
  const Decoded split = decode(input, next_chunk);
  const Decoded bytewise = decode(input, [] { return std::size_t{1}; });

  if (split.messages != whole.messages || bytewise.messages != whole.messages ||
      split.unknown != whole.unknown || bytewise.unknown != whole.unknown) {
    violated("messages depend on how the input is split");
  }
  if (split.error != whole.error || bytewise.error != whole.error) {
    violated("error depends on how the input is split");
  }
  return 0;
}
