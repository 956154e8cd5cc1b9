#include "transfer/engine_common.hpp"

#include <cstdio>

namespace tessenger::transfer {

errc abort_code_from_wire(std::uint16_t code) {
  switch (static_cast<errc>(code)) {
    case errc::transfer_timeout:
    case errc::transfer_checksum:
    case errc::transfer_too_large:
    case errc::disk_error:
    case errc::transfer_aborted:
      return static_cast<errc>(code);
    default:
      return errc::transfer_aborted;
  }
}

std::string peer_abort_reason(bool peer_is_receiver, errc code) {
  const std::string who = peer_is_receiver ? "the receiver" : "the sender";
  switch (code) {
    case errc::transfer_timeout:
      return who + " timed out waiting for data";
    case errc::transfer_checksum:
      return who + " found the file's SHA-256 does not match";
    case errc::transfer_too_large:
      return "the file is larger than the receiver accepts";
    case errc::disk_error:
      return who + " could not " + (peer_is_receiver ? "write" : "read") + " the file";
    default:
      return who + " cancelled the transfer";
  }
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::size_t write_abort(std::span<std::byte> out, Aead& aead, std::uint64_t transfer_id,
                        bool from_receiver, std::uint64_t packet_number, errc code) {
  wire::write_header(out, {wire::Type::abort, from_receiver, transfer_id, packet_number});
  wire::put_u16(out.data() + wire::header_size, static_cast<std::uint16_t>(code));
  return seal_datagram(aead, out, wire::abort_size, from_receiver, packet_number);
}

}  // namespace tessenger::transfer
