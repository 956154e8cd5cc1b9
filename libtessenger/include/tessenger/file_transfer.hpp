#pragma once

// tessenger::FileTransfer: peer-to-peer file transfer over UDP (SPEC §6),
// the Asio driver of the engine in <tessenger/transfer_engine.hpp>.
//
// Threading: every public member may be called from any thread. Work is
// posted onto the object's strand; send_file() and expect_file() check and
// open the file on the calling thread so that they can fail at once, and
// the getters (local_port(), active(), stats()) read state that is safe to
// read anywhere. Callbacks run on the strand (see get_executor()), one at a
// time, never from inside a member function call, never while the library
// holds a lock.
//
// Lifetime: a callback may destroy the FileTransfer it was called from,
// also while another thread is still inside the member call that started
// the work that callback reports (send_file(), expect_file()...): each call
// keeps what it uses alive until it returns. Once the destructor has
// returned no callback runs any more, also on an io_context the caller owns
// and runs on other threads. Apart from that case, the destructor must not
// run concurrently with another member call.
//
// Blocking: a receiving transfer writes the file (pwrite) and may wait for
// its hashing thread on the strand, and the socket buffers are large. On an
// executor shared with chat (a Client, a Server) those waits delay chat; the
// constructor that owns its io_context runs everything on a thread of its
// own, and is what the bundled client uses.
//
// One UDP socket per client (its udp_port) carries every transfer, in both
// directions at once; datagrams are matched to transfers by transfer id and
// checked against the peer address the server announced. Datagrams with an
// unknown id or from any other address are dropped without a reply.
//
//   tessenger::FileTransfer files({asio::ip::udp::v4(), udp_port}, options);
//   // sender, after FileOfferAccepted:
//   files.send_file(ok.transfer_id, ok.key, path,
//                   {asio::ip::make_address(ok.peer_address), ok.peer_udp_port}, callbacks);
//   // receiver, on FileIncomingEvent:
//   files.expect_file(incoming_from(event, ec), callbacks);
//
// Files to and from users of the original client (docs/legacy.md) travel in
// its datagram format, which has no id, no size and no check: see
// expect_legacy_file() and send_legacy_file().

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/protocol.hpp>
#include <tessenger/transfer_engine.hpp>

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
  /// FileTransfer sends datagram by datagram from then on.
  bool segmentation_offload = true;
  /// Receiving transfers of files over 4 MiB hash what arrives on a thread
  /// of their own (with a 4 MiB ring), so receiving and hashing use two
  /// cores: SHA-256 costs about as much as all other receiving work. At most
  /// this many such threads at once; other transfers hash inline on the
  /// strand (0: always inline).
  std::size_t max_hashing_threads = 4;
  /// send_legacy_file(): file bytes per second. The original client's
  /// receiver reads one datagram at a time and tells nothing of loss, so the
  /// pace is one a receiver on the same machine keeps up with.
  std::uint64_t legacy_send_rate = 2u << 20;
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

/// What the server announced of a file from a user of the original client
/// (LegacyFileEvent). Its datagrams come from a port nobody announced: the
/// first header datagram from sender_address fixes it.
struct LegacyIncoming {
  std::string sender_name;
  std::string file_name;  ///< as the sender typed it: stored under a safe name
  asio::ip::address sender_address;
};

/// Converts the server's event; fails if the sender address is not an IP address.
TESSENGER_EXPORT LegacyIncoming legacy_incoming_from(const protocol::LegacyFileEvent& event,
                                                     std::error_code& ec);

struct TransferResult {
  std::filesystem::path path;  ///< sender: the file sent; receiver: where it was stored
  std::uint64_t size = 0;      ///< bytes sent or stored
  /// False for the original client's format (expect_legacy_file(),
  /// send_legacy_file()): nothing checked that the file arrived whole.
  bool verified = true;
  std::chrono::steady_clock::duration elapsed{};
  transfer::Stats stats;
};

/// Each callback is optional (unset = ignored). Exactly one of on_complete
/// and on_failure runs for every accepted transfer, then none runs again
/// (none at all once the FileTransfer is destroyed). Callbacks run on the
/// FileTransfer's strand and may call any member function, including for the
/// same transfer, and the destructor.
struct TransferCallbacks {
  /// Bytes acknowledged (sending) or held (receiving) out of the total.
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
  std::function<void(const TransferResult& result)> on_complete;
  /// `ec` is a tessenger::errc (transfer_timeout, transfer_checksum,
  /// transfer_too_large, disk_error, transfer_aborted); `reason` is one line
  /// for a person.
  std::function<void(std::error_code ec, const std::string& reason)> on_failure;
};

struct FileTransferStats {
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
  std::uint64_t held_for_legacy = 0;  ///< matched nothing yet: kept for expect_legacy_file()
};

class TESSENGER_EXPORT FileTransfer {
 public:
  /// The strand every callback runs on.
  using executor_type = asio::any_io_executor;

