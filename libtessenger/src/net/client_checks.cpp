#include "net/client_checks.hpp"

#include <algorithm>

#include "protocol/utf8.hpp"

namespace tessenger::client_detail {
namespace {

bool fits(std::string_view field, std::size_t limit) noexcept {
  return field.size() <= limit && protocol::valid_utf8(field);
}

Failure fail(errc code, std::string_view detail = {}) {
  return Failure{make_error_code(code), std::string(detail)};
}

}  // namespace

Failure check(const protocol::Login& request, const Limits& limits) {
  if (!fits(request.username, limits.max_username)) return fail(errc::invalid_username);
  if (!fits(request.password, limits.max_password)) return fail(errc::field_too_long);
  return {};
}

Failure check(const protocol::DirectSend& request, const Limits& limits) {
  if (!fits(request.to, limits.max_username)) return fail(errc::user_not_online, request.to);
  if (!fits(request.text, limits.max_text)) return fail(errc::invalid_text);
  return {};
}

Failure check(const protocol::ActiveUsersQuery&, const Limits&) {
  return {};
}

Failure check(const protocol::GroupCreate& request, const Limits& limits) {
  if (!fits(request.group, limits.max_group_name)) return fail(errc::invalid_group_name);
  if (request.members.size() > limits.max_list_entries) return fail(errc::limit_reached);
  for (const auto& member : request.members) {
    if (!fits(member, limits.max_username)) return fail(errc::user_not_online, member);
  }
  return {};
}

Failure check(const protocol::GroupJoin& request, const Limits& limits) {
  if (!fits(request.group, limits.max_group_name)) {
    return fail(errc::group_not_found, request.group);
  }
  return {};
}

Failure check(const protocol::GroupLeave& request, const Limits& limits) {
  if (!fits(request.group, limits.max_group_name))
    return fail(errc::group_not_found, request.group);
  return {};
}

Failure check(const protocol::GroupDelete& request, const Limits& limits) {
  if (!fits(request.group, limits.max_group_name))
    return fail(errc::group_not_found, request.group);
  return {};
}

Failure check(const protocol::GroupSend& request, const Limits& limits) {
  if (!fits(request.group, limits.max_group_name)) {
    return fail(errc::group_not_found_for_message, request.group);
  }
  if (!fits(request.text, limits.max_text)) return fail(errc::invalid_text);
  return {};
}

Failure check(const protocol::FileOffer& request, const Limits& limits) {
  if (!fits(request.to, limits.max_username)) return fail(errc::user_not_online, request.to);
  if (!fits(request.file_name, limits.max_file_name)) return fail(errc::field_too_long);
  return {};
}

Failure check(const protocol::FileOfferCheck& request, const Limits& limits) {
  if (!fits(request.to, limits.max_username)) return fail(errc::user_not_online, request.to);
  return {};
}

Failure check(const protocol::Ping&, const Limits&) {
  return {};
}

Failure check(const protocol::Logout&, const Limits&) {
  return {};
}

Failure check(const protocol::HistoryQuery& request, const Limits& limits) {
  if (!fits(request.name, std::max(limits.max_username, limits.max_group_name))) {
    return fail(errc::field_too_long);
  }
  if (request.limit == 0 || request.limit > protocol::max_history_page) {
    return fail(errc::invalid_argument, "history page size");
  }
  return {};
}

}  // namespace tessenger::client_detail
