#pragma once

// Pieces shared by Sender and Receiver.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include <tessenger/errc.hpp>

#include "transfer/aead.hpp"
#include "transfer/wire.hpp"

namespace tessenger::transfer {

/// The codes an ABORT may carry; anything else reads as transfer_aborted.
errc abort_code_from_wire(std::uint16_t code);
/// What a person reads when the peer aborted with `code`.
std::string peer_abort_reason(bool peer_is_receiver, errc code);
std::string seconds_text(std::chrono::milliseconds d);

/// Writes a sealed ABORT datagram into `out`; returns its size.
std::size_t write_abort(std::span<std::byte> out, Aead& aead, std::uint64_t transfer_id,
                        bool from_receiver, std::uint64_t packet_number, errc code);

}  // namespace tessenger::transfer
