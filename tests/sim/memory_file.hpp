#pragma once

#include <cstring>
#include <random>
#include <vector>

#include <tessenger/transfer_engine.hpp>

namespace test {

/// `n` pseudo-random bytes, the same for the same seed.
inline std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v)
    b = static_cast<std::byte>(rng());
  return v;
}

struct MemorySource final : tessenger::transfer::ChunkSource {
  std::vector<std::byte> data;
  explicit MemorySource(std::vector<std::byte> content) : data(std::move(content)) {}
  std::error_code read(std::uint64_t offset, std::span<std::byte> out) override {
    std::memcpy(out.data(), data.data() + offset, out.size());
    return {};
  }
};

struct MemorySink final : tessenger::transfer::ChunkSink {
  std::vector<std::byte> data;
  bool committed = false;
  /// Writes at or past this offset fail as a full disk would.
  std::uint64_t fail_writes_from = UINT64_MAX;
  /// Offer `data` through memory(), as tessenger::transfer::MemorySink does.
  bool lend_memory = false;
  std::size_t writes = 0;
  std::size_t reads = 0;
  explicit MemorySink(std::size_t size) : data(size) {}
  std::error_code write(std::uint64_t offset, std::span<const std::byte> in) override {
    ++writes;
    if (offset + in.size() > fail_writes_from)
      return std::make_error_code(std::errc::no_space_on_device);
    std::memcpy(data.data() + offset, in.data(), in.size());
    return {};
  }
  std::error_code read(std::uint64_t offset, std::span<std::byte> out) override {
    ++reads;
    std::memcpy(out.data(), data.data() + offset, out.size());
    return {};
  }
  std::error_code commit() override {
    committed = true;
    return {};
  }
  std::span<std::byte> memory() override {
    return lend_memory ? std::span<std::byte>(data) : std::span<std::byte>();
  }
};

}  // namespace test
