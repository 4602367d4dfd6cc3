// http_client: fetches URLs with nbio::http::client (one keep-alive pool for all of them).
//
//   http_client [-X METHOD] [-d BODY] [-H 'Name: value']... [--max-redirects N]
//               [--timeout-ms N] [--tls-ca FILE | --tls-insecure] URL...
//
// Each URL (http:// or https://) is fetched in turn: the status line and header fields go to
// stderr, the body to stdout. https:// URLs verify the server against the system's trust store,
// or against --tls-ca (--tls-insecure: no verification, for testing). Exit status 0 when every
// URL got a response (whatever its status), 1 on a transport error (its message on stderr, a
// refused certificate with OpenSSL's reason), 2 on bad arguments.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nbio/http/client.hpp>
#include <nbio/nbio.hpp>

#include "tls_flags.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Fetch URLs over HTTP/1.1 with nbio::http::client"};
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;
  std::vector<std::string> urls;
  int max_redirects = 10;
  long timeout_ms = 30'000;
  app.add_option("-X,--request", method, "request method");
  app.add_option("-d,--data", body, "request body (sent with Content-Length)");
  app.add_option("-H,--header", headers, "a request header, 'Name: value'");
  app.add_option("--max-redirects", max_redirects, "redirects to follow (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-ms", timeout_ms, "whole-request timeout (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("url", urls, "http:// or https:// URLs")->required();
  tls_flags tls;
  tls.add_client(app);
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& h : headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "http_client: header '%s' is not 'Name: value'\n", h.c_str());
      return 2;
    }
    std::string value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    fields.emplace_back(h.substr(0, colon), std::move(value));
  }

  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::http::client cl(eng, {.request_timeout = std::chrono::milliseconds(timeout_ms),
                              .max_redirects = max_redirects,
                              .tls = tls.client_context("http_client", {"http/1.1"})});
  int status = 0;
  for (const auto& url : urls) {
    std::error_code ec;
    nbio::http::client_response r =
        cl.fetch({.method = method, .url = url, .headers = fields, .body = body}, ec);
    if (ec) {
      std::fprintf(stderr, "http_client: %s: %s\n", url.c_str(), ec.message().c_str());
      status = 1;
      continue;
    }
    std::fprintf(stderr, "HTTP/1.%d %d %s\n", r.version_minor, r.status, r.reason.c_str());
    for (const auto& [name, value] : r.headers)
      std::fprintf(stderr, "%s: %s\n", name.c_str(), value.c_str());
    std::fprintf(stderr, "\n");
    std::fwrite(r.body.data(), 1, r.body.size(), stdout);
    std::fflush(stdout);
  }
  eng.stop();
  return status;
}
