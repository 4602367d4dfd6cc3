// libuv_echo: the libuv baseline of the TCP echo and idle-connection benchmarks.
//
// One uv_loop_t, one uv_tcp_t per connection. Reads land in a single 64 KiB buffer owned by the
// loop: alloc_cb hands out the same buffer every time, which is safe because libuv runs one
// read_cb at a time and read_cb is done with the bytes when it returns. So an idle connection
// owns only its handle, as in Node.js. read_cb first echoes with uv_try_write (on loopback the
// kernel nearly always takes everything); any rest is copied into a uv_write_t request allocated
// together with its payload and freed in the write callback. A peer that does not read its
// echoes cannot grow the queue without bound: reading pauses while more than 1 MiB is queued.
//
// Prints `listening on HOST:PORT` once listening; SIGINT or SIGTERM closes every handle and
// exits cleanly.
#include <uv.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "fd_limit.hpp"

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr std::size_t pause_reading_above = 1024 * 1024;  // bytes queued for writing
constexpr std::size_t resume_reading_below = 256 * 1024;

struct loop_data {
  char read_buffer[read_buffer_size];
};

struct connection {
  uv_tcp_t handle;  // handle.data points back at the connection
  bool reading_paused = false;
};

// A write request and the bytes it writes, in one allocation.
struct write_request {
  uv_write_t req;
  uv_buf_t buf;
};

void on_closed(uv_handle_t* handle) {
  delete static_cast<connection*>(handle->data);
}

void close_connection(uv_stream_t* stream) {
  auto* handle = reinterpret_cast<uv_handle_t*>(stream);
  if (!uv_is_closing(handle)) uv_close(handle, on_closed);
}

void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* data = static_cast<loop_data*>(handle->loop->data);
  *buf = uv_buf_init(data->read_buffer, sizeof data->read_buffer);
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

void on_written(uv_write_t* req, int status) {
  uv_stream_t* stream = req->handle;
  std::free(req);
  if (status < 0) {
    if (status != UV_ECANCELED) close_connection(stream);
    return;
  }
  auto* conn = static_cast<connection*>(stream->data);
  if (conn->reading_paused && stream->write_queue_size < resume_reading_below &&
      !uv_is_closing(reinterpret_cast<uv_handle_t*>(stream))) {
    conn->reading_paused = false;
    uv_read_start(stream, on_alloc, on_read);
  }
}

void echo(uv_stream_t* stream, const char* data, std::size_t length) {
  uv_buf_t whole = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(length));
  int written = uv_try_write(stream, &whole, 1);  // UV_EAGAIN also while writes are queued
  if (written == UV_EAGAIN) written = 0;
  if (written < 0) {
    close_connection(stream);
    return;
  }
  const std::size_t rest = length - static_cast<std::size_t>(written);
  if (rest == 0) return;

  auto* request = static_cast<write_request*>(std::malloc(sizeof(write_request) + rest));
  if (request == nullptr) {
    close_connection(stream);
    return;
  }
  char* payload = reinterpret_cast<char*>(request + 1);
  std::memcpy(payload, data + written, rest);
  request->buf = uv_buf_init(payload, static_cast<unsigned>(rest));
  if (uv_write(&request->req, stream, &request->buf, 1, on_written) != 0) {
    std::free(request);
    close_connection(stream);
    return;
  }
  auto* conn = static_cast<connection*>(stream->data);
  if (stream->write_queue_size > pause_reading_above) {
    conn->reading_paused = true;
    uv_read_stop(stream);
  }
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    echo(stream, buf->base, static_cast<std::size_t>(nread));
  } else if (nread < 0) {
    close_connection(stream);  // UV_EOF or an error; queued writes are cancelled
  }
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    std::fprintf(stderr, "libuv_echo: accept: %s\n", uv_strerror(status));
    return;
  }
  auto* conn = new connection;
  uv_tcp_init(server->loop, &conn->handle);
  conn->handle.data = conn;
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn->handle);
  if (uv_accept(server, stream) != 0) {
    close_connection(stream);
    return;
  }
  uv_tcp_nodelay(&conn->handle, 1);
  uv_read_start(stream, on_alloc, on_read);
}

void close_any(uv_handle_t* handle, void*) {
  if (uv_is_closing(handle)) return;
  uv_close(handle, handle->data != nullptr ? on_closed : nullptr);
}

void on_signal(uv_signal_t* signal, int) {
  uv_walk(signal->loop, close_any, nullptr);
}

int fail(const char* what, int rc) {
  std::fprintf(stderr, "libuv_echo: %s: %s\n", what, uv_strerror(rc));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  CLI::App app{"TCP echo server on libuv (benchmark baseline)."};
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0: any)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  bench::raise_fd_limit();
  uv_loop_t loop;
  if (const int rc = uv_loop_init(&loop); rc != 0) return fail("uv_loop_init", rc);
  const auto data = std::make_unique<loop_data>();
  loop.data = data.get();

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  uv_getaddrinfo_t resolved;
  const std::string service = std::to_string(port);
  if (const int rc =
          uv_getaddrinfo(&loop, &resolved, nullptr, host.c_str(), service.c_str(), &hints);
      rc != 0) {
    return fail(host.c_str(), rc);
  }

  uv_tcp_t server;
  uv_tcp_init(&loop, &server);
  server.data = nullptr;
  int rc = uv_tcp_bind(&server, resolved.addrinfo->ai_addr, 0);
  uv_freeaddrinfo(resolved.addrinfo);
  if (rc != 0) return fail("bind", rc);
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server), SOMAXCONN, on_connection);
  if (rc != 0) return fail("listen", rc);

  sockaddr_storage bound{};
  int bound_length = sizeof bound;
  uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  const unsigned bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  uv_signal_t sigint;
  uv_signal_t sigterm;
  for (uv_signal_t* signal : {&sigint, &sigterm}) {
    uv_signal_init(&loop, signal);
    signal->data = nullptr;
  }
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);

  std::printf("listening on %s:%u\n", host.c_str(), bound_port);
  std::fflush(stdout);

  uv_run(&loop, UV_RUN_DEFAULT);  // returns once on_signal has closed every handle
  rc = uv_loop_close(&loop);
  return rc == 0 ? 0 : fail("uv_loop_close", rc);
}
