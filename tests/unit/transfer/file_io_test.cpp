#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "transfer/file_io.hpp"

using namespace tessenger::transfer;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() /
           ("tessenger-fileio-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<std::byte> pattern(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = std::byte(i * 7 + (i >> 8));
  return v;
}

void write_file(const fs::path& p, std::span<const std::byte> data) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

}  // namespace

TEST_CASE("sha256 of known inputs and of a file") {
  CHECK(to_hex(sha256({})) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string abc = "abc";
  CHECK(to_hex(sha256(std::as_bytes(std::span(abc.data(), abc.size())))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir dir;
  const auto data = pattern(3'000'000);
  write_file(dir.path / "f", data);
  Digest d{};
  REQUIRE_FALSE(sha256_file(dir.path / "f", d));
  CHECK(d == sha256(data));
  CHECK(sha256_file(dir.path / "missing", d) == std::errc::no_such_file_or_directory);
}

TEST_CASE("FileSource reads any range, refuses directories and reads past the end") {
  TempDir dir;
  const auto data = pattern(2'500'000);
  write_file(dir.path / "src", data);
  std::error_code ec;
  auto src = FileSource::open(dir.path / "src", ec);
  REQUIRE(src);
  CHECK(src->size() == data.size());
  std::vector<std::byte> out(1200);
  for (const std::uint64_t off : {0ull, 1'048'000ull, 1'048'576ull, 5ull, 2'498'800ull}) {
    REQUIRE_FALSE(src->read(off, out));
    CHECK(std::equal(out.begin(), out.end(), data.begin() + static_cast<std::ptrdiff_t>(off)));
  }
  CHECK(src->read(2'499'000, out));
  CHECK_FALSE(FileSource::open(dir.path, ec));
  CHECK(ec);
}

TEST_CASE("FileSink writes out of order, commits without overwriting") {
  TempDir dir;
  const Digest sha = sha256({});
  const auto paths = receive_paths(dir.path, "alice", "../a.txt", 10, sha);
  CHECK(paths.final_name == "alice_a.txt");
  CHECK(paths.partial.parent_path() == dir.path);
  CHECK(paths.partial.filename().string().front() == '.');
  write_file(dir.path / "alice_a.txt", pattern(3));
  write_file(dir.path / "alice_a (1).txt", pattern(4));

  const auto data = pattern(10);
  std::error_code ec;
  auto sink = FileSink::open(paths, false, ec);
  REQUIRE(sink);
  REQUIRE_FALSE(sink->write(5, std::span(data).subspan(5)));
  REQUIRE_FALSE(sink->write(0, std::span(data).first(5)));
  std::vector<std::byte> back(10);
  REQUIRE_FALSE(sink->read(0, back));
  CHECK(back == data);
  REQUIRE_FALSE(sink->commit());
  CHECK(sink->final_path() == dir.path / "alice_a (2).txt");
  CHECK(read_file(sink->final_path()) == data);
  CHECK(read_file(dir.path / "alice_a.txt") == pattern(3));
  CHECK(read_file(dir.path / "alice_a (1).txt") == pattern(4));
  CHECK_FALSE(fs::exists(paths.partial));
}

TEST_CASE("resume record round trip and rejection") {
  TempDir dir;
  Digest sha{};
  sha[0] = 1;
  const auto rec = dir.path / ".r";
  const std::vector<ByteRange> ranges{{0, 100}, {200, 300}, {5ull << 30, (5ull << 30) + 10}};
  const std::uint64_t size = 6ull << 30;
  REQUIRE_FALSE(save_ranges(rec, size, sha, ranges));
  CHECK(load_ranges(rec, size, sha) == ranges);
  CHECK(load_ranges(rec, size + 1, sha).empty());
  Digest other = sha;
  other[1] = 9;
  CHECK(load_ranges(rec, size, other).empty());
  CHECK(load_ranges(dir.path / "missing", size, sha).empty());
  std::ofstream(rec) << "tessenger-resume 1\n" << size << ' ' << to_hex(sha) << "\n5 3\n";
  CHECK(load_ranges(rec, size, sha).empty());
  std::ofstream(rec) << "tessenger-resume 1\n" << size << ' ' << to_hex(sha) << "\n0 10\nxx\n";
  CHECK(load_ranges(rec, size, sha).empty());
  std::ofstream(rec) << "tessenger-resume 1\n"
                     << size << ' ' << to_hex(sha) << "\n0 " << size + 1 << "\n";
  CHECK(load_ranges(rec, size, sha).empty());
}

TEST_CASE("the hidden names depend on sender, name, size and digest") {
  const Digest sha{};
  const auto a = receive_paths("/d", "alice", "f", 1, sha);
  CHECK(a.partial != receive_paths("/d", "bob", "f", 1, sha).partial);
  CHECK(a.partial != receive_paths("/d", "alice", "g", 1, sha).partial);
  CHECK(a.partial != receive_paths("/d", "alice", "f", 2, sha).partial);
  CHECK(a.partial == receive_paths("/d", "alice", "f", 1, sha).partial);
}
