// Integration: server_options::handshake_threads: the ClientHello's step of each handshake runs
// on worker threads; connections complete, and ones that vanish while their step is out are
// freed by the worker (ASan's leak check sees a lost SSL).
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/raw_socket.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

struct echo {
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

struct counts {
  std::atomic<int> echoed{0};
  event_log<std::error_code> failures;
};

struct ping {
  counts* n;
  void on_open(nbio::conn& c) { c.write("ping"); }
  void on_data(nbio::conn& c, std::string_view) {
    n->echoed.fetch_add(1);
    c.close();
  }
};

std::shared_ptr<nbio::tls::context> offloading_server(unsigned threads) {
  const test_pki& pki = test_pki::get();
  return nbio::tls::context::server(
      {.cert = {pki.server.chain, pki.server.key}, .handshake_threads = threads});
}

TEST(tls_handshake_offload, concurrent_handshakes_complete_on_worker_threads) {
  auto tls = offloading_server(2);
  nbio::engine server(two_loops());
  auto& l = server.listen("127.0.0.1:0", echo{}, {.tls = tls});
  server.start();
  counts n;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(
      ping{&n}, {.tls = nbio::tls::context::client({.ca_file = test_pki::get().ca})});
  client.start();
  constexpr int total = 60;
  const std::string target = "127.0.0.1:" + std::to_string(l.local_address().port());
  for (int i = 0; i < total; ++i)
    d.dial(target, [&](std::error_code ec, const std::string&) { n.failures.push(ec); });
  ASSERT_TRUE(wait_until(
      [&] { return n.echoed.load() + static_cast<int>(n.failures.size()) >= total; }, 20s))
      << n.echoed.load() << " echoed";
  for (const auto& f : n.failures.snapshot())
    ADD_FAILURE() << f.message();
  EXPECT_EQ(tls->stats().handshakes, static_cast<std::uint64_t>(total));
}

// Clients that send a ClientHello and vanish: the step may still be out when the server reaps
// the connection; the worker frees the SSL then. Established connections keep echoing.
TEST(tls_handshake_offload, connections_gone_while_their_step_is_out_are_freed) {
  auto tls = offloading_server(1);
  nbio::engine server(two_loops());
  auto& l = server.listen("127.0.0.1:0", echo{}, {.tls = tls});
  server.start();
  // A real ClientHello from our own client context, captured by a listener that only records.
  std::string hello;
  {
    std::atomic<bool> got{false};
    struct recorder {
      std::string* out;
      std::atomic<bool>* got;
      void on_data(nbio::conn& c, std::string_view d) {
        out->assign(d);
        got->store(true);
        c.close();
      }
    };
    nbio::engine rec(two_loops());
    auto& rl = rec.listen("127.0.0.1:0", recorder{&hello, &got});
    rec.start();
    nbio::engine cl(two_loops());
    auto& d = cl.make_dialer(echo{}, {.tls = nbio::tls::context::client({.verify = false})});
    cl.start();
    d.dial("127.0.0.1:" + std::to_string(rl.local_address().port()));
    ASSERT_TRUE(wait_until([&] { return got.load(); }));
  }
  ASSERT_GT(hello.size(), 5u);
  for (int i = 0; i < 40; ++i) {
    unique_fd fd = connect_stream(l.local_address());
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), hello));
    set_reset_on_close(fd.get());
  }
  counts n;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(
      ping{&n}, {.tls = nbio::tls::context::client({.ca_file = test_pki::get().ca})});
  client.start();
  d.dial("127.0.0.1:" + std::to_string(l.local_address().port()),
         [&](std::error_code ec, const std::string&) { n.failures.push(ec); });
  ASSERT_TRUE(
      wait_until([&] { return n.echoed.load() + static_cast<int>(n.failures.size()) >= 1; }));
  EXPECT_EQ(n.echoed.load(), 1);
  ASSERT_TRUE(wait_until([&] { return server.stats().total.online == 0; }));
}

}  // namespace
