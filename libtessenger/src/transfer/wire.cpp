#include "transfer/wire.hpp"

namespace tessenger::transfer::wire {

void put_u16(std::byte* p, std::uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v);
}

void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8)
    p[i] = std::byte(v);
}

void put_u64(std::byte* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8)
    p[i] = std::byte(v);
}

std::uint16_t get_u16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}

std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

void write_header(std::span<std::byte> out, const Header& header) {
  out[0] = magic0;
  out[1] = magic1;
  out[2] = std::byte{version};
  out[3] =
      std::byte(static_cast<std::uint8_t>(header.type) | (header.from_receiver ? receiver_bit : 0));
  put_u64(out.data() + 4, header.transfer_id);
  put_u64(out.data() + 12, header.packet_number);
}

Error parse_header(std::span<const std::byte> datagram, Header& out) {
  if (datagram.size() < header_size + tag_size) return Error::too_short;
  if (datagram[0] != magic0 || datagram[1] != magic1) return Error::bad_magic;
  if (std::to_integer<std::uint8_t>(datagram[2]) != version) return Error::bad_version;
  const auto type_byte = std::to_integer<std::uint8_t>(datagram[3]);
  const bool from_receiver = (type_byte & receiver_bit) != 0;
  const auto code = static_cast<std::uint8_t>(type_byte & ~receiver_bit);
  if (code < 1 || code > 4) return Error::bad_type;
  const auto type = static_cast<Type>(code);
  if ((type == Type::data && from_receiver) ||
      ((type == Type::ack || type == Type::done) && !from_receiver))
    return Error::bad_direction;
  out.type = type;
  out.from_receiver = from_receiver;
  out.transfer_id = get_u64(datagram.data() + 4);
  out.packet_number = get_u64(datagram.data() + 12);
  return Error::none;
}

std::size_t encode_ack(std::span<std::byte> out, const Ack& ack) {
  std::byte* p = out.data();
  put_u64(p, ack.largest_pn);
  put_u32(p + 8, ack.ack_delay_us);
  put_u64(p + 12, ack.max_offset);
  put_u64(p + 20, ack.contiguous);
  put_u16(p + 28, static_cast<std::uint16_t>(ack.ranges.size()));
  p += ack_fixed;
  for (const auto& r : ack.ranges) {
    put_u64(p, r.begin);
    put_u64(p + 8, r.end);
    p += ack_range_size;
  }
  return static_cast<std::size_t>(p - out.data());
}

Error decode_ack(std::span<const std::byte> payload, Ack& out) {
  if (payload.size() < ack_fixed) return Error::bad_length;
  const std::byte* p = payload.data();
  out.largest_pn = get_u64(p);
  out.ack_delay_us = get_u32(p + 8);
  out.max_offset = get_u64(p + 12);
  out.contiguous = get_u64(p + 20);
  const std::size_t count = get_u16(p + 28);
  if (count > max_ack_ranges || payload.size() != ack_fixed + count * ack_range_size)
    return Error::bad_length;
  out.ranges.clear();
  p += ack_fixed;
  std::uint64_t floor_above = UINT64_MAX;
  for (std::size_t i = 0; i < count; ++i, p += ack_range_size) {
    const ByteRange r{get_u64(p), get_u64(p + 8)};
    // Strictly descending with a hole between neighbours, all above `contiguous`.
    if (r.begin >= r.end || r.end >= floor_above || r.begin <= out.contiguous)
      return Error::bad_ranges;
    floor_above = r.begin;
    out.ranges.push_back(r);
  }
  return Error::none;
}

Error decode_data(std::span<const std::byte> payload, std::uint64_t& offset,
                  std::span<const std::byte>& bytes) {
  if (payload.size() < data_prefix) return Error::bad_length;
  offset = get_u64(payload.data());
  bytes = payload.subspan(data_prefix);
  if (offset > UINT64_MAX - bytes.size()) return Error::bad_offset;
  return Error::none;
}

}  // namespace tessenger::transfer::wire

namespace tessenger::transfer {

std::optional<std::uint64_t> peek_transfer_id(std::span<const std::byte> datagram) {
  wire::Header h;
  if (wire::parse_header(datagram, h) != wire::Error::none) return std::nullopt;
  return h.transfer_id;
}

bool from_receiver(std::span<const std::byte> datagram) {
  wire::Header h;
  return wire::parse_header(datagram, h) == wire::Error::none && h.from_receiver;
}

}  // namespace tessenger::transfer
