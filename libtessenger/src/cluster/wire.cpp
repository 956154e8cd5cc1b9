#include "cluster/wire.hpp"

#include <algorithm>

namespace tessenger::cluster {

namespace {

void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(value >> shift & 0xff));
}

void put_string(std::string& out, std::string_view text) {
  put_u32(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

// A count no payload of this size could hold is refused before anything is reserved.
std::optional<std::vector<std::string>> read_names(WireReader& in) {
  const auto count = in.u32();
  if (!in.ok() || count > in.rest().size() / 4) return std::nullopt;
  std::vector<std::string> names;
  names.reserve(count);
  for (std::uint32_t i = 0; i < count && in.ok(); ++i)
    names.push_back(in.string());
  if (!in.ok()) return std::nullopt;
  return names;
}

}  // namespace

std::string encode_event(std::span<const std::string> users, const protocol::Message& message) {
  std::string out;
  out.push_back(static_cast<char>(wire_event));
  put_u32(out, static_cast<std::uint32_t>(users.size()));
  for (const auto& user : users)
    put_string(out, user);
  // The oldest version that has the event, so that a node one version
  // behind (a rolling upgrade) reads it too.
  const auto version =
      std::max(protocol::min_version, protocol::since_version(protocol::type_of(message)));
  const auto frame = protocol::encode(message, version);
  out.append(reinterpret_cast<const char*>(frame.data()), frame.size());
  return out;
}

std::optional<WireEvent> decode_event(std::string_view payload) {
  WireReader in(payload);
  if (in.u8() != wire_event) return std::nullopt;
  auto to = read_names(in);
  if (!to) return std::nullopt;
  const auto frame = in.rest();
  protocol::Decoder decoder;
  const auto result = decoder.feed(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(frame.data()), frame.size()));
  if (result.error || !result.message || result.consumed != frame.size()) return std::nullopt;
  return WireEvent{std::move(*to), std::move(*result.message)};
}

std::optional<ClusterMessage> decode_cluster_message(std::string_view payload) {
  WireReader in(payload);
  ClusterMessage message;
  const auto kind = in.u8();
  if (kind != static_cast<std::uint8_t>(ClusterMessageKind::direct) &&
      kind != static_cast<std::uint8_t>(ClusterMessageKind::group)) {
    return std::nullopt;
  }
  message.kind = static_cast<ClusterMessageKind>(kind);
  message.id = in.u64();
  message.time = static_cast<protocol::Timestamp>(in.u64());
  message.group = in.string();
  message.from = in.string();
  message.text = in.string();
  auto to = read_names(in);
  if (!to || !in.at_end()) return std::nullopt;
  message.to = std::move(*to);
  return message;
}

}  // namespace tessenger::cluster
