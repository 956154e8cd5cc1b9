#include <doctest/doctest.h>

#include "transfer/congestion.hpp"
#include "transfer/replay_window.hpp"

using namespace tessenger::transfer;
using namespace std::chrono_literals;

TEST_CASE("RTT estimator follows RFC 9002 section 5") {
  RttEstimator r;
  CHECK_FALSE(r.has_sample());
  CHECK(r.smoothed() == initial_rtt);
  r.on_sample(40ms, 0ms);
  CHECK(r.smoothed() == 40ms);
  CHECK(r.rttvar() == 20ms);
  CHECK(r.min() == 40ms);
  // 80 ms with 4 ms of ACK delay: adjusted 76 ms.
  r.on_sample(80ms, 4ms);
  CHECK(r.latest() == 80ms);
  CHECK(r.smoothed() == std::chrono::nanoseconds(7 * 40ms + 76ms) / 8);
  CHECK(r.rttvar() == std::chrono::nanoseconds(3 * 20ms + 36ms) / 4);
  CHECK(r.pto() == r.smoothed() + 4 * r.rttvar() + max_ack_delay);
  // ACK delay is not subtracted below min_rtt.
  r.on_sample(41ms, 5ms);
  CHECK(r.min() == 40ms);
  CHECK(r.loss_delay() >= r.smoothed() * 9 / 8 - 1ns);
}

TEST_CASE("loss delay and PTO never go below the timer granularity") {
  RttEstimator r;
  r.on_sample(1us, 0ms);
  CHECK(r.loss_delay() == timer_granularity);
  CHECK(r.pto() >= timer_granularity + max_ack_delay);
}

TEST_CASE("NewReno: slow start, one reduction per round trip, additive increase") {
  constexpr std::uint64_t mds = 1244;
  NewReno cc(mds, 1'000'000);
  const TimePoint t0{};
  const auto initial = cc.window();
  CHECK(initial == 10 * mds);
  CHECK(cc.in_slow_start());
  cc.on_ack(mds, t0 + 1ms, true);
  CHECK(cc.window() == initial + mds);
  cc.on_ack(mds, t0 + 1ms, false);  // not window-limited: no growth
  CHECK(cc.window() == initial + mds);

  cc.on_congestion_event(t0 + 2ms, t0 + 10ms);
  const auto halved = (initial + mds) / 2;
  CHECK(cc.window() == halved);
  CHECK_FALSE(cc.in_slow_start());
  // A second loss from before the recovery started is the same event.
  cc.on_congestion_event(t0 + 5ms, t0 + 11ms);
  CHECK(cc.window() == halved);
  // ACKs of packets sent before recovery do not grow the window.
  cc.on_ack(mds, t0 + 9ms, true);
  CHECK(cc.window() == halved);
  // After recovery: one datagram per window of ACKed bytes.
  std::uint64_t acked = 0;
  while (acked < halved) {
    cc.on_ack(mds, t0 + 20ms, true);
    acked += mds;
  }
  CHECK(cc.window() == halved + mds);
  // A loss after recovery reduces again, never below two datagrams.
  for (int i = 0; i < 20; ++i)
    cc.on_congestion_event(t0 + 30ms + i * 1ms, t0 + 31ms + i * 1ms);
  CHECK(cc.window() == 2 * mds);
}

TEST_CASE("NewReno never exceeds its cap") {
  NewReno cc(1000, 50'000);
  for (int i = 0; i < 1000; ++i)
    cc.on_ack(1000, TimePoint{}, true);
  CHECK(cc.window() == 50'000);
}

TEST_CASE("pacer: a burst, then one datagram per interval at 1.25 cwnd/srtt") {
  constexpr std::uint64_t mds = 1000;
  Pacer p(mds);
  const std::uint64_t cwnd = 100'000;
  const auto srtt = 1s;
  TimePoint now{};
  int burst = 0;
  while (p.next_send(mds, cwnd, srtt, now) == now && burst < 1000) {
    p.on_sent(mds, cwnd, srtt, now);
    ++burst;
  }
  CHECK(burst == 25);  // max(10 datagrams, cwnd / 4)
  const auto next = p.next_send(mds, cwnd, srtt, now);
  // 1000 bytes at 1.25 * 100000 B/s = 8 ms.
  CHECK(next - now >= 7900us);
  CHECK(next - now <= 8100us);
  CHECK(p.next_send(mds, cwnd, srtt, next) == next);
}

TEST_CASE("pacer: waits shorter than the timer granularity are not waited for") {
  constexpr std::uint64_t mds = 1000;
  Pacer p(mds);
  const std::uint64_t cwnd = 100'000;
  const auto srtt = 100ms;  // 0.8 ms per datagram once the burst is spent
  TimePoint now{};
  for (int i = 0; i < 25; ++i)
    p.on_sent(mds, cwnd, srtt, now);
  CHECK(p.next_send(mds, cwnd, srtt, now) == now);
  // The debt is bounded: about one granularity's worth of the rate.
  int extra = 0;
  while (p.next_send(mds, cwnd, srtt, now) == now && extra < 1000) {
    p.on_sent(mds, cwnd, srtt, now);
    ++extra;
  }
  CHECK(extra <= 2);
  CHECK(p.next_send(mds, cwnd, srtt, now) > now);
}

TEST_CASE("replay window: new, repeated, and too old") {
  ReplayWindow w;
  CHECK(w.fresh(0));
  w.mark(0);
  CHECK_FALSE(w.fresh(0));
  w.mark(5);
  CHECK(w.fresh(3));
  w.mark(3);
  CHECK_FALSE(w.fresh(3));
  CHECK(w.fresh(4));
  w.mark(ReplayWindow::bits + 10);
  CHECK_FALSE(w.fresh(5));  // fell out of the window
  CHECK(w.fresh(ReplayWindow::bits + 9));
  CHECK_FALSE(w.fresh(ReplayWindow::bits + 10));
  w.mark(10 * ReplayWindow::bits);
  CHECK(w.fresh(10 * ReplayWindow::bits - 1));
  CHECK_FALSE(w.fresh(ReplayWindow::bits + 9));
}
