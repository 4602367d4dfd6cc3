// http_parse: the sans-I/O HTTP parser on its own. Reads an HTTP/1.x request from stdin in
// small pieces (as a socket would deliver it), prints the head and the body, or the error and
// the status a server would answer with.
//
//   printf 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' | bin/http_parse
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include <nbio/http/parser.hpp>

namespace http = nbio::http;

int fail(std::error_code ec) {
  std::printf("error: %s -> %d %s\n", ec.message().c_str(), http::status_of(ec),
              http::reason_phrase(http::status_of(ec)));
  return 1;
}

int main() {
  std::string buffer;  // what came in and is not consumed yet
  char piece[7];       // small reads, to show that any cut works
  auto read_more = [&] {
    const ssize_t n = ::read(0, piece, sizeof(piece));
    if (n > 0) buffer.append(piece, static_cast<std::size_t>(n));
    return n > 0;
  };

  http::request_parser parser;
  std::array<http::header, 100> fields;
  http::request_head head;
  http::parse_result r;
  while ((r = parser.parse(buffer, fields, head)).status == http::parse_status::incomplete)
    if (!read_more()) return std::puts("error: the input ended inside the head"), 1;
  if (r.status == http::parse_status::error) return fail(r.error);

  std::printf("%.*s %.*s HTTP/1.%d (keep-alive: %s)\n", static_cast<int>(head.method.size()),
              head.method.data(), static_cast<int>(head.target.size()), head.target.data(),
              head.version_minor, head.keep_alive ? "yes" : "no");
  for (const http::header& h : head.headers)
    std::printf("  %.*s: %.*s\n", static_cast<int>(h.name.size()), h.name.data(),
                static_cast<int>(h.value.size()), h.value.data());
  // The views above point into `buffer`: done with them before it changes.
  buffer.erase(0, r.consumed);

  http::body_decoder body(head.body, head.content_length);
  std::string content;
  for (;;) {
    const http::body_result b = body.next(buffer);
    if (b.status == http::parse_status::error) return fail(b.error);
    content.append(b.data);
    buffer.erase(0, b.consumed);
    if (b.status == http::parse_status::complete) break;
    if (b.consumed == 0 && b.data.empty() && !read_more())
      return std::puts("error: the input ended inside the body"), 1;
  }
  std::printf("body (%zu bytes): %s\n", content.size(), content.c_str());
  return 0;
}
