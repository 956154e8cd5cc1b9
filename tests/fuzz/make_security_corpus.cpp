// Writes the seed corpora of fuzz_server_session, fuzz_credentials and
// fuzz_datagram into DIR/server_session/, DIR/credentials/ and
// DIR/datagram/: scripts that log users in (in both protocol versions), chat,
// use groups and file offers, wait on slow password checks and on results
// that other input overtakes, answer or ignore pings and trip the limits; credentials files with
// plain and hashed entries, comments and each malformed kind; and datagrams
// of each type, valid and broken in each way the header check knows. Files
// are named by the SHA-256 of their bytes.
//
//   make_security_corpus tests/fuzz/corpus

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include <tessenger/protocol.hpp>

#include "seed_file.hpp"
#include "transfer/wire.hpp"

namespace p = tessenger::protocol;
using Bytes = std::vector<std::uint8_t>;
using tessenger::fuzz::write_seed;

namespace {

// The operations of fuzz_server_session's scripts.
struct Script {
  Bytes bytes;

  Script& connect(int slot, int address = 0) { return add({0, slot, address}); }
  // Frames after a Hello that agreed on version 2 must be written in it.
  Script& raw(int slot, const p::Message& message, std::uint8_t version = p::min_version) {
    const auto frame = p::encode(message, version);
    add({1, slot, static_cast<int>(frame.size())});
    for (const auto b : frame)
      bytes.push_back(std::to_integer<std::uint8_t>(b));
    return *this;
  }
  Script& close(int slot) { return add({2, slot}); }
  Script& wait(int tens_of_ms) { return add({3, 0, tens_of_ms, tens_of_ms}); }
  Script& timer() { return add({4, 0}); }
  Script& check_returns(bool ok) { return add({5, 0, ok ? 0 : 1}); }
  // Canned requests: 0 Hello (version 1), 1-4 logins (aa, bb, hh, aa wrong),
  // 5-6 direct messages, 7 group create, 8 join, 9 group message, 10 file
  // offer, 11 active users, 12 ping, 13 logout, 14 Hello (versions 1-2),
  // 15 Pong to the latest ping. The pick modulo 16 chooses; modulo 3 it
  // names the group (7 and 40 and 25: create, join and message g1).
  Script& canned(int slot, int pick) { return add({6, slot, pick}); }
  Script& shutdown() { return add({7, 0, 0xff}); }
  Script& online(int slot, int login_pick, int address = 0, int hello_pick = 0) {
    return connect(slot, address).canned(slot, hello_pick).canned(slot, login_pick);
  }
  // The next operation leaves the hub's posted tasks queued, so that what
  // follows overtakes the results it waits for.
  Script& defer() {
    flags_ |= 0x08;
    return *this;
  }
  // The next operation leaves the sockets the hub closed open.
  Script& linger() {
    flags_ |= 0x10;
    return *this;
  }

