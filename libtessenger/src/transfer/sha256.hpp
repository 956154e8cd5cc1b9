#pragma once

#include <span>

#include <tessenger/transfer_engine.hpp>

struct evp_md_ctx_st;

namespace tessenger::transfer {

/// Incremental SHA-256 through OpenSSL EVP (uses the CPU's SHA extensions).
class Sha256 final : public FileHasher {
 public:
  Sha256();
  ~Sha256() override;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> data) override;
  Digest finish() override;

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace tessenger::transfer
