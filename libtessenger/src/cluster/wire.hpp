#pragma once

// What nodes publish to each other through Redis, on the channel of the
// node that must act: stored messages (kinds 1 and 2, built by the store's
// append scripts, see ClusterMessage) and other events, as
//   u8 3, u32 count, each recipient (u32 length + bytes), then the event's
//   protocol frame
// (integers big endian).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tessenger/protocol.hpp>
#include <tessenger/store.hpp>

namespace tessenger::cluster {

inline constexpr std::uint8_t wire_event = 3;

/// Reads a payload; after any read past its end, ok() is false for good.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(integer(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(integer(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(integer(4)); }
  std::uint64_t u64() { return integer(8); }
  std::string string() {
    const auto size = u32();
    if (!ok_ || size > data_.size()) {
      ok_ = false;
      return {};
    }
    std::string out(data_.substr(0, size));
    data_.remove_prefix(size);
    return out;
  }
  std::string_view rest() const noexcept { return data_; }
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return ok_ && data_.empty(); }

 private:
  std::uint64_t integer(std::size_t size) {
    if (!ok_ || data_.size() < size) {
      ok_ = false;
      return 0;
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i)
      value = value << 8 | static_cast<std::uint8_t>(data_[i]);
    data_.remove_prefix(size);
    return value;
  }
  std::string_view data_;
  bool ok_ = true;
};

enum class ClusterMessageKind : std::uint8_t { direct = 1, group = 2 };

/// A stored message as the append scripts publish it to a node: `to` are
/// the recipients online on that node.
struct ClusterMessage {
  ClusterMessageKind kind = ClusterMessageKind::direct;
  MessageId id = 0;
  protocol::Timestamp time = 0;
  std::string group;  ///< empty for a direct message
  std::string from;
  std::string text;
  std::vector<std::string> to;
  bool operator==(const ClusterMessage&) const = default;
};

/// The payload: big-endian u8 kind, u64 id, u64 time, then group, from and
/// text each as u32 length + bytes, then u32 count + that many such
/// strings. nullopt for an unknown kind, a truncated payload or bytes left over.
std::optional<ClusterMessage> decode_cluster_message(std::string_view payload);

struct WireEvent {
  std::vector<std::string> to;
  protocol::Message message;
};

std::string encode_event(std::span<const std::string> users, const protocol::Message& message);
/// Nothing if the payload is not a whole, valid event.
std::optional<WireEvent> decode_event(std::string_view payload);

}  // namespace tessenger::cluster
