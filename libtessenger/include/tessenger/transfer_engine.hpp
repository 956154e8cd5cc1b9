#pragma once

// tessenger::transfer: the file transfer engine behind FileTransfer and
// /p2pvideo (SPEC §6): sans-I/O sender and receiver state machines, for
// embedders who drive their own sockets. Most programs want
// <tessenger/file_transfer.hpp> instead.
//
// No sockets, no clocks, no threads, no Asio: datagrams and the current time
// go in; datagrams, timer deadlines, progress and an outcome come out. File
// data flows through the ChunkSource / ChunkSink interfaces, so the same code
// runs over memory in the simulation tests and over files in FileTransfer.
// docs/file-transfer.md describes the datagram format and the algorithms.
//
// Driving an engine (Sender or Receiver alike):
//   - every datagram from the peer: on_datagram(bytes, now);
//   - then, and after every other call: while ((n = poll_send(buffer, now))) send n bytes;
//   - arm one timer at next_expiry(); when it fires: on_timeout(now);
//   - watch state(): done or failed is final; destroy the engine once closed().
//
// Thread safety: distinct objects: safe. Shared objects: unsafe.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <tessenger/errc.hpp>
#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>

namespace tessenger::transfer {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Key = std::array<std::uint8_t, 32>;
using Digest = std::array<std::uint8_t, 32>;

/// Payload bytes per DATA datagram unless configured otherwise: safe on any path.
inline constexpr std::size_t default_chunk_size = 1200;
/// Largest UDP payload over IPv4.
inline constexpr std::size_t max_datagram_size = 65'507;
/// Header (20) + DATA offset (8) + AEAD tag (16).
inline constexpr std::size_t data_overhead = 44;
inline constexpr std::size_t max_chunk_size = max_datagram_size - data_overhead;

/// A byte range [begin, end) of the file.
struct ByteRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool operator==(const ByteRange&) const = default;
};

/// Knobs of one engine. Every default is finite.
struct Config {
  /// Sender: file bytes per DATA datagram, 1..max_chunk_size (clamped).
  std::size_t chunk_size = default_chunk_size;
  /// No authenticated datagram from the peer for this long fails the transfer
  /// with errc::transfer_timeout. Also how long a finished engine lingers to
  /// answer a peer that missed the outcome.
  std::chrono::milliseconds idle_timeout{10'000};
  /// Receiver: a larger offer fails with errc::transfer_too_large.
  std::uint64_t max_receive_size = Limits{}.max_file_size;
  /// Receiver: how far past its first missing byte it lets the sender run.
  std::uint64_t receive_window = 32ull * 1024 * 1024;
  /// Sender: most datagrams in flight. Receiver: most holes it tracks.
  /// Together they bound memory per transfer whatever the file size.
  std::size_t max_inflight = Limits{}.max_inflight_chunks;
};

/// Counters of one engine, for tests, logs and benchmarks.
struct Stats {
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;   ///< authenticated and accepted
  std::uint64_t data_bytes_sent = 0;      ///< sender: file bytes in DATA, first sends and resends
  std::uint64_t bytes_retransmitted = 0;  ///< sender: file bytes sent more than once
  std::uint64_t packets_lost = 0;         ///< sender: datagrams declared lost
  std::uint64_t duplicate_bytes = 0;      ///< receiver: file bytes it already had
  std::uint64_t dropped_malformed = 0;    ///< bad header or payload layout
  std::uint64_t dropped_auth = 0;         ///< AEAD tag did not verify: forged or corrupted
  std::uint64_t dropped_replay = 0;       ///< packet number seen before or too old
};

/// Where a Sender reads the file. Thread: called from inside the engine's calls.
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  /// Fills `out` entirely with the bytes at `offset`.
  virtual std::error_code read(std::uint64_t offset, std::span<std::byte> out) = 0;
};

