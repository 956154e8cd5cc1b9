#pragma once
// Writes one seed of a fuzz corpus, named by the SHA-256 of its bytes so that
// writing a corpus again changes nothing and duplicates collapse.

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>

namespace tessenger::fuzz {

inline void write_seed(const std::filesystem::path& dir, std::span<const unsigned char> seed) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(seed.data(), seed.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string name;
  for (unsigned int i = 0; i < length; ++i) {
    name += hex[digest[i] >> 4];
    name += hex[digest[i] & 15];
  }
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(seed.data()), static_cast<std::streamsize>(seed.size()));
  if (!out) throw std::runtime_error("cannot write into " + dir.string());
}

}  // namespace tessenger::fuzz
