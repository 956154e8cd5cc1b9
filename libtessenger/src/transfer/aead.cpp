#include "transfer/aead.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <new>

#include <openssl/evp.h>

#include "transfer/wire.hpp"

namespace tessenger::transfer {

namespace {

std::array<unsigned char, 12> make_nonce(bool from_receiver, std::uint64_t pn) {
  std::array<unsigned char, 12> nonce{};
  nonce[0] = from_receiver ? 1 : 0;
  for (int i = 11; i >= 4; --i, pn >>= 8)
    nonce[static_cast<std::size_t>(i)] = pn & 0xff;
  return nonce;
}

const unsigned char* u8(const std::byte* p) {
  return reinterpret_cast<const unsigned char*>(p);
}
unsigned char* u8(std::byte* p) {
  return reinterpret_cast<unsigned char*>(p);
}

}  // namespace

Aead::Aead(const Key& key) : enc_(EVP_CIPHER_CTX_new()), dec_(EVP_CIPHER_CTX_new()) {
  if (!enc_ || !dec_ ||
      EVP_EncryptInit_ex(enc_, EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1 ||
      EVP_DecryptInit_ex(dec_, EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1) {
    EVP_CIPHER_CTX_free(enc_);
    EVP_CIPHER_CTX_free(dec_);
    throw std::bad_alloc();
  }
}

Aead::~Aead() {
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
}

bool Aead::seal(bool from_receiver, std::uint64_t packet_number, std::span<const std::byte> aad,
                std::span<std::byte> text, std::span<std::byte> tag) {
  const auto nonce = make_nonce(from_receiver, packet_number);
  int len = 0;
  if (EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, nonce.data()) != 1) return false;
  if (EVP_EncryptUpdate(enc_, nullptr, &len, u8(aad.data()), static_cast<int>(aad.size())) != 1)
    return false;
  if (!text.empty() && EVP_EncryptUpdate(enc_, u8(text.data()), &len, u8(text.data()),
                                         static_cast<int>(text.size())) != 1)
    return false;
  if (EVP_EncryptFinal_ex(enc_, nullptr, &len) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()),
                             u8(tag.data())) == 1;
}

bool Aead::open(bool from_receiver, std::uint64_t packet_number, std::span<const std::byte> aad,
                std::span<std::byte> text, std::span<const std::byte> tag) {
  return open_begin(from_receiver, packet_number, aad) && open_update(text, text) && open_end(tag);
}

bool Aead::open_begin(bool from_receiver, std::uint64_t packet_number,
                      std::span<const std::byte> aad) {
  const auto nonce = make_nonce(from_receiver, packet_number);
  int len = 0;
  return EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, nonce.data()) == 1 &&
         EVP_DecryptUpdate(dec_, nullptr, &len, u8(aad.data()), static_cast<int>(aad.size())) == 1;
}

bool Aead::open_update(std::span<const std::byte> in, std::span<std::byte> out) {
  if (in.size() != out.size()) return false;
  int len = 0;
  return in.empty() || EVP_DecryptUpdate(dec_, u8(out.data()), &len, u8(in.data()),
                                         static_cast<int>(in.size())) == 1;
}

bool Aead::open_end(std::span<const std::byte> tag) {
  // OpenSSL takes the expected tag through a non-const pointer but only reads it.
  std::array<unsigned char, wire::tag_size> expected{};
  if (tag.size() != expected.size()) return false;
  std::copy_n(u8(tag.data()), expected.size(), expected.begin());
  int len = 0;
  return EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(expected.size()),
                             expected.data()) == 1 &&
         EVP_DecryptFinal_ex(dec_, nullptr, &len) == 1;
}

std::size_t seal_datagram(Aead& aead, std::span<std::byte> buffer, std::size_t payload_size,
                          bool from_receiver, std::uint64_t packet_number) {
  const auto aad = buffer.first(wire::header_size);
  const auto text = buffer.subspan(wire::header_size, payload_size);
  const auto tag = buffer.subspan(wire::header_size + payload_size, wire::tag_size);
  if (!aead.seal(from_receiver, packet_number, aad, text, tag)) return 0;
  return wire::header_size + payload_size + wire::tag_size;
}

bool open_datagram(Aead& aead, std::span<std::byte> datagram, bool from_receiver,
                   std::uint64_t packet_number, std::span<std::byte>& payload) {
  if (datagram.size() < wire::header_size + wire::tag_size) return false;
  const auto text_size = datagram.size() - wire::header_size - wire::tag_size;
  const auto aad = datagram.first(wire::header_size);
  const auto text = datagram.subspan(wire::header_size, text_size);
  const auto tag = datagram.last(wire::tag_size);
  if (!aead.open(from_receiver, packet_number, aad, text, tag)) return false;
  payload = text;
  return true;
}

}  // namespace tessenger::transfer
