#pragma once

// A scenario's results: printed as an aligned table for people or as one
// JSON object whose keys other tools rely on (docs/performance.md lists them).

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace bench {

/// Latency percentiles in microseconds.
struct Latency {
  double p50 = 0;
  double p99 = 0;
  double p999 = 0;
};

/// An absent value (e.g. the CPU of a server attached without its pid)
/// prints as `null` / `n/a`.
struct Unknown {};

using Value = std::variant<Unknown, double, std::int64_t, bool, std::string, Latency>;

struct Field {
  std::string key;    ///< JSON key
  std::string label;  ///< table label
  Value value;
  std::string unit;
};

struct Report {
  std::string scenario;
  std::vector<Field> fields;
  std::vector<std::string> notes;  ///< table only
  /// False when the run did not do what it measured (e.g. a file arrived
  /// damaged): the report is still printed, and the bench exits non-zero.
  bool succeeded = true;

  void add(std::string key, std::string label, Value value, std::string unit = {});
  const Value* find(std::string_view key) const;
};

std::string to_json(const Report& report);
std::string to_table(const Report& report);

}  // namespace bench
