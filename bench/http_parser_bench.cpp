// Micro benchmark: HTTP/1.1 request parsing, nbio::http against Node's http-parser 2.9 (Debian
// libhttp-parser-dev), on the same bytes in the same run.
//
//   build/bin/http_parser_bench [--benchmark_out=FILE.json --benchmark_out_format=json]
//
// Both parsers do the same work: find the method, target, version and every header as
// (pointer, length) pairs, and the body framing. http-parser reports those through callbacks
// that record views; nbio fills a header array. Chunked: a 16 x 1 KiB chunked body, decoded to
// views of its data. Reported: ns per message (Time) and bytes/s.
#include <benchmark/benchmark.h>
#include <http_parser.h>

#include <array>
#include <string>
#include <string_view>

#include <nbio/http/parser.hpp>

namespace {

// A browser-like GET (what a gateway sees most).
const std::string get_request =
    "GET /api/v1/users/12345/profile?fields=name,email&lang=en HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=4f1d3a2b9c8e7f6a5b4c3d2e1f0a9b8c; theme=dark\r\n"
    "Referer: https://www.example.com/app/settings\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

std::string chunked_request() {
  std::string r =
      "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 16; ++i) {
    r += "400\r\n";
    r += std::string(1024, static_cast<char>('a' + i));
    r += "\r\n";
  }
  r += "0\r\n\r\n";
  return r;
}
const std::string post_chunked = chunked_request();

void nbio_get(benchmark::State& state) {
  nbio::http::request_parser parser;
  std::array<nbio::http::header, 32> fields;
  nbio::http::request_head head;
  for (auto _ : state) {
    parser.reset();
    auto r = parser.parse(get_request, fields, head);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(head.headers.size());
    if (r.status != nbio::http::parse_status::complete) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * get_request.size()));
}

void nbio_chunked(benchmark::State& state) {
  nbio::http::request_parser parser;
  std::array<nbio::http::header, 32> fields;
  nbio::http::request_head head;
  for (auto _ : state) {
    parser.reset();
    auto r = parser.parse(post_chunked, fields, head);
    std::string_view rest = std::string_view(post_chunked).substr(r.consumed);
    nbio::http::body_decoder body(head.body, head.content_length);
    std::size_t bytes = 0;
    for (;;) {
      const auto b = body.next(rest);
      bytes += b.data.size();
      rest.remove_prefix(b.consumed);
      if (b.status != nbio::http::parse_status::incomplete) break;
    }
    benchmark::DoNotOptimize(bytes);
    if (bytes != 16 * 1024) state.SkipWithError("decode failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * post_chunked.size()));
}

// http-parser: callbacks record what nbio returns (views of the target, fields and body).
struct recorded {
  std::string_view url;
  std::array<nbio::http::header, 32> fields;
  std::size_t count = 0;
  std::size_t body = 0;
  bool complete = false;
};

int on_url(http_parser* p, const char* at, size_t n) {
  static_cast<recorded*>(p->data)->url = {at, n};
  return 0;
}
int on_field(http_parser* p, const char* at, size_t n) {
  auto* r = static_cast<recorded*>(p->data);
  if (r->count < r->fields.size()) r->fields[r->count].name = {at, n};
  return 0;
}
int on_value(http_parser* p, const char* at, size_t n) {
  auto* r = static_cast<recorded*>(p->data);
  if (r->count < r->fields.size()) r->fields[r->count++].value = {at, n};
  return 0;
}
int on_body(http_parser* p, const char*, size_t n) {
  static_cast<recorded*>(p->data)->body += n;
  return 0;
}
int on_complete(http_parser* p) {
  static_cast<recorded*>(p->data)->complete = true;
  return 0;
}

http_parser_settings make_settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_header_field = on_field;
  s.on_header_value = on_value;
  s.on_body = on_body;
  s.on_message_complete = on_complete;
  return s;
}

void run_http_parser(benchmark::State& state, const std::string& message, std::size_t body) {
  const http_parser_settings settings = make_settings();
  http_parser parser;
  for (auto _ : state) {
    recorded r;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &r;
    const size_t n = http_parser_execute(&parser, &settings, message.data(), message.size());
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(r.count);
    if (!r.complete || r.body != body) state.SkipWithError("http_parser failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * message.size()));
}

void http_parser_get(benchmark::State& state) {
  run_http_parser(state, get_request, 0);
}
void http_parser_chunked(benchmark::State& state) {
  run_http_parser(state, post_chunked, 16 * 1024);
}

}  // namespace

BENCHMARK(nbio_get);
BENCHMARK(http_parser_get);
BENCHMARK(nbio_chunked);
BENCHMARK(http_parser_chunked);
BENCHMARK_MAIN();
