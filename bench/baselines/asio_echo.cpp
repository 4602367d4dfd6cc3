// asio_echo: the Boost.Asio baseline of the TCP echo and idle-connection benchmarks.
//
// Written the way Asio's own echo example is, since that is what an Asio user writes: one
// session per connection, kept alive by the shared_ptr its pending handler holds,
// async_read_some into the session's buffer and async_write of what was read. One io_context run
// by one thread by default (concurrency hint 1 lets Asio drop its internal locking); --threads N
// runs the same io_context on N threads. Each session's operations are strictly sequential
// (read, then write, then read), so no strand is needed.
//
// Prints `listening on HOST:PORT` once listening; SIGINT or SIGTERM stops it cleanly.
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fd_limit.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// One read takes a whole 4 KiB message, the largest size the benchmark matrix sends.
constexpr std::size_t buffer_size = 4096;

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buffer_),
                            [self = shared_from_this()](error_code ec, std::size_t length) {
                              if (!ec) self->write(length);
                            });
  }

  void write(std::size_t length) {
    asio::async_write(socket_, asio::buffer(buffer_, length),
                      [self = shared_from_this()](error_code ec, std::size_t) {
                        if (!ec) self->read();
                      });
  }

  tcp::socket socket_;
  std::array<char, buffer_size> buffer_;
};

class server {
 public:
  server(asio::io_context& io, const tcp::endpoint& endpoint)
      : acceptor_(io, endpoint, /*reuse_addr=*/true), retry_(io) {
    accept();
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors (EMFILE) and the like: retrying at once would spin.
        std::fprintf(stderr, "asio_echo: accept: %s\n", ec.message().c_str());
        retry_.expires_after(std::chrono::milliseconds(10));
        retry_.async_wait([this](error_code wait_ec) {
          if (!wait_ec) accept();
        });
        return;
      }
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<session>(std::move(socket))->start();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  unsigned threads = 1;
  CLI::App app{"TCP echo server on Boost.Asio (benchmark baseline)."};
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0: any)")->capture_default_str();
  app.add_option("--threads", threads, "threads running the io_context")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  CLI11_PARSE(app, argc, argv);

  bench::raise_fd_limit();
  try {
    asio::io_context io(static_cast<int>(threads));
    tcp::resolver resolver(io);
    const tcp::endpoint endpoint =
        resolver.resolve(host, std::to_string(port), tcp::resolver::passive).begin()->endpoint();
    server echo(io, endpoint);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](error_code, int) { io.stop(); });

    std::printf("listening on %s:%u\n", host.c_str(), echo.local_endpoint().port());
    std::fflush(stdout);

    std::vector<std::thread> workers;
    for (unsigned i = 1; i < threads; ++i)
      workers.emplace_back([&io] { io.run(); });
    io.run();
    for (std::thread& worker : workers)
      worker.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
