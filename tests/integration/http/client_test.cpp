// Integration: nbio::http::client over real loopback sockets, against three kinds of peer:
// Debian's nginx (keep-alive, redirects, a sendfile'd file, ranges, HEAD, keepalive_requests),
// nbio's own http::server (request bodies whole and streamed, streamed responses, the per-host
// connection cap), and raw sockets that misbehave (silence, refusal, garbage, oversized heads
// and bodies, closes at the wrong moment). Every request has a timeout; every wait is bounded.
// Cases with threads besides the loops carry the threading label ("threading_" in the name).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nbio/http/client.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"
#include "support/http_test_server.hpp"
#include "support/nginx_server.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using nbio::http::client;
using nbio::http::client_errc;
using nbio::http::client_options;
using nbio::http::client_request;
using nbio::http::client_response;

// The client under test on an engine of its own (2 loops). The client goes first (no request
// is in flight when a test ends), then the engine.
struct client_rig {
  nbio::engine eng{{.loops = 2}};
  std::unique_ptr<client> cl;
  explicit client_rig(client_options cfg = {}) {
    eng.start();
    // No test waits the default 30 s for a request that went wrong.
    if (cfg.request_timeout == std::chrono::milliseconds(30'000)) cfg.request_timeout = 10s;
    cl = std::make_unique<client>(eng, std::move(cfg));
  }
  ~client_rig() {
    cl.reset();
    eng.stop();
  }
  client_response fetch(client_request req, std::error_code& ec) {
    return cl->fetch(std::move(req), ec);
  }
};

// A plain listening socket on 127.0.0.1 served by threads: each accepted connection runs
// script(fd, n) on a thread of its own (n counts connections from 0); the socket closes when
// the script returns.
class raw_server {
 public:
  using script = std::function<void(int fd, int n)>;
  explicit raw_server(script s) : script_(std::move(s)) {
    fd_ = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(fd_.get(), 64) != 0)
      throw std::runtime_error("raw_server: bind/listen");
    port_ = local_address_of(fd_.get()).port();
    acceptor_ = std::thread([this] { run(); });
  }
  ~raw_server() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(m_);
    for (auto& t : conns_)
      t.join();
  }
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  int connections() const noexcept { return accepted_.load(); }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const int n = accepted_++;
      std::lock_guard lock(m_);
      conns_.emplace_back([this, c, n] {
        unique_fd fd(c);
        script_(c, n);
      });
    }
  }
  script script_;
  unique_fd fd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex m_;
  std::vector<std::thread> conns_;
  std::thread acceptor_;
};

// Reads one request (head, and a Content-Length body) from a blocking socket; "" on EOF or
// after `timeout`.
std::string read_request(int fd, std::chrono::milliseconds timeout = 5s) {
  std::string in;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t need = std::string::npos;
  while (in.size() < need) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    in.append(buf, static_cast<std::size_t>(n));
    const std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos && need == std::string::npos) {
      need = end + 4;
      const std::size_t cl = in.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) need += std::stoul(in.substr(cl + 16));
    }
  }
  return in;
}

void send_str(int fd, std::string_view s) {
  send_all(fd, s);
}

const std::string ok_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// --- nginx -------------------------------------------------------------------------------------

constexpr const char* nginx_locations = R"(
    location = / { return 200 "c=$connection n=$connection_requests\n"; }
    location /ka3 { keepalive_requests 3; return 200 "c=$connection n=$connection_requests\n"; }
    location /redir { return 302 /final; }
    location /final { return 200 "final\n"; }
    location /loop { return 302 /loop; }
    location /notfound { return 404; }
)";

class http_client_nginx : public ::testing::Test {
 protected:
  void SetUp() override {
    ngx_ = std::make_unique<nginx_server>(nginx_locations);
    if (!ngx_->available()) NBIO_PEER_MISSING("no " << nginx_server::binary);
    ngx_->put_file("big.bin", file_);
    ASSERT_TRUE(ngx_->start()) << ngx_->error_log();
  }
  // "c=<connection> n=<request on it>" from the body.
  static std::pair<long, long> conn_and_number(const std::string& body) {
    long c = -1, n = -1;
    std::sscanf(body.c_str(), "c=%ld n=%ld", &c, &n);
    return {c, n};
  }
  const std::string file_ = pattern(0, (1u << 20) + 123);
  std::unique_ptr<nginx_server> ngx_;
};

