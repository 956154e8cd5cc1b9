#pragma once

// TransferService: the UDP driver of the file transfer engine (SPEC §6).
//
// One UDP socket per client (its udp_port) carries every transfer, in both
// directions at once; datagrams are matched to transfers by transfer id and
// checked against the peer address the server announced. Datagrams with an
// unknown id or from any other address are dropped without a reply.
//
// Typical use from the Client:
//   TransferService files(io.get_executor(), {asio::ip::udp::v4(), udp_port}, options);
//   // sender, after FileOfferOk:
//   files.send_file(ok.transfer_id, ok.key, path, {make_address(ok.peer_address),
//   ok.peer_udp_port},
//                   callbacks);
//   // receiver, on FileIncomingEvent:
//   files.expect_file(incoming_from(event), callbacks);
//
// Threads: the service runs on the executor it is given. Its only threads
// of its own compute received files' SHA-256, one per large receiving
// transfer (see TransferOptions::max_hashing_threads); they touch no service
// state and run no callback. Every member function must be called from that executor's context (or
// while no thread runs it); with several threads running the io_context,
// pass a strand. Every callback runs on that executor, never from inside a
// member function call.
//
// Thread safety: distinct objects: safe. Shared objects: unsafe.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>
#include <asio/ip/udp.hpp>

#include <tessenger/export.hpp>
#include <tessenger/file_transfer.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger {

struct TransferOptions {
  /// Where received files go (SPEC §6.4). Must exist.
  std::filesystem::path download_dir = ".";
  /// Larger incoming files are refused with errc::transfer_too_large.
  std::uint64_t max_receive_size = Limits{}.max_file_size;
  /// File bytes per datagram when sending: 1200 is safe on any path; up to
  /// transfer::max_chunk_size on a LAN or loopback.
  std::size_t chunk_size = transfer::default_chunk_size;
  /// No datagram from the peer for this long fails a transfer.
  std::chrono::milliseconds idle_timeout{10'000};
  /// Requested SO_RCVBUF / SO_SNDBUF (the kernel may cap it).
  std::size_t socket_buffer = 8u << 20;
  /// on_progress runs at most this often per transfer.
  std::chrono::milliseconds progress_interval{100};
  /// A receiving transfer saves its resume record this often.
  std::chrono::milliseconds resume_save_interval{1000};
  /// Linux UDP GSO/GRO: runs of datagrams for one peer leave as one send and
  /// coalesced arrivals are read at once, crossing the kernel's stack once
  /// per 64 KiB. A kernel or route that refuses it is detected, and the
  /// service sends datagram by datagram from then on.
  bool segmentation_offload = true;
  /// Receiving transfers of files over 4 MiB hash what arrives on a thread
  /// of their own (with a 4 MiB ring), so receiving and hashing use two
  /// cores: SHA-256 costs about as much as all other receiving work. At most
  /// this many such threads at once; other transfers hash inline on the
  /// executor (0: always inline).
  std::size_t max_hashing_threads = 4;
};

/// What the server announced to the receiver (FileIncomingEvent).
struct IncomingTransfer {
  std::uint64_t transfer_id = 0;
  transfer::Key key{};
  std::string sender_name;
  std::string file_name;
  std::uint64_t size = 0;
  transfer::Digest sha256{};
  asio::ip::udp::endpoint sender_endpoint;
};

/// Converts the server's event; fails if the sender address is not an IP address.
TESSENGER_EXPORT IncomingTransfer incoming_from(const protocol::FileIncomingEvent& event,
                                                std::error_code& ec);

struct TransferResult {
  std::filesystem::path path;  ///< sender: the file sent; receiver: where it was stored
  std::uint64_t size = 0;
  std::chrono::steady_clock::duration elapsed{};
  transfer::Stats stats;
};

/// Each callback is optional (unset = ignored). Exactly one of on_complete
/// and on_failure runs for every accepted transfer, then none runs again.
/// Callbacks may call any member function, including for the same transfer.
struct TransferCallbacks {
  /// Bytes acknowledged (sending) or held (receiving) out of the total.
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
  std::function<void(const TransferResult& result)> on_complete;
  /// `ec` is a tessenger::errc (transfer_timeout, transfer_checksum,
  /// transfer_too_large, disk_error, transfer_aborted); `reason` is one line
  /// for a person.
  std::function<void(std::error_code ec, const std::string& reason)> on_failure;
};

struct TransferServiceStats {
  std::uint64_t datagrams_received = 0;
  std::uint64_t datagrams_sent = 0;
  std::uint64_t dropped_malformed = 0;             ///< not a transfer datagram at all
  std::uint64_t dropped_unknown = 0;               ///< no transfer with that id
  std::uint64_t dropped_wrong_peer = 0;            ///< right id, wrong source address
  std::uint64_t dropped_auth = 0;                  ///< forged or corrupted, summed over transfers
  std::uint64_t dropped_replay = 0;                ///< replayed, summed over transfers
  std::uint64_t datagrams_sent_offloaded = 0;      ///< sent inside a UDP GSO message
  std::uint64_t datagrams_received_coalesced = 0;  ///< arrived in a GRO-coalesced read
  std::uint64_t hashed_on_own_thread = 0;          ///< receiving transfers given a hashing thread
};

class TESSENGER_EXPORT TransferService {
 public:
  /// Binds the UDP socket. Port 0 picks a free port (see local_port()).
  /// Throws std::system_error if the socket cannot be bound (e.g. the port
  /// is in use: std::errc::address_in_use).
  TransferService(asio::any_io_executor executor, const asio::ip::udp::endpoint& bind,
                  TransferOptions options = {});
  /// Stops every transfer without callbacks. Receiving transfers keep their
  /// partial file and resume record, so a later offer of the same file resumes.
  ~TransferService();
  TransferService(const TransferService&) = delete;
  TransferService& operator=(const TransferService&) = delete;

  std::uint16_t local_port() const;
  asio::ip::udp::endpoint local_endpoint() const;

  /// Starts sending `path` to `peer`. Fails at once (and runs no callback)
  /// with errc::no_such_file if the file is not a readable regular file, or
  /// errc::invalid_argument if the id is already in use.
  std::error_code send_file(std::uint64_t transfer_id, const transfer::Key& key,
                            const std::filesystem::path& path, const asio::ip::udp::endpoint& peer,
                            TransferCallbacks callbacks);
  /// Starts receiving. Resumes from the partial file of an earlier offer of
  /// the same file by the same sender, if one is in the download dir. Fails
  /// at once with errc::disk_error if the partial file cannot be created.
  std::error_code expect_file(const IncomingTransfer& incoming, TransferCallbacks callbacks);
  /// Starts receiving into `sink` (for example a transfer::MemorySink)
  /// instead of the download dir: no resume record, and on_complete's path
  /// is empty. The sink is committed once the SHA-256 matched.
  std::error_code expect_file(const IncomingTransfer& incoming,
                              std::unique_ptr<transfer::ChunkSink> sink,
                              TransferCallbacks callbacks);
  /// Aborts a transfer; the peer is told and on_failure runs with
  /// errc::transfer_aborted. Unknown ids are ignored.
  void cancel(std::uint64_t transfer_id);

  /// Transfers still running (finished ones may linger to answer the peer).
  std::size_t active() const;
  TransferServiceStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger
