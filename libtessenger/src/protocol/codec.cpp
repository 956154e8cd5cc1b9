#include <tessenger/protocol.hpp>

#include "protocol/codec_impl.hpp"

namespace tessenger::protocol {
namespace {

constexpr std::array<std::string_view, std::variant_size_v<Message>> names{
    "hello",
    "login",
    "direct_send",
    "active_users_query",
    "group_create",
    "group_join",
    "group_send",
    "logout",
    "file_offer",
    "ping",
    "hello_ok",
    "login_ok",
    "direct_sent",
    "active_users",
    "group_created",
    "group_joined",
    "group_sent",
    "logged_out",
    "file_offer_ok",
    "pong",
    "error",
    "direct_event",
    "group_event",
    "invite_event",
    "file_incoming_event",
    "shutdown_event",
    "login_attempt_event",
    "group_leave",
    "group_delete",
    "group_left",
    "group_deleted",
    "group_notice_event",
    "history_query",
    "history_page",
    "missed_end",
    "file_offer_legacy",
    "legacy_file_event",
    "file_offer_check",
    "file_offer_checked",
    "transfer_cancelled_event",
};

int index_of(MessageType type) noexcept {
  return detail::indices<detail::Schema>[static_cast<std::uint8_t>(type)];
}

}  // namespace

MessageType type_of(const Message& message) noexcept {
  return static_cast<MessageType>(detail::Schema::types[message.index()]);
}

bool is_request(MessageType type) noexcept {
  const auto code = static_cast<std::uint8_t>(type);
  return code >= 0x01 && code <= 0x3f;
}

std::string_view name_of(MessageType type) noexcept {
  const int index = index_of(type);
  return index < 0 ? std::string_view("unknown") : names[static_cast<std::size_t>(index)];
}

std::uint8_t since_version(MessageType type) noexcept {
  const int index = index_of(type);
  return index < 0 ? 0 : detail::Schema::since[static_cast<std::size_t>(index)];
}

void encode(const Message& message, std::vector<std::byte>& out, std::uint8_t frame_version) {
  detail::encode_frame<detail::Schema>(message, out, frame_version);
}

std::vector<std::byte> encode(const Message& message, std::uint8_t frame_version) {
  std::vector<std::byte> out;
  encode(message, out, frame_version);
  return out;
}

std::error_code decode_payload(MessageType type, std::span<const std::byte> payload,
                               const Limits& limits, Message& out, std::uint8_t frame_version) {
  return detail::decode_payload_as<detail::Schema>(static_cast<std::uint8_t>(type), frame_version,
                                                   payload, limits, out);
}

Decoder::Decoder(const Limits& limits) : limits_(limits) {}

bool Decoder::set_version(std::uint8_t negotiated) noexcept {
  if (negotiated < min_version || negotiated > version) return false;
  negotiated_ = negotiated;
  return true;
}

FeedResult Decoder::feed(std::span<const std::byte> input) {
  if (failed_) return {0, std::nullopt, std::nullopt, failed_, 0};
  const detail::VersionRange accepted = negotiated_ != 0
                                            ? detail::VersionRange{negotiated_, negotiated_}
                                            : detail::VersionRange{min_version, version};
  FeedResult result;
  try {
    result = detail::feed_frame<detail::Schema, FeedResult>(input, limits_, accepted, buffer_);
  } catch (const std::bad_alloc&) {
    result = {0, std::nullopt, std::nullopt, errc::internal_error, 0};
  }
  if (result.error) {
    failed_ = result.error;
    buffer_ = {};
  }
  return result;
}

}  // namespace tessenger::protocol

namespace tessenger {

Protocol::Protocol(ProtocolEvents events, const Limits& limits)
    : events_(std::move(events)), decoder_(limits) {}

void Protocol::adopt(const protocol::HelloOk& ok) {
  if (decoder_.set_version(ok.version)) {
    version_ = ok.version;
  } else if (!error_) {
    error_ = make_error_code(errc::unsupported_version);
    if (events_.on_error) events_.on_error(error_);
  }
}

bool Protocol::feed(std::span<const std::byte> bytes) {
  while (!bytes.empty() && !error_) {
    auto result = decoder_.feed(bytes);
    bytes = bytes.subspan(result.consumed);
    if (result.error) {
      error_ = result.error;
      if (events_.on_error) events_.on_error(error_);
    } else if (result.message) {
      if (const auto* ok = std::get_if<protocol::HelloOk>(&*result.message)) adopt(*ok);
      if (!error_ && events_.on_message) events_.on_message(*result.message);
    } else if (result.unknown) {
      if (events_.on_unknown) events_.on_unknown(*result.unknown);
    }
  }
  return !error_;
}

void Protocol::encode(const protocol::Message& message, std::vector<std::byte>& out) {
  if (std::holds_alternative<protocol::Hello>(message)) {
    protocol::encode(message, out, protocol::min_version);
  } else if (const auto* ok = std::get_if<protocol::HelloOk>(&message)) {
    protocol::encode(message, out, ok->version);
    adopt(*ok);
  } else {
    protocol::encode(message, out, version_);
  }
}

std::vector<std::byte> Protocol::encode(const protocol::Message& message) {
  std::vector<std::byte> out;
  encode(message, out);
  return out;
}

}  // namespace tessenger
