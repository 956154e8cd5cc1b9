#pragma once

// A made-up next version of the protocol, built from the same codec
// templates as the real one (protocol/codec_impl.hpp) with a bigger schema,
// so that a peer of version N+1 can be made to talk to this build's N:
//
// - DirectSend gains a field, `u32 ttl`, appended at the end and present only
//   in frames of version N+1 (the rule for adding fields);
// - a new request, Shout (0x3f), and a new event, Wave (0xbf), both of
//   version N+1 only.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <variant>
#include <vector>

#include <tessenger/protocol.hpp>

#include "protocol/codec_impl.hpp"

namespace tessenger::next {

using protocol::Hello;
using protocol::RequestId;
using protocol::UnknownMessage;

inline constexpr std::uint8_t version = protocol::version + 1;
inline constexpr std::uint8_t shout_type = 0x3f;
inline constexpr std::uint8_t wave_type = 0xbf;

struct DirectSend {
  RequestId request_id = 0;
  std::string to;
  std::string text;
  std::uint32_t ttl = 0;  ///< since N+1
  bool operator==(const DirectSend&) const = default;
};

struct Shout {
  RequestId request_id = 0;
  std::string text;
  bool operator==(const Shout&) const = default;
};

struct Wave {
  std::string from;
  bool operator==(const Wave&) const = default;
};

template <class V, protocol::detail::Is<DirectSend> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.to, protocol::detail::Field::username);
  v.str(m.text, protocol::detail::Field::text);
  if (v.version >= next::version) v.u32(m.ttl);
}
template <class V, protocol::detail::Is<Shout> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.text, protocol::detail::Field::text);
}
template <class V, protocol::detail::Is<Wave> M>
void fields(V& v, M& m) {
  v.str(m.from, protocol::detail::Field::username);
}

// Today's messages with DirectSend replaced, then the new ones.
template <class V>
struct Grow;
template <class... T>
struct Grow<std::variant<T...>> {
  using type = std::variant<
      std::conditional_t<std::is_same_v<T, protocol::DirectSend>, next::DirectSend, T>..., Shout,
      Wave>;
};
using Message = Grow<protocol::Message>::type;

template <std::size_t N>
constexpr std::array<std::uint8_t, N + 2> grown(const std::array<std::uint8_t, N>& today,
                                                std::uint8_t a, std::uint8_t b) {
  std::array<std::uint8_t, N + 2> out{};
  for (std::size_t i = 0; i < N; ++i)
    out[i] = today[i];
  out[N] = a;
  out[N + 1] = b;
  return out;
}

struct Schema {
  using Message = next::Message;
  static constexpr std::uint8_t min_version = protocol::min_version;
  static constexpr std::uint8_t version = next::version;
  static constexpr auto types = grown(protocol::detail::Schema::types, shout_type, wave_type);
  static constexpr auto since = grown(protocol::detail::Schema::since, version, version);
};

struct FeedResult {
  std::size_t consumed = 0;
  std::optional<Message> message;
  std::optional<UnknownMessage> unknown;
  std::error_code error;
  std::uint8_t version = 0;
};

inline std::vector<std::byte> encode(const Message& message, std::uint8_t frame_version) {
  std::vector<std::byte> out;
  protocol::detail::encode_frame<Schema>(message, out, frame_version);
  return out;
}

/// The N+1 decoder: accepts [min_version, N+1], or only the negotiated one.
class Decoder {
 public:
  FeedResult feed(std::span<const std::byte> input) {
    if (error_) return {0, std::nullopt, std::nullopt, error_, 0};
    const protocol::detail::VersionRange accepted =
        negotiated_ ? protocol::detail::VersionRange{negotiated_, negotiated_}
                    : protocol::detail::VersionRange{Schema::min_version, Schema::version};
    auto result = protocol::detail::feed_frame<Schema, FeedResult>(input, {}, accepted, buffer_);
    if (result.error) error_ = result.error;
    return result;
  }
  void set_version(std::uint8_t negotiated) { negotiated_ = negotiated; }

 private:
  std::vector<std::byte> buffer_;
  std::error_code error_;
  std::uint8_t negotiated_ = 0;
};

/// The version both speak, as a server of version N+1 picks it.
inline std::optional<std::uint8_t> negotiate(const Hello& hello) {
  const auto low = std::max(hello.min_version, Schema::min_version);
  const auto high = std::min(hello.max_version, Schema::version);
  if (low > high) return std::nullopt;
  return high;
}

}  // namespace tessenger::next
