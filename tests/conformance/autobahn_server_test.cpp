// Conformance: the Autobahn|Testsuite cases (tests/conformance/data/autobahn_cases.json, 517
// cases) played by an in-process fuzzing client (autobahn_fuzzer.hpp) against nbio's
// WebSocket echo server (websocket::server behind http::server, as tests/support/
// ws_test_server.hpp builds it), judged by the catalog's rules.
//
// The server accepts permessage-deflate with dedicated streams (context takeover). The test
// passes when every case is OK, NON-STRICT (where the case lists it), INFORMATIONAL, or FAILED
// but listed in
// autobahn_server_known_failures.txt; a listed case that passes is printed (take it off the
// list). It writes the per-case table to NBIO_AUTOBAHN_REPORT_DIR: autobahn_server.md and
// autobahn_server.json. Environment: NBIO_AUTOBAHN_CASES (the JSON file), NBIO_AUTOBAHN_FILTER
// (comma-separated id prefixes, "1.,2.,9.7."; default all), NBIO_AUTOBAHN_REPORT_DIR,
// NBIO_AUTOBAHN_KNOWN_FAILURES (another list file), NBIO_AUTOBAHN_IO_MODE (nonblocking, the
// default; blocking or mixed: the server's connections on threads), and
// NBIO_AUTOBAHN_SERVER=127.0.0.1:PORT to play the cases against another echo server instead
// (a cross-check of the harness itself against third-party peers such as Node's ws),
// NBIO_AUTOBAHN_DEFLATE_COUNT (12.x/13.x: messages echoed per case, default 10 of the
// catalog's 1,000, which would take minutes).
// Not built in sanitized trees (group 9 echoes messages up to 16 MiB); runs in parallel with
// other tests.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "autobahn_case.hpp"
#include "autobahn_fuzzer.hpp"
#include "support/test_certs.hpp"
#include "support/ws_test_server.hpp"

#include <openssl/ssl.h>
#include <nbio/tls/context.hpp>

