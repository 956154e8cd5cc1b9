// tessenger::Protocol without any I/O: a client side and a server side pass
// bytes to each other through two buffers, negotiate a version, and exchange
// a message. A transport of your own (a pipe, a WebSocket, a test) only has
// to move these bytes.

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <tessenger/protocol.hpp>

namespace p = tessenger::protocol;

int main() {
  std::vector<std::byte> to_server;
  std::vector<std::byte> to_client;
  int failures = 0;
  const auto on_error = [&failures](std::error_code e) {
    std::fprintf(stderr, "protocol_codec: %s\n", e.message().c_str());
    ++failures;
  };

  // The callbacks may encode on the object they belong to.
  tessenger::Protocol server(
      {[&](p::Message& m) {
         if (const auto* hello = std::get_if<p::Hello>(&m)) {
           std::printf("server: hello from %s, versions %d..%d\n", hello->software.c_str(),
                       hello->min_version, hello->max_version);
           server.encode(p::HelloOk{hello->request_id, std::min(hello->max_version, p::version),
                                    "example-server", 65536},
                         to_client);
         } else if (const auto* send = std::get_if<p::DirectSend>(&m)) {
           std::printf("server: to %s: %s\n", send->to.c_str(), send->text.c_str());
           server.encode(p::DirectSent{send->request_id, 1'700'000'000'000'000}, to_client);
         }
       },
       [](const p::UnknownMessage& u) { std::printf("server: skipped type %d\n", u.type); },
       on_error});

  tessenger::Protocol client({[&](p::Message& m) {
                                std::printf("client: %s\n",
                                            std::string(p::name_of(p::type_of(m))).c_str());
                              },
                              {},
                              on_error});

  client.encode(p::Hello{1, p::min_version, p::version, "example-client"}, to_server);
  server.feed(std::exchange(to_server, {}));
  client.feed(std::exchange(to_client, {}));
  std::printf("client: speaking version %d\n", client.version());

  client.encode(p::DirectSend{2, "bob", "hello"}, to_server);
  server.feed(std::exchange(to_server, {}));
  client.feed(std::exchange(to_client, {}));
  return failures == 0 ? 0 : 1;
}
