// Public. An HTTP request as a handler sees it (Go's *http.Request).
//
// Everything is a view: the method, target, headers and body point into the connection's read
// buffer (or its pending buffer when the request came in pieces), valid until the handler
// returns. A handler that keeps something past that copies it.
//
// Thread affinity: the thread that runs the handler, during the call.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "nbio/core/address.hpp"
#include "nbio/http/parser.hpp"

namespace nbio {
class conn;
}

namespace nbio::http {

// Receives a streamed request body (request::on_body), on the connection's thread: once per
// piece as it arrives (`data` valid during the call, `last` false), then once with `last` true
// (and `data` empty) when the body ended, or with `error` set when it failed.
using body_reader = std::function<void(std::string_view data, bool last, std::error_code error)>;

class request {
 public:
  // For tests and tools: a request over a parsed head and a body (both must outlive it).
  // `remote` is what remote_address() returns.
  request(const request_head& head, std::string_view body, address remote = {}) noexcept;

  std::string_view method() const noexcept { return head_->method; }
  std::string_view target() const noexcept { return head_->target; }  // as received
  target_form form() const noexcept { return head_->form; }
  // The path of the target, not decoded ("/a%20b"); for absolute-form targets the part after
  // the authority; "" for authority- and asterisk-form.
  std::string_view path() const noexcept { return path_; }
  // The query without "?" ("" when none), not decoded.
  std::string_view raw_query() const noexcept { return query_; }
  // The decoded value of the first query parameter `name` ("" when absent; '+' is a space).
  std::string query(std::string_view name) const;
  bool has_query(std::string_view name) const noexcept;

  // The authority of an absolute-form target (RFC 9112 3.2.2: it wins over Host), else the Host
  // field; "" when none.
  std::string_view host() const noexcept;
  int version_minor() const noexcept { return head_->version_minor; }
  std::string_view header(std::string_view name) const noexcept { return head_->get(name); }
  std::span<const http::header> headers() const noexcept { return head_->headers; }
  bool keep_alive() const noexcept { return head_->keep_alive; }
  // The whole body (requests with a body are handed over once it has arrived, within
  // server_options::limits.max_body).
  std::string_view body() const noexcept { return body_; }
  // Streamed bodies (server_options::stream_body chose this request): the handler runs as soon
  // as the head is complete, body() is empty, and on_body() says where the body goes as it
  // arrives, piece by piece, without being collected (a proxy forwards it, an upload writes it
  // to a file). Errors reach the reader: the client left (its close cause), the body timeout
  // (nbio::errc::read_timeout), malformed chunked framing, or more than
  // server_options::max_streamed_body (http::errc::body_too_large); the connection then closes.
  // Without a reader the body is read and dropped. The handler answers as usual: at once, or
  // defer() and finish once the body is in. on_body() throws std::logic_error when the body is
  // not streamed.
  bool body_streamed() const noexcept { return reader_ != nullptr; }
  void on_body(body_reader reader);
  const address& remote_address() const noexcept;

  // Set by serve_mux: the pattern that matched ("GET /items/{id}"), and the wildcards'
  // values. path_value() decodes the percent-escapes of the matched segment(s) (Go's
  // Request.PathValue); "" for a name the pattern does not have.
  std::string_view pattern() const noexcept { return pattern_; }
  std::string path_value(std::string_view name) const;
  // Records a wildcard's raw (still escaped) value; at most max_path_values of them.
  static constexpr std::size_t max_path_values = 8;
  bool set_path_value(std::string_view name, std::string_view raw) noexcept;
  void set_pattern(std::string_view p) noexcept { pattern_ = p; }
  void clear_path_values() noexcept { path_value_count_ = 0; }
  // The wildcards' names and raw values recorded so far.
  std::span<const std::pair<std::string_view, std::string_view>> raw_path_values() const noexcept {
    return {path_values_.data(), path_value_count_};
  }

  // The connection it came on (null for a request made by the constructor above).
  nbio::conn* connection() const noexcept { return conn_; }

 private:
  friend class server_conn;
  request(const request_head& head, std::string_view body, nbio::conn* c) noexcept;
  void split_target() noexcept;

  const request_head* head_;
  std::string_view body_;
  std::string_view path_;
  std::string_view query_;
  std::string_view pattern_;
  nbio::conn* conn_ = nullptr;
  body_reader* reader_ = nullptr;  // the server's slot for a streamed body's reader
  mutable address remote_;
  mutable bool remote_known_ = false;
  std::array<std::pair<std::string_view, std::string_view>, max_path_values> path_values_{};
  std::size_t path_value_count_ = 0;
};

// Percent-decoding (RFC 3986 2.1) of `in`; with `plus_is_space` '+' becomes ' ' (query strings,
// application/x-www-form-urlencoded). A '%' not followed by two hex digits stays as it is.
std::string percent_decode(std::string_view in, bool plus_is_space = false);

}  // namespace nbio::http
