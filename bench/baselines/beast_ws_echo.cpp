// beast_ws_echo: the Boost.Beast baseline of the WebSocket echo benchmark (bench/ws).
//
// Written the way Beast's own asynchronous WebSocket server example is, since that is what a
// Beast user writes: one session per connection, kept alive by the shared_ptr its pending
// handler holds; async_accept, then async_read of a whole message into the session's
// flat_buffer and async_write of it back with the same opcode. One io_context run by one thread
// (concurrency hint 1). permessage-deflate off (Beast's default), TCP_NODELAY on (as nbio),
// messages up to 64 MiB, auto-fragmentation off.
//
// Prints `listening on HOST:PORT` once listening; SIGINT or SIGTERM stops it cleanly.
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "fd_limit.hpp"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(tcp::socket&& socket) : ws_(std::move(socket)) {}

  void run() {
    ws_.next_layer().socket().set_option(tcp::no_delay(true));
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(64u << 20);
    // Whole messages in one frame, as nbio sends them (Beast's default cuts writes into 4 KiB
    // frames, which costs it more and which the load generator's byte-exact check rejects).
    ws_.auto_fragment(false);
    ws_.async_accept(beast::bind_front_handler(&session::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec) {
    if (!ec) read();
  }
  void read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&session::on_read, shared_from_this()));
  }
  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return;  // closed (a close frame is answered by Beast itself) or failed
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(),
                    beast::bind_front_handler(&session::on_write, shared_from_this()));
  }
  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    read();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<session>(std::move(socket))->run();
    if (acceptor.is_open()) accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Boost.Beast WebSocket echo server (benchmark baseline)"};
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bench::raise_fd_limit();

  asio::io_context ioc(1);
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint(asio::ip::make_address(host), port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(4096);
  std::printf("listening on %s:%u\n", host.c_str(), acceptor.local_endpoint().port());
  std::fflush(stdout);
  accept(acceptor);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
