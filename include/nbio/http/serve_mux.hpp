// Public. Request routing by pattern (Go 1.22's http.ServeMux).
//
//   nbio::http::serve_mux mux;
//   mux.handle("GET /items/{id}", get_item);       // GET (and HEAD) of one path segment
//   mux.handle("POST /items/", post_item);         // POST to anything under /items/
//   mux.handle("static.example.com/", files);      // any method, that host only
//   mux.handle("/{$}", home);                      // "/" only, not the whole tree
//   nbio::http::server srv(eng, mux);
//
// A pattern is `[METHOD ][HOST]/[PATH]`:
//   METHOD  a token; the pattern matches that method only, and "GET" matches HEAD too. Without
//           it the pattern matches every method. One or more spaces or tabs follow it.
//   HOST    matches the request's host (the Host field, or the authority of an absolute-form
//           target) with its port removed ("example.com:8080" -> "example.com", "[::1]:80" ->
//           "::1"), compared byte for byte as Go does (no case folding). CONNECT requests
//           keep the port.
//   PATH    segments separated by '/': a literal (may be percent-escaped: "/a%2Fb" is the one
//           segment "a/b"), `{name}` (any one whole segment), `{name...}` (all the rest of the
//           path, possibly empty; last only) or `{$}` (the end of the path: "/a/{$}" matches
//           "/a/" and nothing below it; last only). A path ending in '/' matches every path
//           under it ("/static/" matches "/static/" and "/static/css/x.css"). Wildcard names are
//           ASCII identifiers ([A-Za-z_][A-Za-z0-9_]*), distinct within a pattern, at most
//           request::max_path_values (8) of them.
//
// Precedence: of the patterns matching a request, a pattern with a host beats every pattern
// without one; otherwise the most specific wins, where P1 is more specific than P2 when P1
// matches a strict subset of P2's requests ("/items/{id}" beats "/items/", "/items/new" beats
// "/items/{id}", "GET /x" beats "/x"). Two patterns that could both match some request with
// neither more specific ("/a/{x}" and "/{y}/b", or "GET /a/{x}" and "/a/b") conflict, and the
// second one is refused when it is registered, so every request has one winner.
//
// serve() matches the request's path as received (still escaped), split at '/'; a literal
// segment of a pattern compares against the decoded segment. Before matching, like Go:
//   - a request whose target is "*" (OPTIONS *) gets 400 and the connection closes;
//   - a path that is not clean ("//a", "/a/./b", "/a/../b") gets 301 to the cleaned path,
//     query kept (not for CONNECT, whose path is matched as it is);
//   - "/dir" gets 301 to "/dir/" when no pattern matches "/dir" exactly but one matches
//     "/dir/" exactly ("/dir/" or "/dir/{$}" registered for the method);
//   - no pattern for the path: 404, body "404 page not found\n";
//   - patterns for the path but not for the method: 405, body "Method Not Allowed\n", and an
//     Allow field listing the methods that would match, sorted, HEAD added where GET is.
// On a match it records the pattern and the wildcards' values in the request
// (request::pattern(), request::path_value(): the values are views of the escaped path, decoded
// when read) and calls the pattern's handler.
//
// Cost: matching walks the registered patterns in precedence order and stops at the first
// match; it neither allocates nor copies on the way to a handler (the path is split by
// iterating over it, escaped segments are compared by decoding on the fly). Redirects and the
// 404/405 answers allocate.
//
// Thread affinity: register every pattern with handle() before serving starts (not
// synchronised); serve() is const and may run on any number of threads at once. The mux must
// outlive the server and every handler made by as_handler(): requests keep views of its
// pattern strings while their handler runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"

namespace nbio::http {

class serve_mux {
 public:
  serve_mux() noexcept;
  ~serve_mux();
  serve_mux(const serve_mux&) = delete;
  serve_mux& operator=(const serve_mux&) = delete;
  // Moving keeps the registered patterns where they are (requests may hold views of them),
  // but a mux must not move while it serves.
  serve_mux(serve_mux&&) noexcept;
  serve_mux& operator=(serve_mux&&) noexcept;

  // Registers `h` for `pattern` (copied). Setup time only.
  // Throws std::invalid_argument (the message names the pattern and the reason) for a
  // malformed pattern or an empty handler, and std::logic_error when the pattern matches the
  // same requests as one registered already, or conflicts with one (both match some request
  // and neither is more specific). Nothing is registered when it throws.
  void handle(std::string_view pattern, handler h);

  // Routes `r` and answers it: calls the handler of the winning pattern, or writes the 301,
  // 400, 404 or 405 described above. Any thread, concurrently; no exceptions of its own (the
  // handler's propagate).
  void serve(response_writer& w, request& r) const;

  // A handler that calls serve() on this mux, which must outlive it; its takeover_bytes() is
  // the routes' at this call (http::server(eng, mux) reads them at each listen instead).
  handler as_handler() const;

  // The largest takeover_bytes() of the routes' handlers (an upgrade route's slot room).
  std::uint32_t takeover_bytes() const noexcept { return takeover_bytes_; }

  // The number of patterns registered.
  std::size_t size() const noexcept { return routes_.size(); }

 private:
  struct route;
  static std::unique_ptr<route> parse(std::string_view pattern);
  // The first route matching, or null. `values` (request::max_path_values of them, or null)
  // receives the named wildcards' raw values.
  const route* find(std::string_view host, std::string_view method, std::string_view path,
                    bool slash, std::string_view* values) const noexcept;
  void not_found(response_writer& w, std::string_view host, std::string_view path) const;

  // Routes in precedence order: host patterns first, and every pattern before the patterns
  // it is more specific than, so the first match is the winner. Pointers, so the strings a
  // request views stay put when the vector grows.
  std::vector<std::unique_ptr<route>> routes_;
  std::uint32_t takeover_bytes_ = 0;
};

}  // namespace nbio::http
