// Conformance. The verdict of one Autobahn case from what the fuzzing client observed, by the
// rules of AUTOBAHN_CATALOG.md section 2: `behavior` from the events received (the first
// expected list that equals them: OK, then NON-STRICT; FAILED otherwise), `behaviorClose` from
// who closed, whether the close was clean, the testee's close code and (testing a server) who
// dropped TCP, in the catalog's order; and the gate's outcome. Either role (section 3): the
// testee is the server or the client. Pure: no sockets, no clock.
#pragma once

#include <string>
#include <vector>

#include "autobahn_case.hpp"

namespace nbio_test::autobahn {

// What happened on the connection of one case.
struct observation {
  fuzzer_role role = fuzzer_role::client;  // the harness' end; the testee is the other one
  bool opened = false;                     // the opening handshake completed
  bool closed_by_me = false;   // the fuzzer sent the first close frame (or failed the connection)
  bool dropped_by_me = false;  // the fuzzer closed TCP first
  bool was_clean = false;      // the closing handshake completed and the server closed TCP
  bool got_close = false;      // the testee sent a close frame
  int remote_close_code = -1;  // its code; -1: none
  std::string not_clean_why;   // why the close was not clean, or why the fuzzer dropped TCP
  std::string violation;       // the testee broke RFC 6455 (the case fails whatever else)
  std::vector<event> received;
  // Cases decided in code (9.x, 12.x, 13.x): the behavior and its reason; empty otherwise.
  std::string decided_behavior;
  std::string decided_reason;
};

// The events of an expected list of the case data (["message", payload, binary], ["pong",
// payload], ["timeout", tag]).
std::vector<event> expected_events(const nlohmann::json& list);

// Cases whose verdict is INFORMATIONAL whatever happens (7.1.6 and 7.13.x set it in their
// onConnectionLost; the JSON keeps only the fact that they override it).
bool informational(const std::string& id);

verdict judge(const nlohmann::json& c, const observation& o);

}  // namespace nbio_test::autobahn
