// Private. The TLS transport: the hooks the engine calls, each for one of a connection's two
// lives. While OpenSSL runs it (the handshake; for good on the OpenSSL path) through one BIO
// per thread; after a TLS 1.3 server's hand-off (handoff.hpp), on nbio's record layer
// (record_stream.hpp).
#include "tls/stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <span>

#include "engine/transport_conn.hpp"
#include "nbio/tls/context.hpp"
#include "sys/socket.hpp"
#include "tls/connection.hpp"
#include "tls/context_impl.hpp"
#include "tls/handoff.hpp"
#include "tls/handshake_pool.hpp"
#include "tls/record_stream.hpp"
#include "tls/ssl_error.hpp"

namespace nbio::tls {

using detail::connection;
using nbio::detail::transport_conn;
namespace record_stream = detail::record_stream;

namespace {

// What the calling thread's BIO reads from and writes to, for the SSL call in progress. Each
// call sets it and puts the previous one back: a handler run from inside one connection's
// delivery may write to another TLS connection.
struct io_context {
  conn* c = nullptr;
  std::string_view in;
  bool best_effort = false;
  std::string* out = nullptr;  // an offloaded step: output collected for the loop
};
thread_local io_context io;

class io_scope {
 public:
  io_scope(conn& c, std::string_view in, bool best_effort = false) : saved_(io) {
    io = {&c, in, best_effort};
  }
  ~io_scope() { io = saved_; }
  io_scope(const io_scope&) = delete;
  io_scope& operator=(const io_scope&) = delete;

 private:
  io_context saved_;
};

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len < 0) return -1;
  std::string_view bytes(data, static_cast<std::size_t>(len));
  if (io.out) {
    io.out->append(bytes);
    return len;
  }
  if (!io.c) return -1;
  if (io.best_effort) {
    // The connection is closing: straight to the socket if nothing is queued before it (the
    // stream must stay in order), never blocking, errors ignored.
    std::error_code ignored;
    if (io.c->queued_bytes() == 0)
      nbio::sys::send(io.c->native_handle(), bytes.data(), bytes.size(), ignored);
    return len;
  }
  if (transport_conn::raw_write(*io.c, bytes)) return -1;  // the connection closed with its cause
  return len;
}

int bio_read(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  if (io.in.empty() || len <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  const std::size_t n = std::min(io.in.size(), static_cast<std::size_t>(len));
  std::memcpy(out, io.in.data(), n);
  io.in.remove_prefix(n);
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "nbio");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

// The thread's BIO: every SSL of this thread holds a reference to it.
struct thread_bio {
  BIO* bio = BIO_new(bio_method());
  ~thread_bio() { BIO_free(bio); }
};

BIO* this_thread_bio() {
  thread_local thread_bio holder;
  return holder.bio;
}

// Plaintext out of SSL_read, one record (16 KiB) at a time, per thread.
char* plaintext_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[16384]);
  return buf.get();
}

void fail(conn& c, SSL* ssl, int err) {
  std::error_code ec;
  if (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
    // The BIO's write failed: the engine closed the connection with the socket's error.
    if (!c.is_open()) return;
    ec = make_error_code(errc::library_error);
  } else {
    ec = detail::take_error(ssl);
  }
  ERR_clear_error();
  transport_conn::fail(c, ec);
}

void count_established(SSL* ssl) {
  if (context::impl* im = impl_of(ssl)) {
    im->handshakes.fetch_add(1, std::memory_order_relaxed);
    if (SSL_session_reused(ssl)) im->resumed.fetch_add(1, std::memory_order_relaxed);
  }
}

void attach_thread_bio(SSL* ssl) {
  BIO* bio = this_thread_bio();
  BIO_up_ref(bio);
  SSL_set_bio(ssl, bio, bio);
}

// --- the hooks --------------------------------------------------------------------------------

connection& state_of(void* state) {
  return *static_cast<connection*>(state);
}

void* open(transport& t, conn& c, bool server, std::string_view remote, std::error_code& ec) {
  context::impl& im = *static_cast<context&>(t).impl_ptr();
  auto* state = new (std::nothrow) connection;
  if (!state) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return nullptr;
  }
  SSL* ssl = state->ssl = im.new_ssl(server, remote, ec);
  if (!ssl) {
    delete state;
    return nullptr;
  }
  attach_thread_bio(ssl);
  c.set_read_deadline(im.handshake_timeout);
  if (!server) {  // the ClientHello goes out now
    io_scope scope(c, {});
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl);
    const int e = SSL_get_error(ssl, r);
    if (r != 1 && e != SSL_ERROR_WANT_READ) {
      ec = detail::take_error(ssl);
      delete state;
      return nullptr;
    }
  }
  return state;
}