/// Where a Receiver writes the file. Thread: called from inside the engine's calls.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  /// Stores `data` at `offset`; ranges never overlap what was written before.
  virtual std::error_code write(std::uint64_t offset, std::span<const std::byte> data) = 0;
  /// Reads back bytes written earlier (or present at resume), to hash them.
  virtual std::error_code read(std::uint64_t offset, std::span<std::byte> out) = 0;
  /// The whole file arrived and its SHA-256 matched: put it in place. An
  /// error here fails the transfer with errc::disk_error on both sides.
  virtual std::error_code commit() = 0;
  /// The storage of the whole file, if the sink keeps it in memory (and
  /// never moves it); empty (the default) otherwise. When given, the
  /// Receiver decrypts datagrams straight into it and hashes from it, and
  /// calls neither write() nor read(); its FileHasher may read bytes already
  /// received there from another thread while later ones are written
  /// elsewhere in it. Bytes where nothing verified has arrived yet are
  /// unspecified.
  virtual std::span<std::byte> memory() { return {}; }
};

/// Holds a received file in memory, for embedders who want the bytes rather
/// than a file (FileTransfer::expect_file with a sink). Allocated whole
/// up front: bound the size with TransferOptions::max_receive_size.
class TESSENGER_EXPORT MemorySink final : public ChunkSink {
 public:
  explicit MemorySink(std::uint64_t size);

  std::error_code write(std::uint64_t offset, std::span<const std::byte> data) override;
  std::error_code read(std::uint64_t offset, std::span<std::byte> out) override;
  std::error_code commit() override;
  std::span<std::byte> memory() override { return data_; }

  /// The file: whole and verified once committed(); unspecified before.
  std::span<const std::byte> data() const { return data_; }
  bool committed() const { return committed_; }

 private:
  std::vector<std::byte> data_;
  bool committed_ = false;
};

/// Computes a Receiver's whole-file SHA-256 from the bytes it is given in
/// order. Without one the Receiver hashes inline; FileTransfer hashes on a
/// thread of its own, as SHA-256 costs about as much as everything else a
/// receiver does per byte. Thread: called from inside the engine's calls.
class FileHasher {
 public:
  virtual ~FileHasher() = default;
  /// The next bytes of the file; `data` is only valid during the call.
  virtual void update(std::span<const std::byte> data) = 0;
  /// As update(), but `data` stays valid and unchanged until finish() has
  /// returned (it lies in ChunkSink::memory()), so a hasher on another thread
  /// may read it there later rather than copy it now.
  virtual void update_stable(std::span<const std::byte> data) { update(data); }
  /// The digest of everything given; called once, at the end.
  virtual Digest finish() = 0;
};

enum class State {
  active,  ///< transferring
  done,  ///< sender: the receiver confirmed a verified file; receiver: file verified and committed
  failed,  ///< error() says why
};

struct Progress {
  std::uint64_t done = 0;   ///< bytes acknowledged (sender) or held (receiver)
  std::uint64_t total = 0;  ///< file size
};

/// What identifies one transfer: both sides get the same from the server.
struct TransferParams {
  std::uint64_t transfer_id = 0;
  Key key{};  ///< single use: never give the same key to two engines on one side
  std::uint64_t size = 0;
};

/// Sends one file. The receiver's first acknowledgements tell it what the
/// receiver already holds (resume), so it sends only the rest.
class TESSENGER_EXPORT Sender {
 public:
  Sender(const TransferParams& params, ChunkSource& source, const Config& config, TimePoint now);
  ~Sender();
  Sender(Sender&&) noexcept;
  Sender& operator=(Sender&&) noexcept;

  /// A datagram for this transfer (peer address already checked). Decrypted
  /// in place: `datagram` is clobbered. Bad ones are dropped and counted.
  void on_datagram(std::span<std::byte> datagram, TimePoint now);
  /// Writes the next datagram to send into `out` and returns its size, or 0
  /// if nothing is due now. `out` must hold chunk_size + data_overhead bytes.
  std::size_t poll_send(std::span<std::byte> out, TimePoint now);
  /// When on_timeout is next due; TimePoint::max() if never.
  TimePoint next_expiry() const;
  void on_timeout(TimePoint now);
  /// Gives up: the peer is told with an ABORT (errc::transfer_aborted).
  void cancel(TimePoint now);

