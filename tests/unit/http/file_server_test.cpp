// Unit: file_server, without sockets: requests parsed from literal bytes, answered into a
// response_recorder (which reads the file the handler hands to send_file). A temporary tree
// made once per suite holds files with known contents and mtimes, a subdirectory with an index,
// one without, awkward names, symbolic links in and out of the root, a FIFO and an unreadable
// file.
#include "nbio/http/file_server.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "nbio/http/parser.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"

namespace {

namespace http = nbio::http;

// Sun, 06 Nov 1994 08:49:37 GMT: the mtime of every file of the tree.
constexpr std::time_t file_time = 784111777;
constexpr std::string_view file_date = "Sun, 06 Nov 1994 08:49:37 GMT";

std::string numbers(std::size_t n) {  // 0123456789012...
  std::string s(n, '0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('0' + i % 10);
  return s;
}

void write_file(const std::string& path, std::string_view content) {
  std::ofstream(path, std::ios::binary) << content;
  const timespec times[2] = {{file_time, 0}, {file_time, 0}};
  ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

class http_file_server : public ::testing::Test {
 protected:
  // base/root: the served tree; base/outside: what links may point at.
  static void SetUpTestSuite() {
    char name[] = "/tmp/nbio-files-XXXXXX";
    ASSERT_NE(::mkdtemp(name), nullptr);
    base_ = name;
    root_ = base_ + "/root";
    for (const char* d : {"/root", "/root/sub", "/root/sub/deeper", "/root/empty", "/outside"})
      ASSERT_EQ(::mkdir((base_ + d).c_str(), 0755), 0);
    write_file(base_ + "/outside/secret.txt", "secret\n");
    write_file(root_ + "/hello.txt", "hello, world\n");
    write_file(root_ + "/data.bin", numbers(1000));
    write_file(root_ + "/empty.txt", "");
    write_file(root_ + "/page.HTML", "<p>hi</p>\n");
    write_file(root_ + "/app.wasm", "\0asm");
    write_file(root_ + "/noext", "x");
    write_file(root_ + "/sub/index.html", "<h1>sub</h1>\n");
    write_file(root_ + "/sub/deeper/a b.txt", "space\n");
    write_file(root_ + "/sub/deeper/<x>&\".txt", "markup\n");
    write_file(root_ + "/secret.txt", "no\n");
    ::chmod((root_ + "/secret.txt").c_str(), 0);
    ASSERT_EQ(::symlink("hello.txt", (root_ + "/link_in").c_str()), 0);
    ASSERT_EQ(::symlink("../outside/secret.txt", (root_ + "/link_out").c_str()), 0);
    ASSERT_EQ(::symlink((base_ + "/outside/secret.txt").c_str(), (root_ + "/link_abs").c_str()), 0);
    ASSERT_EQ(::symlink("../outside", (root_ + "/dir_out").c_str()), 0);
    ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  static std::unique_ptr<http::response_recorder> fetch(const http::handler& h,
                                                        std::string_view method,
                                                        std::string_view target,
                                                        std::string_view fields = "") {
    const std::string wire = std::string(method) + " " + std::string(target) +
                             " HTTP/1.1\r\nHost: t\r\n" + std::string(fields) + "\r\n";
    http::request_parser parser;
    std::array<http::header, 16> headers;
    http::request_head head;
    auto rec = std::make_unique<http::response_recorder>(1, method == "HEAD");
    if (parser.parse(wire, headers, head).status != http::parse_status::complete) {
      ADD_FAILURE() << "does not parse: " << wire;
      return rec;
    }
    http::request r(head, {});
    h(rec->writer(), r);
    rec->finish();
    return rec;
  }

  // Whether this kernel (and seccomp profile) has openat2: links inside the root work then.
  static bool have_openat2() {
#ifdef SYS_openat2
    struct {
      std::uint64_t flags, mode, resolve;
    } how{O_RDONLY | O_CLOEXEC, 0, 0};
    const long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
    if (fd >= 0) ::close(static_cast<int>(fd));
    return fd >= 0;
#else
    return false;
#endif
  }

  static std::string base_;
  static std::string root_;
};

std::string http_file_server::base_;
std::string http_file_server::root_;

const std::string etag_1000 = "\"2ebc98a1-3e8\"";  // data.bin: mtime 0x2ebc98a1, 1000 bytes

// Options with one or two fields changed (designated initialisers that leave fields out warn
// under -Wextra with g++ 12).
http::file_server_options with_index(std::string index, bool list = false) {
  http::file_server_options o;
  o.index = std::move(index);
  o.list_directories = list;
  return o;
}
http::file_server_options listing() {
  return with_index("index.html", true);
}
http::file_server_options with_prefix(std::string prefix) {
  http::file_server_options o;
  o.strip_prefix = std::move(prefix);
  return o;
}
http::file_server_options with_cache_control(std::string value) {
  http::file_server_options o;
  o.cache_control = std::move(value);
  return o;
}

// --- plain files ---------------------------------------------------------------------------

TEST_F(http_file_server, serves_a_file_with_type_length_and_validators) {
  const auto rec = fetch(http::file_server(root_), "GET", "/hello.txt");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->body(), "hello, world\n");
  EXPECT_EQ(rec->header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(rec->header("Content-Length"), "13");
  EXPECT_EQ(rec->header("Last-Modified"), file_date);
  EXPECT_EQ(rec->header("ETag"), "\"2ebc98a1-d\"");
  EXPECT_EQ(rec->header("Accept-Ranges"), "bytes");
  EXPECT_EQ(rec->header("Cache-Control"), "");
}

TEST_F(http_file_server, head_announces_the_length_without_a_body) {
  const auto rec = fetch(http::file_server(root_), "HEAD", "/data.bin");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->header("Content-Length"), "1000");
  EXPECT_EQ(rec->header("ETag"), etag_1000);
  EXPECT_EQ(rec->body(), "");
}

TEST_F(http_file_server, empty_file_has_zero_length) {
  const auto rec = fetch(http::file_server(root_), "GET", "/empty.txt", "Range: bytes=0-5\r\n");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->header("Content-Length"), "0");
  EXPECT_EQ(rec->body(), "");
}

TEST_F(http_file_server, other_methods_get_405_with_allow) {
  for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    SCOPED_TRACE(m);
    const auto rec = fetch(http::file_server(root_), m, "/hello.txt");
    EXPECT_EQ(rec->status(), 405);
    EXPECT_EQ(rec->header("Allow"), "GET, HEAD");
  }
}

TEST_F(http_file_server, content_types_follow_the_extension) {
  const auto h = http::file_server(root_);
  EXPECT_EQ(fetch(h, "GET", "/page.HTML")->header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(fetch(h, "GET", "/app.wasm")->header("Content-Type"), "application/wasm");
  EXPECT_EQ(fetch(h, "GET", "/noext")->header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(fetch(h, "GET", "/data.bin")->header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(fetch(h, "GET", "/sub/")->header("Content-Type"), "text/html; charset=utf-8");
}

TEST_F(http_file_server, percent_escapes_are_decoded) {
  const auto rec = fetch(http::file_server(root_), "GET", "/sub/deeper/a%20b.txt");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->body(), "space\n");
}

TEST_F(http_file_server, cache_control_goes_on_files_and_304s) {
  const auto h = http::file_server(root_, with_cache_control("max-age=60"));
  EXPECT_EQ(fetch(h, "GET", "/hello.txt")->header("Cache-Control"), "max-age=60");
  const auto rec = fetch(h, "GET", "/data.bin", "If-None-Match: " + etag_1000 + "\r\n");
  EXPECT_EQ(rec->status(), 304);
  EXPECT_EQ(rec->header("Cache-Control"), "max-age=60");
}

// --- errors --------------------------------------------------------------------------------

TEST_F(http_file_server, missing_files_get_404_without_the_path) {
  const auto h = http::file_server(root_);
  for (const char* t : {"/nope", "/hello.txt/x", "/hello.txt/", "/sub/nope.html"}) {
    SCOPED_TRACE(t);
    const auto rec = fetch(h, "GET", t);
    EXPECT_EQ(rec->status(), 404);
    EXPECT_EQ(rec->body(), "404 page not found\n");
  }
}

// Drops the capabilities that let root read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
// from this thread's effective set while it lives, so that a mode-0 file is unreadable to the
// test whoever runs it (as root on CI too). Capabilities are per thread, and file_server opens
// files on the calling thread. The raw capget/capset calls: libcap is not a dependency.
class dac_override_dropped {
 public:
  dac_override_dropped() {
    if (::syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct lowered[2] = {saved_[0], saved_[1]};
    lowered[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    dropped_ = ::syscall(SYS_capset, &header_, lowered) == 0;
  }
  ~dac_override_dropped() {
    if (dropped_) ::syscall(SYS_capset, &header_, saved_);
  }
  dac_override_dropped(const dac_override_dropped&) = delete;
  dac_override_dropped& operator=(const dac_override_dropped&) = delete;

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved_[2]{};
  bool dropped_ = false;
};

TEST_F(http_file_server, unreadable_file_gets_403) {
  const dac_override_dropped as_a_plain_user;
  const auto rec = fetch(http::file_server(root_), "GET", "/secret.txt");
  EXPECT_EQ(rec->status(), 403);
  EXPECT_EQ(rec->body().find(root_), std::string::npos);
}

TEST_F(http_file_server, fifo_gets_404_without_blocking) {
  EXPECT_EQ(fetch(http::file_server(root_), "GET", "/fifo")->status(), 404);
}

TEST_F(http_file_server, traversal_and_odd_bytes_get_404) {
  const auto h = http::file_server(root_);
  for (const char* t : {"/../outside/secret.txt", "/%2e%2e/outside/secret.txt",
                        "/sub/%2E%2E/hello.txt", "/sub/..%2fhello.txt", "/..", "/hello.txt%00",
                        "/sub%5c..%5chello.txt", "/sub%5cindex.html"}) {
    SCOPED_TRACE(t);
    const auto rec = fetch(h, "GET", t);
    EXPECT_EQ(rec->status(), 404);
    EXPECT_EQ(rec->body(), "404 page not found\n");
  }
}

TEST_F(http_file_server, symlinks_out_of_the_root_get_404) {
  const auto h = http::file_server(root_);
  for (const char* t : {"/link_out", "/link_abs", "/dir_out/secret.txt", "/dir_out/"}) {
    SCOPED_TRACE(t);
    const auto rec = fetch(h, "GET", t);
    EXPECT_EQ(rec->status(), 404);
    EXPECT_EQ(rec->body().find("secret"), std::string::npos);
  }
}

TEST_F(http_file_server, symlink_inside_the_root_is_followed_with_openat2) {
  const auto rec = fetch(http::file_server(root_), "GET", "/link_in");
  if (have_openat2()) {
    EXPECT_EQ(rec->status(), 200);
    EXPECT_EQ(rec->body(), "hello, world\n");
  } else {
    EXPECT_EQ(rec->status(), 404);  // the fallback follows no link
  }
}

TEST_F(http_file_server, bad_roots_and_indexes_throw_invalid_argument) {
  EXPECT_THROW(http::file_server(root_ + "/nope"), std::invalid_argument);
  EXPECT_THROW(http::file_server(root_ + "/hello.txt"), std::invalid_argument);
  EXPECT_THROW(http::file_server(root_, with_index("a/index.html")), std::invalid_argument);
  EXPECT_THROW(http::file_server(root_, with_index("..")), std::invalid_argument);
}

// --- directories ---------------------------------------------------------------------------

TEST_F(http_file_server, directory_without_slash_redirects_relative_keeping_the_query) {
  const auto h = http::file_server(root_);
  auto rec = fetch(h, "GET", "/sub?x=1&y=2");
  EXPECT_EQ(rec->status(), 301);
  EXPECT_EQ(rec->header("Location"), "sub/?x=1&y=2");
  rec = fetch(h, "GET", "/sub/deeper");
  EXPECT_EQ(rec->status(), 301);
  EXPECT_EQ(rec->header("Location"), "deeper/");
}

TEST_F(http_file_server, directory_serves_its_index) {
  const auto rec = fetch(http::file_server(root_), "GET", "/sub/");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->body(), "<h1>sub</h1>\n");
  EXPECT_EQ(rec->header("ETag"), "\"2ebc98a1-d\"");
}

TEST_F(http_file_server, directory_without_index_gets_403_unless_listed) {
  EXPECT_EQ(fetch(http::file_server(root_), "GET", "/sub/deeper/")->status(), 403);
  EXPECT_EQ(fetch(http::file_server(root_, with_index("")), "GET", "/sub/")->status(), 403);
}

TEST_F(http_file_server, listing_escapes_names_and_marks_directories) {
  const auto h = http::file_server(root_, listing());
  auto rec = fetch(h, "GET", "/sub/deeper/");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(rec->body().find("<a href=\"./%3Cx%3E%26%22.txt\">&lt;x&gt;&amp;&#34;.txt</a>"),
            std::string::npos)
      << rec->body();
  EXPECT_NE(rec->body().find("<a href=\"./a%20b.txt\">a b.txt</a>"), std::string::npos)
      << rec->body();
  rec = fetch(http::file_server(root_, with_index("", true)), "GET", "/sub/");
  EXPECT_NE(rec->body().find("<a href=\"./deeper/\">deeper/</a>"), std::string::npos)
      << rec->body();
  EXPECT_NE(rec->body().find("index.html</a>"), std::string::npos) << rec->body();
}

TEST_F(http_file_server, strip_prefix_maps_below_it_and_404s_outside) {
  const auto h = http::file_server(root_, with_prefix("/static/"));
  auto rec = fetch(h, "GET", "/static/hello.txt");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->body(), "hello, world\n");
  EXPECT_EQ(fetch(h, "GET", "/hello.txt")->status(), 404);
  EXPECT_EQ(fetch(h, "GET", "/staticx/hello.txt")->status(), 404);
  EXPECT_EQ(fetch(h, "GET", "/%73tatic/hello.txt")->status(), 200);  // matched decoded
  rec = fetch(h, "GET", "/static");
  EXPECT_EQ(rec->status(), 301);
  EXPECT_EQ(rec->header("Location"), "static/");
  EXPECT_EQ(fetch(h, "GET", "/static/sub/")->body(), "<h1>sub</h1>\n");
}

// --- conditional requests --------------------------------------------------------------------

TEST_F(http_file_server, if_none_match_gives_304_with_validators_and_no_body) {
  const auto h = http::file_server(root_);
  for (const std::string& v : {etag_1000, "W/" + etag_1000, std::string("*"),
                               "\"other\", W/" + etag_1000, "\"a\",," + etag_1000 + " "}) {
    SCOPED_TRACE(v);
    for (const char* m : {"GET", "HEAD"}) {
      const auto rec = fetch(h, m, "/data.bin", "If-None-Match: " + v + "\r\n");
      EXPECT_EQ(rec->status(), 304);
      EXPECT_EQ(rec->header("ETag"), etag_1000);
      EXPECT_EQ(rec->header("Last-Modified"), file_date);
      EXPECT_EQ(rec->header("Content-Length"), "");
      EXPECT_EQ(rec->body(), "");
    }
  }
  const auto rec = fetch(h, "GET", "/data.bin", "If-None-Match: \"2ebc98a1-3e9\", \"x\"\r\n");
  EXPECT_EQ(rec->status(), 200);
}

TEST_F(http_file_server, if_modified_since_in_each_date_format) {
  const auto h = http::file_server(root_);
  for (const char* v : {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                        "Sun Nov  6 08:49:37 1994", "Mon, 07 Nov 1994 00:00:00 GMT"}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(
        fetch(h, "GET", "/data.bin", std::string("If-Modified-Since: ") + v + "\r\n")->status(),
        304);
  }
  for (const char* v : {"Sun, 06 Nov 1994 08:49:36 GMT", "yesterday", "Sun, 06 Nov 1994"}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(
        fetch(h, "GET", "/data.bin", std::string("If-Modified-Since: ") + v + "\r\n")->status(),
        200);
  }
}

TEST_F(http_file_server, if_none_match_overrides_if_modified_since) {
  const auto rec = fetch(http::file_server(root_), "GET", "/data.bin",
                         "If-None-Match: \"x\"\r\nIf-Modified-Since: Mon, 07 Nov 1994 "
                         "00:00:00 GMT\r\n");
  EXPECT_EQ(rec->status(), 200);
}

TEST_F(http_file_server, if_match_and_if_unmodified_since_give_412) {
  const auto h = http::file_server(root_);
  EXPECT_EQ(fetch(h, "GET", "/data.bin", "If-Match: \"x\"\r\n")->status(), 412);
  EXPECT_EQ(fetch(h, "GET", "/data.bin", "If-Match: W/" + etag_1000 + "\r\n")->status(), 412);
  EXPECT_EQ(fetch(h, "GET", "/data.bin", "If-Match: \"x\", " + etag_1000 + "\r\n")->status(), 200);
  EXPECT_EQ(fetch(h, "GET", "/data.bin", "If-Match: *\r\n")->status(), 200);
  EXPECT_EQ(fetch(h, "GET", "/data.bin", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n")
                ->status(),
            412);
  EXPECT_EQ(fetch(h, "GET", "/data.bin", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
                ->status(),
            200);
  // If-Match wins over If-Unmodified-Since.
  EXPECT_EQ(
      fetch(h, "GET", "/data.bin",
            "If-Match: " + etag_1000 + "\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n")
          ->status(),
      200);
}

// --- ranges --------------------------------------------------------------------------------

struct range_case {
  const char* range;
  int status;
  const char* content_range;  // "" when none
  std::size_t first, length;  // of data.bin's bytes, for 206
};

TEST_F(http_file_server, range_requests) {
  const auto h = http::file_server(root_);
  const std::string data = numbers(1000);
  for (const range_case& c : {
           range_case{"bytes=100-199", 206, "bytes 100-199/1000", 100, 100},
           range_case{"bytes=900-", 206, "bytes 900-999/1000", 900, 100},
           range_case{"bytes=-100", 206, "bytes 900-999/1000", 900, 100},
           range_case{"bytes=-5000", 206, "bytes 0-999/1000", 0, 1000},
           range_case{"bytes=990-2000", 206, "bytes 990-999/1000", 990, 10},
           range_case{"bytes=0-0", 206, "bytes 0-0/1000", 0, 1},
           range_case{"Bytes = 5-9", 206, "bytes 5-9/1000", 5, 5},
           range_case{"bytes=0-10, 5-20", 206, "bytes 0-20/1000", 0, 21},  // merged
           range_case{"bytes=0-9,10-19", 206, "bytes 0-19/1000", 0, 20},   // adjacent: merged
           range_case{"bytes=0-1, 5-6", 200, "", 0, 1000},  // no multipart/byteranges
           range_case{"bytes=1000-", 416, "bytes */1000", 0, 0},
           range_case{"bytes=-0", 416, "bytes */1000", 0, 0},
           range_case{"bytes=2000-3000, -0", 416, "bytes */1000", 0, 0},
           range_case{"bytes=5-1", 200, "", 0, 1000},  // malformed: ignored
           range_case{"bytes=a-b", 200, "", 0, 1000},
           range_case{"bytes=", 200, "", 0, 1000},
           range_case{"items=0-1", 200, "", 0, 1000},
           range_case{"bytes=1", 200, "", 0, 1000},
       }) {
    SCOPED_TRACE(c.range);
    const auto rec = fetch(h, "GET", "/data.bin", std::string("Range: ") + c.range + "\r\n");
    EXPECT_EQ(rec->status(), c.status);
    EXPECT_EQ(rec->header("Content-Range"), c.content_range);
    EXPECT_EQ(rec->header("Accept-Ranges"), "bytes");
    if (c.status != 416) {
      EXPECT_EQ(rec->header("Content-Length"), std::to_string(c.length));
      EXPECT_TRUE(rec->body() == data.substr(c.first, c.length));
    }
  }
}

TEST_F(http_file_server, if_range_decides_between_206_and_200) {
  const auto h = http::file_server(root_);
  const auto status = [&](const std::string& if_range) {
    return fetch(h, "GET", "/data.bin", "Range: bytes=0-9\r\nIf-Range: " + if_range + "\r\n")
        ->status();
  };
  EXPECT_EQ(status(etag_1000), 206);
  EXPECT_EQ(status("W/" + etag_1000), 200);  // strong comparison
  EXPECT_EQ(status("\"other\""), 200);
  EXPECT_EQ(status(std::string(file_date)), 206);
  EXPECT_EQ(status("Mon, 07 Nov 1994 00:00:00 GMT"), 200);  // only an exact date
}

TEST_F(http_file_server, range_is_ignored_for_head) {
  const auto rec = fetch(http::file_server(root_), "HEAD", "/data.bin", "Range: bytes=0-9\r\n");
  EXPECT_EQ(rec->status(), 200);
  EXPECT_EQ(rec->header("Content-Length"), "1000");
}

}  // namespace
