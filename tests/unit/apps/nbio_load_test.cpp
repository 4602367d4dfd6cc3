// nbio-load's pure parts: the latency histogram, option parsing and validation, result merging.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "http_mode.hpp"
#include "latency_histogram.hpp"
#include "load_options.hpp"
#include "load_result.hpp"
#include "plot.hpp"
#include "tcp_echo_mode.hpp"
#include "ws_mode.hpp"

namespace {

using namespace nbio_load;

constexpr system_limits test_limits{.ephemeral_ports = 28000, .open_files = 20000};

parse_outcome parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"nbio-load"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_load_options(static_cast<int>(argv.size()), argv.data(), test_limits);
}

TEST(nbio_load_histogram, empty_reports_zero) {
  latency_histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(nbio_load_histogram, quantiles_within_bucket_precision) {
  latency_histogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v)
    h.record(v * 1000);  // 1 us .. 100 ms, uniform
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 100000000u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 100000 * 1000;
    EXPECT_NEAR(static_cast<double>(h.quantile(q)), exact, exact * 0.035) << "q=" << q;
  }
  EXPECT_EQ(h.quantile(1.0), h.max());
}

TEST(nbio_load_histogram, small_values_are_exact) {
  latency_histogram h;
  for (std::uint64_t v : {0, 1, 5, 31})
    h.record(v);
  EXPECT_EQ(h.quantile(0.25), 0u);
  EXPECT_EQ(h.quantile(0.5), 1u);
  EXPECT_EQ(h.quantile(0.75), 5u);
  EXPECT_EQ(h.quantile(1.0), 31u);
}

TEST(nbio_load_histogram, bucket_midpoint_lies_in_its_bucket) {
  for (std::size_t b = 0; b < latency_histogram::bucket_count - 16; ++b)
    EXPECT_EQ(latency_histogram::bucket_of(latency_histogram::midpoint_of(b)), b) << b;
  EXPECT_LT(latency_histogram::bucket_of(~std::uint64_t{0}), latency_histogram::bucket_count);
}

TEST(nbio_load_histogram, merge_equals_recording_everything_in_one) {
  latency_histogram a, b, all;
  for (std::uint64_t v = 1; v < 50000; v += 7) {
    ((v % 3) ? a : b).record(v * 13);
    all.record(v * 13);
  }
  latency_histogram merged = a;
  merged.merge(b);
  EXPECT_EQ(merged, all);
  EXPECT_EQ(merged.quantile(0.99), all.quantile(0.99));
}

TEST(nbio_load_histogram, json_round_trip_is_exact) {
  latency_histogram h;
  for (std::uint64_t v : {3u, 700u, 700u, 123456u, 99999999u})
    h.record(v);
  EXPECT_EQ(latency_histogram::from_json(h.to_json()), h);
  EXPECT_EQ(latency_histogram::from_json(latency_histogram{}.to_json()), latency_histogram{});
}

TEST(nbio_load_histogram, json_with_bad_counts_is_rejected) {
  auto j = nlohmann::json::parse(R"({"count":3,"min":1,"max":2,"buckets":[[1,1]]})");
  EXPECT_THROW(latency_histogram::from_json(j), std::invalid_argument);
  j = nlohmann::json::parse(R"({"count":1,"min":1,"max":2,"buckets":[[100000,1]]})");
  EXPECT_THROW(latency_histogram::from_json(j), std::invalid_argument);
}

