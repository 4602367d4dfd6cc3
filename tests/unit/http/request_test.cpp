// Unit: request's target split, query decoding and host; response_writer's field sanitising.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "nbio/http/parser.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"

namespace {

using namespace nbio::http;

// Parses `raw` (a whole head) into `head`, views into `raw`.
void parse(const std::string& raw, std::array<header, 16>& fields, request_head& head) {
  request_parser p;
  ASSERT_EQ(p.parse(raw, fields, head).status, parse_status::complete) << raw;
}

TEST(http_request, path_query_and_decoding) {
  const std::string raw = "GET /a%20b/c?x=1&y=a+b%26c&flag&x=2 HTTP/1.1\r\nHost: h\r\n\r\n";
  std::array<header, 16> fields;
  request_head head;
  parse(raw, fields, head);
  request r(head, "");
  EXPECT_EQ(r.path(), "/a%20b/c");
  EXPECT_EQ(r.raw_query(), "x=1&y=a+b%26c&flag&x=2");
  EXPECT_EQ(r.query("x"), "1");  // the first
  EXPECT_EQ(r.query("y"), "a b&c");
  EXPECT_TRUE(r.has_query("flag"));
  EXPECT_EQ(r.query("flag"), "");
  EXPECT_FALSE(r.has_query("nope"));
  EXPECT_EQ(percent_decode("%41%zz%4"), "A%zz%4");
}

// RFC 9112 3.2.2: an absolute-form target's authority is the host, whatever Host says.
TEST(http_request, absolute_form_authority_wins_over_host) {
  const std::string raw =
      "GET http://user@real.example:8080/p?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n";
  std::array<header, 16> fields;
  request_head head;
  parse(raw, fields, head);
  request r(head, "");
  EXPECT_EQ(r.host(), "real.example:8080");
  EXPECT_EQ(r.path(), "/p");
  EXPECT_EQ(r.raw_query(), "q=1");
}

// Response splitting: a value taken from a request cannot end the field or the head.
TEST(http_response_writer, fields_cannot_split_the_response) {
  response_recorder rec;
  rec.writer().set_header("Location", "/x\r\nSet-Cookie: evil=1\r\n\r\nHTTP/1.1 200 OK");
  rec.writer().set_header("Bad Name", "v");  // not a token: dropped
  rec.writer().set_header("X-Nul", std::string("a\0b", 3));
  rec.writer().write_header(302);
  rec.finish();
  EXPECT_EQ(rec.status(), 302);
  EXPECT_EQ(rec.header("Set-Cookie"), "");
  EXPECT_EQ(rec.header("Location"), "/x  Set-Cookie: evil=1    HTTP/1.1 200 OK");
  EXPECT_EQ(rec.header("Bad Name"), "");
  EXPECT_EQ(rec.header("X-Nul"), "a b");
}

}  // namespace
