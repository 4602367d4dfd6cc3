// Unit: serve_mux, Go 1.22 ServeMux routing. Table-driven: pattern syntax, conflicts (Go's
// TestConflictsWith table and more), routing of (method, host, target) to a pattern or to
// 301/404/405, path values, and precedence independent of the order of registration.
#include "nbio/http/serve_mux.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/http/parser.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"

namespace {

namespace http = nbio::http;

// What a request routed through a mux came back with.
struct outcome {
  int status = 0;
  std::string pattern;  // X-Pattern, set by the handler the mux chose
  std::string location;
  std::string allow;
  std::string body;
  std::string content_type;
};

// The test handler: answers 200 and says which pattern matched.
void record_pattern(http::response_writer& w, http::request& r) {
  w.set_header("X-Pattern", r.pattern());
}

// Sends `method target` with Host `host` (HTTP/1.0 without Host when empty) through `mux`.
// `inspect` runs on the request after serving.
template <class F>
outcome route(const http::serve_mux& mux, std::string_view method, std::string_view host,
              std::string_view target, F&& inspect) {
  std::string wire = std::string(method) + " " + std::string(target);
  wire += host.empty() ? " HTTP/1.0\r\n" : " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n";
  wire += "\r\n";
  http::request_parser parser;
  std::array<http::header, 8> fields;
  http::request_head head;
  const http::parse_result parsed = parser.parse(wire, fields, head);
  if (parsed.status != http::parse_status::complete) {
    ADD_FAILURE() << "does not parse: " << wire;
    return {};
  }
  http::request r(head, {});
  http::response_recorder rec(host.empty() ? 0 : 1, method == "HEAD");
  mux.serve(rec.writer(), r);
  rec.finish();
  inspect(r);
  return {rec.status(), rec.header("X-Pattern"),   rec.header("Location"), rec.header("Allow"),
          rec.body(),   rec.header("Content-Type")};
}

outcome route(const http::serve_mux& mux, std::string_view method, std::string_view host,
              std::string_view target) {
  return route(mux, method, host, target, [](const http::request&) {});
}

// --- pattern syntax ----------------------------------------------------------------------------

TEST(http_serve_mux, good_patterns_register) {
  for (const char* p : {
           "/",
           "/a",
           "/a/",
           "/a/b/c",
           "GET /",
           "POST /a/b/{c}",
           "GET\t/a",
           "GET   /a",
           " /a",  // Go: an empty method before the space is no method
           "example.com/",
           "GET example.com/a/{x}",
           "/{$}",
           "/a/{$}",
           "/{x...}",
           "/a/{b}/{c...}",
           "/a/{b}/",
           "/{x}/{y}",
           "/{_x1}/{X_2}",
           "/a}b",
           "/%61",
           "/a%2Fb",
           "/a%zz",                             // an invalid escape stays literal
           "/a/../b",                           // no method: allowed (it can match CONNECT only)
           "CONNECT /a/../b",                   // CONNECT paths are not cleaned
           "PROPFIND /dav/",                    // any token is a method
           "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}",  // request::max_path_values wildcards
       }) {
    http::serve_mux mux;
    EXPECT_NO_THROW(mux.handle(p, record_pattern)) << p;
    EXPECT_EQ(mux.size(), 1u) << p;
  }
}

TEST(http_serve_mux, bad_patterns_throw_invalid_argument) {
  for (const char* p : {
           "",
           "a",                                     // no '/'
           "GET",                                   // no '/'
           "GET a",                                 // no '/'
           "G@T /",                                 // not a token
           "GET( /",                                // not a token
           "{x}/",                                  // host with '{'
           "example.com{x}/",                       // host with '{'
           "GET /a/../b",                           // unclean: can never match
           "GET //a",                               // unclean
           "GET /a/./b",                            // unclean
           "GET /a/.",                              // unclean
           "/{",                                    // must end with '}'
           "/{x",                                   // must end with '}'
           "/a{x}",                                 // must start with '{'
           "/{x}a",                                 // must end with '}'
           "/{}",                                   // empty wildcard
           "/{...}",                                // empty wildcard
           "/{$}/a",                                // {$} not at end
           "/{$}x",                                 // must end with '}'
           "/{x...}/a",                             // {...} not at end
           "/{x...}/",                              // {...} not at end
           "/{1x}",                                 // not an identifier
           "/{x-y}",                                // not an identifier
           "/{$x}",                                 // not an identifier
           "/{\xc3\xa9}",                           // non-ASCII names are refused
           "/{x}/{x}",                              // duplicate
           "/{x}/{x...}",                           // duplicate
           "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",  // more than max_path_values
       }) {
    http::serve_mux mux;
    try {
      mux.handle(p, record_pattern);
      ADD_FAILURE() << "accepted: \"" << p << "\"";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("\"" + std::string(p) + "\""), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(mux.size(), 0u);
  }
}

TEST(http_serve_mux, empty_handler_throws_invalid_argument) {
  http::serve_mux mux;
  EXPECT_THROW(mux.handle("/", http::handler{}), std::invalid_argument);
}

// --- conflicts ---------------------------------------------------------------------------------

TEST(http_serve_mux, conflicts_table) {
  struct pair {
    const char* p1;
    const char* p2;
    bool conflict;
  };
  for (const pair& t : std::initializer_list<pair>{
           // Go's TestConflictsWith.
           {"/a", "/a", true},
           {"/a", "/ab", false},
           {"/a/b/cd", "/a/b/cd", true},
           {"/a/b/cd", "/a/b/c", false},
           {"/a/b/c", "/a/c/c", false},
           {"/{x}", "/{y}", true},
           {"/{x}", "/a", false},
           {"/{x}/{y}", "/{x}/a", false},
           {"/{x}/{y}", "/{x}/a/b", false},
           {"/{x}", "/a/{y}", false},
           {"/{x}/{y}", "/{x}/a/", false},
           {"/{x}", "/a/{y...}", false},
           {"/{x}/a/{y}", "/{x}/a/{y...}", false},
           {"/{x}/{y}", "/{x}/a/{$}", false},
           {"/{x}/{y}/{$}", "/{x}/a/{$}", false},
           {"/a/{x}", "/{x}/b", true},
           {"/", "GET /", false},
           {"/", "GET /foo", false},
           {"GET /", "GET /foo", false},
           {"GET /", "/foo", true},
           {"GET /foo", "HEAD /", true},
           // Go's TestRegisterConflict.
           {"/a/{x}/", "/a/{y}/{z...}", true},
           // Methods.
           {"GET /a", "POST /a", false},
           {"GET /a", "HEAD /a", false},  // HEAD is more specific
           {"GET /{x}", "/a", true},      // fewer methods, more general path
           {"HEAD /{x}", "GET /a", true},
           {"GET /a/", "/a/b", true},
           {"GET /a", "/{x}", false},
           // Hosts: with and without never conflict, different hosts never do.
           {"example.com/a", "/a", false},
           {"example.com/{x}", "/a", false},
           {"a.com/{x}", "b.com/{x}", false},
           {"a.com/{x}", "a.com/{y}", true},
           // Trailing slash, {$} and multi wildcards.
           {"/a/", "/a/{rest...}", true},
           {"/a/", "/a/{$}", false},
           {"/a/{$}", "/a/{x}", false},  // {x} never matches the trailing slash
           {"/a/{$}", "/a/{x...}", false},
           {"/a/{$}", "/a/{$}", true},
           {"/{x}/", "/a/{y}", false},
           // Literals compare decoded.
           {"/a%2Fb", "/a%2fb", true},
           {"/%61", "/a", true},
       }) {
    for (const bool reversed : {false, true}) {
      const char* first = reversed ? t.p2 : t.p1;
      const char* second = reversed ? t.p1 : t.p2;
      http::serve_mux mux;
      mux.handle(first, record_pattern);
      if (t.conflict) {
        EXPECT_THROW(mux.handle(second, record_pattern), std::logic_error)
            << first << " then " << second;
        EXPECT_EQ(mux.size(), 1u);
      } else {
        EXPECT_NO_THROW(mux.handle(second, record_pattern)) << first << " then " << second;
        EXPECT_EQ(mux.size(), 2u);
      }
    }
  }
}

TEST(http_serve_mux, conflict_message_names_both_patterns) {
  http::serve_mux mux;
  mux.handle("/a/{x}", record_pattern);
  try {
    mux.handle("/{y}/b", record_pattern);
    FAIL() << "no conflict";
  } catch (const std::invalid_argument&) {
    FAIL() << "not a syntax error";
  } catch (const std::logic_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("\"/{y}/b\""), std::string::npos) << what;
    EXPECT_NE(what.find("\"/a/{x}\""), std::string::npos) << what;
  }
}

// --- routing -----------------------------------------------------------------------------------

http::serve_mux& routing_mux() {
  static http::serve_mux mux = [] {
    http::serve_mux m;
    for (const char* p : {
             "/item/",
             "POST /item/{user}",
             "/item/{user}",
             "/item/{user}/{id}",
             "/item/{user}/new",
             "/item/{$}",
             "POST alt.com/item/{userp}",
             "example.com/item/{user}",
             "::1/v6",
             "/path/{p...}",
             "GET /get",
             "GET /both",
             "POST /both",
             "DELETE /only",
             "PUT /dir/",
             "GET /x/{$}",
             "/static/",
             "/a%2Fb",
         })
      m.handle(p, record_pattern);
    return m;
  }();
  return mux;
}

TEST(http_serve_mux, routing_table) {
  struct row {
    const char* method;
    const char* host;
    const char* target;
    int status;
    const char* want;  // 200: the pattern; 301: Location; 405: Allow
  };
  const char* h = "h.test";
  for (const row& t : std::initializer_list<row>{
           {"GET", h, "/item/", 200, "/item/{$}"},  // {$} beats the trailing slash
           {"GET", h, "/item/jba", 200, "/item/{user}"},
           {"POST", h, "/item/jba", 200, "POST /item/{user}"},  // the method is more specific
           {"PUT", h, "/item/jba", 200, "/item/{user}"},
           {"GET", h, "/item/jba/17", 200, "/item/{user}/{id}"},
           {"GET", h, "/item/jba/new", 200, "/item/{user}/new"},  // literal beats wildcard
           {"GET", h, "/item/a/b/c", 200, "/item/"},
           {"GET", h, "/item/jba/", 200, "/item/"},  // {id} does not match ""
           {"POST", "alt.com", "/item/jba", 200, "POST alt.com/item/{userp}"},
           {"POST", "alt.com:8080", "/item/jba", 200, "POST alt.com/item/{userp}"},
           {"GET", "alt.com", "/item/jba", 200, "/item/{user}"},  // falls back to no host
           {"GET", "example.com", "/item/x", 200, "example.com/item/{user}"},
           {"GET", "example.com:80", "/item/x", 200, "example.com/item/{user}"},
           {"GET", "EXAMPLE.COM", "/item/x", 200, "/item/{user}"},  // Go compares exactly
           {"GET", "[::1]:8080", "/v6", 200, "::1/v6"},
           {"GET", "", "/item/x", 200, "/item/{user}"},  // HTTP/1.0, no Host
           {"GET", h, "/path/a/b", 200, "/path/{p...}"},
           {"GET", h, "/path/", 200, "/path/{p...}"},
           {"GET", h, "/static/css/a.css", 200, "/static/"},
           {"GET", h, "/static/", 200, "/static/"},
           {"GET", h, "/a%2Fb", 200, "/a%2Fb"},  // one segment "a/b"
           {"GET", h, "/a%2fb", 200, "/a%2Fb"},
           {"GET", h, "/a/b", 404, ""},
           {"GET", h, "/nothing", 404, ""},
           {"GET", h, "/", 404, ""},
           {"GET", h, "/get", 200, "GET /get"},
           {"HEAD", h, "/get", 200, "GET /get"},  // GET matches HEAD
           {"POST", h, "/get", 405, "GET, HEAD"},
           {"PUT", h, "/both", 405, "GET, HEAD, POST"},
           {"GET", h, "/only", 405, "DELETE"},
           {"DELETE", h, "/dir", 405, "PUT"},  // as Go: methods of "/dir/" count too
           {"PUT", h, "/dir/x", 200, "PUT /dir/"},
           {"GET", h, "/x/", 200, "GET /x/{$}"},
           {"GET", h, "/x/y", 404, ""},
           // Trailing-slash redirects: only when "/dir/" matches exactly.
           {"PUT", h, "/dir", 301, "/dir/"},
           {"GET", h, "/path", 301, "/path/"},
           {"GET", h, "/item", 301, "/item/"},
           {"GET", h, "/item?q=1&r", 301, "/item/?q=1&r"},
           {"GET", h, "/static", 301, "/static/"},
           {"GET", h, "/x", 301, "/x/"},
           {"POST", h, "/x", 405, "GET, HEAD"},
           // Unclean paths: redirected to the clean one, query kept.
           {"GET", h, "//item/x", 301, "/item/x"},
           {"GET", h, "/item//x", 301, "/item/x"},
           {"GET", h, "/item/../path/z?k=v", 301, "/path/z?k=v"},
           {"GET", h, "/./get", 301, "/get"},
           {"GET", h, "/get/.", 301, "/get"},
           {"GET", h, "/../get", 301, "/get"},
           {"GET", h, "/static/./", 301, "/static/"},
           {"GET", h, "/nothing//here", 301, "/nothing/here"},  // even with no match, as Go
           {"POST", h, "//get", 301, "/get"},
       }) {
    SCOPED_TRACE(std::string(t.method) + " " + t.host + " " + t.target);
    const outcome o = route(routing_mux(), t.method, t.host, t.target);
    EXPECT_EQ(o.status, t.status);
    switch (t.status) {
      case 200:
        EXPECT_EQ(o.pattern, t.want);
        break;
      case 301:
        EXPECT_EQ(o.location, t.want);
        EXPECT_EQ(o.pattern, "");
        break;
      case 404:
        EXPECT_EQ(o.body, "404 page not found\n");
        EXPECT_EQ(o.content_type, "text/plain; charset=utf-8");
        EXPECT_EQ(o.allow, "");
        break;
      case 405:
        EXPECT_EQ(o.allow, t.want);
        EXPECT_EQ(o.body, "Method Not Allowed\n");
        break;
    }
  }
}

TEST(http_serve_mux, redirect_answers_like_go) {
  const outcome get = route(routing_mux(), "GET", "h", "/item");
  EXPECT_EQ(get.status, 301);
  EXPECT_EQ(get.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(get.body, "<a href=\"/item/\">Moved Permanently</a>.\n\n");
  const outcome amp = route(routing_mux(), "GET", "h", "/item?a=1&b=<");
  EXPECT_EQ(amp.body, "<a href=\"/item/?a=1&amp;b=&lt;\">Moved Permanently</a>.\n\n");
  const outcome post = route(routing_mux(), "POST", "h", "//get");
  EXPECT_EQ(post.status, 301);
  EXPECT_EQ(post.body, "");
  EXPECT_EQ(post.content_type, "");
}

TEST(http_serve_mux, head_of_get_has_no_body) {
  const outcome o = route(routing_mux(), "HEAD", "h", "/nothing");
  EXPECT_EQ(o.status, 404);
  EXPECT_EQ(o.body, "");
}

TEST(http_serve_mux, asterisk_target_is_400) {
  http::serve_mux mux;
  mux.handle("/", record_pattern);
  const outcome o = route(mux, "OPTIONS", "h", "*");
  EXPECT_EQ(o.status, 400);
}

TEST(http_serve_mux, root_and_end_anchor) {
  http::serve_mux mux;
  mux.handle("/", record_pattern);
  mux.handle("/{$}", record_pattern);
  mux.handle("/a/{$}", record_pattern);
  EXPECT_EQ(route(mux, "GET", "h", "/").pattern, "/{$}");
  EXPECT_EQ(route(mux, "GET", "h", "/x").pattern, "/");
  EXPECT_EQ(route(mux, "GET", "h", "/a/").pattern, "/a/{$}");
  EXPECT_EQ(route(mux, "GET", "h", "/a/b").pattern, "/");
  // "/" matches "/a" (not exactly), "/a/{$}" would match "/a/" exactly: redirect, as Go.
  EXPECT_EQ(route(mux, "GET", "h", "/a").location, "/a/");
  // An escaped slash is a character of a segment, not the trailing slash.
  EXPECT_EQ(route(mux, "GET", "h", "/a/%2F").pattern, "/");
}

TEST(http_serve_mux, host_patterns_beat_hostless) {
  http::serve_mux mux;
  mux.handle("GET /a/{x}", record_pattern);
  mux.handle("example.com/", record_pattern);
  EXPECT_EQ(route(mux, "GET", "example.com", "/a/b").pattern, "example.com/");
  EXPECT_EQ(route(mux, "GET", "example.com:8443", "/a/b").pattern, "example.com/");
  EXPECT_EQ(route(mux, "GET", "other.com", "/a/b").pattern, "GET /a/{x}");
  EXPECT_EQ(route(mux, "POST", "other.com", "/a/b").allow, "GET, HEAD");
  EXPECT_EQ(route(mux, "POST", "example.com", "/a/b").pattern, "example.com/");
}

TEST(http_serve_mux, path_values) {
  http::serve_mux mux;
  mux.handle("/a/{x}/{rest...}", record_pattern);
  mux.handle("/b/{y}", record_pattern);
  mux.handle("GET /c/{first}/{second}/", record_pattern);
  struct row {
    const char* target;
    const char* pattern;
    std::vector<std::pair<const char*, const char*>> values;
  };
  for (const row& t : std::initializer_list<row>{
           {"/a/hello%20world/c/d%2Fe",
            "/a/{x}/{rest...}",
            {{"x", "hello world"}, {"rest", "c/d/e"}}},
           {"/a/x/", "/a/{x}/{rest...}", {{"x", "x"}, {"rest", ""}}},
           {"/a/x/y/", "/a/{x}/{rest...}", {{"x", "x"}, {"rest", "y/"}}},
           {"/b/%41?q=1", "/b/{y}", {{"y", "A"}, {"x", ""}}},
           {"/b/a%zz", "/b/{y}", {{"y", "a%zz"}}},
           {"/c/1/2/3/4", "GET /c/{first}/{second}/", {{"first", "1"}, {"second", "2"}}},
       }) {
    SCOPED_TRACE(t.target);
    std::vector<std::string> got;
    std::string pattern;
    route(mux, "GET", "h", t.target, [&](const http::request& r) {
      pattern = r.pattern();
      for (const auto& [name, value] : t.values)
        got.push_back(r.path_value(name));
    });
    EXPECT_EQ(pattern, t.pattern);
    ASSERT_EQ(got.size(), t.values.size());
    for (std::size_t i = 0; i < got.size(); ++i)
      EXPECT_EQ(got[i], t.values[i].second);
  }
}

TEST(http_serve_mux, path_values_are_reset_between_requests) {
  http::serve_mux mux;
  mux.handle("/b/{y}", record_pattern);
  std::string y;
  route(mux, "GET", "h", "/nothing", [&](const http::request& r) {
    y = r.path_value("y");
    EXPECT_EQ(r.pattern(), "");
  });
  EXPECT_EQ(y, "");
}

TEST(http_serve_mux, connect_is_not_cleaned) {
  http::serve_mux mux;
  mux.handle("CONNECT /a/../b", record_pattern);
  mux.handle("/", record_pattern);
  // The parser takes authority-form CONNECT targets only; the head is made by hand.
  http::request_head head;
  head.method = "CONNECT";
  head.target = "/a/../b";
  head.host = "h:443";
  http::request r(head, {});
  http::response_recorder rec;
  mux.serve(rec.writer(), r);
  rec.finish();
  EXPECT_EQ(rec.status(), 200);
  EXPECT_EQ(rec.header("X-Pattern"), "CONNECT /a/../b");

  // Authority-form: no path, nothing matches.
  const outcome o = route(mux, "CONNECT", "h:443", "h:443");
  EXPECT_EQ(o.status, 404);
}

// The winner must not depend on the order of registration: every order of these patterns
// routes every path alike.
TEST(http_serve_mux, precedence_is_independent_of_registration_order) {
  std::vector<std::string> patterns = {
      "/item/",           "/item/{user}",      "/item/{user}/new", "/item/{$}",
      "GET /item/{user}", "example.com/item/", "/other/{x}",       "GET /other/new",
  };
  struct row {
    const char* method;
    const char* host;
    const char* target;
    const char* want;
  };
  const std::initializer_list<row> rows = {
      {"GET", "h", "/item/", "/item/{$}"},
      {"GET", "h", "/item/u", "GET /item/{user}"},
      {"POST", "h", "/item/u", "/item/{user}"},
      {"GET", "h", "/item/u/new", "/item/{user}/new"},
      {"GET", "h", "/other/new", "GET /other/new"},
      {"HEAD", "h", "/other/new", "GET /other/new"},
      {"POST", "h", "/other/new", "/other/{x}"},
      {"GET", "h", "/item/u/v", "/item/"},
      {"GET", "example.com", "/item/u", "example.com/item/"},
  };
  std::sort(patterns.begin(), patterns.end());
  int orders = 0;
  do {
    if (orders++ % 4 != 0) continue;  // a quarter of the 40,320 orders keeps the test short
    http::serve_mux mux;
    for (const std::string& p : patterns)
      mux.handle(p, record_pattern);
    for (const row& t : rows)
      ASSERT_EQ(route(mux, t.method, t.host, t.target).pattern, t.want)
          << t.target << " after registering in order #" << orders;
  } while (std::next_permutation(patterns.begin(), patterns.end()));
  EXPECT_EQ(orders, 40320);
}

TEST(http_serve_mux, as_handler_serves_through_the_mux) {
  http::serve_mux mux;
  mux.handle("GET /hello/{name}", [](http::response_writer& w, http::request& r) {
    w.write("hello " + r.path_value("name") + "\n");
  });
  const http::handler h = mux.as_handler();
  const std::string wire = "GET /hello/w%C3%B6rld HTTP/1.1\r\nHost: h\r\n\r\n";
  http::request_parser parser;
  std::array<http::header, 8> fields;
  http::request_head head;
  ASSERT_EQ(parser.parse(wire, fields, head).status, http::parse_status::complete);
  http::request r(head, {});
  http::response_recorder rec;
  h(rec.writer(), r);
  rec.finish();
  EXPECT_EQ(rec.status(), 200);
  EXPECT_EQ(rec.body(), "hello w\xc3\xb6rld\n");
}

}  // namespace