namespace {

using namespace nbio_test;
using namespace nbio_test::autobahn;

struct echo {
  void on_message(nbio::websocket::connection& ws, std::string_view data, bool binary) {
    ws.send(data, binary);
  }
};

void write_reports(const std::string& dir, const std::string& name,
                   const std::vector<verdict>& results,
                   const std::map<std::string, std::string>& known, double total_s) {
  static const char* outcomes[] = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"};
  std::map<std::string, std::map<std::string, int>> counts;  // group -> outcome -> n
  for (const auto& v : results)
    counts[group_of(v.id)][v.outcome]++;

  nlohmann::json j;
  j["server"] = env_or("NBIO_AUTOBAHN_SERVER", "nbio websocket::server (echo), in-process");
  j["total_seconds"] = total_s;
  for (const auto& v : results) {
    j["cases"].push_back({{"id", v.id},
                          {"group", group_of(v.id)},
                          {"outcome", v.outcome},
                          {"behavior", v.behavior},
                          {"behaviorClose", v.behavior_close},
                          {"remoteCloseCode", v.remote_close_code},
                          {"duration_ms", v.duration_ms},
                          {"known_failure", known.contains(v.id)},
                          {"reason", v.reason}});
  }
  for (const auto& [g, m] : counts)
    j["groups"][g] = m;
  std::ofstream(dir + "/" + name + ".json") << j.dump(1) << "\n";

  std::ofstream md(dir + "/" + name + ".md");
  md << "# Autobahn conformance: nbio WebSocket server"
     << (name.ends_with("_tls") ? " over TLS" : "") << "\n\n"
     << "Fuzzing client: tests/conformance/autobahn_fuzzer.cpp; cases: "
        "tests/conformance/data/autobahn_cases.json; "
     << results.size() << " cases in " << static_cast<int>(total_s) << " s.\n\n"
     << "| group | OK | NON-STRICT | INFORMATIONAL | UNIMPLEMENTED | FAILED |\n"
     << "|---|---|---|---|---|---|\n";
  std::vector<std::string> groups;
  for (const auto& [g, m] : counts)
    groups.push_back(g);
  std::sort(groups.begin(), groups.end(),
            [](const auto& a, const auto& b) { return std::stoi(a) < std::stoi(b); });
  for (const auto& g : groups) {
    md << "| " << g;
    for (const char* o : outcomes)
      md << " | " << counts[g][o];
    md << " |\n";
  }
  md << "\n| case | group | outcome | behavior / close | duration (ms) | reason |\n"
     << "|---|---|---|---|---|---|\n";
  for (const auto& v : results) {
    std::string reason = v.reason;
    for (char& ch : reason)
      if (ch == '|' || ch == '\n') ch = ' ';
    if (known.contains(v.id) && v.outcome == "FAILED") reason = "(known failure) " + reason;
    md << "| " << v.id << " | " << group_of(v.id) << " | " << v.outcome << " | " << v.behavior
       << " / " << v.behavior_close << " | " << static_cast<long>(v.duration_ms) << " | " << reason
       << " |\n";
  }
}

// All cases against the server, over TCP or (tls) through nbio's TLS layer, the fuzzing client
// speaking TLS with OpenSSL directly; the report goes to autobahn_server[_tls].md.
void run_server_cases(bool tls) {
  const std::string cases_path = env_or("NBIO_AUTOBAHN_CASES", NBIO_AUTOBAHN_CASES_FILE);
  std::ifstream in(cases_path);
  if (!in) GTEST_FAIL() << cases_path << " not found (the catalog is part of the repository)";
  const nlohmann::json data = nlohmann::json::parse(in);
  const auto known = load_known_failures(
      env_or("NBIO_AUTOBAHN_KNOWN_FAILURES", NBIO_AUTOBAHN_KNOWN_FAILURES_FILE));
  const std::string filter = env_or("NBIO_AUTOBAHN_FILTER", "");

  echo h;
  nbio::websocket::endpoint_options o;
  o.limits.max_message = 32u << 20;  // 9.1.6 / 9.2.6 send 16 MiB
  o.max_write_queue = 64u << 20;     // the echo of 16 MiB is queued whole
  o.close_timeout = std::chrono::seconds(2);
  // 12.x/13.x: dedicated streams, so our compressor keeps its context (the harder path).
  o.deflate.enabled = true;
  o.deflate.memory = nbio::websocket::deflate_memory::dedicated;
  const std::string mode_name = env_or("NBIO_AUTOBAHN_IO_MODE", "nonblocking");
  const nbio::io_mode mode = mode_name == "blocking" ? nbio::io_mode::blocking
                             : mode_name == "mixed"  ? nbio::io_mode::mixed
                                                     : nbio::io_mode::nonblocking;
  std::shared_ptr<nbio::tls::context> server_tls;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_tls(nullptr, SSL_CTX_free);
  if (tls) {
    const test_pki& pki = test_pki::get();
    server_tls = nbio::tls::context::server({.cert = {pki.server.chain, pki.server.key}});
    client_tls.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_load_verify_locations(client_tls.get(), pki.ca.c_str(), nullptr);
    SSL_CTX_set_verify(client_tls.get(), SSL_VERIFY_PEER, nullptr);
  }
  ws_test_server server(h, mode, o, server_tls);

  std::vector<const nlohmann::json*> cases;
  for (const auto& c : data.at("cases"))
    if (selected(c.at("id").get<std::string>(), filter)) cases.push_back(&c);
  std::sort(cases.begin(), cases.end(), [](const auto* a, const auto* b) {
    return id_less(a->at("id").template get<std::string>(),
                   b->at("id").template get<std::string>());
  });

  nbio::address target = server.address();
  const std::string external = env_or("NBIO_AUTOBAHN_SERVER", "");
  if (!external.empty()) {
    const auto a = nbio::address::parse(external);
    ASSERT_TRUE(a) << "NBIO_AUTOBAHN_SERVER=" << external << ": not a numeric host:port";
    target = *a;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<verdict> results;
  fuzzer_options fo;
  fo.max_deflate_messages = std::atoi(env_or("NBIO_AUTOBAHN_DEFLATE_COUNT", "10").c_str());
  fo.tls = client_tls.get();
  for (const auto* c : cases)
    results.push_back(play_case(target, *c, fo));
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string report_dir =
      env_or("NBIO_AUTOBAHN_REPORT_DIR", NBIO_AUTOBAHN_REPORT_DIR_DEFAULT);
  const std::string report = tls ? "autobahn_server_tls" : "autobahn_server";
  write_reports(report_dir, report, results, known, total_s);

  std::map<std::string, int> totals;
  std::vector<std::string> unexpected, fixed, unimplemented;
  for (const auto& v : results) {
    totals[v.outcome]++;
    const bool listed = known.contains(v.id);
    if (v.outcome == "FAILED" && !listed) unexpected.push_back(v.id + ": " + v.reason);
    if (v.outcome != "FAILED" && listed) fixed.push_back(v.id + " (" + v.outcome + ")");
    if (v.outcome == "FAILED" && listed)
      std::printf("known failure %s: %s\n", v.id.c_str(), v.reason.c_str());
    if (v.outcome == "UNIMPLEMENTED") unimplemented.push_back(v.id);
    // permessage-deflate is implemented: a case left UNIMPLEMENTED means it was not agreed.
    if (v.outcome == "UNIMPLEMENTED") unexpected.push_back(v.id + ": UNIMPLEMENTED");
  }
  std::printf(
      "autobahn: %zu cases in %.1f s: %d OK, %d NON-STRICT, %d INFORMATIONAL, %d "
      "UNIMPLEMENTED, %d FAILED (report: %s/%s.md)\n",
      results.size(), total_s, totals["OK"], totals["NON-STRICT"], totals["INFORMATIONAL"],
      totals["UNIMPLEMENTED"], totals["FAILED"], report_dir.c_str(), report.c_str());
  if (!unimplemented.empty())
    std::printf("UNIMPLEMENTED (permessage-deflate): %zu cases, %s .. %s\n", unimplemented.size(),
                unimplemented.front().c_str(), unimplemented.back().c_str());
  for (const auto& f : fixed)
    std::printf("NOW PASSING, remove from autobahn_server_known_failures.txt: %s\n", f.c_str());
  for (const auto& u : unexpected)
    ADD_FAILURE() << "case " << u;
  // Over TLS the cases ran on nbio's record layer: every connection left OpenSSL after its
  // handshake (tls::server_options::handoff).
  if (tls && external.empty()) {
    const nbio::tls::context_stats st = server_tls->stats();
    EXPECT_GT(st.handshakes, 0u);
    EXPECT_EQ(st.handed_off, st.handshakes);
  }
}

TEST(autobahn_server, every_case_passes_or_is_a_known_failure) {
  run_server_cases(false);
}

// The same cases once more over TLS (the "the conformance harness runs over TLS").
TEST(autobahn_server_tls, every_case_passes_or_is_a_known_failure) {
  run_server_cases(true);
}

}  // namespace