 private:
  Script& add(std::initializer_list<int> values) {
    bool first = true;
    for (const int v : values) {
      bytes.push_back(static_cast<std::uint8_t>(first ? v | flags_ : v));
      first = false;
    }
    flags_ = 0;
    return *this;
  }
  int flags_ = 0;
};

Bytes text(const std::string& s) {
  return {s.begin(), s.end()};
}

namespace wire = tessenger::transfer::wire;

// A datagram: header, payload, and a tag (zeros: the parser does not check it).
Bytes datagram(wire::Type type, bool from_receiver, const std::vector<std::byte>& payload) {
  std::vector<std::byte> out(wire::header_size);
  wire::write_header(out, {type, from_receiver, 0x1122334455667788, 7});
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(out.size() + wire::tag_size);
  Bytes bytes;
  for (const auto b : out)
    bytes.push_back(std::to_integer<std::uint8_t>(b));
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const auto sessions = dir / "server_session";

  // Three users chat, make a group, join it, offer a file, log out.
  write_seed(sessions, Script{}
                           .online(0, 1)
                           .online(1, 2)
                           .online(2, 3)
                           .check_returns(true)
                           .canned(0, 5)
                           .canned(1, 6)
                           .canned(0, 7)
                           .canned(1, 40)
                           .canned(1, 25)
                           .canned(0, 10)
                           .canned(0, 11)
                           .canned(1, 13)
                           .bytes);
  // The same through raw frames, with a typing error on the way.
  write_seed(sessions, Script{}
                           .connect(0)
                           .raw(0, p::Hello{1, 1, 1, "seed"})
                           .raw(0, p::Login{2, "aa", "nope", 9})
                           .raw(0, p::Login{3, "aa", "pw-aa", 9})
                           .connect(1, 1)
                           .raw(1, p::Hello{1, 1, 1, "seed"})
                           .raw(1, p::Login{2, "bb", "pw-bb", 9})
                           .raw(0, p::DirectSend{4, "bb", "hi bob"})
                           .raw(1, p::GroupCreate{3, "team", {"aa"}})
                           .raw(0, p::GroupJoin{5, "team"})
                           .raw(0, p::GroupSend{6, "team", "hi team"})
                           .raw(0, p::Ping{7, 7})
                           .bytes);
  // Version 2 in raw frames: a Hello, then frames of the agreed version.
  write_seed(sessions, Script{}
                           .connect(0)
                           .raw(0, p::Hello{1, 1, 2, "seed"})
                           .raw(0, p::Login{2, "aa", "pw-aa", 9}, 2)
                           .raw(0, p::ActiveUsersQuery{3}, 2)
                           .raw(0, p::Login{4, "bb", "pw-bb", 9})
                           .bytes);
  // A slow (hashed) login waits for its check; another one is called off.
  write_seed(sessions, Script{}
                           .online(0, 3)
                           .check_returns(true)
                           .canned(0, 11)
                           .online(1, 3)
                           .close(1)
                           .check_returns(false)
                           .bytes);
  // Requests sent behind a slow login wait for it, in order.
  write_seed(sessions, Script{}
                           .online(1, 2, 1)
                           .connect(0)
                           .canned(0, 0)
                           .canned(0, 3)
                           .canned(0, 5)
                           .canned(0, 11)
                           .check_returns(true)
                           .bytes);
  // Results overtaken by other input: a login's, then a message's.
  write_seed(sessions, Script{}
                           .connect(0)
                           .canned(0, 0)
                           .defer()
                           .canned(0, 2)
                           .canned(0, 11)
                           .online(1, 1, 1)
                           .defer()
                           .canned(1, 5)
                           .defer()
                           .canned(1, 13)
                           .defer()
                           .close(0)
                           .bytes);
  // Wrong passwords until the account is blocked, then time passes.
  write_seed(sessions, Script{}
                           .online(0, 4)
                           .canned(0, 4)
                           .canned(0, 4)
                           .online(1, 1, 1)
                           .wait(255)
                           .online(2, 1, 1)
                           .bytes);
  // Many failed logins from one address, on several accounts.
  {
    Script s;
    s.connect(0);
    s.canned(0, 0);
    for (int i = 0; i < 8; ++i)
      s.raw(0, p::Login{static_cast<p::RequestId>(i), "c" + std::to_string(i % 4), "x", 1});
    write_seed(sessions, s.bytes);
  }
  // A flood: refused, then disconnected.
  {
    Script s;
    s.online(0, 1);
    for (int i = 0; i < 40; ++i)
      s.canned(0, 12);
    write_seed(sessions, s.bytes);
  }
  // Connection limits, a closed session that keeps its place until its
  // socket closes, login timeouts, and a shutdown.
  write_seed(sessions, Script{}
                           .connect(0)
                           .connect(1)
                           .connect(2)
                           .connect(3)
                           .connect(4, 1)
                           .connect(5, 2)
                           .connect(6, 3)
                           .close(1)
                           .connect(1)
                           .canned(2, 0)
                           .canned(2, 1)
                           .linger()
                           .canned(2, 13)
                           .connect(7)
                           .close(2)
                           .connect(7)
                           .timer()
                           .online(0, 1)
                           .shutdown()
                           .bytes);
  // Version 2: a silent session is pinged; one answers, the other is closed.
  write_seed(sessions, Script{}
                           .online(0, 1, 0, 14)
                           .online(1, 2, 1, 14)
                           .timer()
                           .canned(0, 15)
                           .timer()
                           .timer()
                           .canned(0, 11)
                           .bytes);
  // A second login to a version 2 session probes it: an answer keeps it,
  // silence gives way.
  write_seed(sessions, Script{}
                           .online(0, 1, 0, 14)
                           .connect(1, 1)
                           .canned(1, 14)
                           .canned(1, 1)
                           .canned(0, 15)
                           .canned(1, 1)
                           .timer()
                           .canned(1, 11)
                           .bytes);
  // Garbage after a good start.
  write_seed(sessions, Script{}.online(0, 1).bytes);
  {
    Script s;
    s.online(0, 2);
    s.bytes.insert(s.bytes.end(), {1, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 1, 0, 0});
    write_seed(sessions, s.bytes);
  }

  const auto credentials = dir / "credentials";
  const std::string hash =
      "$argon2id$v=19$m=65536,t=2,p=1$G9SQygVbOKScu5ymY9xm/Q$"
      "TBMbe5eTVz4koQhc8ftPdcol0KI2Ma32k7R7868xDpk";
  write_seed(credentials, text("Hans falcon*solo\nYoda wise@!man\r\nalice pw1\n"));
  write_seed(credentials, text("# demo accounts\n\nalice " + hash + "\nbob pb\n"));
  write_seed(credentials, text("justonefield\nbob two  spaces\nbad/name pw\ncarol pw3\n"
                               "alice again\ndave \nerin p\tw\n"));
  write_seed(credentials, text("carol $argon2id$v=19$nonsense\ndave $argon2i$v=19$m=4096,t=3,p=1$"
                               "c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n"));
  write_seed(credentials, text("x.y-z_1 p\x01w\nlong" + std::string(40, 'n') + " pw\n"));

  const auto datagrams = dir / "datagram";
  std::vector<std::byte> data(wire::data_prefix + 100, std::byte{0x5a});
  wire::put_u64(data.data(), 4096);
  write_seed(datagrams, datagram(wire::Type::data, false, data));
  wire::Ack ack;
  ack.largest_pn = 41;
  ack.ack_delay_us = 250;
  ack.max_offset = 1 << 20;
  ack.contiguous = 8000;
  ack.ranges = {{30000, 40000}, {12000, 20000}};
  std::vector<std::byte> ack_bytes(wire::ack_fixed + 2 * wire::ack_range_size);
  wire::encode_ack(ack_bytes, ack);
  write_seed(datagrams, datagram(wire::Type::ack, true, ack_bytes));
  write_seed(datagrams, datagram(wire::Type::done, true, {}));
  write_seed(datagrams, datagram(wire::Type::abort, false, {std::byte{1}, std::byte{48}}));
  write_seed(datagrams, datagram(wire::Type::data, true, data));  // wrong direction
  auto bad = datagram(wire::Type::data, false, data);
  bad[2] = 9;  // version
  write_seed(datagrams, bad);
  bad[0] = 'X';  // magic
  write_seed(datagrams, bad);
  write_seed(datagrams, Bytes(wire::header_size + wire::tag_size - 1, 0x54));  // too short
  return 0;
}
