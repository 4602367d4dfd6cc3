// Private. A TLS connection's data path: the engine's transport hooks on OpenSSL, through one
// BIO per thread (the shared-BIO design of uSockets): the BIO reads from the bytes the engine
// just read into its per-loop buffer and writes into the engine's own write path, so a
// connection owns its SSL object and nothing else.
#pragma once

namespace nbio::tls::stream {

// Registers the hooks with the engine (once; every context's constructor calls it).
void register_transport();

}  // namespace nbio::tls::stream
