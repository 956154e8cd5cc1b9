// Feeds arbitrary datagrams to the file-transfer wire parser (the clear
// header, ACK and DATA payloads) and checks:
// - no crash or undefined behaviour (the sanitizers);
// - a header that parses is written back to exactly its 20 bytes, and the
//   quick peeks (transfer id, direction) agree with the full parse;
// - an ACK payload that decodes has strictly descending ranges, all above
//   its contiguous mark, and encodes back to exactly its bytes;
// - a DATA payload that decodes never ends past 2^64.
// Authentication (the tag) is the AEAD's business and not parsed here.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "transfer/wire.hpp"

namespace wire = tessenger::transfer::wire;

namespace {

[[noreturn]] void violated(const char* property) {
  std::fprintf(stderr, "fuzz_datagram: property violated: %s\n", property);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto datagram = std::as_bytes(std::span(data, size));
  wire::Header header;
  const auto error = wire::parse_header(datagram, header);
  const auto peeked = tessenger::transfer::peek_transfer_id(datagram);
  if (peeked.has_value() != (error == wire::Error::none)) violated("peek disagrees with parse");
  if (error != wire::Error::none) return 0;
  if (*peeked != header.transfer_id) violated("peeked a different transfer id");
  if (tessenger::transfer::from_receiver(datagram) != header.from_receiver) {
    violated("direction disagrees with parse");
  }

  std::byte written[wire::header_size];
  wire::write_header(written, header);
  if (!std::equal(written, written + wire::header_size, datagram.begin())) {
    violated("header does not write back to its bytes");
  }

  const auto payload =
      datagram.subspan(wire::header_size, datagram.size() - wire::header_size - wire::tag_size);
  if (header.type == wire::Type::ack) {
    wire::Ack ack;
    if (wire::decode_ack(payload, ack) != wire::Error::none) return 0;
    std::uint64_t above = UINT64_MAX;
    for (const auto& range : ack.ranges) {
      if (range.begin >= range.end || range.end >= above || range.begin <= ack.contiguous) {
        violated("accepted ranges out of order or overlapping");
      }
      above = range.begin;
    }
    std::vector<std::byte> encoded(payload.size());
    if (wire::encode_ack(encoded, ack) != payload.size() ||
        !std::equal(encoded.begin(), encoded.end(), payload.begin())) {
      violated("ACK does not encode back to its bytes");
    }
  } else if (header.type == wire::Type::data) {
    std::uint64_t offset = 0;
    std::span<const std::byte> bytes;
    if (wire::decode_data(payload, offset, bytes) != wire::Error::none) return 0;
    if (offset > UINT64_MAX - bytes.size()) violated("DATA ends past 2^64");
    if (bytes.data() != payload.data() + wire::data_prefix) violated("DATA bytes misplaced");
  }
  return 0;
}