TEST(nbio_load_options, good_command_lines) {
  struct row {
    std::initializer_list<const char*> args;
    std::uint64_t connections;
    unsigned source_ips;
    std::size_t ports;
  };
  const row rows[] = {
      {{"--port", "9000"}, 1, 1, 1},
      {{"-p", "9000,9001", "-c", "100000", "--processes", "6"}, 100000, 4, 2},
      {{"--port", "9000", "--port", "9001", "-c", "20"}, 20, 1, 2},
      {{"--mode", "idle", "-p", "1", "-c", "30000", "--processes", "2"}, 30000, 3, 1},
      {{"-p", "9", "-c", "50000", "--processes", "3", "--source-ips", "2"}, 50000, 2, 1},
      {{"-p", "9", "-c", "10", "--in-flight", "5"}, 10, 1, 1},
      {{"-p", "9", "-c", "10", "--in-flight-per-conn", "4", "--in-flight", "40"}, 10, 1, 1},
      {{"-p", "9", "-n", "1000", "-s", "1024", "-d", "3", "--json", "/tmp/x"}, 1, 1, 1},
      {{"-p", "9", "-c", "8", "--ramp-first", "--ramp-timeout", "30"}, 8, 1, 1},
      {{"-p", "9", "--mode", "http", "--pipeline", "16", "--path", "/x?y"}, 1, 1, 1},
  };
  for (const row& r : rows) {
    const parse_outcome out = parse(r.args);
    ASSERT_TRUE(out.options) << out.message;
    EXPECT_EQ(out.options->connections, r.connections);
    EXPECT_EQ(out.options->source_ips, r.source_ips);
    EXPECT_EQ(out.options->ports.size(), r.ports);
  }
}

TEST(nbio_load_options, bad_command_lines_give_one_line_and_exit_2) {
  struct row {
    std::initializer_list<const char*> args;
    const char* says;
  };
  const row rows[] = {
      {{"-c", "5"}, "--port is required"},
      {{"-p", "9", "--bogus"}, "--bogus"},
      {{"-p", "9", "--mode", "quic"}, "quic"},
      {{"-p", "0"}, "--port 0"},
      {{"-p", "9", "-c", "0"}, "--connections"},
      {{"-p", "9", "-c", "100000", "--source-ips", "1"}, "exceed what 1 port(s) x 1 source"},
      {{"-p", "9", "-c", "30000", "--source-ips", "2"}, "use --processes 2 or more"},
      {{"-p", "9", "-c", "2", "--processes", "3"}, "more than --connections"},
      {{"-p", "9", "-c", "10", "--in-flight", "11"}, "can carry"},
      {{"-p", "9", "-c", "10", "-n", "5"}, "fewer than the 10 messages in flight"},
      {{"-p", "9", "--mode", "idle", "-n", "5"}, "need a traffic mode"},
      {{"-p", "9", "--host", "10.0.0.1", "--source-ips", "3"}, "needs a 127.x.y.z target"},
      {{"-p", "9", "--server-pid", "-5"}, "no such process"},
      {{"-p", "9", "-s", "0"}, "--size"},
      {{"-p", "9", "-d", "0"}, "--duration"},
      {{"-p", "9", "--processes", "0"}, "--processes"},
      {{"-p", "9", "--ramp-first", "--ramp-timeout", "0"}, "--ramp-timeout"},
      {{"-p", "9", "--ramp-first=maybe"}, "--ramp-first"},
      {{"-p", "9", "--pipeline", "4"}, "--pipeline needs --mode http"},
      {{"-p", "9", "--path", "/x"}, "--path needs --mode http or ws-*"},
      {{"-p", "9", "--mode", "ws-echo", "--path", "ws"}, "--path must start with /"},
      {{"-p", "9", "--mode", "ws-idle", "-n", "5"}, "need a traffic mode"},
      {{"-p", "9", "--mode", "http", "--pipeline", "0"}, "--pipeline"},
      {{"-p", "9", "--mode", "http", "--path", "x"}, "--path must start with /"},
  };
  for (const row& r : rows) {
    const parse_outcome out = parse(r.args);
    EXPECT_FALSE(out.options) << r.says;
    EXPECT_EQ(out.exit_code, 2) << r.says;
    EXPECT_NE(out.message.find(r.says), std::string::npos) << out.message;
    EXPECT_EQ(out.message.find('\n'), std::string::npos) << out.message;
  }
}

TEST(nbio_load_options, help_exits_0_with_the_options) {
  const parse_outcome out = parse({"--help"});
  EXPECT_FALSE(out.options);
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_NE(out.message.find("--in-flight-per-conn"), std::string::npos);
}

