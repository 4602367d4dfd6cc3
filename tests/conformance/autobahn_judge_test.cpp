// Conformance: the Autobahn verdict rules (autobahn_judge.hpp) on hand-made observations, no
// sockets: each rule of AUTOBAHN_CATALOG.md section 2 once, so a harness that passes every case
// cannot be passing them because its judge cannot fail.
#include <gtest/gtest.h>

#include "autobahn_judge.hpp"

namespace {

using namespace nbio_test::autobahn;

// 3.2 as the data has it: an echo, then a frame the server must fail with 1002.
const nlohmann::json reserved_bits_case = nlohmann::json::parse(R"({
  "id": "3.2",
  "expected": {"OK": [["message", {"hex": "6869", "len": 2}, false]], "NON-STRICT": []},
  "expectedClose": {"closedByMe": false, "closeCode": [1002], "requireClean": false}
})");

// 1.1.1-like: an echo, then the fuzzer closes with 1000 and requires a clean close.
const nlohmann::json echo_case = nlohmann::json::parse(R"({
  "id": "1.1.2",
  "expected": {"OK": [["message", {"hex": "2a2a", "len": 125, "rep": "2a"}, false]]},
  "expectedClose": {"closedByMe": true, "closeCode": [1000], "requireClean": true}
})");

observation clean_server_close(int code) {
  observation o;
  o.opened = true;
  o.got_close = true;
  o.was_clean = true;
  o.remote_close_code = code;
  return o;
}

TEST(autobahn_judge, the_ok_list_then_the_non_strict_list_then_failed) {
  observation o = clean_server_close(1002);
  o.received = {{event::kind::message, "hi", false}};
  EXPECT_EQ(judge(reserved_bits_case, o).outcome, "OK");
  o.received.clear();
  EXPECT_EQ(judge(reserved_bits_case, o).outcome, "NON-STRICT");
  o.received = {{event::kind::message, "hi", true}};  // binary instead of text
  EXPECT_EQ(judge(reserved_bits_case, o).outcome, "FAILED");
}

TEST(autobahn_judge, close_verdicts_follow_the_catalog_order) {
  observation o = clean_server_close(1002);
  o.received = {{event::kind::message, "hi", false}};
  o.closed_by_me = true;  // the server never failed the connection: the fuzzer's kill timer did
  EXPECT_EQ(judge(reserved_bits_case, o).behavior_close, "FAILED");
  o.closed_by_me = false;
  o.remote_close_code = 1000;
  EXPECT_EQ(judge(reserved_bits_case, o).behavior_close, "WRONG CODE");
  o.remote_close_code = -1;  // TCP closed without a close frame: not a wrong code
  o.got_close = false;
  o.was_clean = false;
  EXPECT_EQ(judge(reserved_bits_case, o).outcome, "OK");

  observation e = clean_server_close(1000);
  e.closed_by_me = true;
  e.received = {{event::kind::message, std::string(125, '*'), false}};
  EXPECT_EQ(judge(echo_case, e).outcome, "OK");
  e.was_clean = false;
  EXPECT_EQ(judge(echo_case, e).behavior_close, "UNCLEAN");
  e.was_clean = true;
  e.dropped_by_me = true;  // the server did not close TCP after the handshake
  EXPECT_EQ(judge(echo_case, e).behavior_close, "FAILED BY CLIENT");
  EXPECT_EQ(judge(echo_case, e).outcome, "FAILED");
}

// Testing a client (the fuzzing server): the same rules with the roles swapped, except that the
// fuzzer closing TCP after the closing handshake is what a server does, not FAILED BY CLIENT.
TEST(autobahn_judge, roles_swapped_for_the_fuzzing_server) {
  observation e = clean_server_close(1000);
  e.role = fuzzer_role::server;
  e.closed_by_me = true;
  e.dropped_by_me = true;
  e.received = {{event::kind::message, std::string(125, '*'), false}};
  EXPECT_EQ(judge(echo_case, e).outcome, "OK");
  e.was_clean = false;
  EXPECT_EQ(judge(echo_case, e).behavior_close, "UNCLEAN");

  observation o = clean_server_close(1000);
  o.role = fuzzer_role::server;
  o.closed_by_me = false;
  o.received = {{event::kind::message, "hi", false}};
  const verdict v = judge(reserved_bits_case, o);
  EXPECT_EQ(v.behavior_close, "WRONG CODE");
  EXPECT_NE(v.reason.find("client closed with 1000"), std::string::npos) << v.reason;
  o.closed_by_me = true;
  EXPECT_NE(judge(reserved_bits_case, o).reason.find("the client did not fail the connection"),
            std::string::npos);
}

TEST(autobahn_judge, informational_unimplemented_and_violations) {
  nlohmann::json c = echo_case;
  c["id"] = "7.13.1";
  observation o = clean_server_close(1002);
  o.closed_by_me = true;
  EXPECT_EQ(judge(c, o).outcome, "INFORMATIONAL");

  c["id"] = "12.1.1";
  o.decided_behavior = "UNIMPLEMENTED";
  o.remote_close_code = 1000;
  EXPECT_EQ(judge(c, o).outcome, "UNIMPLEMENTED");
  o.violation = "the server sent a masked frame";
  EXPECT_EQ(judge(c, o).outcome, "FAILED");

  observation never;
  EXPECT_EQ(judge(echo_case, never).reason, "opening handshake was never completed");
}

}  // namespace
