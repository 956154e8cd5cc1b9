// file_transfer: sends a file from one tessenger::FileTransfer to another
// over UDP on 127.0.0.1, as two clients do once the server has introduced
// them. The server would hand both sides the transfer id and key (FileOfferOk
// to the sender, FileIncomingEvent to the receiver); here the program makes
// them up. Each FileTransfer runs on a thread of its own; the main thread
// only waits for the outcomes.
//
//   file_transfer FILE DOWNLOAD_DIR

#include <cstdio>
#include <filesystem>
#include <future>
#include <random>
#include <string>

#include <tessenger/file_transfer.hpp>

namespace {

struct Outcome {
  bool ok = false;
  std::string line;
};

// Exactly one of on_complete and on_failure runs, so the promise is set once.
tessenger::TransferCallbacks report_to(std::promise<Outcome>& outcome, std::string side) {
  tessenger::TransferCallbacks callbacks;
  callbacks.on_progress = [side](std::uint64_t done, std::uint64_t total) {
    std::printf("%s: %llu of %llu bytes\n", side.c_str(), static_cast<unsigned long long>(done),
                static_cast<unsigned long long>(total));
  };
  callbacks.on_complete = [&outcome, side](const tessenger::TransferResult& result) {
    outcome.set_value({true, side + ": done, " + result.path.string()});
  };
  callbacks.on_failure = [&outcome, side](std::error_code, const std::string& reason) {
    outcome.set_value({false, side + ": failed: " + reason});
  };
  return callbacks;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: file_transfer FILE DOWNLOAD_DIR\n");
    return 2;
  }
  const std::filesystem::path file = argv[1];
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  tessenger::transfer::Digest sha256{};
  if (ec || tessenger::transfer::sha256_file(file, sha256)) {
    std::fprintf(stderr, "file_transfer: cannot read %s\n", file.c_str());
    return 1;
  }

  // Outlive the FileTransfers, whose callbacks set them.
  std::promise<Outcome> sent, received;

  tessenger::TransferOptions options;
  options.download_dir = argv[2];
  const auto loopback = asio::ip::make_address("127.0.0.1");
  tessenger::FileTransfer sender({loopback, 0}, options);
  tessenger::FileTransfer receiver({loopback, 0}, options);

  std::random_device random;
  tessenger::IncomingTransfer incoming;
  incoming.transfer_id = (std::uint64_t{random()} << 32) | random();
  for (auto& byte : incoming.key)
    byte = static_cast<std::uint8_t>(random());
  incoming.sender_name = "example";
  incoming.file_name = file.filename().string();
  incoming.size = size;
  incoming.sha256 = sha256;
  incoming.sender_endpoint = sender.local_endpoint();

  if (const auto error = receiver.expect_file(incoming, report_to(received, "receiver"))) {
    std::fprintf(stderr, "file_transfer: cannot receive: %s\n", error.message().c_str());
    return 1;
  }
  if (const auto error = sender.send_file(incoming.transfer_id, incoming.key, file,
                                          receiver.local_endpoint(), report_to(sent, "sender"))) {
    std::fprintf(stderr, "file_transfer: cannot send: %s\n", error.message().c_str());
    return 1;
  }
  const auto sent_outcome = sent.get_future().get();
  const auto received_outcome = received.get_future().get();
  std::printf("%s\n%s\n", sent_outcome.line.c_str(), received_outcome.line.c_str());
  return sent_outcome.ok && received_outcome.ok ? 0 : 1;
}
