// Writes the decoder's seed corpus into the directory given as argument: one
// valid frame of every message type, a coalesced stream of them, and one
// frame of each rejected kind. Files are named by the SHA-256 of their bytes.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <tessenger/protocol.hpp>

#include "samples.hpp"
#include "seed_file.hpp"

using namespace tessenger::protocol;
using Bytes = std::vector<std::byte>;

namespace {

Bytes with_header(Bytes frame, int byte, int value) {
  frame[static_cast<std::size_t>(byte)] = static_cast<std::byte>(value);
  return frame;
}

Bytes with_length(Bytes frame, std::uint32_t length) {
  for (int i = 0; i < 4; ++i)
    frame[static_cast<std::size_t>(i)] = static_cast<std::byte>(length >> (24 - 8 * i));
  return frame;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);

  std::vector<Bytes> seeds;
  Bytes stream;
  for (const auto& m : samples::one_of_each()) {
    for (std::uint8_t v = min_version; v <= version; ++v) {
      if (since_version(type_of(m)) > v) continue;
      seeds.push_back(encode(m, v));
      encode(m, stream, v);
    }
  }
  seeds.push_back(stream);

  const Bytes ping = encode(Ping{1, 2});
  seeds.push_back(with_header(ping, 4, version + 1));                        // unsupported version
  seeds.push_back(with_header(ping, 7, 1));                                  // flags set
  seeds.push_back(with_header(ping, 5, 0x3f));                               // unknown request
  seeds.push_back(with_header(ping, 5, 0x7f));                               // unknown reply
  seeds.push_back(with_header(ping, 5, 0xc0));                               // reserved range
  seeds.push_back(with_header(encode(LoginAttemptEvent{"a", 1}, 2), 4, 1));  // v2 type in v1
  Bytes short_request(ping.begin(), ping.begin() + 11);                      // id cut short
  short_request[5] = std::byte{0x3f};
  seeds.push_back(with_length(short_request, 3));
  seeds.push_back(with_length(Bytes(ping.begin(), ping.begin() + 8), 0));  // empty frame
  seeds.push_back(with_length(ping, 0xffffffff));                          // frame too large
  Bytes truncated(ping.begin(), ping.end() - 1);
  seeds.push_back(with_length(truncated, 11));  // payload ends inside a field
  Bytes trailing = ping;
  trailing.push_back(std::byte{0});
  seeds.push_back(with_length(trailing, 13));
  seeds.push_back(encode(DirectSend{1, "bob", "\xed\xa0\x80"}));  // surrogate
  seeds.push_back(encode(GroupJoin{1, std::string(33, 'g')}));    // field too long
  seeds.push_back(encode(GroupCreate{1, "g", std::vector<std::string>(1025, "b")}));  // list

  for (const auto& seed : seeds) {
    tessenger::fuzz::write_seed(dir,
                                {reinterpret_cast<const unsigned char*>(seed.data()), seed.size()});
  }
  std::printf("%zu seeds written to %s\n", seeds.size(), dir.c_str());
  return 0;
}
