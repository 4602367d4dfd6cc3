// Conformance. The Autobahn verdict rules (autobahn_judge.hpp).
#include "autobahn_judge.hpp"

#include <algorithm>

namespace nbio_test::autobahn {

std::vector<event> expected_events(const nlohmann::json& list) {
  std::vector<event> want;
  for (const auto& e : list) {
    const std::string k = e.at(0).get<std::string>();
    event ev;
    if (k == "message") {
      ev.payload = payload_bytes(e.at(1));
      ev.binary = e.at(2).get<bool>();
    } else if (k == "timeout") {
      ev.what = event::kind::timeout;
      ev.payload = e.at(1).is_string() ? e.at(1).get<std::string>() : "";
    } else {
      ev.what = k == "pong" ? event::kind::pong : event::kind::ping;
      ev.payload = payload_bytes(e.at(1));
    }
    want.push_back(std::move(ev));
  }
  return want;
}

bool informational(const std::string& id) {
  return id == "7.1.6" || id.starts_with("7.13.");
}

verdict judge(const nlohmann::json& c, const observation& o) {
  verdict v;
  v.id = c.at("id").get<std::string>();
  v.remote_close_code = o.remote_close_code;
  v.received = o.received;
  const auto& ec = c.at("expectedClose");
  const bool want_me = ec.at("closedByMe").get<bool>();
  const bool info = informational(v.id);
  std::string behavior_reason;
  if (!o.opened) {
    v.behavior_close = "FAILED";
    v.outcome = "FAILED";
    v.reason = "opening handshake was never completed";
    return v;
  }
  if (!o.decided_behavior.empty()) {
    v.behavior = o.decided_behavior;
    behavior_reason = o.decided_reason;
  } else {
    for (const char* key : {"OK", "NON-STRICT"}) {
      if (c.at("expected").contains(key) && expected_events(c["expected"][key]) == o.received) {
        v.behavior = key;
        break;
      }
    }
    if (v.behavior == "FAILED") {
      behavior_reason = "received " + describe(o.received) + ", expected";
      for (const auto& [key, list] : c["expected"].items()) {
        behavior_reason += " " + key + " " + describe(expected_events(list));
      }
    }
  }
  if (!o.violation.empty()) {
    v.behavior = "FAILED";
    behavior_reason = o.violation;
  }

  // behaviorClose, in the catalog's order.
  std::string close_reason;
  const auto& codes = ec.at("closeCode");
  const bool code_ok =
      o.remote_close_code < 0 || std::any_of(codes.begin(), codes.end(), [&](const auto& code) {
        return code.template get<int>() == o.remote_close_code;
      });
  const std::string testee = testee_name(o.role);
  if (want_me != o.closed_by_me) {
    v.behavior_close = "FAILED";
    if (want_me) {
      close_reason = "closed by the wrong endpoint: the ";
      close_reason.append(testee).append(" closed first (");
      close_reason.append(o.got_close ? "code " + std::to_string(o.remote_close_code)
                                      : std::string("no close frame"));
      close_reason.append(") where the fuzzer should have");
    } else {
      close_reason = "closed by the wrong endpoint: the ";
      close_reason.append(testee).append(" did not fail the connection, the fuzzer closed it");
    }
  } else if (ec.at("requireClean").get<bool>() && !o.was_clean) {
    v.behavior_close = "UNCLEAN";
    close_reason = "unclean close: " + (o.not_clean_why.empty() ? "?" : o.not_clean_why);
  } else if (!code_ok) {
    v.behavior_close = "WRONG CODE";
    close_reason = testee;
    close_reason.append(" closed with ")
        .append(std::to_string(o.remote_close_code))
        .append(", expected ")
        .append(codes.dump());
  } else if (o.dropped_by_me && o.role == fuzzer_role::client) {
    // Rule 5 is the client role's: a server closes TCP itself after the closing handshake.
    v.behavior_close = "FAILED BY CLIENT";
    close_reason = "the fuzzer had to drop TCP: " + o.not_clean_why;
  } else {
    v.behavior_close = "OK";
  }
  // Invalid UTF-8 not detected at all; 7.x turns WRONG CODE into a failed behavior too.
  if (ec.value("closedByWrongEndpointIsFatal", false) && want_me != o.closed_by_me)
    v.behavior = "FAILED";
  if (group_of(v.id) == "7" && v.behavior_close == "WRONG CODE") v.behavior = "FAILED";

  if (info) {
    v.behavior = "INFORMATIONAL";
    v.behavior_close = "INFORMATIONAL";
    v.reason = "received " + describe(o.received) + ", ";
    v.reason.append(testee).append(" close code ").append(std::to_string(o.remote_close_code));
    if (!close_reason.empty()) v.reason.append("; ").append(close_reason);
  }
  const bool behavior_ok = v.behavior == "OK" || v.behavior == "NON-STRICT" ||
                           v.behavior == "INFORMATIONAL" || v.behavior == "UNIMPLEMENTED";
  const bool close_ok = v.behavior_close == "OK" || v.behavior_close == "INFORMATIONAL";
  v.outcome = behavior_ok && close_ok ? v.behavior : "FAILED";
  if (v.behavior == "NON-STRICT")
    v.reason = "matched the NON-STRICT list: received " + describe(o.received);
  if (!info) {
    if (!behavior_reason.empty()) v.reason += (v.reason.empty() ? "" : "; ") + behavior_reason;
    if (!close_reason.empty()) v.reason += (v.reason.empty() ? "" : "; ") + close_reason;
  }
  return v;
}

}  // namespace nbio_test::autobahn
