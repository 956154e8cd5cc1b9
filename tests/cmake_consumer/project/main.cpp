// A tiny program built against tessenger the way a user would: it round-trips
// a message through the codec and starts and stops a server on its own thread.

#include <cstdio>
#include <memory>
#include <string_view>

#include <tessenger/protocol.hpp>
#include <tessenger/server.hpp>
#include <tessenger/version.hpp>

namespace {

class NobodyAuthenticator final : public tessenger::Authenticator {
 public:
  bool exists(std::string_view) const override { return false; }
  bool verify(std::string_view, std::string_view) const override { return false; }
};

}  // namespace

int main() {
  namespace p = tessenger::protocol;
  const p::Message sent = p::DirectSend{7, "bob", "hello from a consumer"};
  const auto bytes = p::encode(sent);
  p::Decoder decoder;
  const auto result = decoder.feed(bytes);
  if (result.error || !result.message || *result.message != sent) {
    std::fprintf(stderr, "codec round trip failed\n");
    return 1;
  }

  tessenger::ServerConfig config;
  config.authenticator = std::make_shared<NobodyAuthenticator>();
  config.data_dir = "consumer-data";
  tessenger::Server server(config);
  server.start();
  if (server.local_port() == 0) {
    std::fprintf(stderr, "server did not bind\n");
    return 1;
  }
  server.stop();
  std::printf("tessenger %s consumer: ok\n", tessenger::version_string);
  return 0;
}