  /// Binds the UDP socket and runs on `executor` (through a strand of its
  /// own): the caller runs it, on as many threads as it likes. Port 0 picks a
  /// free port (see local_port()). Throws std::system_error if the socket
  /// cannot be bound (e.g. the port is in use: std::errc::address_in_use).
  FileTransfer(asio::any_io_executor executor, const asio::ip::udp::endpoint& bind,
               TransferOptions options = {});
  FileTransfer(asio::io_context& io, const asio::ip::udp::endpoint& bind,
               TransferOptions options = {});
  /// As above, on an io_context it owns and runs on one thread of its own,
  /// joined by the destructor (or, when the destructor runs in one of its
  /// callbacks, left to end on its own right after).
  explicit FileTransfer(const asio::ip::udp::endpoint& bind, TransferOptions options = {});
  /// Stops every transfer without callbacks. Receiving transfers that held
  /// data keep their partial file and resume record, so a later offer of the
  /// same file resumes; the others leave nothing. Waits for a callback running on another thread to
  /// return. On a caller's executor the socket is closed and the records saved by a handler the
  /// destructor posts there (at once when it runs in a callback); with an owned thread, before it
  /// returns.
  ~FileTransfer();
  FileTransfer(const FileTransfer&) = delete;
  FileTransfer& operator=(const FileTransfer&) = delete;

  executor_type get_executor() const noexcept;

  /// The bound UDP port (useful with port 0).
  std::uint16_t local_port() const noexcept;
  asio::ip::udp::endpoint local_endpoint() const noexcept;

  /// Starts sending `path` to `peer`. Fails at once (and runs no callback)
  /// with errc::no_such_file if the file is not a readable regular file, or
  /// errc::invalid_argument if the id is already in use.
  std::error_code send_file(std::uint64_t transfer_id, const transfer::Key& key,
                            const std::filesystem::path& path, const asio::ip::udp::endpoint& peer,
                            TransferCallbacks callbacks);
  /// Starts receiving. Resumes from the partial file of an earlier offer of
  /// the same file by the same sender, if one is in the download dir. A
  /// transfer that ends unfinished keeps its partial file and resume record
  /// only if it held data: one whose sender never sent any (it times out
  /// after idle_timeout) leaves no file behind. Fails
  /// at once with errc::disk_error if the partial file cannot be created, or
  /// errc::invalid_argument if the id is already in use.
  std::error_code expect_file(const IncomingTransfer& incoming, TransferCallbacks callbacks);
  /// Starts receiving into `sink` (for example a transfer::MemorySink)
  /// instead of the download dir: no resume record, and on_complete's path
  /// is empty. The sink is committed once the SHA-256 matched; it is used on
  /// the strand (and read by a hashing thread) from now on.
  std::error_code expect_file(const IncomingTransfer& incoming,
                              std::unique_ptr<transfer::ChunkSink> sink,
                              TransferCallbacks callbacks);
  /// Refuses an offer: no file is created and no callback runs; for the
  /// idle timeout the sender's datagrams are answered with an ABORT
  /// (errc::transfer_aborted), so it fails at once with one clear line
  /// rather than after a timeout. Fails with errc::invalid_argument if the
  /// id is already in use.
  std::error_code decline(const IncomingTransfer& incoming);
  /// Starts receiving a file a user of the original client sends in its
  /// datagram format: the header `UDP%%SENDER_FILE` (dropped wherever it
  /// comes: the original repeats it before every chunk), raw chunks, then
  /// `end`. Only datagrams from sender_address count, and of those only the
  /// port the first header came from. The data goes to a hidden temporary
  /// file, put in place under the SPEC §6.4 name when `end` arrives, never
  /// over an existing file; on_complete's result has `verified` false, as
  /// nothing can tell whether chunks were lost. Fails (and removes the
  /// temporary file) after idle_timeout without a datagram, or past
  /// max_receive_size. The original starts sending the moment the server
  /// answers it, maybe before this call: datagrams that matched no transfer
  /// in the last 2 s (up to 1 MiB of them) are taken into account. Fails at
  /// once with errc::disk_error if the temporary file cannot be created.
  std::error_code expect_legacy_file(const LegacyIncoming& incoming, TransferCallbacks callbacks);
  /// Starts sending `path` to a user of the original client (a
  /// FileOfferAccepted with `legacy`): the header `UDP%%SENDER_FILE` with
  /// `sender_name` and the file's base name, the file in 1,024-byte
  /// datagrams paced at legacy_send_rate, then `end`. on_complete runs once
  /// `end` has left; its result has `verified` false, as the receiver
  /// answers nothing. Fails at once with errc::no_such_file if the file is
  /// not a readable regular file, errc::invalid_argument if the original
  /// client cannot take its name (see docs/legacy.md).
  std::error_code send_legacy_file(const std::filesystem::path& path,
                                   const asio::ip::udp::endpoint& peer,
                                   std::string_view sender_name, TransferCallbacks callbacks);
  /// Aborts a transfer; the peer is told and on_failure runs with
  /// errc::transfer_aborted. Unknown ids are ignored.
  void cancel(std::uint64_t transfer_id);

  /// Transfers accepted and not yet finished.
  std::size_t active() const;
  /// Counters as of the strand's last wake-up.
  FileTransferStats stats() const;

 private:
  struct Impl;
  struct Runner;
  using Hold = std::pair<std::shared_ptr<Impl>, std::shared_ptr<Runner>>;
  Hold hold() const;
  std::shared_ptr<Runner> runner_;  // before impl_: the io_context outlives the socket
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger
