// Shared by the HTTP fuzz targets: feeds a message to the parsers the way a connection does
// (a buffer that grows by reads of a given size, consumed bytes erased) and records what came
// out, so a target can check that every way of cutting the input gives the same result.
#pragma once

#include <array>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/http/parser.hpp"

namespace nbio_fuzz {

using namespace nbio::http;

// Everything observable about one parse, copied out of the buffer.
struct outcome {
  parse_status status = parse_status::incomplete;
  std::error_code error;
  std::string start_line;  // method + target, or status + reason
  std::vector<std::pair<std::string, std::string>> headers;
  body_kind body = body_kind::none;
  std::uint64_t length = 0;
  bool keep_alive = false;
  std::string body_bytes;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool body_complete = false;
  std::error_code body_error;

  bool operator==(const outcome&) const = default;
};

inline parser_limits small_limits() {
  parser_limits l;
  l.max_request_line = 256;
  l.max_header_bytes = 1024;
  l.max_headers = 16;
  l.max_body = 4096;
  l.max_chunk_line = 64;
  l.max_trailer_bytes = 256;
  return l;
}

// Runs the body decoder over `buffer` (already holding the bytes after the head) and the rest
// of `input` from `next`, `step` bytes a read.
inline void decode_body(outcome& o, body_decoder& d, std::string& buffer, std::string_view input,
                        std::size_t next, std::size_t step) {
  std::array<header, 8> trailer_storage;
  for (int guard = 0; guard < 1 << 20; ++guard) {
    const body_result b = d.next(buffer, trailer_storage);
    if (b.consumed > buffer.size()) std::abort();
    o.body_bytes.append(b.data);
    if (b.status == parse_status::error) {
      o.body_error = b.error;
      return;
    }
    if (b.status == parse_status::complete) {
      o.body_complete = true;
      for (const auto& t : b.trailers)
        o.trailers.emplace_back(t.name, t.value);
      return;
    }
    buffer.erase(0, b.consumed);
    if (b.consumed > 0 || !b.data.empty()) continue;  // progress: try again
    if (next >= input.size()) {
      // The stream ended: only a body delimited by the close may end here.
      o.body_complete = d.finish_at_eof();
      return;
    }
    const std::size_t n = std::min(step, input.size() - next);
    buffer.append(input.substr(next, n));
    next += n;
  }
  std::abort();  // no progress for a million calls: a hang
}

// Feeds `input` to a head parser `step` bytes at a time, then the body decoder.
template <class Parser, class Head, class Describe>
outcome feed(std::string_view input, std::size_t step, Describe&& describe,
             std::string_view request_method = {}) {
  outcome o;
  Parser parser(small_limits());
  std::array<header, 16> storage;
  Head head;
  std::string buffer;
  std::size_t next = 0;
  for (;;) {
    parse_result r;
    if constexpr (std::is_same_v<Head, response_head>)
      r = parser.parse(buffer, storage, head, request_method);
    else
      r = parser.parse(buffer, storage, head);
    if (r.status == parse_status::error) {
      o.status = r.status;
      o.error = r.error;
      return o;
    }
    if (r.status == parse_status::complete) {
      if (r.consumed > buffer.size()) std::abort();
      o.status = r.status;
      o.start_line = describe(head);
      for (const auto& h : head.headers)
        o.headers.emplace_back(h.name, h.value);
      o.body = head.body;
      o.length = head.content_length;
      o.keep_alive = head.keep_alive;
      buffer.erase(0, r.consumed);
      body_decoder d(head.body, head.content_length, small_limits());
      decode_body(o, d, buffer, input, next, step);
      return o;
    }
    if (next >= input.size()) return o;  // incomplete at the end
    const std::size_t n = std::min(step, input.size() - next);
    buffer.append(input.substr(next, n));
    next += n;
  }
}

}  // namespace nbio_fuzz