TEST_F(http_client_nginx, sequential_requests_reuse_one_keep_alive_connection) {
  client_rig rig;
  long first = -1;
  for (long i = 1; i <= 5; ++i) {
    std::error_code ec;
    client_response r = rig.fetch({.url = ngx_->url("/")}, ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(r.status, 200);
    auto [c, n] = conn_and_number(r.body);
    if (i == 1) first = c;
    EXPECT_EQ(c, first) << r.body;
    EXPECT_EQ(n, i) << r.body;
  }
}

TEST_F(http_client_nginx, relative_redirect_is_followed) {
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = ngx_->url("/redir")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "final\n");
  EXPECT_EQ(r.url, ngx_->url("/final"));
}

TEST_F(http_client_nginx, redirect_loop_fails_with_too_many_redirects) {
  client_rig rig({.max_redirects = 5});
  std::error_code ec;
  client_response r = rig.fetch({.url = ngx_->url("/loop")}, ec);
  EXPECT_EQ(ec, client_errc::too_many_redirects);
  EXPECT_EQ(r.status, 302);
}

TEST_F(http_client_nginx, max_redirects_zero_returns_the_redirect) {
  client_rig rig({.max_redirects = 0});
  std::error_code ec;
  client_response r = rig.fetch({.url = ngx_->url("/redir")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("location"), "/final");
}

TEST_F(http_client_nginx, sendfile_body_arrives_byte_for_byte_and_range_gets_206) {
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = ngx_->url("/big.bin")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body.size(), file_.size());
  EXPECT_EQ(pattern_mismatch(r.body), std::string::npos);
  EXPECT_EQ(r.header("Content-Length"), std::to_string(file_.size()));

  r = rig.fetch({.url = ngx_->url("/big.bin"), .headers = {{"Range", "bytes=1000-1999"}}}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, file_.substr(1000, 1000));
}

TEST_F(http_client_nginx, streamed_response_pieces_add_up_to_the_file) {
  client_rig rig;
  std::string got;
  int pieces = 0;
  std::error_code ec;
  client_response r = rig.fetch({.url = ngx_->url("/big.bin"),
                                 .on_body =
                                     [&](std::string_view p) {
                                       got.append(p);
                                       ++pieces;
                                     }},
                                ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(got, file_);
  EXPECT_GT(pieces, 1);
}

TEST_F(http_client_nginx, head_has_content_length_and_no_body) {
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.method = "HEAD", .url = ngx_->url("/big.bin")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), std::to_string(file_.size()));
  EXPECT_TRUE(r.body.empty());
  // The connection is still in step: the next request on it works.
  r = rig.fetch({.url = ngx_->url("/final")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.body, "final\n");
}

TEST_F(http_client_nginx, not_found_is_a_response_not_an_error) {
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = ngx_->url("/notfound")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.reason, "Not Found");
}

TEST_F(http_client_nginx, server_closing_after_keepalive_requests_is_handled) {
  client_rig rig;
  std::set<long> conns;
  for (int i = 0; i < 10; ++i) {
    std::error_code ec;
    client_response r = rig.fetch({.url = ngx_->url("/ka3")}, ec);
    ASSERT_FALSE(ec) << "request " << i << ": " << ec.message();
    ASSERT_EQ(r.status, 200);
    auto [c, n] = conn_and_number(r.body);
    EXPECT_LE(n, 3) << r.body;
    conns.insert(c);
  }
  EXPECT_GE(conns.size(), 4u);
}

// --- nbio's own server -------------------------------------------------------------------------

constexpr int stream_parts = 4;

// /echo: the body, with X-Framing (chunked or length); /stream: stream_parts pieces, 30 ms
// apart, from a thread (a deferred, flushed response); /slow: the client's port after 5 ms.
struct app_state {
  std::mutex m;
  std::set<std::uint16_t> ports;
  std::vector<std::thread> threads;
  ~app_state() {
    for (auto& t : threads)
      t.join();
  }
};

nbio::http::handler app(app_state& st) {
  return [&st](nbio::http::response_writer& w, nbio::http::request& r) {
    if (r.path() == "/echo") {
      w.set_header("X-Framing", r.header("Transfer-Encoding").empty() ? "length" : "chunked");
      w.write(r.body());
    } else if (r.path() == "/stream") {
      auto d = std::make_shared<nbio::http::deferred_response>(w.defer());
      std::lock_guard lock(st.m);
      st.threads.emplace_back([d] {
        for (int i = 0; i < stream_parts; ++i) {
          d->writer().write("part " + std::to_string(i) + "\n");
          d->writer().flush();
          std::this_thread::sleep_for(30ms);
        }
        d->finish();
      });
    } else if (r.path() == "/slow") {
      {
        std::lock_guard lock(st.m);
        st.ports.insert(r.remote_address().port());
      }
      std::this_thread::sleep_for(5ms);
      w.write(std::to_string(r.remote_address().port()));
    } else {
      w.write_header(404);
    }
  };
}

