#include <string>

#include <tessenger/errc.hpp>

namespace tessenger {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tessenger"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::frame_too_large:
        return "frame larger than the maximum frame size";
      case errc::malformed_frame:
        return "malformed frame: truncated, trailing bytes or bad field encoding";
      case errc::unknown_message:
        return "unknown message type";
      case errc::unsupported_version:
        return "unsupported protocol version";
      case errc::field_too_long:
        return "a field or list is longer than its limit";
      case errc::invalid_utf8:
        return "a text field is not valid UTF-8";
      case errc::empty_frame:
        return "empty frame";
      case errc::unexpected_message:
        return "message not expected in this direction or state";
      case errc::bad_flags:
        return "reserved frame header flags are set";
      case errc::unsupported_request:
        return "request not supported by the peer";
      case errc::invalid_username:
        return "invalid username";
      case errc::invalid_password:
        return "invalid password";
      case errc::account_blocked_now:
        return "invalid password; the account has been blocked";
      case errc::account_blocked:
        return "the account is blocked due to multiple login failures";
      case errc::already_logged_in:
        return "this account is already logged in";
      case errc::not_logged_in:
        return "not logged in";
      case errc::login_timeout:
        return "no login within the time limit";
      case errc::too_many_failed_logins:
        return "too many failed logins from this address";
      case errc::user_not_online:
        return "the user is not online";
      case errc::cannot_message_self:
        return "you cannot message yourself";
      case errc::invalid_text:
        return "invalid message text";
      case errc::invalid_group_name:
        return "invalid group name";
      case errc::group_exists:
        return "the group already exists";
      case errc::group_not_found:
        return "the group does not exist";
      case errc::group_not_found_for_message:
        return "the group chat does not exist";
      case errc::not_invited:
        return "not invited to the group";
      case errc::already_joined:
        return "already joined the group";
      case errc::not_group_member:
        return "not a member of the group";
      case errc::group_not_joined:
        return "the group has not been joined yet";
      case errc::invalid_username_format:
        return "invalid username format";
      case errc::no_such_file:
        return "no such file";
      case errc::limit_reached:
        return "a configured limit has been reached";
      case errc::rate_limited:
        return "sending too fast";
      case errc::invalid_argument:
        return "a request field is out of range";
      case errc::not_group_creator:
        return "only the group's creator may delete it";
      case errc::peer_closed:
        return "the peer closed the connection";
      case errc::server_shutdown:
        return "the server is shutting down";
      case errc::slow_consumer:
        return "the connection is not reading fast enough";
      case errc::transfer_timeout:
        return "file transfer timed out";
      case errc::transfer_checksum:
        return "file transfer checksum mismatch";
      case errc::transfer_aborted:
        return "file transfer aborted by the peer";
      case errc::transfer_too_large:
        return "file is larger than the receiver accepts";
      case errc::timed_out:
        return "no answer within the time limit";
      case errc::host_not_found:
        return "host not found";
      case errc::tls_error:
        return "TLS handshake failed";
      case errc::service_unavailable:
        return "the service is temporarily unavailable";
      case errc::disk_error:
        return "local file could not be read or written";
      case errc::internal_error:
        return "internal error";
    }
    return "unknown tessenger error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

}  // namespace tessenger
