// ssl_mem: what OpenSSL itself keeps per idle TLS server connection, and where it comes from.
//
//   ssl_mem --cert server.pem --key server.key [--connections 1000] [--json out.json]
//
// Counts every allocation OpenSSL makes (CRYPTO_set_mem_functions, before any other OpenSSL
// call) with a header that records its size, the side that made it (server or client) and its
// call site (OpenSSL passes file and line). It sets up a server context the way nbio's
// tls::context::server does by default (SSL_MODE_RELEASE_BUFFERS, AUTO_RETRY, server session
// cache, one TLS 1.3 ticket, session id context, ALPN http/1.1) and a client context with no
// verification, then handshakes N connections in memory (a BIO pair each: no sockets, no
// engine), reads the ticket, and leaves them all established and idle. Per server connection it
// reports the bytes live after SSL_new, after the handshake, and at the end broken down by the
// call sites that hold them, plus what glibc's heap spends on them (each block's chunk: its size
// plus the 8-byte header, rounded up to 16): the part of nbio's RSS per idle TLS connection that is
// OpenSSL's. The BIO pair exists only here (nbio shares one BIO per thread): its bytes are shown
// apart and left out of the totals.
//
// Built by bench/tls/run_tls_idle.sh: c++ -std=c++20 -O2 ssl_mem.cpp -lssl -lcrypto.
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

enum side : int { none = 0, server = 1, client = 2, bio = 3 };
int current_side = none;  // whose allocations these are (single-threaded program)

struct header {
  std::size_t size;
  int side;
  int site;  // index into sites
  std::size_t pad[2];
};
static_assert(sizeof(header) == 32, "keeps the payload 16-byte aligned");

struct site_key {
  const char* file;
  int line;
  bool operator<(const site_key& o) const {
    const int c = std::strcmp(file, o.file);
    return c != 0 ? c < 0 : line < o.line;
  }
};

// Per side: live bytes requested, live heap bytes (glibc), live allocations.
struct tally {
  long long bytes = 0, heap = 0, count = 0;
};
tally live[4];
std::vector<site_key> sites;         // index -> file:line
std::map<site_key, int> site_index;  // the bookkeeping allocates with operator new, not here
std::vector<tally> live_by_site[4];

int site_of(const char* file, int line) {
  if (!file) file = "?";
  const site_key k{file, line};
  auto [it, added] = site_index.emplace(k, static_cast<int>(sites.size()));
  if (added) {
    sites.push_back(k);
    for (auto& v : live_by_site)
      v.emplace_back();
  }
  return it->second;
}

// What glibc's heap spends on a request of n bytes without our header: the chunk (n plus the
// 8-byte size field, rounded up to 16, at least 32), as its request2size() computes it.
long long chunk_of(std::size_t n) {
  return static_cast<long long>(std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15}));
}

void account(header* h, long long sign) {
  const long long heap = chunk_of(h->size);
  live[h->side].bytes += sign * static_cast<long long>(h->size);
  live[h->side].heap += sign * heap;
  live[h->side].count += sign;
  tally& t = live_by_site[h->side][h->site];
  t.bytes += sign * static_cast<long long>(h->size);
  t.heap += sign * heap;
  t.count += sign;
}

void* counting_malloc(std::size_t n, const char* file, int line) {
  auto* h = static_cast<header*>(std::malloc(sizeof(header) + n));
  if (!h) return nullptr;
  h->size = n;
  h->side = current_side;
  h->site = site_of(file, line);
  account(h, 1);
  return h + 1;
}

void counting_free(void* p, const char*, int) {
  if (!p) return;
  header* h = static_cast<header*>(p) - 1;
  account(h, -1);
  std::free(h);
}

void* counting_realloc(void* p, std::size_t n, const char* file, int line) {
  if (!p) return counting_malloc(n, file, line);
  if (n == 0) {
    counting_free(p, file, line);
    return nullptr;
  }
  void* q = counting_malloc(n, file, line);
  if (!q) return nullptr;
  std::memcpy(q, p, std::min(n, (static_cast<header*>(p) - 1)->size));
  // The block keeps the side that first made it (a buffer the server grows stays the server's).
  header* nh = static_cast<header*>(q) - 1;
  account(nh, -1);
  nh->side = (static_cast<header*>(p) - 1)->side;
  account(nh, 1);
  counting_free(p, file, line);
  return q;
}

