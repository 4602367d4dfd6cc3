// Conformance. The Autobahn|Testsuite cases as data (tests/conformance/data/autobahn_cases.json,
// read as AUTOBAHN_CATALOG.md describes it), the events the fuzzer records, and the verdict of
// one case. The fuzzing client that plays a case against a server is autobahn_fuzzer.hpp, the
// fuzzing server that plays one against a client autobahn_fuzzing_server.hpp (both on
// autobahn_session.hpp); the gates are autobahn_server_test.cpp and autobahn_client_test.cpp.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nbio_test::autobahn {

// What the fuzzer records while a case runs (catalog section 2): a whole data message, a pong,
// a ping, or a tagged wait that elapsed while the connection was still open.
struct event {
  enum class kind { message, pong, ping, timeout } what = kind::message;
  std::string payload;  // message, pong, ping; the tag for timeout
  bool binary = false;  // message
  bool operator==(const event&) const = default;
};

// Which end of the connection the harness plays (catalog section 3): the fuzzing client tests a
// server, the fuzzing server tests a client. The rules are the same with the roles swapped;
// only "the fuzzer had to drop TCP" (FAILED BY CLIENT) is the client role's alone.
enum class fuzzer_role { client, server };

// "server" for the fuzzing client's testee, "client" for the fuzzing server's.
inline const char* testee_name(fuzzer_role r) {
  return r == fuzzer_role::client ? "server" : "client";
}

// One line of a report: "message(text, 13 bytes)".
std::string describe(const event& e);
std::string describe(const std::vector<event>& events);

// The bytes of a payload object {"hex", "len", "rep"?}: `rep` repeated to `len` when present,
// else the hex. `complete` is false when the hex was stored as a prefix ("...") with no `rep`
// (the 12.x/13.x corpora): the bytes returned are then that prefix only.
std::string payload_bytes(const nlohmann::json& p, bool* complete = nullptr);

// Verdicts (catalog section 2). behavior: OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED or
// FAILED; behavior_close: OK, INFORMATIONAL, FAILED, UNCLEAN, WRONG CODE or FAILED BY CLIENT.
struct verdict {
  std::string id;
  std::string behavior = "FAILED";
  std::string behavior_close = "FAILED";
  std::string outcome = "FAILED";  // the gate's word for the case: behavior, or FAILED
  std::string reason;              // why, for anything not plainly OK
  double duration_ms = 0;
  int remote_close_code = -1;  // the code in the testee's close frame; -1: none
  std::vector<event> received;
};

// "1" for "1.1.8", "12" for "12.3.4".
std::string group_of(const std::string& id);

// What both roles' tests share: an environment knob with its default; whether a case id is
// selected by a filter of comma-separated id prefixes ("" selects all); the known-failures file
// ("5.15 reason..." per line, '#' starts a comment) as id -> reason; numeric id order (1.1.2
// before 1.1.10).
std::string env_or(const char* name, const char* fallback);
bool selected(const std::string& id, const std::string& filter);
std::map<std::string, std::string> load_known_failures(const std::string& path);
bool id_less(const std::string& a, const std::string& b);

}  // namespace nbio_test::autobahn
