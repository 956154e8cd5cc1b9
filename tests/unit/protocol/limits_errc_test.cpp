#include <doctest/doctest.h>

#include <set>
#include <string>

#include <tessenger/errc.hpp>
#include <tessenger/limits.hpp>

#include "helpers.hpp"
#include "samples.hpp"

using namespace tessenger;

TEST_CASE("every Limits default is finite and sane") {
  const Limits l;
  const std::pair<const char*, std::uint64_t> bounded[] = {
      {"max_frame_size", l.max_frame_size},
      {"max_username", l.max_username},
      {"max_password", l.max_password},
      {"max_group_name", l.max_group_name},
      {"max_text", l.max_text},
      {"max_file_name", l.max_file_name},
      {"max_list_entries", l.max_list_entries},
      {"max_software_name", l.max_software_name},
      {"max_group_members", l.max_group_members},
      {"max_groups_per_user", l.max_groups_per_user},
      {"max_groups", l.max_groups},
      {"max_pending_write_bytes", l.max_pending_write_bytes},
      {"login_timeout_seconds", l.login_timeout_seconds},
      {"max_udp_chunk", l.max_udp_chunk},
      {"max_inflight_chunks", l.max_inflight_chunks},
  };
  for (const auto& [name, value] : bounded) {
    CAPTURE(name);
    CHECK(value > 0);
    CHECK(value <= 64u * 1024 * 1024);
  }
  CHECK(l.max_file_size > 0);
  CHECK(l.max_file_size <= 1ull << 40);

  // Wire-format consequences: lengths fit their u16 prefixes, frames their u32.
  for (const auto v : {l.max_username, l.max_password, l.max_group_name, l.max_text,
                       l.max_file_name, l.max_list_entries, l.max_software_name}) {
    CHECK(v <= 65535);
  }
  CHECK(l.max_frame_size <= 0xffffffffu);
  CHECK(l.max_udp_chunk <= 65'507);
  CHECK(l.max_username >= 32);  // SPEC §3 usernames
  CHECK(l.max_text >= 4096);    // SPEC §4 message text
  CHECK(l.login_timeout_seconds == 60);
}

TEST_CASE("the largest valid message of every type fits the default frame size") {
  for (const auto& m : protocol::samples::at_limits()) {
    CAPTURE(protocol::name_of(protocol::type_of(m)));
    CHECK(protocol::encode(m).size() - protocol::header_size <= Limits{}.max_frame_size);
  }
}

TEST_CASE("the tessenger error category") {
  CHECK(std::string(category().name()) == "tessenger");

  const errc all[] = {
      errc::frame_too_large,
      errc::malformed_frame,
      errc::unknown_message,
      errc::unsupported_version,
      errc::field_too_long,
      errc::invalid_utf8,
      errc::empty_frame,
      errc::unexpected_message,
      errc::bad_flags,
      errc::unsupported_request,
      errc::invalid_username,
      errc::invalid_password,
      errc::account_blocked_now,
      errc::account_blocked,
      errc::already_logged_in,
      errc::not_logged_in,
      errc::login_timeout,
      errc::too_many_failed_logins,
      errc::user_not_online,
      errc::cannot_message_self,
      errc::invalid_text,
      errc::invalid_group_name,
      errc::group_exists,
      errc::group_not_found,
      errc::group_not_found_for_message,
      errc::not_invited,
      errc::already_joined,
      errc::not_group_member,
      errc::group_not_joined,
      errc::invalid_username_format,
      errc::no_such_file,
      errc::limit_reached,
      errc::rate_limited,
      errc::invalid_argument,
      errc::not_group_creator,
      errc::peer_closed,
      errc::server_shutdown,
      errc::slow_consumer,
      errc::transfer_timeout,
      errc::transfer_checksum,
      errc::transfer_aborted,
      errc::transfer_too_large,
      errc::disk_error,
      errc::timed_out,
      errc::host_not_found,
      errc::tls_error,
      errc::service_unavailable,
      errc::internal_error,
  };
  const auto is_fallback = [](const std::string& text) {
    return text.rfind("unknown tessenger error", 0) == 0;
  };
  std::set<std::string> messages;
  for (const errc e : all) {
    const std::error_code ec = e;
    CAPTURE(ec.value());
    CHECK(ec.category() == category());
    CHECK(ec == make_error_code(e));
    CHECK(static_cast<bool>(ec));
    CHECK_FALSE(ec.message().empty());
    CHECK_FALSE(is_fallback(ec.message()));
    messages.insert(ec.message());
  }
  CHECK(messages.size() == std::size(all));

  // The list above is complete: no other value below 1000 has a message.
  std::size_t described = 0;
  for (int v = 0; v < 1000; ++v)
    described += is_fallback(category().message(v)) ? 0 : 1;
  CHECK(described == std::size(all));
  CHECK(category().message(12345) == "unknown tessenger error 12345");
}
