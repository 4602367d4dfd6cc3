// Conformance. The Autobahn "fuzzingserver" role (AUTOBAHN_CATALOG.md section 3): tests a
// WebSocket client. The harness listens on 127.0.0.1; for case i the client under test connects
// to /runCase?case=i&agent=NAME and echoes every message it receives with the same opcode until
// the connection ends. The harness checks the client's opening handshake by hand (GET, the
// target, Host, Upgrade, Connection, a Sec-WebSocket-Key of 16 base64 bytes that differs from
// the previous connection's, version 13), answers 101 with the Sec-WebSocket-Accept it computes
// itself (OpenSSL's SHA-1 and base64, no nbio code), then plays the case as the server
// (autobahn_session.hpp: its frames unmasked, every client frame must be masked) and judges it
// with the same rules as the fuzzing client, the roles swapped.
//
//   fuzzing_server srv;
//   my_client.connect(srv.case_url(i, "nbio"));   // the testee, on its own threads
//   verdict v = srv.play_case(json_case, i, "nbio");
//
// Compression (12.x/13.x): a client that offers no permessage-deflate gets the case
// UNIMPLEMENTED and an immediate close 1000, as Autobahn does. An offer is answered by
// deflate_accept() (the catalog's 12.x/13.x accept rules); once one is accepted the session
// echoes the case's messages compressed (autobahn_deflate.hpp).
//
// One case at a time, on the calling thread; the listening socket lives as long as the object.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "autobahn_case.hpp"
#include "autobahn_session.hpp"
#include "nbio/core/address.hpp"
#include "support/unique_fd.hpp"

namespace nbio_test::autobahn {

struct fuzzing_server_options {
  session_options session{};
  // How long the client has to connect, and then to send its whole upgrade request.
  std::chrono::milliseconds accept_timeout{5000};
};

// The Sec-WebSocket-Accept for `key` (RFC 6455 4.2.2: base64(SHA-1(key + GUID))).
std::string websocket_accept(std::string_view key);

// Why the client's upgrade request `head` (up to the CRLF of its last field) is not a valid
// RFC 6455 4.1 opening handshake for `target`, or "" when it is.
std::string check_client_handshake(std::string_view head, std::string_view target);

// The Sec-WebSocket-Extensions answer to the client's `offers` for case `c`: the first
// permessage-deflate offer the case's accept rule takes (12.x: as offered; 13.x: the
// (client_no_context_takeover, client_max_window_bits) requests of extra.server_accept_doc, in
// order), "" to decline (and always outside 12.x/13.x).
std::string deflate_accept(const nlohmann::json& c, std::string_view offers);

class fuzzing_server {
 public:
  explicit fuzzing_server(fuzzing_server_options o = {});
  fuzzing_server(const fuzzing_server&) = delete;
  fuzzing_server& operator=(const fuzzing_server&) = delete;

  // Where it listens (127.0.0.1, a port the kernel chose); invalid when listening failed.
  const nbio::address& address() const { return address_; }
  // ws://127.0.0.1:PORT/runCase?case=INDEX&agent=AGENT
  std::string case_url(std::size_t index, std::string_view agent) const;

  // Accepts the next connection (the client must have been told case_url(index, agent)), and
  // plays case `c` on it.
  verdict play_case(const nlohmann::json& c, std::size_t index, std::string_view agent);

 private:
  fuzzing_server_options opts_;
  unique_fd listener_;
  nbio::address address_;
  std::string last_key_;  // the previous connection's Sec-WebSocket-Key
};

}  // namespace nbio_test::autobahn
