// Conformance. The Autobahn "fuzzingclient" role: plays one case of autobahn_cases.json against
// a WebSocket server over a real loopback TCP connection and judges it by the rules of
// AUTOBAHN_CATALOG.md section 2 (autobahn_judge.hpp).
//
//   verdict v = play_case(server_address, json_case, {});
//   // v.outcome: OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED or FAILED (v.reason says why)
//
// The client is single-threaded, with a non-blocking socket and poll(): frames are masked with
// a fresh random key each, written as the case says (frames queued and written together,
// "sync" frames written alone, "chop" frames written K bytes per send(), waits honoured), and
// what the server sends is decoded by hand (no nbio code on the checking side, so a bug in the
// frame parser cannot hide itself) while writes are in progress, so neither side can deadlock
// on full socket buffers. Timers as the fuzzer's: killAfter, closeAfter, a 1 s closing
// handshake timeout and a 1 s wait for the server to drop TCP after the closing handshake.
#pragma once

#include <chrono>

#include "autobahn_case.hpp"
#include "nbio/core/address.hpp"

namespace nbio_test::autobahn {

struct fuzzer_options {
  // After the fuzzer sent a close frame: how long it waits for the server's (then drops TCP).
  std::chrono::milliseconds close_handshake_timeout{1000};
  // After the closing handshake: how long it waits for the server to close TCP (else the case's
  // close verdict is FAILED BY CLIENT, or UNCLEAN where a clean close is required).
  std::chrono::milliseconds server_drop_timeout{1000};
  // killAfter / closeAfter delays above this are cut to it (9.x allows 10-1000 s: a server
  // that never answers would hold the suite for minutes). Only a failing case reaches them.
  std::chrono::milliseconds max_timer{20'000};
};

// Plays case `c` (one element of the file's "cases") against ws://`server`/ws.
verdict play_case(const nbio::address& server, const nlohmann::json& c,
                  const fuzzer_options& o = {});

}  // namespace nbio_test::autobahn
