// Test support: the plaintext-to-TLS shim (tls_shim.hpp), one thread per connection.
#include "support/tls_shim.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "support/raw_socket.hpp"

namespace nbio_test {

bool over_tls() {
  const char* v = std::getenv("NBIO_TEST_OVER_TLS");
  return v && std::strcmp(v, "1") == 0;
}

tls_shim::tls_shim(const nbio::address& target, const std::string& ca_file) : target_(target) {
  // OpenSSL's socket BIO writes with write(2): a server that has closed would raise SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  // A server that closes without close_notify (an engine-side timeout) ends the stream as a
  // FIN does over TCP: the bytes before it still reach the test.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  ctx_ = ctx;
  listener_ = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const auto any = *nbio::address::parse("127.0.0.1:0");
  if (::bind(listener_.get(), any.data(), any.size()) != 0 || ::listen(listener_.get(), 512) != 0)
    std::abort();
  address_ = local_address_of(listener_.get());
  acceptor_ = std::thread([this] { accept_loop(); });
}

tls_shim::~tls_shim() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads)
    t.join();
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void tls_shim::accept_loop() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 20) != 1) continue;
    unique_fd plain(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!plain) continue;
    std::lock_guard lock(mu_);
    threads_.emplace_back([this, fd = plain.release()]() mutable { carry(unique_fd(fd)); });
  }
}

namespace {

bool wait_io(int fd, short events, const std::atomic<bool>& stop) {
  while (!stop) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, 20);
    if (r > 0) return true;
  }
  return false;
}

}  // namespace

void tls_shim::carry(unique_fd plain) {
  unique_fd tls = connect_stream(target_);
  if (!tls) {
    set_reset_on_close(plain.get());
    return;
  }
  const int one = 1;
  ::setsockopt(tls.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(plain.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
  SSL_set_fd(ssl, tls.get());
  SSL_set1_host(ssl, "localhost");
  set_nonblocking(tls.get());
  set_nonblocking(plain.get());
  SSL_set_connect_state(ssl);
  bool ok = true;
  for (;;) {
    const int r = SSL_do_handshake(ssl);
    if (r == 1) break;
    const int e = SSL_get_error(ssl, r);
    if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
        !wait_io(tls.get(), e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, stop_)) {
      ok = false;
      break;
    }
  }
  // Both directions until each has ended; a reset or TLS failure on one side resets the other.
  bool plain_open = ok, tls_open = ok, reset = !ok;
  std::string to_tls, to_plain;  // bytes read, not yet written
  char buf[64 * 1024];
  while (!stop_ && (plain_open || tls_open || !to_tls.empty() || !to_plain.empty()) && !reset) {
    bool progress = false;
    if (plain_open && to_tls.empty()) {
      const ssize_t n = ::recv(plain.get(), buf, sizeof buf, 0);
      if (n > 0) {
        to_tls.assign(buf, static_cast<std::size_t>(n));
        progress = true;
      } else if (n == 0) {
        plain_open = false;  // FIN: close_notify + FIN to the server once sent
        progress = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        reset = true;
        break;
      }
    }
    if (!to_tls.empty()) {
      const int n = SSL_write(ssl, to_tls.data(), static_cast<int>(to_tls.size()));
      if (n > 0) {
        to_tls.erase(0, static_cast<std::size_t>(n));
        progress = true;
      } else {
        const int e = SSL_get_error(ssl, n);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
          reset = true;
          break;
        }
      }
    }
    if (!plain_open && to_tls.empty() && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
      SSL_shutdown(ssl);
      ::shutdown(tls.get(), SHUT_WR);
    }
    if (tls_open && to_plain.empty()) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        to_plain.assign(buf, static_cast<std::size_t>(n));
        progress = true;
      } else {
        const int e = SSL_get_error(ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN) {
          tls_open = false;
          progress = true;
        } else if (e == SSL_ERROR_SYSCALL && errno == 0) {
          tls_open = false;  // FIN without close_notify
          progress = true;
        } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          reset = true;
          break;
        }
      }
    }
    if (!to_plain.empty()) {
      const ssize_t n = ::send(plain.get(), to_plain.data(), to_plain.size(), MSG_NOSIGNAL);
      if (n > 0) {
        to_plain.erase(0, static_cast<std::size_t>(n));
        progress = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        reset = true;
        break;
      }
    }
    if (!tls_open && to_plain.empty()) ::shutdown(plain.get(), SHUT_WR);
    if (!tls_open && !plain_open && to_plain.empty() && to_tls.empty()) break;
    if (!progress) {
      pollfd p[2] = {
          {plain.get(),
           static_cast<short>((plain_open && to_tls.empty() ? POLLIN : 0) |
                              (to_plain.empty() ? 0 : POLLOUT)),
           0},
          {tls.get(), static_cast<short>((tls_open ? POLLIN : 0) | (to_tls.empty() ? 0 : POLLOUT)),
           0}};
      ::poll(p, 2, 20);
    }
  }
  if (reset) {
    set_reset_on_close(plain.get());
    set_reset_on_close(tls.get());
  }
  SSL_free(ssl);
}

}  // namespace nbio_test
