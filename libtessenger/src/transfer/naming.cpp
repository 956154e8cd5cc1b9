#include <string>
#include <string_view>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

namespace {

// NAME_MAX on Linux, in bytes.
constexpr std::size_t max_name_bytes = 255;

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Cuts to at most `limit` bytes without splitting a UTF-8 sequence.
std::string truncate_utf8(std::string s, std::size_t limit) {
  if (s.size() <= limit) return s;
  std::size_t cut = limit;
  while (cut > 0 && is_continuation(s[cut]))
    --cut;
  s.resize(cut);
  return s;
}

// One path component that cannot name a directory, a hidden file or escape.
std::string clean_component(std::string_view raw, std::string_view fallback) {
  const auto slash = raw.find_last_of("/\\");
  if (slash != std::string_view::npos) raw.remove_prefix(slash + 1);
  std::string out;
  out.reserve(raw.size());
  for (const char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '_' : c);
  }
  const auto first = out.find_first_not_of(". ");
  out.erase(0, first == std::string::npos ? out.size() : first);
  const auto last = out.find_last_not_of(' ');
  out.erase(last == std::string::npos ? 0 : last + 1);
  if (out.empty()) out = fallback;
  return out;
}

}  // namespace

std::string safe_file_name(std::string_view sender, std::string_view file_name) {
  const std::string who = truncate_utf8(clean_component(sender, "unknown"), 64);
  std::string name = clean_component(file_name, "file");
  // Keep the extension when the whole name is too long: "sender_stem….ext".
  const std::size_t room = max_name_bytes - who.size() - 1;
  if (name.size() > room) {
    const auto dot = name.find_last_of('.');
    const std::size_t ext_size = dot == std::string::npos ? 0 : name.size() - dot;
    if (ext_size > 0 && ext_size < 16) {
      const std::string ext = name.substr(dot);
      name = truncate_utf8(name.substr(0, dot), room - ext.size()) + ext;
    } else {
      name = truncate_utf8(std::move(name), room);
    }
  }
  return who + "_" + name;
}

std::string numbered_name(std::string_view name, unsigned n) {
  if (n == 0) return std::string(name);
  const std::string suffix = " (" + std::to_string(n) + ")";
  const auto dot = name.find_last_of('.');
  const bool has_ext =
      dot != std::string_view::npos && dot > 0 && dot + 1 < name.size() && name.size() - dot <= 16;
  const std::string_view stem = has_ext ? name.substr(0, dot) : name;
  const std::string_view ext = has_ext ? name.substr(dot) : std::string_view{};
  const std::size_t room = max_name_bytes - suffix.size() - ext.size();
  return truncate_utf8(std::string(stem), room) + suffix + std::string(ext);
}

}  // namespace tessenger::transfer
