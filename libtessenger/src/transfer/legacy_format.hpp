#pragma once

// The datagram format of the original Python client's p2pvideo
// (docs/legacy.md): a header datagram `UDP%%SENDER_FILE`, the file in raw
// datagrams of at most 1,024 bytes, then a datagram `end`. No transfer id,
// no size, no check: nothing in it can be verified.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tessenger::transfer::legacy {

/// The original reads with recvfrom(1024): no datagram may be longer.
inline constexpr std::size_t max_datagram = 1024;
inline constexpr std::string_view end_mark = "end";

/// `UDP%%SENDER_FILE`, the header the original sends for FILE from SENDER.
inline std::string header(std::string_view sender, std::string_view file_name) {
  std::string h = "UDP%%";
  h.append(sender).append("_").append(file_name);
  return h;
}

/// Why the original receiver cannot take a file of that name from that
/// sender, or nothing if it can: it splits the header on "%%" into exactly
/// two parts and reads it with recvfrom(1024) (its client exits otherwise).
inline std::optional<std::string> header_problem(std::string_view sender,
                                                 std::string_view file_name) {
  if (sender.find("%%") != std::string_view::npos || file_name.find("%%") != std::string_view::npos)
    return "the original client cannot take a file name with \"%%\" in it";
  if (header(sender, file_name).size() > max_datagram)
    return "the file name is too long for the original client";
  return std::nullopt;
}

inline bool equals(std::span<const std::byte> datagram, std::string_view text) {
  return datagram.size() == text.size() &&
         std::equal(text.begin(), text.end(), datagram.begin(),
                    [](char c, std::byte b) { return static_cast<std::byte>(c) == b; });
}

}  // namespace tessenger::transfer::legacy
