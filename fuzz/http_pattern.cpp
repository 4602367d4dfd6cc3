// libFuzzer target: nbio::http::serve_mux patterns and routing on arbitrary bytes. The input is
// lines: every line but the last three is a pattern, registered (inside try/catch) on top of a
// fixed set; the last three are a request's method, host and target. The request is routed
// through that mux and through one with the accepted patterns registered in reverse order:
// both must pick the same pattern (precedence does not depend on the order of registration),
// the reverse registration must accept every pattern (conflicts are symmetric), and the answer
// must be one the mux can give. No call may crash, hang or leak.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/engine/conn.hpp"
#include "nbio/http/parser.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"
#include "nbio/http/serve_mux.hpp"

namespace {

namespace http = nbio::http;

constexpr std::string_view base_patterns[] = {
    "/",          "/{$}",          "GET /items/{id}", "/items/",    "/items/{id}/{rest...}",
    "h.test/a/b", "DELETE /a/{x}", "/a%2Fb/{y}",      "GET /x/{$}", "CONNECT /c/../d",
};
constexpr std::size_t max_patterns = 16;

void record(http::response_writer& w, http::request& r) {
  // The body, not a header: a pattern may hold any byte.
  w.write("P:");
  w.write(r.pattern());
  for (std::string_view name : {"id", "rest", "x", "y"})
    w.write(r.path_value(name));
}

struct answer {
  int status = 0;
  std::string body;
  std::string location;
  bool operator==(const answer&) const = default;
};

answer serve(const http::serve_mux& mux, std::string_view method, std::string_view host,
             std::string_view target) {
  http::request_head head;
  head.method = method;
  head.target = target;
  head.host = host;
  head.form = target == "*" ? http::target_form::asterisk : http::target_form::origin;
  http::request r(head, {});
  http::response_recorder rec(1, method == "HEAD");
  mux.serve(rec.writer(), r);
  rec.finish();
  return {rec.status(), rec.body(), rec.header("Location")};
}

}  // namespace

// request.cpp asks a request's connection for its address; the engine is not linked in, and a
// request made by its constructor has no connection, so this is never called.
nbio::address nbio::conn::remote_address() const {
  std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start <= input.size();) {
    const std::size_t end = std::min(input.find('\n', start), input.size());
    lines.push_back(input.substr(start, end - start));
    start = end + 1;
  }
  while (lines.size() < 3)
    lines.insert(lines.begin(), std::string_view("GET"));
  const std::string_view target = lines[lines.size() - 1];
  const std::string_view host = lines[lines.size() - 2];
  const std::string_view method = lines[lines.size() - 3];
  lines.resize(lines.size() - 3);
  if (lines.size() > max_patterns) lines.resize(max_patterns);

  http::serve_mux forward;
  std::vector<std::string_view> accepted;
  for (std::string_view p : base_patterns) {
    forward.handle(p, record);
    accepted.push_back(p);
  }
  for (std::string_view p : lines) {
    try {
      forward.handle(p, record);
      accepted.push_back(p);
    } catch (const std::invalid_argument&) {
    } catch (const std::logic_error&) {
    }
  }
  http::serve_mux backward;
  for (auto it = accepted.rbegin(); it != accepted.rend(); ++it) {
    try {
      backward.handle(*it, record);
    } catch (const std::logic_error&) {
      std::abort();  // accepted in one order, refused in the other
    }
  }

  const answer a = serve(forward, method, host, target);
  const answer b = serve(backward, method, host, target);
  if (!(a == b)) std::abort();
  switch (a.status) {
    case 200:
      if (method != "HEAD" && !a.body.starts_with("P:")) std::abort();
      break;
    case 301:
      if (a.location.empty() || a.location.front() != '/') std::abort();
      break;
    case 400:
    case 404:
    case 405:
      break;
    default:
      std::abort();
  }
  return 0;
}
