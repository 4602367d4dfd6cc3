// Public. The HTTP layer's error model: one enum, one std::error_category, and the status each
// error answers with.
//
// The parser reports every malformed or over-limit message as an nbio::http::errc; the server
// answers a request error with status_of(e) and closes the connection (the framing can no
// longer be trusted). Responses a client receives use the same codes.
#pragma once

#include <string>
#include <system_error>

namespace nbio::http {

enum class errc {
  // 400 Bad Request: the message's syntax.
  bad_request_line = 1,     // not METHOD SP target SP HTTP/x.y CRLF
  bad_method,               // the method is not a token
  bad_target,               // a byte outside the target's syntax, or the wrong form for the method
  bad_version,              // not HTTP/<digit>.<digit>
  bad_header_name,          // an empty name or a byte outside token
  whitespace_before_colon,  // "Name : value" (RFC 9112 5.1: MUST reject)
  bad_header_value,         // NUL, another control byte or DEL in a value
  bare_cr,                  // CR not followed by LF
  bare_lf,                  // LF without CR before it (strict line endings)
  obs_fold,                 // a header line that starts with SP or HTAB (RFC 9112 5.2)
  missing_host,             // HTTP/1.1 request without Host (RFC 9112 3.2)
  duplicate_host,           // more than one Host
  bad_host,                 // a Host that is not uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2)
  bad_content_length,       // not 1*DIGIT, or it overflows 64 bits
  conflicting_content_length,   // several Content-Length fields that differ
  content_length_with_chunked,  // both Content-Length and Transfer-Encoding (smuggling)
  chunked_not_last,             // Transfer-Encoding whose final coding is not chunked
  bad_transfer_encoding,        // an empty coding, chunked twice, or Transfer-Encoding in HTTP/1.0
  bad_chunk_size,               // not 1*HEXDIG, or more than 16 digits
  bad_chunk_extension,          // a control byte, or an extension longer than the limit
  bad_chunk_end,                // chunk data not followed by CRLF
  bad_trailer,                  // a malformed trailer section
  bad_status_line,              // a response: not HTTP/x.y SP 3DIGIT [SP reason] CRLF
  // Other statuses.
  unsupported_transfer_coding,  // 501: a coding before chunked that this server cannot decode
  unsupported_version,          // 505: HTTP/x.y other than 1.0 and 1.1
  expectation_failed,           // 417: an Expect other than 100-continue
  uri_too_long,                 // 414: the request line passed max_request_line
  headers_too_large,            // 431: the head passed max_header_bytes
  too_many_headers,             // 431: more than max_headers fields
  body_too_large,               // 413: the body passed max_body
  // A server's buffer budget (server_options::max_buffered_bytes) ran out and this request held
  // among the most of it: it is answered and its connection closed.
  head_over_budget,  // 431: an incomplete head
  body_over_budget,  // 413: a body being collected
};

const std::error_category& http_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), http_category()};
}

// The status a server answers a request error with (400, 413, 414, 417, 431, 501 or 505); 400
// for a code that is not an http error.
int status_of(std::error_code ec) noexcept;

// The standard reason phrase of a status ("Not Found"); "" for one it does not know.
const char* reason_phrase(int status) noexcept;

}  // namespace nbio::http

template <>
struct std::is_error_code_enum<nbio::http::errc> : std::true_type {};