class http_client_server : public ::testing::Test {
 protected:
  std::string url(std::string_view path) const {
    return "http://" + srv_.address().to_string() + std::string(path);
  }
  app_state st_;
  http_test_server srv_{app(st_)};
};

TEST_F(http_client_server, post_body_is_echoed) {
  client_rig rig;
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{3u << 20}}) {
    const std::string body = random_payload(size, size);
    std::error_code ec;
    client_response r = rig.fetch({.method = "POST", .url = url("/echo"), .body = body}, ec);
    ASSERT_FALSE(ec) << size << ": " << ec.message();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("X-Framing"), "length");
    EXPECT_TRUE(r.body == body) << size << " bytes sent, " << r.body.size() << " back";
  }
}

TEST_F(http_client_server, streamed_request_body_is_sent_chunked) {
  client_rig rig;
  for (std::size_t piece : {std::size_t{7}, std::size_t{200'000}}) {
    std::string expected;
    int calls = 0;
    client_request req{.method = "PUT", .url = url("/echo")};
    req.body_source = [&](std::string& out) {
      if (calls < 12) {
        std::string p = random_payload(piece, static_cast<std::uint64_t>(calls));
        expected += p;
        out += p;
      }
      return ++calls <= 12;
    };
    std::error_code ec;
    client_response r = rig.fetch(std::move(req), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("X-Framing"), "chunked");
    EXPECT_EQ(r.body.size(), expected.size());
    EXPECT_TRUE(r.body == expected);
  }
}

TEST_F(http_client_server, streamed_response_arrives_piece_by_piece) {
  client_rig rig;
  std::vector<std::string> pieces;
  std::error_code ec;
  client_response r = rig.fetch(
      {.url = url("/stream"), .on_body = [&](std::string_view p) { pieces.emplace_back(p); }}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Transfer-Encoding"), "chunked");
  std::string all;
  for (const auto& p : pieces)
    all += p;
  EXPECT_EQ(all, "part 0\npart 1\npart 2\npart 3\n");
  EXPECT_GE(pieces.size(), 2u);  // 30 ms apart: not one read
  EXPECT_TRUE(r.body.empty());
}

TEST_F(http_client_server, max_conns_per_host_caps_concurrent_connections) {
  client_rig rig({.max_conns_per_host = 2});
  constexpr int n = 20;
  std::atomic<int> ok{0}, done{0};
  for (int i = 0; i < n; ++i)
    rig.cl->send({.url = url("/slow")}, [&](std::error_code ec, client_response&& r) {
      if (!ec && r.status == 200) ++ok;
      ++done;
    });
  ASSERT_TRUE(wait_until([&] { return done.load() == n; }));
  EXPECT_EQ(ok.load(), n);
  std::lock_guard lock(st_.m);
  EXPECT_EQ(st_.ports.size(), 2u);
}

TEST_F(http_client_server, invalid_requests_fail_before_sending) {
  client_rig rig;
  const std::vector<std::pair<client_request, std::error_code>> cases = {
      {{.url = "wss://127.0.0.1/"}, client_errc::unsupported_scheme},
      {{.url = "ftp://127.0.0.1/"}, client_errc::unsupported_scheme},
      {{.url = "127.0.0.1/x"}, client_errc::bad_url},
      {{.url = "http:///x"}, client_errc::bad_url},
      {{.url = "http://127.0.0.1:99999/"}, client_errc::bad_url},
      {{.url = url("/a b")}, client_errc::bad_url},
      {{.url = url("/a\r\nX: y")}, client_errc::bad_url},
      {{.method = "GE T", .url = url("/echo")}, client_errc::bad_method},
      {{.url = url("/echo"), .headers = {{"X-A", "1\r\nX-Smuggled: 1"}}}, client_errc::bad_header},
      {{.url = url("/echo"), .headers = {{"X-A", std::string("a\0b", 3)}}},
       client_errc::bad_header},
      {{.url = url("/echo"), .headers = {{"Bad Name", "v"}}}, client_errc::bad_header},
  };
  for (const auto& [req, want] : cases) {
    std::error_code ec;
    rig.fetch(req, ec);
    EXPECT_EQ(ec, want) << req.url << ": " << ec.message();
  }
  EXPECT_EQ(srv_.server().requests_served(), 0u);
}

TEST_F(http_client_server, fetch_on_a_loop_thread_throws) {
  client_rig rig;
  std::promise<bool> threw;
  rig.eng.loop_at(0).post([&] {
    try {
      std::error_code ec;
      rig.cl->fetch({.url = url("/echo")}, ec);
      threw.set_value(false);
    } catch (const std::logic_error&) {
      threw.set_value(true);
    }
  });
  auto f = threw.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

TEST_F(http_client_server, send_from_a_loop_thread_completes_on_that_loop) {
  client_rig rig;
  std::promise<bool> same_loop;
  rig.eng.loop_at(1).post([&] {
    rig.cl->send({.url = url("/echo")}, [&](std::error_code ec, client_response&&) {
      same_loop.set_value(!ec && rig.eng.loop_at(1).in_loop_thread());
    });
  });
  auto f = same_loop.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

// --- misbehaving servers -----------------------------------------------------------------------

TEST(http_client_misbehaving, server_that_never_answers_times_out) {
  raw_server srv([](int fd, int) { recv_until_eof(fd, 10s); });
  client_rig rig({.request_timeout = 200ms});
  std::error_code ec;
  const auto t0 = std::chrono::steady_clock::now();
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, client_errc::request_timeout);
  EXPECT_EQ(ec, std::errc::timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  // The per-request override.
  rig.fetch({.url = srv.url(), .timeout = 100ms}, ec);
  EXPECT_EQ(ec, client_errc::request_timeout);
}

TEST(http_client_misbehaving, connection_refused_is_an_error) {
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = "http://127.0.0.1:" + std::to_string(unused_tcp_port()) + "/"}, ec);
  EXPECT_EQ(ec, std::errc::connection_refused) << ec.message();
}

TEST(http_client_misbehaving, connect_that_never_completes_times_out) {
  // A listener that never accepts, its backlog full: the kernel drops further SYNs, so a
  // connect stays in SYN_SENT.
  unique_fd lst(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lst.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(lst.get(), 0), 0);
  const nbio::address addr = local_address_of(lst.get());
  std::vector<unique_fd> fillers;
  for (int i = 0; i < 4; ++i) {
    unique_fd f(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ::connect(f.get(), addr.data(), addr.size());
    fillers.push_back(std::move(f));
  }
  std::this_thread::sleep_for(50ms);
  client_rig rig({.connect_timeout = 200ms});
  std::error_code ec;
  const auto t0 = std::chrono::steady_clock::now();
  rig.fetch({.url = "http://" + addr.to_string() + "/"}, ec);
  EXPECT_EQ(ec, nbio::errc::connect_timeout) << ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(http_client_misbehaving, garbage_response_is_a_parse_error) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, nbio::http::errc::bad_status_line) << ec.message();
}

TEST(http_client_misbehaving, content_length_past_max_body_is_refused) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
    recv_until_eof(fd, 5s);
  });
  client_options cfg;
  cfg.limits.max_body = 1000;
  client_rig rig(cfg);
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, nbio::http::errc::body_too_large) << ec.message();
}

