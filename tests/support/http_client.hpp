// Test support. The client side of HTTP integration tests: a blocking loopback socket that sends
// raw bytes and reads responses with the library's own sans-I/O parser (response_parser and
// body_decoder), so a response that does not parse, or carries bytes it should not, shows up.
// Every read is bounded by a deadline.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nbio/http/parser.hpp"
#include "support/raw_socket.hpp"

namespace nbio_test {

using namespace std::chrono_literals;

// One response as the client decoded it.
struct http_response {
  int status = 0;
  int version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // decoded (chunked framing removed)
  nbio::http::body_kind framing = nbio::http::body_kind::none;
  bool keep_alive = true;  // as the parser judged it (Connection, version, framing)

  // The first field named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (nbio::http::iequals(n, name)) return v;
    return std::nullopt;
  }
  bool connection_close() const {
    const auto c = header("Connection");
    return c && nbio::http::iequals(*c, "close");
  }
};

// A client connection: send bytes, read whole responses, see the server close.
class http_client {
 public:
  explicit http_client(const nbio::address& to) : fd_(connect_stream(to)) {
    if (fd_) {
      int one = 1;
      ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
  }

  bool connected() const noexcept { return static_cast<bool>(fd_); }
  int fd() const noexcept { return fd_.get(); }
  bool send(std::string_view bytes) { return send_all(fd_.get(), bytes, 10s); }

  // Reads one response to a request with `method` (HEAD responses have no body). nullopt when
  // the stream ended, failed, timed out or did not parse first (error() says which).
  std::optional<http_response> read_response(std::string_view method = "GET",
                                             std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    nbio::http::response_parser parser(client_limits());
    std::array<nbio::http::header, 100> fields;
    nbio::http::response_head head;
    http_response out;
    for (;;) {
      const nbio::http::parse_result r = parser.parse(buf_, fields, head, method);
      if (r.status == nbio::http::parse_status::error)
        return fail("bad head: " + r.error.message());
      if (r.status == nbio::http::parse_status::complete) {
        out.status = head.status;
        out.version_minor = head.version_minor;
        out.framing = head.body;
        out.keep_alive = head.keep_alive;
        for (const auto& h : head.headers)
          out.headers.emplace_back(std::string(h.name), std::string(h.value));
        buf_.erase(0, r.consumed);
        break;
      }
      if (!fill(deadline)) return fail("stream ended inside a head");
    }
    nbio::http::body_decoder body(out.framing, head.content_length, client_limits());
    if (out.framing == nbio::http::body_kind::none) return out;
    for (;;) {
      const nbio::http::body_result b = body.next(buf_);
      if (b.status == nbio::http::parse_status::error)
        return fail("bad body: " + b.error.message());
      out.body.append(b.data);
      buf_.erase(0, b.consumed);
      if (b.status == nbio::http::parse_status::complete) return out;
      if (b.consumed > 0 || !b.data.empty()) continue;
      if (!fill(deadline)) {
        if (eof_ && body.finish_at_eof()) return out;
        return fail("stream ended inside a body");
      }
    }
  }

  // True when the server closes the connection (EOF or a reset) within `timeout` without
  // sending anything more; bytes that did arrive are kept in extra().
  bool closed_by_peer(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_ && error_ == 0)
      if (!fill(deadline)) break;
    return (eof_ || error_ == ECONNRESET) && buf_.empty();
  }
  // True when nothing arrives within `window` and the connection stays open.
  bool quiet_for(std::chrono::milliseconds window) {
    const auto deadline = std::chrono::steady_clock::now() + window;
    fill(deadline);
    return buf_.empty() && !eof_ && error_ == 0;
  }

  // Bytes received but not part of a response read so far.
  const std::string& extra() const noexcept { return buf_; }
  const std::string& error() const noexcept { return why_; }
  bool eof() const noexcept { return eof_; }

 private:
  // The parser's defaults, except for bodies: tests read responses of any size.
  static nbio::http::parser_limits client_limits() {
    nbio::http::parser_limits l;
    l.max_body = UINT64_MAX;
    return l;
  }

  std::optional<http_response> fail(std::string why) {
    why_ = std::move(why);
    if (eof_) why_ += " (eof)";
    if (error_) why_ += " (errno " + std::to_string(error_) + ")";
    return std::nullopt;
  }

  // One read into buf_; false on EOF, error or the deadline.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    if (eof_ || error_) return false;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_.get(), POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      char tmp[65536];
      const ssize_t got = ::recv(fd_.get(), tmp, sizeof(tmp), MSG_DONTWAIT);
      if (got > 0) {
        buf_.append(tmp, static_cast<std::size_t>(got));
        return true;
      }
      if (got == 0) {
        eof_ = true;
        return false;
      }
      if (errno == EAGAIN || errno == EINTR) continue;
      error_ = errno;
      return false;
    }
  }

  unique_fd fd_;
  std::string buf_;
  std::string why_;
  bool eof_ = false;
  int error_ = 0;
};

}  // namespace nbio_test
