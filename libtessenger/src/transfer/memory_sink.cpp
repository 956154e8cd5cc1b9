#include <cstring>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

namespace {

bool inside(std::uint64_t offset, std::size_t length, std::size_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace

MemorySink::MemorySink(std::uint64_t size) : data_(static_cast<std::size_t>(size)) {}

std::error_code MemorySink::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (!inside(offset, data.size(), data_.size())) return make_error_code(errc::invalid_argument);
  std::memcpy(data_.data() + offset, data.data(), data.size());
  return {};
}

std::error_code MemorySink::read(std::uint64_t offset, std::span<std::byte> out) {
  if (!inside(offset, out.size(), data_.size())) return make_error_code(errc::invalid_argument);
  std::memcpy(out.data(), data_.data() + offset, out.size());
  return {};
}

std::error_code MemorySink::commit() {
  committed_ = true;
  return {};
}

}  // namespace tessenger::transfer
