// Streaming senders and a receiver that keeps what it got, for the tests that
// kill servers mid-stream and then check every acknowledged message arrived
// exactly once, in id order, and is in history.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "wire_client.hpp"

namespace tessenger::testing {

// What a receiver got, across all its connections.
struct Inbox {
  std::mutex mutex;
  std::vector<std::pair<protocol::MessageId, std::string>> received;
  protocol::MessageId last = 0;
  std::size_t missed = 0;

  void take(protocol::MessageId id, const std::string& text, bool was_missed) {
    const std::lock_guard lock(mutex);
    received.emplace_back(id, text);
    last = std::max(last, id);
    missed += was_missed ? 1 : 0;
  }
  protocol::MessageId newest() {
    const std::lock_guard lock(mutex);
    return last;
  }
  // Received out of id order, and received more than once.
  std::pair<std::size_t, std::size_t> disorder_and_duplicates() {
    const std::lock_guard lock(mutex);
    std::set<std::string> texts;
    std::size_t out_of_order = 0;
    for (std::size_t i = 0; i < received.size(); ++i) {
      if (i > 0 && received[i].first <= received[i - 1].first) ++out_of_order;
      texts.insert(received[i].second);
    }
    return {out_of_order, received.size() - texts.size()};
  }
  std::set<std::string> texts() {
    const std::lock_guard lock(mutex);
    std::set<std::string> all;
    for (const auto& entry : received)
      all.insert(entry.second);
    return all;
  }
};

// The texts whose senders saw them accepted.
struct Acked {
  std::mutex mutex;
  std::set<std::string> texts;
  std::atomic<long> count{0};
  std::atomic<bool> stop{false};  // senders end after their current batch

  void add(const std::string& text) {
    {
      const std::lock_guard lock(mutex);
      texts.insert(text);
    }
    ++count;
  }
  // Waits until at least `target` texts were acknowledged; false at the deadline.
  bool reached(long target, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (count < target) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }
  // How many acknowledged texts `found` lacks; `only` picks the ones to count.
  std::size_t missing_from(const std::set<std::string>& found, const std::string& only = "") {
    const std::lock_guard lock(mutex);
    return static_cast<std::size_t>(
        std::count_if(texts.begin(), texts.end(), [&](const auto& text) {
          return text.find(only) != std::string::npos && !found.contains(text);
        }));
  }
};

// Reads until the connection ends or stays silent for `idle` (false) or, if
// asked, a MissedEnd comes (true).
inline bool receive(WireClient& client, Inbox& inbox, bool stop_at_missed_end,
                    std::chrono::milliseconds idle = std::chrono::seconds(10)) {
  for (;;) {
    auto message = client.next(idle);
    if (!message) return false;
    if (const auto* e = std::get_if<protocol::DirectEvent>(&*message)) {
      inbox.take(e->id, e->text, e->missed);
    } else if (const auto* g = std::get_if<protocol::GroupEvent>(&*message)) {
      inbox.take(g->id, g->text, g->missed);
    } else if (std::holds_alternative<protocol::MissedEnd>(*message) && stop_at_missed_end) {
      return true;
    }
  }
}

// Logs `user` in (password "pw-USER") and pipelines batches of 20 messages,
// each its own text, to `to` (a user, or with `group` a group) until the
// connection dies or `acked.stop` is set. Replies come in request order:
// `acked` gets each text whose reply accepted it.
inline void stream(std::uint16_t port, const std::string& user, const std::string& to, bool group,
                   const std::string& round, Acked& acked) {
  try {
    WireClient client(port);
    if (!std::holds_alternative<protocol::LoginOk>(
            client.login(user, "pw-" + user, 9, protocol::version))) {
      return;
    }
    for (long k = 0; !acked.stop; k += 20) {
      std::vector<std::byte> batch;
      std::vector<std::string> texts;
      for (long i = 0; i < 20; ++i) {
        texts.push_back(round + "-" + user + "-" + std::to_string(k + i));
        if (group) {
          protocol::encode(protocol::GroupSend{1, to, texts.back()}, batch);
        } else {
          protocol::encode(protocol::DirectSend{1, to, texts.back()}, batch);
        }
      }
      client.send_bytes(batch);
      for (std::size_t replies = 0; replies < texts.size();) {
        const auto message = client.next(std::chrono::seconds(10));
        if (!message) return;
        if (std::holds_alternative<protocol::DirectSent>(*message) ||
            std::holds_alternative<protocol::GroupSent>(*message)) {
          acked.add(texts[replies]);
          ++replies;
        } else if (std::holds_alternative<protocol::Error>(*message)) {
          ++replies;
        }
      }
    }
  } catch (const std::runtime_error&) {
    // The server died under the client: what these tests do on purpose.
  }
}

// Every text of a conversation's history, paged back from the newest.
inline std::set<std::string> history_of(WireClient& client, protocol::ConversationKind kind,
                                        const std::string& name) {
  std::set<std::string> history;
  protocol::MessageId anchor = 0;
  for (bool more = true; more;) {
    client.send(protocol::HistoryQuery{
        9, kind, name,
        anchor == 0 ? protocol::HistoryDirection::latest : protocol::HistoryDirection::before,
        anchor, protocol::max_history_page});
    const auto page = client.expect<protocol::HistoryPage>();
    for (const auto& entry : page.entries)
      history.insert(entry.text);
    more = page.more && !page.entries.empty();
    if (more) anchor = page.entries.front().id;
  }
  return history;
}

}  // namespace tessenger::testing
