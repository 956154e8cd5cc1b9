// The parts of tessenger-bench that measure: the latency histogram, the send
// time carried in each message, and the JSON report other tools read.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <variant>

#include "histogram.hpp"
#include "report.hpp"
#include "workload.hpp"

namespace p = tessenger::protocol;

namespace {

p::Message decode_one(const std::vector<std::byte>& bytes) {
  p::Decoder decoder;
  const auto result = decoder.feed(bytes);
  REQUIRE_FALSE(result.error);
  REQUIRE(result.consumed == bytes.size());
  REQUIRE(result.message);
  return *result.message;
}

}  // namespace

TEST_CASE("histogram quantiles are within one bucket of the exact value") {
  bench::Histogram h;
  CHECK(h.quantile(0.5) == 0);
  // 1..100,000 ns: the exact q-quantile is q * 100,000.
  for (std::uint64_t v = 1; v <= 100'000; ++v)
    h.record(v);
  CHECK(h.count() == 100'000);
  CHECK(h.max() == 100'000);
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 100'000;
    CHECK(std::fabs(h.quantile(q) - exact) <= exact / 64);
  }
  CHECK(h.quantile(1.0) == doctest::Approx(100'000).epsilon(1.0 / 64));
}

TEST_CASE("small values are exact; a single sample is every quantile") {
  bench::Histogram h;
  h.record(42);
  CHECK(h.quantile(0.0) == 42);
  CHECK(h.quantile(0.5) == 42);
  CHECK(h.quantile(1.0) == 42);

  bench::Histogram big;
  big.record(3'000'000'000ull);  // 3 s
  CHECK(big.quantile(0.5) == doctest::Approx(3e9).epsilon(1.0 / 64));
  CHECK(big.quantile(0.5) <= 3e9);  // never above the largest sample

  h.merge(big);
  CHECK(h.count() == 2);
  CHECK(h.quantile(0.5) == 42);
  CHECK(h.max() == 3'000'000'000ull);
}

TEST_CASE("a direct message frame carries its stamp and request id through the codec") {
  const bench::FrameTemplate frame(p::DirectSend{0, "b00007", bench::stamp_text(40)});
  std::vector<std::byte> out;
  frame.append(out, 1234, {0x0123456789abcdefull, 77, 5});
  frame.append(out, 1235, {99, 78, 5});

  p::Decoder decoder;
  std::span<const std::byte> rest(out);
  std::vector<p::DirectSend> sent;
  while (!rest.empty()) {
    auto r = decoder.feed(rest);
    REQUIRE_FALSE(r.error);
    rest = rest.subspan(r.consumed);
    if (r.message) sent.push_back(std::get<p::DirectSend>(*r.message));
  }
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].request_id == 1234);
  CHECK(sent[0].to == "b00007");
  CHECK(sent[0].text.size() == 40);
  const auto stamp = bench::read_stamp(sent[0].text);
  REQUIRE(stamp);
  CHECK(stamp->sent_ns == 0x0123456789abcdefull);
  CHECK(stamp->seq == 77);
  CHECK(stamp->sender == 5);
  CHECK(sent[1].request_id == 1235);
  CHECK(bench::read_stamp(sent[1].text)->sent_ns == 99);
}

TEST_CASE("a group message frame is patched the same way") {
  const bench::FrameTemplate frame(p::GroupSend{0, "benchgroup", bench::stamp_text(0)});
  std::vector<std::byte> out;
  frame.append(out, 9, {1'000'000'000, 3, 0});
  const auto message = std::get<p::GroupSend>(decode_one(out));
  CHECK(message.request_id == 9);
  CHECK(message.group == "benchgroup");
  CHECK(message.text.size() == bench::min_payload);
  CHECK(bench::read_stamp(message.text)->sent_ns == 1'000'000'000);
}

TEST_CASE("texts that do not carry a stamp are recognised") {
  CHECK_FALSE(bench::read_stamp("too short"));
  CHECK_FALSE(bench::read_stamp(std::string(bench::min_payload, 'x')));
  CHECK(bench::read_stamp(bench::stamp_text(bench::min_payload)));
}

TEST_CASE("the JSON report has the scenario first, then every key in order") {
  bench::Report report{"pairs", {}, {"a note only the table shows"}};
  report.add("server_cpu_percent", "server CPU", bench::Unknown{}, "%");
  report.add("lost", "lost", std::int64_t{0});
  report.add("delivered_per_second", "delivered", 650000.5, "msgs/s");
  report.add("latency_us", "latency", bench::Latency{70.5, 140, 1e6}, "us");
  report.add("intact", "intact", true);
  report.add("note", "note", std::string("say \"hi\"\n"));
  CHECK(
      bench::to_json(report) ==
      R"({"scenario": "pairs", "server_cpu_percent": null, "lost": 0, )"
      R"("delivered_per_second": 650000, "latency_us": {"p50": 70.5, "p99": 140, "p999": 1e+06}, )"
      R"("intact": true, "note": "say \"hi\"\u000a"})"
      "\n");
  const auto table = bench::to_table(report);
  CHECK(table.find("server CPU  n/a\n") != std::string::npos);
  CHECK(table.find("650,000 msgs/s") != std::string::npos);
  CHECK(table.find("note: a note only the table shows") != std::string::npos);
  REQUIRE(report.find("lost"));
  CHECK(std::get<std::int64_t>(*report.find("lost")) == 0);
  CHECK(report.find("absent") == nullptr);
}