  State state() const;
  /// Nothing more to send or answer: the engine can be destroyed.
  bool closed(TimePoint now) const;
  std::error_code error() const;
  /// One line for a person: why the transfer failed.
  std::string error_reason() const;
  Progress progress() const;
  const Stats& stats() const;
  std::uint64_t transfer_id() const;
  /// Congestion window and smoothed RTT, for tests and benchmarks.
  std::uint64_t congestion_window() const;
  std::chrono::nanoseconds smoothed_rtt() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Receives one file, checks its SHA-256, then commits it through the sink.
class TESSENGER_EXPORT Receiver {
 public:
  /// `already_have`: ranges the sink already holds from an earlier attempt.
  /// `hasher`: where the SHA-256 is computed (null: inline); the Receiver
  /// destroys it as soon as the outcome is known.
  Receiver(const TransferParams& params, const Digest& sha256, ChunkSink& sink,
           const Config& config, TimePoint now, std::span<const ByteRange> already_have = {},
           std::unique_ptr<FileHasher> hasher = nullptr);
  ~Receiver();
  Receiver(Receiver&&) noexcept;
  Receiver& operator=(Receiver&&) noexcept;

  void on_datagram(std::span<std::byte> datagram, TimePoint now);
  /// As Sender::poll_send; `out` must hold max_ack_datagram bytes.
  std::size_t poll_send(std::span<std::byte> out, TimePoint now);
  TimePoint next_expiry() const;
  void on_timeout(TimePoint now);
  void cancel(TimePoint now);
  /// Refuses the offer before any data: fails with errc::transfer_aborted
  /// and, for the idle timeout, answers each of the sender's datagrams with
  /// an ABORT, so a sender that starts late is still told. Writes nothing.
  void decline(TimePoint now);

  State state() const;
  bool closed(TimePoint now) const;
  std::error_code error() const;
  std::string error_reason() const;
  Progress progress() const;
  const Stats& stats() const;
  std::uint64_t transfer_id() const;
  /// What the sink holds now, to record for a later resume.
  std::vector<ByteRange> received_ranges() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Largest datagram a Receiver writes (an ACK with the most ranges).
inline constexpr std::size_t max_ack_datagram = 1'100;

/// Reads a datagram's transfer id from its clear header, so a driver can find
/// the engine. Nothing is authenticated yet: only the engine can tell.
TESSENGER_EXPORT std::optional<std::uint64_t> peek_transfer_id(std::span<const std::byte> datagram);
/// True if the datagram claims to come from a receiver (ACK, DONE, ABORT).
TESSENGER_EXPORT bool from_receiver(std::span<const std::byte> datagram);

/// SHA-256 of a file, streamed with bounded memory: what FileOffer carries.
TESSENGER_EXPORT std::error_code sha256_file(const std::filesystem::path& path, Digest& out);
/// SHA-256 of bytes in memory.
TESSENGER_EXPORT Digest sha256(std::span<const std::byte> data);

/// Lower-case hex of a digest (64 characters).
TESSENGER_EXPORT std::string to_hex(const Digest& digest);

/// SPEC §6.4: the name a received file gets in the download dir,
/// "SENDER_FILENAME", where FILENAME is reduced to a safe base name. Never
/// empty, never a path, never starts with a dot. docs/file-transfer.md lists
/// the rules.
TESSENGER_EXPORT std::string safe_file_name(std::string_view sender, std::string_view file_name);
/// The n-th alternative when `name` exists: "name (n).ext"; n = 0 gives `name`.
TESSENGER_EXPORT std::string numbered_name(std::string_view name, unsigned n);

}  // namespace tessenger::transfer
