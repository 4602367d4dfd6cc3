// Private. Range requests (RFC 9110 14.2): the one byte range of a Range field a response
// serves, for the file server.
#pragma once

#include <cstdint>
#include <string_view>

namespace nbio::http::detail {

struct byte_range {
  std::uint64_t first;
  std::uint64_t last;  // inclusive
};

enum class range_answer { whole, partial, unsatisfiable };

// Parses `value` (a Range field) against a representation of `size` bytes (> 0). `partial`
// fills `out` with the one range to send; several disjoint ranges come back as `whole`, as
// does anything malformed (RFC 9110 14.2 lets a server ignore Range).
range_answer parse_range(std::string_view value, std::uint64_t size, byte_range& out);

}  // namespace nbio::http::detail
