#include "load_result.hpp"

#include <cstdio>

#include "load_options.hpp"

namespace nbio_load {

load_progress& load_progress::operator+=(const load_progress& o) noexcept {
  up += o.up;
  established += o.established;
  failed += o.failed;
  errors += o.errors;
  messages += o.messages;
  return *this;
}

nlohmann::json load_progress::to_json() const {
  return {{"up", up},         {"established", established}, {"failed", failed},
          {"errors", errors}, {"messages", messages},       {"ramped", ramped}};
}

load_progress load_progress::from_json(const nlohmann::json& j) {
  load_progress p;
  p.up = j.at("up").get<std::uint64_t>();
  p.established = j.at("established").get<std::uint64_t>();
  p.failed = j.at("failed").get<std::uint64_t>();
  p.errors = j.at("errors").get<std::uint64_t>();
  p.messages = j.at("messages").get<std::uint64_t>();
  p.ramped = j.value("ramped", false);
  return p;
}

void load_result::merge(const load_result& o) {
  connections += o.connections;
  established += o.established;
  failed += o.failed;
  closed_early += o.closed_early;
  messages_sent += o.messages_sent;
  messages += o.messages;
  bytes_out += o.bytes_out;
  bytes_in += o.bytes_in;
  handshakes += o.handshakes;
  resumed += o.resumed;
  connect_seconds = std::max(connect_seconds, o.connect_seconds);
  run_seconds = std::max(run_seconds, o.run_seconds);
  traffic_seconds = std::max(traffic_seconds, o.traffic_seconds);
  latency.merge(o.latency);
  if (first_error.empty()) first_error = o.first_error;
}

nlohmann::json load_result::to_json() const {
  return {{"connections", connections},
          {"established", established},
          {"failed", failed},
          {"closed_early", closed_early},
          {"messages_sent", messages_sent},
          {"messages", messages},
          {"bytes_out", bytes_out},
          {"bytes_in", bytes_in},
          {"handshakes", handshakes},
          {"resumed", resumed},
          {"connect_seconds", connect_seconds},
          {"run_seconds", run_seconds},
          {"traffic_seconds", traffic_seconds},
          {"latency", latency.to_json()},
          {"first_error", first_error}};
}

load_result load_result::from_json(const nlohmann::json& j) {
  load_result r;
  r.connections = j.at("connections").get<std::uint64_t>();
  r.established = j.at("established").get<std::uint64_t>();
  r.failed = j.at("failed").get<std::uint64_t>();
  r.closed_early = j.at("closed_early").get<std::uint64_t>();
  r.messages_sent = j.at("messages_sent").get<std::uint64_t>();
  r.messages = j.at("messages").get<std::uint64_t>();
  r.bytes_out = j.at("bytes_out").get<std::uint64_t>();
  r.bytes_in = j.at("bytes_in").get<std::uint64_t>();
  r.handshakes = j.value("handshakes", std::uint64_t{0});
  r.resumed = j.value("resumed", std::uint64_t{0});
  r.connect_seconds = j.at("connect_seconds").get<double>();
  r.run_seconds = j.at("run_seconds").get<double>();
  r.traffic_seconds = j.at("traffic_seconds").get<double>();
  r.latency = latency_histogram::from_json(j.at("latency"));
  r.first_error = j.at("first_error").get<std::string>();
  return r;
}

namespace {

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

// Server figures that need both the server's usage and the result; < 0 when not measured.
struct efficiency {
  double rss_per_conn_bytes = -1;
  double msgs_per_cpu_percent = -1;
  double handshakes_per_cpu_second = -1;  // tls-handshake: the figure that compares servers
};

efficiency efficiency_of(const load_result& r, const server_usage& s) {
  efficiency e;
  if (!s.sampled) return e;
  if (r.established > 0 && s.rss_peak_kib >= s.rss_start_kib)
    e.rss_per_conn_bytes = 1024.0 * static_cast<double>(s.rss_peak_kib - s.rss_start_kib) /
                           static_cast<double>(r.established);
  if (s.cpu_percent() > 0 && r.messages > 0)
    e.msgs_per_cpu_percent = r.messages_per_second() / s.cpu_percent();
  if (s.cpu_percent() > 0 && r.handshakes > 0)
    e.handshakes_per_cpu_second = 100.0 * r.handshakes_per_second() / s.cpu_percent();
  return e;
}

}  // namespace

nlohmann::json report_json(const load_options& o, const load_result& r, const server_usage& s) {
  const efficiency e = efficiency_of(r, s);
  nlohmann::json j;
  j["options"] = {{"mode", o.mode},
                  {"host", o.host},
                  {"ports", o.ports},
                  {"connections", o.connections},
                  {"processes", o.processes},
                  {"loops", o.loops},
                  {"backend", o.backend},
                  {"connect_rate", o.connect_rate},
                  {"connect_window", o.connect_window},
                  {"source_ips", o.source_ips},
                  {"duration_s", o.duration_s},
                  {"ramp_first", o.ramp_first},
                  {"messages", o.messages},
                  {"payload_size", o.payload_size},
                  {"path", o.path},
                  {"pipeline", o.pipeline},
                  {"in_flight", o.effective_in_flight()},
                  {"in_flight_per_conn", o.in_flight_per_conn},
                  {"tls", o.tls},
                  {"tls_verify", o.tls && !o.tls_insecure},
                  {"tls_resume", o.tls_resume}};
  j["result"] = r.to_json();
  j["result"].erase("latency");
  j["msgs_per_s"] = r.messages_per_second();
  if (o.mode == "http") j["requests_per_s"] = r.messages_per_second() * o.pipeline;
  if (o.tls)
    j["tls"] = {{"handshakes", r.handshakes},
                {"resumed", r.resumed},
                {"handshakes_per_s", r.handshakes_per_second()},
                {"resumed_fraction", r.handshakes > 0 ? static_cast<double>(r.resumed) /
                                                            static_cast<double>(r.handshakes)
                                                      : 0.0}};
  j["latency_ms"] = {{"count", r.latency.count()},
                     {"p50", ms(r.latency.quantile(0.50))},
                     {"p90", ms(r.latency.quantile(0.90))},
                     {"p99", ms(r.latency.quantile(0.99))},
                     {"p99_9", ms(r.latency.quantile(0.999))},
                     {"max", ms(r.latency.max())}};
  if (s.sampled)
    j["server"] = {{"rss_start_kib", s.rss_start_kib},
                   {"rss_peak_kib", s.rss_peak_kib},
                   {"rss_end_kib", s.rss_end_kib},
                   {"rss_per_conn_bytes", e.rss_per_conn_bytes},
                   {"cpu_seconds", s.cpu_seconds},
                   {"cpu_percent", s.cpu_percent()},
                   {"msgs_per_s_per_cpu_percent", e.msgs_per_cpu_percent},
                   {"handshakes_per_cpu_second", e.handshakes_per_cpu_second}};
  return j;
}

std::string report_table(const load_options& o, const load_result& r, const server_usage& s) {
  std::string out;
  char line[160];
  auto row = [&](const char* name, const char* fmt, auto... v) {
    int n = std::snprintf(line, sizeof(line), "  %-28s", name);
    std::snprintf(line + n, sizeof(line) - static_cast<std::size_t>(n), fmt, v...);
    out += line;
    out += '\n';
  };
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::snprintf(line, sizeof(line), "nbio-load %s: %s, %zu port(s), %u process(es), %u source(s)\n",
                o.mode.c_str(), o.host.c_str(), o.ports.size(), o.processes, o.source_ips);
  out += line;
  row("connections requested", "%12llu", u(r.connections));
  row("connections established", "%12llu", u(r.established));
  row("connections failed", "%12llu", u(r.failed));
  row("connections lost early", "%12llu", u(r.closed_early));
  row("connect time", "%12.3f s  (%.0f conn/s)", r.connect_seconds,
      r.connect_seconds > 0 ? static_cast<double>(r.established) / r.connect_seconds : 0.0);
  row("run time", "%12.3f s", r.run_seconds);
  if (o.ramp_first) row("traffic time (after ramp)", "%12.3f s", r.traffic_seconds);
  if (o.tls) {
    row("TLS handshakes", "%12llu  (%.0f/s)", u(r.handshakes), r.handshakes_per_second());
    row("TLS resumed", "%12llu  (%.1f %%)", u(r.resumed),
        r.handshakes > 0
            ? 100.0 * static_cast<double>(r.resumed) / static_cast<double>(r.handshakes)
            : 0.0);
  }
  if (o.mode != "idle") {
    row("messages sent", "%12llu", u(r.messages_sent));
    row("messages received", "%12llu", u(r.messages));
    row("msgs/s", "%12.0f", r.messages_per_second());
    if (o.mode == "http" && o.pipeline > 1)
      row("requests/s (x pipeline)", "%12.0f", r.messages_per_second() * o.pipeline);
    row("latency p50", "%12.3f ms", ms(r.latency.quantile(0.50)));
    row("latency p90", "%12.3f ms", ms(r.latency.quantile(0.90)));
    row("latency p99", "%12.3f ms", ms(r.latency.quantile(0.99)));
    row("latency p99.9", "%12.3f ms", ms(r.latency.quantile(0.999)));
    row("latency max", "%12.3f ms", ms(r.latency.max()));
  }
  if (s.sampled) {
    const efficiency e = efficiency_of(r, s);
    row("server RSS start / peak", "%12.1f / %.1f MiB", s.rss_start_kib / 1024.0,
        s.rss_peak_kib / 1024.0);
    row("server RSS per connection", "%12.0f bytes", e.rss_per_conn_bytes);
    row("server CPU", "%12.1f %%", s.cpu_percent());
    if (e.msgs_per_cpu_percent >= 0)
      row("msgs/s per server CPU %", "%12.0f", e.msgs_per_cpu_percent);
    if (e.handshakes_per_cpu_second >= 0)
      row("handshakes per server CPU-s", "%12.0f", e.handshakes_per_cpu_second);
  }
  if (!r.first_error.empty()) row("first error", "%s", r.first_error.c_str());
  return out;
}

}  // namespace nbio_load