struct scope {
  int saved;
  explicit scope(int s) : saved(current_side) { current_side = s; }
  ~scope() { current_side = saved; }
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ssl_mem: %s\n", what);
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void*) {
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char* o = nullptr;
  if (SSL_select_next_proto(&o, outlen, ours, sizeof ours - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

struct pair {
  SSL* s = nullptr;
  SSL* c = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  if (!CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free))
    die("CRYPTO_set_mem_functions failed (called after an allocation?)");
  std::string cert, key, json;
  long n = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cert")
      cert = argv[i + 1];
    else if (a == "--key")
      key = argv[i + 1];
    else if (a == "--connections")
      n = std::strtol(argv[i + 1], nullptr, 10);
    else if (a == "--json")
      json = argv[i + 1];
    else
      die("usage: ssl_mem --cert PEM --key PEM [--connections N] [--json FILE]");
  }
  if (cert.empty() || key.empty() || n <= 0) die("--cert and --key are required");

  SSL_CTX *sctx = nullptr, *cctx = nullptr;
  {
    scope sc(none);  // the contexts: shared by every connection, not per connection
    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    if (!sctx || !cctx) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
    SSL_CTX_set_options(sctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_mode(cctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
    if (SSL_CTX_use_certificate_chain_file(sctx, cert.c_str()) != 1) die("certificate");
    if (SSL_CTX_use_PrivateKey_file(sctx, key.c_str(), SSL_FILETYPE_PEM) != 1) die("key");
    SSL_CTX_set_num_tickets(sctx, 1);
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(sctx, 20480);
    static const unsigned char sid_ctx[] = "nbio";
    SSL_CTX_set_session_id_context(sctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_alpn_select_cb(sctx, select_alpn, nullptr);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(cctx, alpn, sizeof alpn - 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, nullptr);
  }
  const tally ctx_server = live[server];

  std::vector<pair> conns(static_cast<std::size_t>(n));
  long long after_new = 0, after_new_heap = 0;
  for (auto& p : conns) {
    {
      scope sc(server);
      p.s = SSL_new(sctx);
    }
    {
      scope sc(client);
      p.c = SSL_new(cctx);
    }
    if (!p.s || !p.c) die("SSL_new");
  }
  after_new = live[server].bytes - ctx_server.bytes;
  after_new_heap = live[server].heap - ctx_server.heap;
  for (auto& p : conns) {
    BIO *sb = nullptr, *cb = nullptr;
    {
      scope sc(bio);
      if (BIO_new_bio_pair(&sb, 0, &cb, 0) != 1) die("BIO_new_bio_pair");
    }
    SSL_set_bio(p.s, sb, sb);
    SSL_set_bio(p.c, cb, cb);
    SSL_set_accept_state(p.s);
    SSL_set_connect_state(p.c);
    for (int step = 0; step < 20; ++step) {
      int rc_c, rc_s;
      {
        scope sc(client);
        rc_c = SSL_do_handshake(p.c);
      }
      {
        scope sc(server);
        rc_s = SSL_do_handshake(p.s);
      }
      if (rc_c == 1 && rc_s == 1) break;
    }
    if (SSL_is_init_finished(p.s) != 1 || SSL_is_init_finished(p.c) != 1) die("handshake");
    // The client reads the NewSessionTicket (and nothing else), as an idle client would.
    char buf[64];
    scope sc(client);
    SSL_read(p.c, buf, sizeof buf);
    ERR_clear_error();
  }
  const long long per_conn_bytes = (live[server].bytes - ctx_server.bytes) / n;
  const long long per_conn_heap = (live[server].heap - ctx_server.heap) / n;
  const double per_conn_count = static_cast<double>(live[server].count - ctx_server.count) / n;

  // The breakdown: call sites of server-side bytes still live, per connection.
  struct row {
    std::string site;
    double bytes, heap, count;
  };
  std::vector<row> rows;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const tally& t = live_by_site[server][i];
    if (t.count <= 0) continue;
    rows.push_back({std::string(sites[i].file) + ":" + std::to_string(sites[i].line),
                    static_cast<double>(t.bytes) / n, static_cast<double>(t.heap) / n,
                    static_cast<double>(t.count) / n});
  }
  std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) { return a.heap > b.heap; });

  std::printf("ssl_mem: %s, %ld idle TLS connections (%s, %s), per server connection:\n",
              OpenSSL_version(OPENSSL_VERSION), n, SSL_get_version(conns[0].s),
              SSL_get_cipher_name(conns[0].s));
  std::printf("  after SSL_new            %8lld bytes requested  %8lld heap bytes\n", after_new / n,
              after_new_heap / n);
  std::printf("  established, idle        %8lld bytes requested  %8lld heap bytes  (%.1f blocks)\n",
              per_conn_bytes, per_conn_heap, per_conn_count);
  std::printf("  BIO pair (this program only, not counted): %lld heap bytes\n", live[bio].heap / n);
  std::printf("  held by call site (bytes requested, heap bytes, blocks):\n");
  for (const row& r : rows)
    if (r.heap >= 8)
      std::printf("    %-36s %8.0f %8.0f %6.2f\n", r.site.c_str(), r.bytes, r.heap, r.count);
  if (!json.empty()) {
    FILE* f = std::fopen(json.c_str(), "w");
    if (!f) die("cannot write --json");
    std::fprintf(f,
                 "{\"openssl\": \"%s\", \"connections\": %ld, \"protocol\": \"%s\", "
                 "\"cipher\": \"%s\", \"after_ssl_new_bytes\": %lld, "
                 "\"after_ssl_new_heap_bytes\": %lld, \"idle_bytes\": %lld, "
                 "\"idle_heap_bytes\": %lld, \"idle_blocks\": %.2f, \"sites\": [",
                 OpenSSL_version(OPENSSL_VERSION), n, SSL_get_version(conns[0].s),
                 SSL_get_cipher_name(conns[0].s), after_new / n, after_new_heap / n, per_conn_bytes,
                 per_conn_heap, per_conn_count);
    bool first = true;
    for (const row& r : rows) {
      if (r.heap < 8) continue;
      std::fprintf(f,
                   "%s{\"site\": \"%s\", \"bytes\": %.0f, \"heap_bytes\": %.0f, \"blocks\": %.2f}",
                   first ? "" : ", ", r.site.c_str(), r.bytes, r.heap, r.count);
      first = false;
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  for (auto& p : conns) {
    SSL_free(p.s);
    SSL_free(p.c);
  }
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  return 0;
}
