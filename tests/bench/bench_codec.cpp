// Codec throughput for typical chat traffic. Run from a Release build:
//   build/release/tests/bench/bench_codec

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include <tessenger/protocol.hpp>

using namespace tessenger::protocol;

namespace {

// A typical one-line chat message: 62 bytes of mostly ASCII text.
const std::string text = "see you at the station at half past six, bring the tickets \xe2\x9c\x93";

const Message direct_event = DirectEvent{"alice", 1'699'650'430'123'456, text};
const Message direct_send = DirectSend{42, "bob", text};

void encode_into(benchmark::State& state, const Message& message) {
  std::vector<std::byte> out;
  for (auto _ : state) {
    out.clear();
    encode(message, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}

void encode_fresh(benchmark::State& state, const Message& message) {
  std::size_t size = 0;
  for (auto _ : state) {
    auto out = encode(message);
    size = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}

void decode_one(benchmark::State& state, const Message& message) {
  const auto frame = encode(message);
  Decoder decoder;
  for (auto _ : state) {
    auto r = decoder.feed(frame);
    if (!r.message) state.SkipWithError("frame did not decode");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
}

// A read buffer of many coalesced frames, fed the way an adapter does.
// chunk = 0 hands the decoder the whole buffer; otherwise reads of that size.
void decode_stream(benchmark::State& state) {
  const auto frames = static_cast<std::size_t>(state.range(0));
  const auto chunk = static_cast<std::size_t>(state.range(1));
  std::vector<std::byte> stream;
  for (std::size_t i = 0; i < frames; ++i)
    encode(i % 2 == 0 ? direct_event : direct_send, stream);

  for (auto _ : state) {
    Decoder decoder;
    std::size_t decoded = 0;
    std::span<const std::byte> rest(stream);
    while (!rest.empty()) {
      auto piece = rest.first(chunk == 0 ? rest.size() : std::min(chunk, rest.size()));
      rest = rest.subspan(piece.size());
      while (!piece.empty()) {
        auto r = decoder.feed(piece);
        if (r.error) state.SkipWithError("stream did not decode");
        decoded += r.message ? 1 : 0;
        piece = piece.subspan(r.consumed);
      }
    }
    if (decoded != frames) state.SkipWithError("lost frames");
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(stream.size()));
}

}  // namespace

BENCHMARK_CAPTURE(encode_into, direct_event, direct_event);
BENCHMARK_CAPTURE(encode_into, direct_send, direct_send);
BENCHMARK_CAPTURE(encode_fresh, direct_event, direct_event);
BENCHMARK_CAPTURE(decode_one, direct_event, direct_event);
BENCHMARK_CAPTURE(decode_one, direct_send, direct_send);
BENCHMARK(decode_stream)->ArgNames({"frames", "chunk"})->Args({1000, 0})->Args({1000, 1448});

BENCHMARK_MAIN();