TEST(nbio_load_options, this_process_is_a_valid_server_pid) {
  const std::string pid = std::to_string(getpid());
  const parse_outcome out = parse({"-p", "9", "--server-pid", pid.c_str()});
  ASSERT_TRUE(out.options) << out.message;
  EXPECT_EQ(out.options->server_pids, std::vector<int>{getpid()});
}

TEST(nbio_load_options, worker_shares_add_up_to_the_totals) {
  const parse_outcome out =
      parse({"-p", "9", "-c", "10001", "--processes", "3", "--in-flight", "500", "-n", "7001"});
  ASSERT_TRUE(out.options) << out.message;
  std::uint64_t connections = 0, in_flight = 0, messages = 0, next_first = 0;
  for (unsigned i = 0; i < 3; ++i) {
    const load_options w = out.options->worker_share(i);
    EXPECT_EQ(w.first_connection, next_first);
    EXPECT_EQ(w.processes, 1u);
    next_first += w.connections;
    connections += w.connections;
    in_flight += w.in_flight;
    messages += w.messages;
  }
  EXPECT_EQ(connections, 10001u);
  EXPECT_EQ(in_flight, 500u);
  EXPECT_EQ(messages, 7001u);
}

TEST(nbio_load_options, remote_and_source_strings) {
  load_options o;
  o.ports = {80};
  EXPECT_EQ(o.remote(0), "127.0.0.1:80");
  o.host = "::1";
  EXPECT_EQ(o.remote(0), "[::1]:80");
  o.source_ips = 1;
  EXPECT_EQ(o.source(1), "");
  o.source_ips = 3;
  EXPECT_EQ(o.source(3), "127.0.0.3:0");
}

TEST(nbio_load_result, merge_adds_counters_and_buckets_exactly) {
  load_result a, b;
  a.connections = 10;
  a.established = 9;
  a.failed = 1;
  a.messages_sent = a.messages = 100;
  a.bytes_out = a.bytes_in = 6400;
  a.connect_seconds = 0.5;
  a.run_seconds = 3.0;
  a.traffic_seconds = 3.0;
  a.first_error = "connect 127.0.0.1:9: Connection refused";
  a.latency.record(1000);
  b.connections = 11;
  b.established = 11;
  b.closed_early = 2;
  b.messages_sent = 51;
  b.messages = 50;
  b.bytes_out = 3264;
  b.bytes_in = 3200;
  b.connect_seconds = 0.7;
  b.run_seconds = 2.9;
  b.traffic_seconds = 2.9;
  b.latency.record(2000);
  b.latency.record(3000);

  load_result m = a;
  m.merge(b);
  EXPECT_EQ(m.connections, 21u);
  EXPECT_EQ(m.established, 20u);
  EXPECT_EQ(m.failed, 1u);
  EXPECT_EQ(m.closed_early, 2u);
  EXPECT_EQ(m.messages_sent, 151u);
  EXPECT_EQ(m.messages, 150u);
  EXPECT_EQ(m.bytes_out, 9664u);
  EXPECT_EQ(m.bytes_in, 9600u);
  EXPECT_DOUBLE_EQ(m.connect_seconds, 0.7);
  EXPECT_DOUBLE_EQ(m.run_seconds, 3.0);
  EXPECT_DOUBLE_EQ(m.traffic_seconds, 3.0);
  EXPECT_EQ(m.latency.count(), 3u);
  EXPECT_EQ(m.latency.max(), 3000u);
  EXPECT_EQ(m.first_error, a.first_error);
  EXPECT_DOUBLE_EQ(m.messages_per_second(), 50.0);
}

TEST(nbio_load_result, json_round_trip_is_exact) {
  load_result r;
  r.connections = 3;
  r.established = 2;
  r.messages = 7;
  r.run_seconds = 1.25;
  r.latency.record(12345);
  r.first_error = "closed by 127.0.0.1:9: reset";
  EXPECT_EQ(load_result::from_json(nlohmann::json::parse(r.to_json().dump())), r);
  r.traffic_seconds = 1.0;
  EXPECT_EQ(load_result::from_json(nlohmann::json::parse(r.to_json().dump())), r);
  load_progress p{.up = 1, .established = 2, .failed = 3, .errors = 4, .messages = 5};
  EXPECT_EQ(load_progress::from_json(p.to_json()), p);
  p.ramped = true;
  EXPECT_EQ(load_progress::from_json(p.to_json()), p);
}