TEST(http_client_misbehaving, oversized_head_is_refused) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    std::string head = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 2000; ++i)
      head += "X-Filler-" + std::to_string(i) + ": " + std::string(40, 'x') + "\r\n";
    send_str(fd, head);
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, nbio::http::errc::headers_too_large) << ec.message();
}

TEST(http_client_misbehaving, huge_chunk_size_is_refused) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n");
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, nbio::http::errc::body_too_large) << ec.message();
}

TEST(http_client_misbehaving, endless_body_stops_at_max_body) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 200 OK\r\n\r\n");  // until close
    const std::string block(64 * 1024, 'z');
    for (int i = 0; i < 1000 && send_all(fd, block, 2s); ++i) {
    }
  });
  client_options cfg;
  cfg.limits.max_body = 1u << 20;
  client_rig rig(cfg);
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, nbio::http::errc::body_too_large) << ec.message();
}

TEST(http_client_misbehaving, close_delimited_body_ends_at_eof) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.0 200 OK\r\n\r\nuntil the end");
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.body, "until the end");
  r = rig.fetch({.url = srv.url()}, ec);  // a new connection: that one is gone
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(srv.connections(), 2);
}

TEST(http_client_misbehaving, response_cut_off_mid_body_is_an_error) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, client_errc::truncated_response) << ec.message();
  EXPECT_EQ(r.body, "only ten b");
}

