#pragma once

// Datagram layout, byte by byte in docs/file-transfer.md. Pure functions over
// caller-owned buffers: no allocation on the data path.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer::wire {

inline constexpr std::byte magic0{0x54};  // 'T'
inline constexpr std::byte magic1{0x46};  // 'F'
inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t header_size = 20;
inline constexpr std::size_t tag_size = 16;
inline constexpr std::uint8_t receiver_bit = 0x80;
inline constexpr std::size_t data_prefix = 8;  // u64 offset
inline constexpr std::size_t ack_fixed = 8 + 4 + 8 + 8 + 2;
inline constexpr std::size_t ack_range_size = 16;
inline constexpr std::size_t max_ack_ranges =
    (max_ack_datagram - header_size - tag_size - ack_fixed) / ack_range_size;
inline constexpr std::size_t abort_size = 2;

enum class Type : std::uint8_t { data = 1, ack = 2, done = 3, abort = 4 };

struct Header {
  Type type = Type::data;
  bool from_receiver = false;
  std::uint64_t transfer_id = 0;
  std::uint64_t packet_number = 0;
};

enum class Error {
  none,
  too_short,  ///< shorter than header + tag
  bad_magic,
  bad_version,
  bad_type,       ///< unknown type code
  bad_direction,  ///< a type that side never sends (DATA from a receiver…)
  bad_length,     ///< payload size wrong for its type
  bad_ranges,     ///< ACK ranges not strictly descending, empty, or overlapping
  bad_offset,     ///< outside the file or the advertised window
  auth_failed,    ///< AEAD tag mismatch
};

void put_u16(std::byte* p, std::uint16_t v);
void put_u32(std::byte* p, std::uint32_t v);
void put_u64(std::byte* p, std::uint64_t v);
std::uint16_t get_u16(const std::byte* p);
std::uint32_t get_u32(const std::byte* p);
std::uint64_t get_u64(const std::byte* p);

/// Writes the 20-byte header at out[0..20).
void write_header(std::span<std::byte> out, const Header& header);
/// Checks the clear header of a whole datagram (size, magic, version, type,
/// direction). Says nothing of authenticity.
Error parse_header(std::span<const std::byte> datagram, Header& out);

struct Ack {
  std::uint64_t largest_pn = 0;    ///< highest sender packet number received
  std::uint32_t ack_delay_us = 0;  ///< time the receiver held it before acking
  std::uint64_t max_offset = 0;    ///< flow control: send nothing ending past this
  std::uint64_t contiguous = 0;    ///< every byte below this is held
  std::vector<ByteRange> ranges;   ///< held ranges above `contiguous`, highest first
};

/// Payload sizes: a DATA payload is 8 + file bytes; an ACK 30 + 16 per range.
std::size_t encode_ack(std::span<std::byte> out, const Ack& ack);
Error decode_ack(std::span<const std::byte> payload, Ack& out);
Error decode_data(std::span<const std::byte> payload, std::uint64_t& offset,
                  std::span<const std::byte>& bytes);

}  // namespace tessenger::transfer::wire