// The handshake just finished, inside an io_scope of the connection: a TLS 1.3 server connection
// leaves OpenSSL for nbio's record layer (its KeyUpdate goes out through the scope's BIO first),
// then the handler's on_open runs. False: the connection failed.
bool finish_handshake(conn& c, connection& t) {
  SSL* ssl = t.ssl;
  count_established(ssl);
  if (SSL_is_server(ssl) == 1) {
    if (const detail::handoff_secrets* secrets = detail::secrets_of(ssl)) {
      const detail::handoff_refusal r = detail::hand_off(ssl, *secrets, t.tx, t.rx);
      if (r == detail::handoff_refusal::none) {
        if (context::impl* im = impl_of(ssl))
          im->handed_off.fetch_add(1, std::memory_order_relaxed);
        t.leave_openssl();
      } else if (r == detail::handoff_refusal::key_update_failed) {
        fail(c, ssl, ERR_peek_last_error() ? SSL_ERROR_SSL : SSL_ERROR_SYSCALL);
        return false;
      } else {
        detail::drop_secrets(ssl);  // it stays with OpenSSL
      }
    }
  }
  transport_conn::established(c);
  return true;
}

// On the connection's loop, when its offloaded handshake step is back.
void offload_done(conn& c, std::unique_ptr<detail::handshake_job> job) {
  SSL* ssl = job->ssl;
  attach_thread_bio(ssl);                                                   // the loop's BIO again
  if (!job->out.empty() && transport_conn::raw_write(c, job->out)) return;  // closed
  if (job->result != 1 && job->error != SSL_ERROR_WANT_READ && job->error != SSL_ERROR_WANT_WRITE) {
    transport_conn::fail(c, job->ec);
    return;
  }
  c.resume_read();
  if (job->result == 1) {
    io_scope scope(c, {});
    if (!finish_handshake(c, state_of(transport_conn::slot(c).state))) return;
  }
  if (!job->in.empty() && c.is_open()) transport_conn::feed(c, job->in);
}

// Hands the ClientHello's step to a worker (server_options::handshake_threads); reading waits
// for it. False: it runs here.
bool offload(conn& c, SSL* ssl, std::span<char> bytes) {
  if (!SSL_in_before(ssl) || bytes.empty() || c.is_blocking()) return false;
  context::impl* im = impl_of(ssl);
  if (!im || !im->pool) return false;
  auto job = std::make_unique<detail::handshake_job>();
  job->ssl = ssl;
  job->conn = c.handle();
  job->in.assign(bytes.data(), bytes.size());
  c.pause_read();
  im->pool->submit(std::move(job), offload_done);
  return true;
}

// Plaintext out of OpenSSL's records, delivered until the input is used up or the connection
// stops reading.
void read_openssl(conn& c, SSL* ssl) {
  char* plain = plaintext_buffer();
  while (!transport_conn::stopped_reading(c)) {
    ERR_clear_error();
    const std::size_t unread = io.in.size();
    const int n = SSL_read(ssl, plain, 16384);
    if (n > 0) {
      transport_conn::deliver(c, {plain, static_cast<std::size_t>(n)});
      continue;
    }
    const int e = SSL_get_error(ssl, n);
    // A non-data record was consumed with more input left: go on (no progress: stop).
    if (e == SSL_ERROR_WANT_READ && !io.in.empty() && io.in.size() < unread) continue;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify: the end of the peer's stream
      transport_conn::end_of_stream(c);
      break;
    }
    fail(c, ssl, e);
    break;
  }
}

std::size_t input(conn& c, void* state, std::span<char> bytes) {
  connection& t = state_of(state);
  if (t.handed_off()) return record_stream::input(c, t, bytes);
  if (offload(c, t.ssl, bytes)) return bytes.size();
  std::size_t used = 0;
  {
    io_scope scope(c, {bytes.data(), bytes.size()});
    if (!SSL_is_init_finished(t.ssl)) {
      ERR_clear_error();
      const int r = SSL_do_handshake(t.ssl);
      if (r != 1) {
        const int e = SSL_get_error(t.ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) fail(c, t.ssl, e);
        return bytes.size();
      }
      if (!finish_handshake(c, t)) return bytes.size();
    }
    if (!t.handed_off()) {
      read_openssl(c, t.ssl);
      return bytes.size() - io.in.size();
    }
    used = bytes.size() - io.in.size();  // what follows the handshake: records for nbio
  }
  return used + record_stream::input(c, t, bytes.subspan(used));
}

bool pending(void* state) {
  const connection& t = state_of(state);
  return !t.handed_off() && SSL_pending(t.ssl) > 0;
}

