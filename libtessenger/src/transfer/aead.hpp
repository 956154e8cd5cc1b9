#pragma once

#include <cstdint>
#include <span>

#include <tessenger/transfer_engine.hpp>

struct evp_cipher_ctx_st;

namespace tessenger::transfer {

/// AES-256-GCM over a datagram, in place, with OpenSSL EVP. The key schedule
/// is done once per transfer; each datagram only sets its nonce.
///
/// Nonce (12 bytes): direction (0 sender, 1 receiver), three zero bytes, then
/// the packet number big-endian. Each direction numbers its packets from 0
/// upward and never reuses one, so a nonce never repeats under a key.
class Aead {
 public:
  explicit Aead(const Key& key);
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  /// Encrypts `text` in place and writes the 16-byte tag to `tag`.
  bool seal(bool from_receiver, std::uint64_t packet_number, std::span<const std::byte> aad,
            std::span<std::byte> text, std::span<std::byte> tag);
  /// Decrypts `text` in place; false if the tag does not verify.
  bool open(bool from_receiver, std::uint64_t packet_number, std::span<const std::byte> aad,
            std::span<std::byte> text, std::span<const std::byte> tag);

  /// open() in steps, so that where the rest of a text goes can depend on
  /// its first bytes: begin, then decrypt consecutive pieces of the text
  /// (each into a place of its own size, or in place), then end, which says
  /// whether the tag verifies. Until it does, what was decrypted is not to
  /// be trusted.
  bool open_begin(bool from_receiver, std::uint64_t packet_number, std::span<const std::byte> aad);
  bool open_update(std::span<const std::byte> in, std::span<std::byte> out);
  bool open_end(std::span<const std::byte> tag);

 private:
  evp_cipher_ctx_st* enc_ = nullptr;
  evp_cipher_ctx_st* dec_ = nullptr;
};

/// Seals a datagram laid out as header | payload | tag space, in place.
/// Returns the datagram's full size.
std::size_t seal_datagram(Aead& aead, std::span<std::byte> buffer, std::size_t payload_size,
                          bool from_receiver, std::uint64_t packet_number);
/// Opens a whole datagram in place; the payload (without tag) on success.
bool open_datagram(Aead& aead, std::span<std::byte> datagram, bool from_receiver,
                   std::uint64_t packet_number, std::span<std::byte>& payload);

}  // namespace tessenger::transfer
