// Public. HTTP/1.x message parsing, sans-I/O: bytes in, {status, consumed} out, no allocation,
// and every string a view into the caller's buffer.
//
//   nbio::http::request_parser p;                 // default limits
//   std::array<nbio::http::header, 100> fields;   // where header views go
//   nbio::http::request_head head;
//   auto r = p.parse(buffered, fields, head);     // buffered: bytes received, not yet consumed
//   if (r.status == parse_status::incomplete) { /* read more, call again with all of it */ }
//   if (r.status == parse_status::error) { /* answer status_of(r.error), close */ }
//   // complete: head is valid while `buffered` stays put; the body starts at r.consumed.
//   nbio::http::body_decoder body(head.body, head.content_length, limits);
//   auto b = body.next(rest);                     // one piece of body bytes a call
//
// A head is parsed when its terminating empty line has arrived; until then parse() only looks at
// the bytes it has not seen (it remembers how far it got), so a head trickling in byte by byte
// costs linear time. The caller keeps the unconsumed tail of its buffer and hands it in again
// with the next bytes: that incomplete tail is the only thing ever copied.
//
// Strict by default (RFC 9112 and the smuggling cases): CRLF line endings only, no obs-fold, no
// whitespace before a colon, no control bytes in names or values, one Host in HTTP/1.1 (at most
// one in 1.0), valid as uri-host [":" port] or empty (RFC 9112 3.2; 400 otherwise), no
// Content-Length next to Transfer-Encoding, identical duplicate Content-Lengths only, chunked as
// the final transfer coding of a request, HTTP/1.0 and 1.1 only (505 for others). Each failure is
// an nbio::http::errc; status_of() gives the status to answer with.
//
// Thread affinity: none; a parser object belongs to one message stream at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "nbio/http/error.hpp"

namespace nbio::http {

// Limits of one message. The defaults are nginx's and Go's order of magnitude.
struct parser_limits {
  std::size_t max_request_line = 8 * 1024;    // the start line; a longer request line: 414
  std::size_t max_header_bytes = 16 * 1024;   // the whole head, start line included: 431
  std::size_t max_headers = 100;              // header fields: 431
  std::uint64_t max_body = 8 * 1024 * 1024;   // a longer Content-Length or chunked body: 413
  std::size_t max_chunk_line = 4 * 1024;      // a chunk-size line with its extensions
  std::size_t max_trailer_bytes = 16 * 1024;  // the trailer section of a chunked body: 431
};

struct header {
  std::string_view name;   // as received (compare case-insensitively: iequals)
  std::string_view value;  // without leading and trailing whitespace
};

// ASCII case-insensitive equality (header names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

enum class target_form : std::uint8_t {
  origin,     // "/path?query"
  absolute,   // "http://host/path" (proxies)
  authority,  // "host:port" (CONNECT only)
  asterisk,   // "*" (OPTIONS only)
};

enum class body_kind : std::uint8_t {
  none,         // no body
  length,       // content_length bytes
  chunked,      // Transfer-Encoding: chunked
  until_close,  // a response delimited by the end of the connection
};

// What requests and responses share. Views into the parsed buffer.
struct message_head {
  int version_minor = 1;            // HTTP/1.<version_minor>: 0 or 1
  std::span<const header> headers;  // in order received; part of the caller's storage
  body_kind body = body_kind::none;
  std::uint64_t content_length = 0;  // when body == length
  bool keep_alive = true;            // the connection may carry another message after this one
  bool upgrade = false;              // Connection: upgrade with an Upgrade header

  // The value of the first field named `name` (case-insensitive); "" when absent.
  std::string_view get(std::string_view name) const noexcept;
  bool has(std::string_view name) const noexcept;
};

struct request_head : message_head {
  std::string_view method;  // a token, case-sensitive ("GET")
  std::string_view target;  // as received
  target_form form = target_form::origin;
  std::string_view host;         // the Host field's value ("" when absent, allowed in HTTP/1.0)
  bool expect_continue = false;  // Expect: 100-continue (HTTP/1.1)
};

struct response_head : message_head {
  int status = 0;
  std::string_view reason;
};

enum class parse_status : std::uint8_t { complete, incomplete, error };

struct parse_result {
  parse_status status = parse_status::incomplete;
  std::size_t consumed = 0;  // complete: the head's bytes, leading empty lines included
  std::error_code error;     // error: why (nbio::http::errc)
};

class request_parser {
 public:
  explicit request_parser(const parser_limits& limits = {}) noexcept : limits_(limits) {}

  // `data` holds every byte of the stream not yet consumed, starting at the message. Header
  // views go into `storage` (at most min(storage.size(), max_headers) of them). After complete
  // or error, call reset() before the next message.
  parse_result parse(std::string_view data, std::span<header> storage, request_head& out) noexcept;
  void reset() noexcept { scanned_ = 0; }
  const parser_limits& limits() const noexcept { return limits_; }

 private:
  parser_limits limits_;
  std::size_t scanned_ = 0;  // bytes of complete lines already checked for the head's end
};

class response_parser {
 public:
  explicit response_parser(const parser_limits& limits = {}) noexcept : limits_(limits) {}

  // As request_parser::parse. `request_method` is the method of the request this response
  // answers: HEAD responses and 2xx answers to CONNECT carry no body.
  parse_result parse(std::string_view data, std::span<header> storage, response_head& out,
                     std::string_view request_method = "GET") noexcept;
  void reset() noexcept { scanned_ = 0; }

 private:
  parser_limits limits_;
  std::size_t scanned_ = 0;
};

// A piece of body found by body_decoder::next().
struct body_result {
  parse_status status = parse_status::incomplete;  // complete: the body ended with this call
  std::size_t consumed = 0;                        // bytes of the input used (framing and data)
  std::string_view data;             // body bytes (a view into the input); may be empty
  std::span<const header> trailers;  // complete, chunked: the trailer fields (caller's storage)
  std::error_code error;
};

// Decodes one message body: Content-Length, chunked (extensions and trailers) or until close.
// Each next() returns at most one run of body bytes and says how much input it used; the caller
// drops `consumed` bytes and calls again with what is left (plus new bytes) until complete.
class body_decoder {
 public:
  body_decoder() noexcept = default;
  body_decoder(body_kind kind, std::uint64_t content_length,
               const parser_limits& limits = {}) noexcept;

  // Chunk-size lines and the trailer section are parsed when whole, so framing split across
  // reads is left unconsumed (the caller keeps those bytes). Trailer fields beyond
  // trailer_storage.size() are checked but not stored; more than max_headers is an error.
  body_result next(std::string_view data, std::span<header> trailer_storage = {}) noexcept;
  // until_close bodies: the connection ended, so did the body. Other kinds: true when complete.
  bool finish_at_eof() noexcept;
  bool done() const noexcept { return state_ == state::done; }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }

 private:
  enum class state : std::uint8_t {
    length,
    chunk_size,
    chunk_data,
    chunk_crlf,
    trailers,
    until_close,
    done
  };
  state state_ = state::done;
  std::uint64_t remaining_ = 0;   // of the Content-Length, or of the current chunk
  std::uint64_t body_bytes_ = 0;  // decoded so far
  std::uint64_t max_body_ = 0;
  std::uint32_t max_chunk_line_ = 0;
  std::uint32_t max_trailer_bytes_ = 0;
  std::uint32_t max_trailers_ = 0;
};

}  // namespace nbio::http
