// Private. The Range field's parser (RFC 9110 14.1.1, 14.1.2).
#include "http/byte_range.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <system_error>
#include <vector>

#include "http/lexical.hpp"

namespace nbio::http::detail {
namespace {

std::optional<std::uint64_t> parse_position(std::string_view s) noexcept {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

// Parses `value` (a Range field) against a representation of `size` bytes (> 0). `partial`
// fills `out` with the one range to send; several disjoint ranges come back as `whole`, as
// does anything malformed (RFC 9110 14.2 lets a server ignore Range).
range_answer parse_range(std::string_view value, std::uint64_t size, byte_range& out) {
  const std::size_t eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(value.substr(0, eq)), "bytes"))
    return range_answer::whole;
  std::vector<byte_range> ranges;
  std::string_view set = value.substr(eq + 1);
  bool any = false;
  while (!set.empty()) {
    const std::size_t comma = set.find(',');
    const std::string_view spec = trim_ows(set.substr(0, comma));
    set = comma == std::string_view::npos ? std::string_view() : set.substr(comma + 1);
    if (spec.empty()) continue;  // empty list elements (RFC 9110 5.6.1)
    any = true;
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return range_answer::whole;
    if (dash == 0) {  // suffix-range: the last n bytes
      const auto n = parse_position(spec.substr(1));
      if (!n) return range_answer::whole;
      if (*n == 0) continue;  // unsatisfiable
      ranges.push_back({size - std::min(*n, size), size - 1});
      continue;
    }
    const auto first = parse_position(spec.substr(0, dash));
    if (!first) return range_answer::whole;
    std::uint64_t last = size - 1;
    if (dash + 1 < spec.size()) {
      const auto l = parse_position(spec.substr(dash + 1));
      if (!l || *l < *first) return range_answer::whole;
      last = std::min(*l, size - 1);
    }
    if (*first >= size) continue;  // unsatisfiable
    ranges.push_back({*first, last});
  }
  if (!any) return range_answer::whole;
  if (ranges.empty()) return range_answer::unsatisfiable;
  std::sort(ranges.begin(), ranges.end(),
            [](const byte_range& a, const byte_range& b) { return a.first < b.first; });
  byte_range merged = ranges.front();
  for (const byte_range& r : ranges) {
    if (r.first > merged.last + 1) return range_answer::whole;  // disjoint: no multipart
    merged.last = std::max(merged.last, r.last);
  }
  out = merged;
  return range_answer::partial;
}

}  // namespace nbio::http::detail
