#pragma once

// A real tessenger-server on 127.0.0.1, port 0, with the credentials and
// the data directory of a test's temporary directory, logging nothing and
// without a request rate limit: for tests that stream and kill it.

#include <doctest/doctest.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>

#include "process.hpp"
#include "temp_dir.hpp"

namespace tessenger::testing {

struct ServerProcess {
  explicit ServerProcess(const TempDir& dir)
      : process({TESSENGER_SERVER_PATH, "127.0.0.1", "0", "3", "--credentials",
                 (dir / "credentials.txt").string(), "--data-dir", (dir / "data").string(),
                 "--message-rate", "0", "--quiet"}) {
    while (port == 0) {
      const auto line = process.read_line(std::chrono::seconds(30));
      REQUIRE(line.has_value());
      const auto colon = line->rfind(':');
      if (line->starts_with("TESSENGER server listening on") && colon != std::string::npos) {
        std::from_chars(line->data() + colon + 1, line->data() + line->size(), port);
      }
    }
  }
  Process process;
  std::uint16_t port = 0;
};

}  // namespace tessenger::testing
