#include "tty_format.hpp"

#include <array>
#include <cmath>
#include <ctime>
#include <cwchar>

#include <fmt/format.h>

namespace tessenger::app {
namespace {

// Length of the SGR sequence at the start of `text`, or 0.
std::size_t sgr_length(std::string_view text) {
  if (text.size() < 2 || text[0] != '\x1b' || text[1] != '[') return 0;
  const auto end = text.find('m', 2);
  return end == std::string_view::npos ? 0 : end + 1;
}

// One character of `text`: its byte length and its width.
std::pair<std::size_t, std::size_t> next_char(std::string_view text) {
  std::mbstate_t state{};
  wchar_t wide = 0;
  const auto n = std::mbrtowc(&wide, text.data(), text.size(), &state);
  if (n == 0 || n == static_cast<std::size_t>(-1) || n == static_cast<std::size_t>(-2)) {
    return {1, 1};
  }
  const int width = ::wcwidth(wide);
  return {n, width < 0 ? 2 : static_cast<std::size_t>(width)};
}

std::tm local(protocol::Timestamp timestamp) {
  const auto seconds = static_cast<std::time_t>(timestamp >= 0 ? timestamp / 1'000'000
                                                               : (timestamp - 999'999) / 1'000'000);
  std::tm tm{};
  ::localtime_r(&seconds, &tm);
  return tm;
}

}  // namespace

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  while (!text.empty()) {
    if (const auto sgr = sgr_length(text)) {
      text.remove_prefix(sgr);
      continue;
    }
    const auto [bytes, columns] = next_char(text);
    width += columns;
    text.remove_prefix(bytes);
  }
  return width;
}

std::string fit_width(std::string_view text, std::size_t columns) {
  std::string out;
  std::size_t width = 0;
  bool styled = false;
  while (!text.empty()) {
    if (const auto sgr = sgr_length(text)) {
      out.append(text.substr(0, sgr));
      styled = true;
      text.remove_prefix(sgr);
      continue;
    }
    const auto [bytes, cols] = next_char(text);
    if (width + cols > columns) break;
    out.append(text.substr(0, bytes));
    width += cols;
    text.remove_prefix(bytes);
  }
  if (styled) out += "\x1b[0m";
  return out;
}

std::string human_size(std::uint64_t bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  constexpr std::array<std::string_view, 6> units = {"kB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes) / 1000;
  std::size_t unit = 0;
  while (value >= 999.5 && unit + 1 < units.size()) {
    value /= 1000;
    ++unit;
  }
  if (value < 9.95) return fmt::format("{:.1f} {}", value, units[unit]);
  return fmt::format("{:.0f} {}", value, units[unit]);
}

std::string human_duration(std::chrono::duration<double> duration) {
  const double seconds = duration.count();
  if (seconds < 10) return fmt::format("{:.1f} s", seconds < 0 ? 0.0 : seconds);
  const auto whole = static_cast<std::uint64_t>(std::llround(seconds));
  if (whole < 60) return fmt::format("{} s", whole);
  if (whole < 3600) return fmt::format("{} min {} s", whole / 60, whole % 60);
  return fmt::format("{} h {} min", whole / 3600, whole / 60 % 60);
}

std::string human_rate(double bytes_per_second) {
  return human_size(static_cast<std::uint64_t>(bytes_per_second < 0 ? 0 : bytes_per_second)) + "/s";
}

std::string Palette::sgr(std::string_view code, std::string_view text) const {
  if (!enabled_) return std::string(text);
  return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
}

std::string Palette::user(std::string_view name) const {
  // FNV-1a: stable across runs and builds, unlike std::hash.
  std::uint32_t hash = 2166136261u;
  for (const unsigned char c : name)
    hash = (hash ^ c) * 16777619u;
  // Six colours that read well on dark and light backgrounds.
  constexpr std::array<std::string_view, 6> colours = {"32", "33", "34", "35", "36", "91"};
  return sgr(colours[hash % colours.size()], name);
}

std::string Palette::error(std::string_view text) const {
  return sgr("31", text);
}

std::string Palette::dim(std::string_view text) const {
  return sgr("2", text);
}

std::string Palette::bold(std::string_view text) const {
  return sgr("1", text);
}

std::string Palette::prompt(std::string_view name) const {
  if (!enabled_) return fmt::format("{}> ", name);
  return fmt::format("\1\x1b[1m\1{}\1\x1b[0m\1> ", name);
}

std::string ShortTime::day_change(protocol::Timestamp timestamp) {
  const auto tm = local(timestamp);
  // One number per local date.
  const int day = (tm.tm_year + 1900) * 400 + tm.tm_yday;
  if (day == last_day_) return {};
  last_day_ = day;
  char text[64];
  const auto n = std::strftime(text, sizeof text, "-- %A %d %B %Y --", &tm);
  return std::string(text, n);
}

std::string ShortTime::short_time(protocol::Timestamp timestamp) {
  const auto tm = local(timestamp);
  return fmt::format("{:02}:{:02}", tm.tm_hour, tm.tm_min);
}

std::string transfer_status(bool upload, std::string_view file, std::string_view peer,
                            std::uint64_t done, std::uint64_t total, double bytes_per_second) {
  const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
  auto text =
      fmt::format("{} {} {} {} {}/{} {}%", upload ? "sending" : "receiving", file,
                  upload ? "to" : "from", peer, human_size(done), human_size(total), percent);
  if (bytes_per_second > 0) {
    text += " " + human_rate(bytes_per_second);
    if (done < total) {
      text += " ETA " + human_duration(std::chrono::duration<double>(
                            static_cast<double>(total - done) / bytes_per_second));
    }
  }
  return text;
}

}  // namespace tessenger::app