TEST(nbio_load_result, rate_counts_only_the_traffic_phase) {
  // --ramp-first: 60 s of ramp, then 10 s of traffic; msgs/s is over the 10 s.
  load_result r;
  r.messages = 1000;
  r.run_seconds = 70;
  r.traffic_seconds = 10;
  EXPECT_DOUBLE_EQ(r.messages_per_second(), 100.0);
  r.traffic_seconds = 0;
  EXPECT_DOUBLE_EQ(r.messages_per_second(), 0.0);
}

TEST(nbio_load_result, report_has_quantiles_and_server_efficiency) {
  load_options o;
  o.ports = {9};
  load_result r;
  r.connections = r.established = 1000;
  r.messages = 50000;
  r.run_seconds = r.traffic_seconds = 5;
  for (int i = 0; i < 100; ++i)
    r.latency.record(1000000);
  server_usage s;
  s.sampled = true;
  s.rss_start_kib = 1000;
  s.rss_peak_kib = 2000;
  s.cpu_seconds = 2.5;
  s.wall_seconds = 5;
  const auto j = report_json(o, r, s);
  EXPECT_DOUBLE_EQ(j["msgs_per_s"].get<double>(), 10000.0);
  EXPECT_NEAR(j["latency_ms"]["p99"].get<double>(), 1.0, 0.001);
  EXPECT_DOUBLE_EQ(j["server"]["cpu_percent"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["server"]["rss_per_conn_bytes"].get<double>(), 1024.0);
  EXPECT_DOUBLE_EQ(j["server"]["msgs_per_s_per_cpu_percent"].get<double>(), 200.0);
  const std::string table = report_table(o, r, s);
  EXPECT_NE(table.find("msgs/s per server CPU %"), std::string::npos);
  EXPECT_NE(table.find("latency p99.9"), std::string::npos);
}

TEST(nbio_load_tcp_echo_mode, counts_replies_across_any_split) {
  const tcp_echo_mode mode(10);
  const std::string two = std::string(mode.request()) + std::string(mode.request());
  for (std::size_t cut = 0; cut <= two.size(); ++cut) {
    std::uint64_t state = 0;
    const reply_scan first = mode.scan(state, std::string_view(two).substr(0, cut));
    const reply_scan second = mode.scan(state, std::string_view(two).substr(cut));
    EXPECT_FALSE(first.error || second.error) << cut;
    EXPECT_EQ(first.replies + second.replies, 2u) << cut;
    EXPECT_EQ(state, 0u);
  }
  std::uint64_t state = 0;
  EXPECT_TRUE(mode.scan(state, "abcX").error);
}

// Three keep-alive responses as servers send them: header case, whitespace, an empty body.
const std::string three_responses =
    "HTTP/1.1 200 OK\r\nDate: Sat, 28 Nov 2026 00:00:00 GMT\r\nContent-Length: 6\r\n"
    "Content-Type: text/plain\r\n\r\nhello\n"
    "HTTP/1.1 204 No Content\r\ncontent-length:0\r\n\r\n"
    "HTTP/1.0 201 Created\r\nCONTENT-LENGTH:  \t12\r\nX: content-length: 99\r\n\r\n"
    "0123456789\r\n";

TEST(nbio_load_http_mode, counts_responses_across_any_split) {
  for (unsigned pipeline : {1u, 3u}) {
    const http_mode mode("127.0.0.1:8080", "/", pipeline);
    for (std::size_t cut = 0; cut <= three_responses.size(); ++cut) {
      std::uint64_t state = 0;
      const reply_scan a = mode.scan(state, std::string_view(three_responses).substr(0, cut));
      const reply_scan b = mode.scan(state, std::string_view(three_responses).substr(cut));
      ASSERT_FALSE(a.error || b.error) << "pipeline " << pipeline << " cut " << cut;
      EXPECT_EQ(a.replies + b.replies, pipeline == 1 ? 3u : 1u) << cut;
    }
    // Byte by byte.
    std::uint64_t state = 0;
    std::uint32_t replies = 0;
    for (char c : three_responses)
      replies += mode.scan(state, std::string_view(&c, 1)).replies;
    EXPECT_EQ(replies, pipeline == 1 ? 3u : 1u);
  }
}

TEST(nbio_load_http_mode, request_is_the_pipelined_batch) {
  const http_mode mode("127.0.0.1:8080", "/a?b=1", 4);
  const std::string one = "GET /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  EXPECT_EQ(mode.request(), one + one + one + one);
}

TEST(nbio_load_http_mode, rejects_what_it_cannot_measure) {
  const http_mode mode("h", "/", 1);
  for (const char* bad : {
           "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",    // not 2xx
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",  // no length
           "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",             // bare LF
           "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",          // bad length
           "SSH-2.0-OpenSSH\r\n",                                    // not HTTP
       }) {
    std::uint64_t state = 0;
    EXPECT_TRUE(mode.scan(state, bad).error) << bad;
  }
}

TEST(nbio_load_plot, option_and_script) {
  const auto out = parse({"--port", "9", "--plot", "run.svg"});
  ASSERT_TRUE(out.options) << out.message;
  EXPECT_EQ(out.options->plot_path, "run.svg");
  EXPECT_TRUE(parse({"--port", "9"}).options->plot_path.empty());

  const std::string with = gnuplot_script("/t/d.dat", "/o/run.svg", "t", true);
  EXPECT_NE(with.find("set terminal svg"), std::string::npos);
  EXPECT_NE(with.find("set output \"/o/run.svg\""), std::string::npos);
  EXPECT_NE(with.find("multiplot layout 2,1"), std::string::npos) << "two panels";
  EXPECT_NE(with.find("axes x1y2"), std::string::npos) << "server RSS on the second y axis";
  EXPECT_NE(with.find("using 1:3"), std::string::npos) << "msgs/s";
  const std::string without = gnuplot_script("/t/d.dat", "/o/run.svg", "t", false);
  EXPECT_EQ(without.find("axes x1y2"), std::string::npos) << "no RSS without --server-pid";
}

}  // namespace

