#include "report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace bench {
namespace {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + '"';
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{:.6g}", v);
}

struct JsonValue {
  std::string operator()(Unknown) const { return "null"; }
  std::string operator()(double v) const { return json_number(v); }
  std::string operator()(std::int64_t v) const { return fmt::format("{}", v); }
  std::string operator()(bool v) const { return v ? "true" : "false"; }
  std::string operator()(const std::string& v) const { return json_string(v); }
  std::string operator()(const Latency& v) const {
    return fmt::format(R"({{"p50": {}, "p99": {}, "p999": {}}})", json_number(v.p50),
                       json_number(v.p99), json_number(v.p999));
  }
};

std::string human_number(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (std::fabs(v) >= 1000) {
    // Thousands separators make throughput figures readable at a glance.
    auto digits = fmt::format("{:.0f}", v);
    std::string out;
    const std::size_t start = digits[0] == '-' ? 1 : 0;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i > start && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return out;
  }
  return fmt::format("{:.3g}", v);
}

struct TableValue {
  std::string operator()(Unknown) const { return "n/a"; }
  std::string operator()(double v) const { return human_number(v); }
  std::string operator()(std::int64_t v) const { return human_number(static_cast<double>(v)); }
  std::string operator()(bool v) const { return v ? "yes" : "no"; }
  std::string operator()(const std::string& v) const { return v; }
  std::string operator()(const Latency& v) const {
    return fmt::format("p50 {} / p99 {} / p99.9 {}", human_number(v.p50), human_number(v.p99),
                       human_number(v.p999));
  }
};

}  // namespace

void Report::add(std::string key, std::string label, Value value, std::string unit) {
  fields.push_back({std::move(key), std::move(label), std::move(value), std::move(unit)});
}

const Value* Report::find(std::string_view key) const {
  const auto it =
      std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
  return it == fields.end() ? nullptr : &it->value;
}

std::string to_json(const Report& report) {
  std::string out = fmt::format("{{\"scenario\": {}", json_string(report.scenario));
  for (const auto& field : report.fields)
    fmt::format_to(std::back_inserter(out), ", {}: {}", json_string(field.key),
                   std::visit(JsonValue{}, field.value));
  return out + "}\n";
}

std::string to_table(const Report& report) {
  std::size_t width = 8;
  for (const auto& field : report.fields)
    width = std::max(width, field.label.size());
  std::string out = fmt::format("{:<{}}  {}\n", "scenario", width, report.scenario);
  for (const auto& field : report.fields) {
    auto text = std::visit(TableValue{}, field.value);
    if (!field.unit.empty() && !std::holds_alternative<Unknown>(field.value)) {
      text += ' ' + field.unit;
    }
    fmt::format_to(std::back_inserter(out), "{:<{}}  {}\n", field.label, width, text);
  }
  for (const auto& note : report.notes)
    fmt::format_to(std::back_inserter(out), "note: {}\n", note);
  return out;
}

}  // namespace bench
