#include "workload.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <variant>

#include "event_loop.hpp"
#include "histogram.hpp"
#include "process.hpp"

namespace bench {
namespace {

namespace p = tessenger::protocol;

constexpr char hex_digits[] = "0123456789abcdef";

void put_hex(std::byte* out, std::uint64_t value, int digits) noexcept {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = static_cast<std::byte>(hex_digits[value & 0xf]);
    value >>= 4;
  }
}

bool get_hex(std::string_view text, std::uint64_t& value) noexcept {
  value = 0;
  for (const char c : text) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  return true;
}

}  // namespace

std::string stamp_text(std::size_t payload) {
  std::string text(std::max(payload, min_payload), 'x');
  text.replace(0, min_payload, min_payload, '0');
  return text;
}

std::optional<Stamp> read_stamp(std::string_view text) noexcept {
  if (text.size() < min_payload) return std::nullopt;
  std::uint64_t sent = 0, seq = 0, sender = 0;
  if (!get_hex(text.substr(0, 16), sent) || !get_hex(text.substr(16, 8), seq) ||
      !get_hex(text.substr(24, 4), sender)) {
    return std::nullopt;
  }
  return Stamp{sent, static_cast<std::uint32_t>(seq), static_cast<std::uint16_t>(sender)};
}

FrameTemplate::FrameTemplate(const p::Message& message) : bytes_(p::encode(message)) {
  // Both request kinds are: header, u32 request id, one short string, then
  // the text (u16 length + bytes).
  const auto* send = std::get_if<p::DirectSend>(&message);
  const auto* group = std::get_if<p::GroupSend>(&message);
  if (send == nullptr && group == nullptr) throw std::logic_error("unsupported frame template");
  const auto& first = send ? send->to : group->group;
  text_at_ = p::header_size + 4 + 2 + first.size() + 2;
}

void FrameTemplate::append(std::vector<std::byte>& out, std::uint32_t request_id,
                           const Stamp& stamp) const {
  const auto at = out.size();
  out.insert(out.end(), bytes_.begin(), bytes_.end());
  std::byte* frame = out.data() + at;
  frame[p::header_size + 0] = static_cast<std::byte>(request_id >> 24);
  frame[p::header_size + 1] = static_cast<std::byte>(request_id >> 16);
  frame[p::header_size + 2] = static_cast<std::byte>(request_id >> 8);
  frame[p::header_size + 3] = static_cast<std::byte>(request_id);
  std::byte* text = frame + text_at_;
  put_hex(text, stamp.sent_ns, 16);
  put_hex(text + 16, stamp.seq, 8);
  put_hex(text + 24, stamp.sender, 4);
}

void CpuMeter::start() {
  wall_start_ = now_ns();
  bench_start_ = self_cpu();
  if (server_ > 0) server_start_ = process_cpu(server_);
}

void CpuMeter::stop() {
  wall_end_ = now_ns();
  bench_end_ = self_cpu();
  if (server_ > 0) server_end_ = process_cpu(server_);
}

double CpuMeter::wall_seconds() const noexcept {
  return static_cast<double>(wall_end_ - wall_start_) / 1e9;
}

double CpuMeter::server_seconds() const {
  if (server_ <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::chrono::duration<double>(server_end_ - server_start_).count();
}

double CpuMeter::bench_seconds() const {
  return std::chrono::duration<double>(bench_end_ - bench_start_).count();
}

void CpuMeter::report(Report& report) const {
  const double wall = wall_seconds();
  const double server = server_seconds();
  report.add("server_cpu_percent", "server CPU",
             std::isnan(server) ? Value{Unknown{}} : Value{100 * server / wall}, "%");
  report.add("bench_cpu_percent", "bench CPU", 100 * bench_seconds() / wall, "%");
  report.add("duration_s", "measured for", wall, "s");
}

void append_login(std::vector<std::byte>& out, std::size_t index) {
  p::encode(p::Hello{1, p::version, p::version, "tessenger-bench"}, out);
  p::encode(p::Login{2, user_name(index), user_password(index), 9}, out);
}

Latency latency_of(const Histogram& histogram) {
  return {histogram.quantile(0.5) / 1e3, histogram.quantile(0.99) / 1e3,
          histogram.quantile(0.999) / 1e3};
}

}  // namespace bench
