// Private. Field lines (RFC 9112 5): the validating splitter the head parsers and the chunked
// body's trailer section share (parser.cpp, body_decoder.cpp), and what it gathers of the
// framing fields on the way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "nbio/http/parser.hpp"

namespace nbio::http::detail {

// What the framing fields said, gathered while splitting the fields.
struct framing {
  unsigned content_lengths = 0;
  std::uint64_t content_length = 0;
  bool transfer_encoding = false;
  unsigned chunked = 0;        // how often chunked appeared
  bool chunked_last = false;   // the final coding is chunked
  bool other_codings = false;  // a coding other than chunked (before or after it)
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool has_upgrade = false;
  unsigned hosts = 0;
  std::string_view host;
  bool expect_continue = false;  // an Expect: 100-continue field
  bool bad_expect = false;       // an Expect field with anything else
};

// Validates and splits the field lines of a head (after the start line) into `storage`.
// More than max_headers fields is an error; the first storage.size() of them are stored.
std::error_code parse_fields(std::string_view head, std::size_t pos, std::span<header> storage,
                             std::size_t max_headers, std::size_t& count, framing& f);

}  // namespace nbio::http::detail