std::error_code write(conn& c, void* state, std::string_view plain) {
  connection& t = state_of(state);
  if (t.handed_off()) return record_stream::write(c, t, plain);
  SSL* ssl = t.ssl;
  io_scope scope(c, {});
  while (!plain.empty()) {
    ERR_clear_error();
    const int chunk = static_cast<int>(std::min<std::size_t>(plain.size(), INT_MAX));
    const int n = SSL_write(ssl, plain.data(), chunk);
    if (n > 0) {
      plain.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    const int e = SSL_get_error(ssl, n);
    if (!c.is_open()) {
      ERR_clear_error();
      return nbio::errc::not_connected;  // the socket failed: on_close has the cause
    }
    std::error_code ec = e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0
                             ? make_error_code(errc::library_error)
                             : detail::take_error(ssl);
    ERR_clear_error();
    transport_conn::fail(c, ec);
    return ec;
  }
  return {};
}

void close_notify(conn& c, void* state, bool best_effort) {
  connection& t = state_of(state);
  if (t.handed_off()) return record_stream::close_notify(c, t, best_effort);
  SSL* ssl = t.ssl;
  if (!SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) return;
  io_scope scope(c, {}, best_effort);
  ERR_clear_error();
  SSL_shutdown(ssl);
  ERR_clear_error();
}

void free_state(void* state) {
  auto* t = static_cast<connection*>(state);
  record_stream::forget(*t);
  if (SSL* ssl = t->ssl) {
    context::impl* im = impl_of(ssl);
    // Whatever ended it (an error, a timeout, the peer leaving, a stop), a connection freed
    // before its handshake finished counts as a failed handshake.
    if (im && !SSL_is_init_finished(ssl)) im->failed.fetch_add(1, std::memory_order_relaxed);
    if (im && im->pool && im->pool->orphan(ssl)) t->ssl = nullptr;  // a worker has it, frees it
  }
  delete t;
}

// TLS 1.2's AEAD records add 29 bytes (header, explicit nonce, tag), TLS 1.3's 22; a KeyUpdate
// record of ours may go first.
std::size_t sealed_size(std::size_t plain) {
  const std::size_t records = (plain + detail::max_plaintext - 1) / detail::max_plaintext;
  return plain + 29 * records + detail::record_overhead + 5;
}

const nbio::detail::transport_ops ops = {
    open,
    input,
    pending,
    write,
    close_notify,
    free_state,
    record_stream::sweep,
    &tls_category(),
    sealed_size,
};

const connection* state_of(const conn& c) {
  if (!c.has_transport()) return nullptr;
  return static_cast<const connection*>(transport_conn::slot(const_cast<conn&>(c)).state);
}

const char* suite_name(detail::suite s) {
  switch (s) {
    case detail::suite::aes_128_gcm_sha256:
      return "TLS_AES_128_GCM_SHA256";
    case detail::suite::aes_256_gcm_sha384:
      return "TLS_AES_256_GCM_SHA384";
    case detail::suite::chacha20_poly1305_sha256:
      return "TLS_CHACHA20_POLY1305_SHA256";
  }
  return "";
}

}  // namespace

namespace stream {

void register_transport() {
  static std::once_flag once;
  std::call_once(once, [] { nbio::detail::set_transport_ops(&ops); });
}

void run_offloaded(detail::handshake_job& job) {
  attach_thread_bio(job.ssl);  // the worker's own BIO while it works
  io = {nullptr, job.in, false, &job.out};
  ERR_clear_error();
  job.result = SSL_do_handshake(job.ssl);
  job.error = job.result == 1 ? SSL_ERROR_NONE : SSL_get_error(job.ssl, job.result);
  if (job.result != 1 && job.error != SSL_ERROR_WANT_READ && job.error != SSL_ERROR_WANT_WRITE)
    job.ec = detail::take_error(job.ssl);
  job.in.erase(0, job.in.size() - io.in.size());  // what the step left unread
  io = {};
}

}  // namespace stream

// --- per-connection details -----------------------------------------------------------------
// From the SSL while OpenSSL has the connection, from what leave_openssl kept after.

std::string_view alpn(const conn& c) {
  const connection* t = state_of(c);
  if (!t) return {};
  if (t->handed_off()) return t->alpn ? std::string_view(t->alpn) : std::string_view();
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(t->ssl, &p, &len);
  return {reinterpret_cast<const char*>(p), len};
}

std::string_view server_name(const conn& c) {
  const connection* t = state_of(c);
  if (!t) return {};
  const char* name =
      t->handed_off() ? t->server_name : SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

std::string_view protocol_version(const conn& c) {
  const connection* t = state_of(c);
  if (!t) return {};
  return t->handed_off() ? std::string_view("TLSv1.3") : std::string_view(SSL_get_version(t->ssl));
}

std::string_view cipher(const conn& c) {
  const connection* t = state_of(c);
  if (!t) return {};
  if (t->handed_off()) return suite_name(t->tx.cipher_suite());
  const char* name = SSL_get_cipher_name(t->ssl);
  return name ? std::string_view(name) : std::string_view();
}

bool resumed(const conn& c) {
  const connection* t = state_of(c);
  if (!t) return false;
  return t->handed_off() ? (t->flags & connection::resumed) != 0 : SSL_session_reused(t->ssl) == 1;
}

bool handed_off(const conn& c) {
  const connection* t = state_of(c);
  return t && t->handed_off();
}

namespace {
X509* peer_of(const conn& c) {
  const connection* t = state_of(c);
  if (!t) return nullptr;
  return t->handed_off() ? t->peer : SSL_get0_peer_certificate(t->ssl);
}
}  // namespace

bool has_peer_certificate(const conn& c) {
  return peer_of(c) != nullptr;
}

std::string peer_subject(const conn& c) {
  X509* peer = peer_of(c);
  if (!peer) return {};
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf);
  return buf;
}

}  // namespace nbio::tls
