#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <ostream>  // doctest prints std::error_code through operator<<
#include <span>
#include <system_error>
#include <vector>

#include <tessenger/protocol.hpp>

namespace tessenger::protocol::test {

using Bytes = std::vector<std::byte>;

inline Bytes bytes(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values)
    out.push_back(static_cast<std::byte>(v));
  return out;
}

inline Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

/// A frame header, for hand-made frames the encoder would never produce.
inline Bytes header(std::uint32_t length, int type, int version = 1, std::uint16_t flags = 0) {
  return bytes({static_cast<int>(length >> 24), static_cast<int>((length >> 16) & 0xff),
                static_cast<int>((length >> 8) & 0xff), static_cast<int>(length & 0xff), version,
                type, flags >> 8, flags & 0xff});
}

/// Rewrites the length field of an encoded frame.
inline void set_length(Bytes& frame, std::uint32_t length) {
  for (int i = 0; i < 4; ++i)
    frame[i] = static_cast<std::byte>(length >> (24 - 8 * i));
}

struct Outcome {
  std::vector<Message> messages;
  std::error_code error;
  std::size_t feeds = 0;  ///< feed calls that consumed bytes or yielded something
};

/// Feeds `stream` in chunks chosen by `next_chunk(offset)` until it is used up
/// or the decoder fails, collecting what it yields.
inline Outcome drive(Decoder& decoder, std::span<const std::byte> stream,
                     const std::function<std::size_t(std::size_t)>& next_chunk) {
  Outcome out;
  std::size_t offset = 0;
  while (offset < stream.size() && !out.error) {
    auto chunk = stream.subspan(offset, std::min(next_chunk(offset), stream.size() - offset));
    while (!chunk.empty()) {
      auto r = decoder.feed(chunk);
      ++out.feeds;
      if (r.consumed == 0 && !r.error) {
        // A decoder that takes nothing from non-empty input would loop forever.
        out.error = std::make_error_code(std::errc::protocol_error);
        break;
      }
      if (r.message) out.messages.push_back(std::move(*r.message));
      if (r.error) {
        out.error = r.error;
        break;
      }
      chunk = chunk.subspan(r.consumed);
      offset += r.consumed;
    }
  }
  return out;
}

inline Outcome decode_whole(std::span<const std::byte> stream, const Limits& limits = {}) {
  Decoder decoder(limits);
  return drive(decoder, stream, [&](std::size_t) { return stream.size(); });
}

inline Outcome decode_bytewise(std::span<const std::byte> stream, const Limits& limits = {}) {
  Decoder decoder(limits);
  return drive(decoder, stream, [](std::size_t) { return std::size_t{1}; });
}

}  // namespace tessenger::protocol::test
