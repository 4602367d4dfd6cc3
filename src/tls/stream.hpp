// Private. A TLS connection's data path: the engine's transport hooks on OpenSSL, through one
// BIO per thread (the shared-BIO design of uSockets): the BIO reads from the bytes the engine
// just read into its per-loop buffer and writes into the engine's own write path, so a
// connection owns its SSL object and nothing else.
#pragma once

namespace nbio::tls::detail {
struct handshake_job;
}

namespace nbio::tls::stream {

// Registers the hooks with the engine (once; every context's constructor calls it).
void register_transport();
// A worker thread's part of an offloaded handshake step (handshake_pool.hpp).
void run_offloaded(detail::handshake_job& job);

}  // namespace nbio::tls::stream