// The 101 response, then two echoed frames of a 5-byte payload: counted across any split.
TEST(nbio_load_ws_mode, counts_echo_frames_after_the_101_across_any_split) {
  const ws_mode mode("127.0.0.1:8080", "/ws", 5, true);
  EXPECT_TRUE(mode.greeting().starts_with("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
  EXPECT_EQ(mode.request().size(), 2u + 4u + 5u);  // header, mask key, payload
  const std::string echo = std::string("\x82\x05", 2) + "abcde";
  const std::string stream =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" + echo + echo;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    std::uint64_t state = 0;
    const reply_scan a = mode.scan(state, std::string_view(stream).substr(0, cut));
    const reply_scan b = mode.scan(state, std::string_view(stream).substr(cut));
    ASSERT_FALSE(a.error || b.error) << cut;
    EXPECT_EQ(a.replies + b.replies, 2u) << cut;
  }
}

TEST(nbio_load_ws_mode, rejects_a_refused_upgrade_a_wrong_echo_and_data_on_an_idle_connection) {
  const ws_mode echo("h", "/ws", 5, true);
  const ws_mode idle("h", "/ws", 5, false);
  const std::string ok = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  std::uint64_t state = 0;
  EXPECT_TRUE(echo.scan(state, "HTTP/1.1 400 Bad Request\r\n\r\n").error);
  state = 0;
  EXPECT_TRUE(echo.scan(state, ok + std::string("\x82\x05", 2) + "abcdX").error);
  state = 0;
  EXPECT_FALSE(idle.scan(state, ok).error);
  EXPECT_TRUE(idle.scan(state, std::string("\x89\x00", 2)).error);
}
