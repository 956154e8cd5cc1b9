#pragma once

// A client that behaves like the original Python TESSENGER client: each
// command is one send() of UTF-8 text without a newline; a reader thread
// takes each recv(2048) for one reply and reacts by substring, as the
// original's read_server does (it disconnects on `Bye`, `blocked` or
// `error`, and on `p2pvideo` splits the reply into exactly five fields and
// sends the file over UDP in the legacy datagram format). Every wait is
// bounded by a deadline.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tessenger::testing {

using namespace std::chrono_literals;

inline sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  return sa;
}

inline std::vector<std::string> whitespace_split(const std::string& text) {
  std::istringstream in(text);
  return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

/// The original's UDP_send of FILE (as the server's answer named it) from
/// `dir`: the header `UDP%%SENDER_FILE` before every 1024-byte chunk (its
/// counter never moves on), then `end`.
inline void legacy_udp_send(const std::string& address, std::uint16_t port,
                            const std::filesystem::path& dir, const std::string& file,
                            const std::string& sender) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to = loopback_address(port);
  ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
  const std::string header = "UDP%%" + sender + "_" + file;
  std::ifstream in(dir / file, std::ios::binary);
  std::vector<char> chunk(1024);
  auto put = [&](const void* data, std::size_t size) {
    ::sendto(fd, data, size, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  };
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    put(header.data(), header.size());
    put(chunk.data(), got);
  }
  put("end", 3);
  ::close(fd);
}

/// The original's UDP_recv on 127.0.0.1: recvfrom(1024) (longer datagrams
/// are cut), the first datagram of a file split on "%%" into the type
/// `UDP` and SENDER_FILE, every other one written to that file until one
/// reads `end`, which prints `Received FILE from SENDER` (FILE and SENDER
/// split out on "_", as the original does). Files are kept in memory.
class LegacyUdpReceiver {
 public:
  LegacyUdpReceiver() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto sa = loopback_address(0);
    ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    socklen_t size = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &size);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~LegacyUdpReceiver() {
    {
      std::lock_guard lock(mutex_);
      running_ = false;
    }
    thread_.join();
    ::close(fd_);
  }
  LegacyUdpReceiver(const LegacyUdpReceiver&) = delete;
  LegacyUdpReceiver& operator=(const LegacyUdpReceiver&) = delete;

  std::uint16_t port() const { return port_; }

  /// The first printed line containing `expected`, or "" at the deadline.
  std::string wait_for(const std::string& expected, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    std::string found;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto& line : printed_) {
        if (line.find(expected) != std::string::npos) {
          found = line;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  /// What was written under `name` (SENDER_FILE).
  std::string file(const std::string& name) {
    std::lock_guard lock(mutex_);
    return files_[name];
  }
  /// The original would have crashed: a first datagram that is no header.
  bool broken() {
    std::lock_guard lock(mutex_);
    return broken_;
  }

 private:
  void run() {
    int count = 0;
    std::string filename;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (!running_) return;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buffer[1024];
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0) continue;
      const std::string data(buffer, static_cast<std::size_t>(n));
      std::lock_guard lock(mutex_);
      if (count == 0) {
        ++count;
        const auto split = data.find("%%");
        if (split == std::string::npos || data.find("%%", split + 2) != std::string::npos ||
            data.substr(0, split) != "UDP") {
          broken_ = true;
          continue;
        }
        filename = data.substr(split + 2);
        files_[filename].clear();
      } else if (data != "end") {
        ++count;
        files_[filename] += data;
      } else {
        count = 0;
        const auto under = filename.find('_');
        const auto next = filename.find('_', under + 1);
        printed_.push_back("Received " + filename.substr(under + 1, next - under - 1) + " from " +
                           filename.substr(0, under));
        changed_.notify_all();
      }
    }
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool running_ = true;
  bool broken_ = false;
  std::map<std::string, std::string> files_;
  std::vector<std::string> printed_;
  std::thread thread_;
};

class LegacyClient {
 public:
  /// `files`: where p2pvideo finds the files it sends (the original's working directory).
  explicit LegacyClient(std::uint16_t port, std::filesystem::path files = ".")
      : files_(std::move(files)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto sa = loopback_address(port);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
    reader_ = std::thread([this] { read_server(); });
  }
  ~LegacyClient() {
    disconnect();
    reader_.join();
    ::close(fd_);
  }
  LegacyClient(const LegacyClient&) = delete;
  LegacyClient& operator=(const LegacyClient&) = delete;

  /// One command: one send() of the text, no newline.
  void send(const std::string& text) { ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL); }
  void send_bytes(const std::string& bytes) { send(bytes); }

  /// Logs in with `USERNAME PASSWORD UDPPORT`; true once welcomed.
  bool login(const std::string& line) {
    return command(line, "Welcome") == "Welcome to TESSENGER!";
  }

  /// Sends `text` and waits for a reply (a recv() after the send) that
  /// contains `expected`; returns that reply, or "" on timeout.
  std::string command(const std::string& text, const std::string& expected,
                      std::chrono::milliseconds timeout = 10s) {
    std::size_t from;
    {
      std::lock_guard lock(mutex_);
      from = replies_.size();
    }
    send(text);
    return wait_for(expected, from, timeout);
  }
  /// The first reply at index `from` or later that contains `expected`.
  std::string wait_for(const std::string& expected, std::size_t from = 0,
                       std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    std::string found;
    changed_.wait_for(lock, timeout, [&] {
      for (std::size_t i = from; i < replies_.size(); ++i) {
        if (replies_[i].find(expected) != std::string::npos) {
          found = replies_[i];
          return true;
        }
      }
      return false;
    });
    return found;
  }
  /// True once the reader stopped: the server closed, or a reply made the
  /// original disconnect.
  bool stopped_within(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return !running_; });
  }
  bool reader_died() {
    std::lock_guard lock(mutex_);
    return reader_died_;
  }
  std::vector<std::string> replies() {
    std::lock_guard lock(mutex_);
    return replies_;
  }
  std::size_t reply_count() {
    std::lock_guard lock(mutex_);
    return replies_.size();
  }
  bool server_closed() {
    std::lock_guard lock(mutex_);
    return server_closed_;
  }

 private:
  void disconnect() { ::shutdown(fd_, SHUT_RDWR); }

  void read_server() {
    for (;;) {
      char buffer[2048];
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      std::unique_lock lock(mutex_);
      if (n <= 0) {
        server_closed_ = n == 0;
        break;
      }
      std::string content(buffer, static_cast<std::size_t>(n));
      replies_.push_back(content);
      changed_.notify_all();
      if (content.find("Bye") != std::string::npos ||
          content.find("blocked") != std::string::npos ||
          content.find("error") != std::string::npos) {
        lock.unlock();
        disconnect();
        lock.lock();
        break;
      }
      if (content.find("p2pvideo") != std::string::npos) {
        const auto fields = whitespace_split(content);
        // `_, addr, receive_port, file_name, sender = re.split(...)`
        if (fields.size() != 5) {
          reader_died_ = true;
          break;
        }
        lock.unlock();
        legacy_udp_send(fields[1], static_cast<std::uint16_t>(std::stoi(fields[2])), files_,
                        fields[3], fields[4]);
      }
    }
    std::lock_guard lock(mutex_);
    running_ = false;
    changed_.notify_all();
  }

  std::filesystem::path files_;
  int fd_ = -1;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> replies_;
  bool running_ = true;
  bool reader_died_ = false;
  bool server_closed_ = false;
  std::thread reader_;
};

}  // namespace tessenger::testing
