#pragma once

// Local checks on outgoing requests. The server's decoder treats an
// over-long field or invalid UTF-8 as a fatal protocol error, so a request
// that would break a limit fails alone, here, with the error the server would
// give for a bad value, instead of taking the connection down.

#include <tessenger/client.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger::client_detail {

/// Empty code when `request` is safe to send.
Failure check(const protocol::Login& request, const Limits& limits);
Failure check(const protocol::DirectSend& request, const Limits& limits);
Failure check(const protocol::ActiveUsersQuery& request, const Limits& limits);
Failure check(const protocol::GroupCreate& request, const Limits& limits);
Failure check(const protocol::GroupJoin& request, const Limits& limits);
Failure check(const protocol::GroupLeave& request, const Limits& limits);
Failure check(const protocol::GroupDelete& request, const Limits& limits);
Failure check(const protocol::GroupSend& request, const Limits& limits);
Failure check(const protocol::FileOffer& request, const Limits& limits);
Failure check(const protocol::FileOfferCheck& request, const Limits& limits);
Failure check(const protocol::Ping& request, const Limits& limits);
Failure check(const protocol::Logout& request, const Limits& limits);
Failure check(const protocol::HistoryQuery& request, const Limits& limits);

}  // namespace tessenger::client_detail
