// group_broadcast: creates a group, waits for its members to join, posts to
// it, logs out.
//
//   group_broadcast HOST PORT USERNAME PASSWORD GROUP MESSAGE MEMBER...
//
// The protocol has no "member joined" event, so members announce it: each
// joins GROUP and then sends USERNAME any direct message. Once every member
// has, MESSAGE goes to the group. Prints "group_broadcast: created GROUP"
// when the invitations are out. Exits 0 after posting, 1 on any failure.

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include <tessenger/client.hpp>

namespace {

void fail(const char* what, const std::error_code& code) {
  std::fprintf(stderr, "group_broadcast: %s: %s\n", what, code.message().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 8) {
    std::fprintf(stderr,
                 "usage: group_broadcast HOST PORT USERNAME PASSWORD GROUP MESSAGE MEMBER...\n");
    return 2;
  }
  const std::string host = argv[1];
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  const std::string username = argv[3];
  const std::string password = argv[4];
  const std::string group = argv[5];
  const std::string message = argv[6];
  const std::vector<std::string> members(argv + 7, argv + argc);

  asio::io_context io;
  int status = 1;
  std::set<std::string> waiting(members.begin(), members.end());
  bool created = false;

  // All of this runs on io's one thread, in order: no locking needed.
  tessenger::Client* self = nullptr;
  auto post_when_all_joined = [&] {
    if (!created || !waiting.empty()) return;
    self->send_group(group, message, [&](tessenger::Result<tessenger::GroupMessageSent> sent) {
      if (!sent) {
        fail("posting failed", sent.error());
        return self->close();
      }
      self->logout([&](tessenger::Result<tessenger::SessionEnded> bye) { status = bye ? 0 : 1; });
    });
  };

  tessenger::ClientEvents events;
  events.on_direct_message = [&](const tessenger::protocol::DirectEvent& note) {
    waiting.erase(note.from);
    post_when_all_joined();
  };
  events.on_disconnected = [](std::error_code code, std::string_view) {
    fail("disconnected", code);
  };
  tessenger::Client client(io, events);
  self = &client;

  client.connect(host, port, [&](tessenger::Result<tessenger::ServerInfo> hello) {
    if (!hello) return fail("cannot connect", hello.error());
    client.login(username, password, 0, [&](tessenger::Result<tessenger::LoggedIn> login) {
      if (!login) {
        fail("login refused", login.error());
        return client.close();
      }
      client.create_group(group, members, [&](tessenger::Result<tessenger::NewGroup> done) {
        if (!done) {
          fail("cannot create the group", done.error());
          return client.close();
        }
        std::printf("group_broadcast: created %s\n", done->group.c_str());
        std::fflush(stdout);
        created = true;
        post_when_all_joined();
      });
    });
  });

  io.run();
  return status;
}