TEST(http_client_misbehaving, close_before_any_response_byte_is_an_error) {
  raw_server srv([](int fd, int) { read_request(fd); });
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  EXPECT_EQ(ec, client_errc::closed_before_response) << ec.message();
  EXPECT_EQ(srv.connections(), 1);  // a fresh connection: not retried
}

TEST(http_client_misbehaving, pooled_connection_closed_while_idle_is_replaced) {
  // Each connection answers one request with keep-alive, then closes.
  raw_server srv([](int fd, int) {
    if (!read_request(fd).empty()) send_str(fd, ok_response);
  });
  client_rig rig;
  for (int i = 0; i < 3; ++i) {
    std::error_code ec;
    client_response r = rig.fetch({.url = srv.url()}, ec);
    ASSERT_FALSE(ec) << i << ": " << ec.message();
    EXPECT_EQ(r.body, "ok");
    std::this_thread::sleep_for(20ms);  // the FIN arrives while the connection is idle
  }
  EXPECT_EQ(srv.connections(), 3);
}

TEST(http_client_misbehaving, request_on_a_stale_connection_is_retried_on_a_fresh_one) {
  // The first connection answers once, then takes the next request and closes without an
  // answer (the server gave up on the idle connection as the request arrived). The second
  // connection answers.
  raw_server srv([](int fd, int n) {
    if (read_request(fd).empty()) return;
    if (n == 0) {
      send_str(fd, ok_response);
      read_request(fd);
      set_reset_on_close(fd);
      return;
    }
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh");
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  r = rig.fetch({.url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.body, "fresh");
  EXPECT_EQ(srv.connections(), 2);
}

TEST(http_client_misbehaving, post_on_a_stale_connection_is_not_replayed) {
  raw_server srv([](int fd, int n) {
    if (read_request(fd).empty()) return;
    if (n == 0) {
      send_str(fd, ok_response);
      read_request(fd);
      return;
    }
    send_str(fd, ok_response);
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  rig.fetch({.method = "POST", .url = srv.url(), .body = "pay once"}, ec);
  EXPECT_EQ(ec, client_errc::closed_before_response) << ec.message();
  EXPECT_EQ(srv.connections(), 1);
}

TEST(http_client_misbehaving, interim_responses_are_skipped) {
  raw_server srv([](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
    send_str(fd, ok_response);
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
}

TEST(http_client_misbehaving, redirect_to_another_host_drops_authorization) {
  std::promise<std::string> seen;
  raw_server target([&](int fd, int) {
    seen.set_value(read_request(fd));
    send_str(fd, ok_response);
    recv_until_eof(fd, 5s);
  });
  raw_server origin([&](int fd, int) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 307 Temporary Redirect\r\nLocation: " + target.url("/there") +
                     "\r\nContent-Length: 0\r\n\r\n");
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.method = "PUT",
                                 .url = origin.url("/here"),
                                 .headers = {{"Authorization", "Bearer secret"}},
                                 .body = "same body"},
                                ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.url, target.url("/there"));
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const std::string req = f.get();
  EXPECT_EQ(req.rfind("PUT /there HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_EQ(req.find("Authorization"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\n\r\nsame body"), std::string::npos) << req;
}

TEST(http_client_misbehaving, see_other_turns_post_into_get_without_body) {
  std::promise<std::string> seen;
  raw_server srv([&](int fd, int) {
    read_request(fd);
    send_str(fd,
             "HTTP/1.1 303 See Other\r\nLocation: ../b/./c?x=1\r\nContent-Length: 4\r\n\r\nmove");
    seen.set_value(read_request(fd));
    send_str(fd, ok_response);
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.method = "POST",
                                 .url = srv.url("/a/form"),
                                 .headers = {{"Content-Type", "text/plain"}},
                                 .body = "data"},
                                ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(r.url, srv.url("/b/c?x=1"));
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const std::string req = f.get();
  EXPECT_EQ(req.rfind("GET /b/c?x=1 HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_EQ(req.find("Content-Type"), std::string::npos) << req;
  EXPECT_EQ(req.find("Content-Length"), std::string::npos) << req;
  EXPECT_EQ(srv.connections(), 1);  // the redirect's connection was kept alive
}

TEST(http_client_misbehaving, streamed_body_is_not_replayed_on_307) {
  raw_server srv([&](int fd, int) {
    read_request(fd, 1s);  // the chunked body has no Content-Length: read what comes
    send_str(fd,
             "HTTP/1.1 307 Temporary Redirect\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n");
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  bool sent = false;
  client_request req{.method = "POST", .url = srv.url("/up")};
  req.body_source = [&](std::string& out) {
    if (!sent) out = "once";
    sent = true;
    return false;
  };
  std::error_code ec;
  client_response r = rig.fetch(std::move(req), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(srv.connections(), 1);
}

TEST(http_client_misbehaving, head_response_with_content_length_has_no_body) {
  raw_server srv([](int fd, int) {
    for (int i = 0; i < 2; ++i) {
      const std::string req = read_request(fd);
      if (req.empty()) return;
      if (req.rfind("HEAD", 0) == 0)
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
      else
        send_str(fd, ok_response);
    }
    recv_until_eof(fd, 5s);
  });
  client_rig rig;
  std::error_code ec;
  client_response r = rig.fetch({.method = "HEAD", .url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.header("Content-Length"), "1000");
  EXPECT_TRUE(r.body.empty());
  r = rig.fetch({.url = srv.url()}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(srv.connections(), 1);
}

// --- threads -----------------------------------------------------------------------------------

TEST(threading_http_client, send_from_many_threads_completes_each_exactly_once) {
  app_state st;
  http_test_server srv(app(st));
  client_rig rig;
  constexpr int threads = 8, per_thread = 50, total = threads * per_thread;
  std::vector<std::atomic<int>> calls(total);
  std::atomic<int> ok{0}, done{0};
  const std::string url = "http://" + srv.address().to_string() + "/echo";
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t)
    senders.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const int id = t * per_thread + i;
        const std::string body = std::to_string(id);
        rig.cl->send({.method = "POST", .url = url, .body = body},
                     [&, id, body](std::error_code ec, client_response&& r) {
                       if (!ec && r.body == body) ++ok;
                       ++calls[static_cast<std::size_t>(id)];
                       ++done;
                     });
      }
    });
  for (auto& s : senders)
    s.join();
  ASSERT_TRUE(wait_until([&] { return done.load() == total; }, 20s)) << done.load();
  EXPECT_EQ(ok.load(), total);
  std::this_thread::sleep_for(20ms);  // a second call would show up here
  for (int i = 0; i < total; ++i)
    EXPECT_EQ(calls[static_cast<std::size_t>(i)].load(), 1) << i;
}

TEST(threading_http_client, fetch_from_foreign_threads) {
  app_state st;
  http_test_server srv(app(st));
  client_rig rig;
  const std::string url = "http://" + srv.address().to_string() + "/echo";
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::error_code ec;
        const std::string body = std::to_string(t) + "/" + std::to_string(i);
        client_response r = rig.fetch({.method = "POST", .url = url, .body = body}, ec);
        if (!ec && r.body == body) ++ok;
      }
    });
  for (auto& t : ts)
    t.join();
  EXPECT_EQ(ok.load(), 80);
}

TEST(threading_http_client, engine_stop_ends_requests_in_flight_with_shutdown) {
  raw_server srv([](int fd, int) { recv_until_eof(fd, 10s); });
  constexpr int n = 10;
  std::atomic<int> shutdown{0}, done{0};
  {
    client_rig rig({.max_conns_per_host = 3});
    for (int i = 0; i < n; ++i)
      rig.cl->send({.url = srv.url()}, [&](std::error_code ec, client_response&&) {
        if (ec == nbio::errc::shutdown) ++shutdown;
        ++done;
      });
    ASSERT_TRUE(wait_until([&] { return srv.connections() == 3; }));
    rig.eng.stop();
    EXPECT_TRUE(wait_until([&] { return done.load() == n; }, 5s)) << done.load();
  }
  EXPECT_EQ(done.load(), n);
  EXPECT_EQ(shutdown.load(), n);
}

TEST(threading_http_client, send_after_engine_stop_fails_at_once) {
  client_rig rig;
  rig.eng.stop();
  std::error_code ec;
  rig.fetch({.url = "http://127.0.0.1:1/"}, ec);
  EXPECT_EQ(ec, nbio::errc::shutdown);
}

}  // namespace
