// Conformance. The Autobahn "fuzzingclient" role: plays one case of autobahn_cases.json against
// a WebSocket server over a real loopback TCP connection and judges it by the rules of
// AUTOBAHN_CATALOG.md section 2 (autobahn_judge.hpp).
//
//   verdict v = play_case(server_address, json_case, {});
//   // v.outcome: OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED or FAILED (v.reason says why)
//
// The session (autobahn_session.hpp) does the rest: frames are masked with a fresh random key
// each, written as the case says, and what the server sends is decoded by hand. Timers as the
// fuzzer's: killAfter, closeAfter, a 1 s closing handshake timeout and a 1 s wait for the server
// to drop TCP after the closing handshake.
#pragma once

#include <chrono>

#include "autobahn_case.hpp"
#include "autobahn_session.hpp"
#include "nbio/core/address.hpp"

namespace nbio_test::autobahn {

using fuzzer_options = session_options;

// Plays case `c` (one element of the file's "cases") against ws://`server`/ws.
verdict play_case(const nbio::address& server, const nlohmann::json& c,
                  const fuzzer_options& o = {});

}  // namespace nbio_test::autobahn
