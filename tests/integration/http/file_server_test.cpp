// Integration: http::file_server behind nbio::http::server over real loopback sockets, in each
// I/O mode, with curl as the client: a 5 MiB download compared byte for byte, a range, the
// conditional round trips (-z and If-None-Match) giving 304, HEAD, and traversal attempts sent
// as they are (--path-as-is). Skipped where curl is missing. Blocking and mixed runs carry the
// threading label ("threading_" in the name).
#include "nbio/http/file_server.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "support/http_test_server.hpp"
#include "support/io_mode_name.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/tool_run.hpp"

namespace {

using namespace nbio_test;

constexpr std::size_t big_size = 5u << 20;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The value of `name` in the last head of a `curl -i` / `curl -I` output ("" when absent).
std::string field(const std::string& out, const std::string& name) {
  const std::size_t head = out.rfind("HTTP/1.1 ");
  const std::size_t at = out.find("\r\n" + name + ": ", head == std::string::npos ? 0 : head);
  if (at == std::string::npos) return {};
  const std::size_t start = at + name.size() + 4;
  return out.substr(start, out.find("\r\n", start) - start);
}

// The body after the last head of a `curl -i` output.
std::string last_body(const std::string& out) {
  const std::size_t head = out.rfind("HTTP/1.1 ");
  if (head == std::string::npos) return {};
  const std::size_t end = out.find("\r\n\r\n", head);
  return end == std::string::npos ? std::string() : out.substr(end + 4);
}

// Each test: a temporary tree (base/root served, base/secret.txt beside it) and a server.
class http_file_server_curl : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  void SetUp() override {
    if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
    char name[] = "/tmp/nbio-files-it-XXXXXX";
    ASSERT_NE(::mkdtemp(name), nullptr);
    base_ = name;
    root_ = base_ + "/root";
    std::filesystem::create_directory(root_);
    big_ = pattern(0, big_size);
    std::ofstream(root_ + "/big.bin", std::ios::binary) << big_;
    std::ofstream(root_ + "/hello.txt", std::ios::binary) << "hello, world\n";
    std::ofstream(base_ + "/secret.txt", std::ios::binary) << "secret\n";
    srv_ = std::make_unique<http_test_server>(nbio::http::file_server(root_),
                                              nbio::http::server_options{}, listen_for(GetParam()));
  }
  void TearDown() override {
    srv_.reset();
    if (!base_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(base_, ec);
    }
  }

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(srv_->address().port()) + std::string(path);
  }
  tool_run curl(const std::string& args) { return run_tool("curl -s --max-time 20 " + args); }

  std::string base_, root_, big_;
  std::unique_ptr<http_test_server> srv_;
};

TEST_P(http_file_server_curl, downloads_a_5_mib_file_whole) {
  const std::string out = base_ + "/download.bin";
  const tool_run r = curl("-o " + out + " -w '%{http_code} %{size_download}' " + url("/big.bin"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "200 " + std::to_string(big_size));
  EXPECT_TRUE(read_all(out) == big_) << "the download differs from the file";
}

TEST_P(http_file_server_curl, range_gets_206_with_those_bytes) {
  const tool_run r = curl("-i -r 100-199 " + url("/big.bin"));
  ASSERT_EQ(r.status, 0) << r.output.substr(0, 500);
  EXPECT_EQ(r.output.rfind("HTTP/1.1 206 Partial Content\r\n", 0), 0u) << r.output.substr(0, 500);
  EXPECT_EQ(field(r.output, "Content-Range"), "bytes 100-199/" + std::to_string(big_size));
  EXPECT_EQ(field(r.output, "Content-Length"), "100");
  EXPECT_TRUE(last_body(r.output) == big_.substr(100, 100));
}

TEST_P(http_file_server_curl, conditional_requests_round_trip_to_304) {
  const tool_run first = curl("-I " + url("/hello.txt"));
  ASSERT_EQ(first.status, 0) << first.output;
  const std::string etag = field(first.output, "ETag");
  const std::string modified = field(first.output, "Last-Modified");
  ASSERT_FALSE(etag.empty()) << first.output;
  ASSERT_FALSE(modified.empty()) << first.output;

  tool_run r = curl("-i -H 'If-None-Match: " + etag + "' " + url("/hello.txt"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u) << r.output;
  EXPECT_EQ(field(r.output, "ETag"), etag);
  EXPECT_EQ(last_body(r.output), "");

  r = curl("-i -z '" + modified + "' " + url("/hello.txt"));  // If-Modified-Since
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u) << r.output;

  r = curl("-i -z 'Thu, 01 Jan 1998 00:00:00 GMT' " + url("/hello.txt"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.output;
  EXPECT_EQ(last_body(r.output), "hello, world\n");
}

TEST_P(http_file_server_curl, head_gets_the_length_and_no_body) {
  const tool_run r = curl("-I " + url("/big.bin"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.output;
  EXPECT_EQ(field(r.output, "Content-Length"), std::to_string(big_size));
  EXPECT_EQ(field(r.output, "Accept-Ranges"), "bytes");
  EXPECT_EQ(last_body(r.output), "");
  // The connection stays in step after a HEAD of a large file: a GET on it (curl reuses the
  // connection across --next: num_connects 0) gets its own response.
  const tool_run two =
      curl("-I " + url("/big.bin") + " --next -s --max-time 20 -w ' %{http_code} " +
           "%{num_connects}' " + url("/hello.txt"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_EQ(last_body(two.output), "hello, world\n 200 0") << two.output;
}

TEST_P(http_file_server_curl, traversal_attempts_are_refused) {
  for (const char* path : {"/../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                           "/%2e%2e/secret.txt", "/..%2fsecret.txt"}) {
    SCOPED_TRACE(path);
    const tool_run r = curl("-i --path-as-is " + url(path));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << r.output;
    EXPECT_EQ(r.output.find("root:"), std::string::npos);
    EXPECT_EQ(r.output.find("secret"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(http_files_loop, http_file_server_curl,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_files_blocking, http_file_server_curl,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_files_mixed, http_file_server_curl,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);

}  // namespace
