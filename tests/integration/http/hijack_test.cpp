// Integration: response_writer::hijack, a connection taken from HTTP by a protocol upgrade,
// over real loopback sockets in the three I/O modes: the upgrade's answer comes after the
// responses to earlier pipelined requests, the bytes sent right behind the upgrade request go to
// the new protocol, and what cannot be hijacked is refused with a clear error.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "nbio/http/on_pool.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/serve_mux.hpp"
#include "support/http_test_server.hpp"
#include "support/io_mode_name.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::http;
using namespace std::chrono_literals;

// The protocol connections upgrade to: each read comes back as "<name>:<bytes>", where the
// name was taken from the upgrade request's path.
struct shout {
  struct conn_data {
    char name[24] = {};
    std::uint64_t reads = 0;
  };
  std::atomic<int>* closed;
  void on_data(nbio::conn& c, std::string_view d) {
    auto& st = c.data<conn_data>();
    ++st.reads;
    std::string out = st.name;
    out += ':';
    out.append(d);
    c.write(out);
  }
  void on_close(nbio::conn&, std::error_code) { closed->fetch_add(1); }
};

constexpr std::string_view switching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n";

std::string upgrade_request(std::string_view name) {
  return "GET /up/" + std::string(name) +
         " HTTP/1.1\r\nHost: t\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n";
}

class http_hijack : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  // A server with GET /up/{name} (hijacks to `shout`) and GET /plain; its connections reserve
  // room for shout's conn_data unless `reserve` is false.
  std::unique_ptr<http_test_server> serve(bool reserve = true) {
    mux_.handle("GET /up/{name}", [this](response_writer& w, request& r) {
      std::string name(r.path_value("name"));
      w.hijack(*to_.load(), [name](nbio::conn& c) {
        c.write(switching);
        name.copy(c.data<shout::conn_data>().name, sizeof(shout::conn_data::name) - 1);
      });
    });
    mux_.handle("GET /plain", [](response_writer& w, request&) { w.write("plain"); });
    nbio::listen_options o = listen_for(GetParam());
    if (reserve) o.conn.reserve_data = sizeof(shout::conn_data);
    auto s = std::make_unique<http_test_server>(mux_.as_handler(), server_options{}, o);
    to_ = &s->engine().make_upgrade_target(shout{&closed_});
    return s;
  }

  serve_mux mux_;
  std::atomic<nbio::upgrade_target*> to_{nullptr};
  std::atomic<int> closed_{0};
};

TEST_P(http_hijack, bytes_behind_the_upgrade_request_go_to_the_new_protocol) {
  auto server = serve();
  unique_fd fd = connect_stream(server->address());
  ASSERT_TRUE(send_all(fd.get(), upgrade_request("ann") + "early"));
  const std::string want = std::string(switching) + "ann:early";
  EXPECT_EQ(recv_exact(fd.get(), want.size()).data, want);
  ASSERT_TRUE(send_all(fd.get(), "GET /plain HTTP/1.1\r\n\r\n"));
  const std::string echoed = "ann:GET /plain HTTP/1.1\r\n\r\n";
  EXPECT_EQ(recv_exact(fd.get(), echoed.size()).data, echoed) << "HTTP parsed an upgraded stream";
  // The connection left HTTP: the listener no longer counts it.
  EXPECT_TRUE(wait_until([&] { return server->listener().online() == 0; }));
  fd.reset();
  EXPECT_TRUE(wait_until([&] { return closed_.load() == 1; }));
}

TEST_P(http_hijack, responses_to_earlier_pipelined_requests_come_first) {
  auto server = serve();
  unique_fd fd = connect_stream(server->address());
  const std::string get_plain = "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_TRUE(send_all(fd.get(), get_plain + get_plain + upgrade_request("bob") + "x"));
  const read_result r = recv_for(fd.get(), 500ms);
  const std::size_t first = r.data.find("plain");
  const std::size_t second = r.data.find("plain", first + 1);
  const std::size_t upgraded = r.data.find("101 Switching");
  ASSERT_NE(second, std::string::npos) << r.data;
  ASSERT_NE(upgraded, std::string::npos) << r.data;
  EXPECT_LT(second, upgraded);
  EXPECT_TRUE(r.data.ends_with("bob:x")) << r.data;
}

TEST_P(http_hijack, an_upgrade_that_does_not_fit_the_slot_closes_the_connection) {
  auto server = serve(false);
  unique_fd fd = connect_stream(server->address());
  ASSERT_TRUE(send_all(fd.get(), upgrade_request("cy")));
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.data.find("101"), std::string::npos) << r.data;
  EXPECT_EQ(closed_.load(), 0);
}

TEST_P(http_hijack, hijack_from_a_thread_pool_answers_500) {
  nbio::thread_pool pool(1);
  mux_.handle("GET /pooled", on_pool(pool, [this](response_writer& w, request&) {
                w.hijack(*to_.load());  // throws: not on the connection's thread
              }));
  auto server = serve();
  unique_fd fd = connect_stream(server->address());
  ASSERT_TRUE(send_all(fd.get(), "GET /pooled HTTP/1.1\r\nHost: t\r\n\r\n"));
  const read_result r = recv_for(fd.get(), 500ms);
  EXPECT_TRUE(r.data.starts_with("HTTP/1.1 500")) << r.data;
}

TEST_P(http_hijack, hijack_after_the_response_started_answers_500_and_closes) {
  mux_.handle("GET /late", [this](response_writer& w, request&) {
    w.write("partial");
    w.flush();
    w.hijack(*to_.load());
  });
  auto server = serve();
  unique_fd fd = connect_stream(server->address());
  ASSERT_TRUE(send_all(fd.get(), "GET /late HTTP/1.1\r\nHost: t\r\n\r\n"));
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(closed_.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(http_hijack_loop, http_hijack,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_hijack_blocking, http_hijack,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_hijack_mixed, http_hijack,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);

TEST(http_hijack_recorder, a_recorder_cannot_hijack) {
  response_recorder rec;
  nbio::engine eng({.loops = 1});
  std::atomic<int> closed{0};
  nbio::upgrade_target& to = eng.make_upgrade_target(shout{&closed});
  EXPECT_THROW(rec.writer().hijack(to), std::logic_error);
}

}  // namespace
