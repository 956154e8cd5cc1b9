#pragma once

// What nodes publish to each other through Redis, on the channel of the
// node that must act: stored messages (built by the store's append scripts
// with Lua's struct.pack) and other events (built here). All integers big
// endian, strings as a u32 length and the bytes:
//   stored: u8 kind (1 direct, 2 group), u64 id, u64 time, group, from,
//           text, u32 count, then each recipient on that node
//   event:  u8 3, u32 count, each recipient, then the event's protocol frame

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tessenger/protocol.hpp>

#include "core/hub.hpp"

namespace tessenger::cluster {

inline constexpr std::uint8_t wire_direct = 1;
inline constexpr std::uint8_t wire_group = 2;
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
    for (std::size_t i = 0; i < size; ++i) value = value << 8 | static_cast<std::uint8_t>(data_[i]);
    data_.remove_prefix(size);
    return value;
  }
  std::string_view data_;
  bool ok_ = true;
};

struct WireEvent {
  std::vector<std::string> to;
  protocol::Message message;
};

std::string encode_event(std::span<const std::string> users, const protocol::Message& message);
/// Nothing if the payload is not a whole, valid event.
std::optional<WireEvent> decode_event(std::string_view payload);
/// Nothing if the payload is not a whole, valid stored message.
std::optional<core::StoredDelivery> decode_stored(std::string_view payload);

}  // namespace tessenger::cluster
