#include "soak_report.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "server_sampler.hpp"  // nbio-load's /proc readers (RSS, CPU ticks)

namespace soak {

namespace {

double mib(double kib) {
  return kib / 1024.0;
}

std::uint64_t count_fds(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// A server's mean RSS over the load samples in [from, to).
double mean_rss(const std::vector<sample>& samples, std::size_t server, double from, double to) {
  double sum = 0;
  unsigned n = 0;
  for (const auto& s : samples)
    if (s.phase != "drain" && s.t >= from && s.t < to) {
      sum += static_cast<double>(s.servers[server].rss_kib);
      ++n;
    }
  return n ? sum / n : 0;
}

}  // namespace

bool read_server(int pid, server_point& p) {
  using nbio_load::server_sampler;
  const auto rss = server_sampler::read_rss_kib(pid);
  const auto ticks = server_sampler::read_cpu_ticks(pid);
  if (!rss || !ticks) return false;
  p.rss_kib = *rss;
  p.fds = count_fds(pid);
  p.cpu_s = static_cast<double>(*ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return true;
}

void print_progress(const std::vector<server_ref>& servers, const sample& x, const sample& before) {
  const double dt = std::max(x.t - before.t, 1e-3);
  std::string srv;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    char part[96];
    std::snprintf(part, sizeof(part), "  %s %.1f MiB %llu fds", servers[i].name.c_str(),
                  mib(static_cast<double>(x.servers[i].rss_kib)),
                  static_cast<unsigned long long>(x.servers[i].fds));
    srv += part;
  }
  std::printf(
      "[%4.0fs] %-7s hold %llu  churn %llu  connects/s %.0f  msgs/s %.0f  MB/s %.1f"
      "  errors %llu %s\n",
      x.t, x.phase.c_str(), static_cast<unsigned long long>(x.hold_up),
      static_cast<unsigned long long>(x.churn_up),
      static_cast<double>(x.connected - before.connected) / dt,
      static_cast<double>(x.messages - before.messages) / dt,
      static_cast<double>(x.bytes - before.bytes) / dt / 1e6,
      static_cast<unsigned long long>(x.errors), srv.c_str());
  std::fflush(stdout);
}

verdict judge(const std::vector<server_ref>& servers, const std::vector<server_point>& before,
              const std::vector<sample>& samples, const client_totals& totals,
              const run_facts& facts) {
  verdict v;
  const sample& last = samples.back();
  const double end_from = facts.load_end - facts.window_s;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    server_summary m;
    m.name = servers[i].name;
    m.pid = servers[i].pid;
    m.rss_before_kib = static_cast<double>(before[i].rss_kib);
    m.fds_before = before[i].fds;
    for (const auto& x : samples) {
      m.rss_peak_kib = std::max(m.rss_peak_kib, static_cast<double>(x.servers[i].rss_kib));
      m.fds_peak = std::max(m.fds_peak, x.servers[i].fds);
    }
    m.fds_end = last.servers[i].fds;
    m.rss_after_close_kib = static_cast<double>(last.servers[i].rss_kib);
    m.cpu_s = last.servers[i].cpu_s - before[i].cpu_s;
    if (facts.warm_end >= 0) {
      m.rss_warm_kib = mean_rss(samples, i, facts.warm_end, facts.warm_end + facts.window_s);
      m.rss_end_kib = mean_rss(samples, i, end_from, facts.load_end + 1);
      m.drift_percent = m.rss_warm_kib > 0 ? 100 * (m.rss_end_kib / m.rss_warm_kib - 1) : 0;
      if (m.drift_percent > facts.max_drift_percent) {
        char line[200];
        std::snprintf(line, sizeof(line),
                      "%s: RSS grew %.1f%% after warm-up (%.1f -> %.1f MiB; at most %.1f%%)",
                      m.name.c_str(), m.drift_percent, mib(m.rss_warm_kib), mib(m.rss_end_kib),
                      facts.max_drift_percent);
        v.failures.emplace_back(line);
      }
    }
    if (m.fds_end > m.fds_before + facts.fd_slack)
      v.failures.push_back(m.name + ": " + std::to_string(m.fds_end) +
                           " descriptors open after every connection closed, " +
                           std::to_string(m.fds_before) + " before the first (at most " +
                           std::to_string(facts.fd_slack) + " more allowed)");
    v.servers.push_back(std::move(m));
  }
  if (facts.warm_end < 0 || facts.warm_end + facts.window_s > end_from) {
    std::uint64_t max_hold_up = 0;
    for (const auto& x : samples)
      max_hold_up = std::max(max_hold_up, x.hold_up);
    v.failures.push_back("never at full strength in time (at most " + std::to_string(max_hold_up) +
                         " of " + std::to_string(facts.hold) +
                         " hold connections up): no RSS reference");
  }
  if (totals.mismatched_conns > 0)
    v.failures.push_back(std::to_string(totals.mismatched_bytes) + " byte(s) wrong on " +
                         std::to_string(totals.mismatched_conns) +
                         " connection(s); first: " + totals.first_mismatch);
  if (totals.connect_failures + totals.closed_early > 0)
    v.failures.push_back(std::to_string(totals.connect_failures) + " connect(s) failed, " +
                         std::to_string(totals.closed_early) +
                         " connection(s) closed unexpectedly; first: " + totals.first_error);
  if (totals.left_open > 0)
    v.failures.push_back(std::to_string(totals.left_open) +
                         " connection(s) still open 15 s after the load stopped");
  if (facts.server_gone) v.failures.emplace_back("a server process exited during the run");
  if (facts.interrupted) v.failures.emplace_back("interrupted (SIGINT or SIGTERM)");
  return v;
}

nlohmann::json report_json(nlohmann::json options, const verdict& v, const client_totals& totals,
                           const run_facts& facts, const std::vector<sample>& samples) {
  nlohmann::json servers = nlohmann::json::array();
  for (const auto& m : v.servers)
    servers.push_back({{"name", m.name},
                       {"pid", m.pid},
                       {"rss_before_kib", m.rss_before_kib},
                       {"rss_after_warmup_kib", m.rss_warm_kib},
                       {"rss_end_kib", m.rss_end_kib},
                       {"rss_peak_kib", m.rss_peak_kib},
                       {"rss_after_close_kib", m.rss_after_close_kib},
                       {"rss_drift_percent", m.drift_percent},
                       {"fds_before", m.fds_before},
                       {"fds_peak", m.fds_peak},
                       {"fds_end", m.fds_end},
                       {"cpu_seconds", m.cpu_s}});
  nlohmann::json report;
  report["options"] = std::move(options);
  report["summary"] = {{"passed", v.failures.empty()},
                       {"failures", v.failures},
                       {"load_seconds", facts.load_end},
                       {"warmup_end_s", facts.warm_end},
                       {"connects", totals.connects},
                       {"connected", totals.connected},
                       {"churn_cycles", totals.churn_cycles},
                       {"messages_verified", totals.messages},
                       {"bytes_verified", totals.bytes},
                       {"mismatched_bytes", totals.mismatched_bytes},
                       {"mismatched_connections", totals.mismatched_conns},
                       {"connect_failures", totals.connect_failures},
                       {"closed_unexpectedly", totals.closed_early},
                       {"left_open", totals.left_open},
                       {"client_cpu_seconds", totals.cpu_s},
                       {"client_max_rss_kib", totals.max_rss_kib},
                       {"first_error", totals.first_error},
                       {"first_mismatch", totals.first_mismatch},
                       {"servers", std::move(servers)}};
  nlohmann::json js = nlohmann::json::array();
  for (const auto& x : samples) {
    nlohmann::json points = nlohmann::json::array();
    for (const auto& p : x.servers)
      points.push_back({{"rss_kib", p.rss_kib}, {"fds", p.fds}, {"cpu_s", p.cpu_s}});
    js.push_back({{"t", x.t},
                  {"phase", x.phase},
                  {"hold_up", x.hold_up},
                  {"churn_up", x.churn_up},
                  {"connected", x.connected},
                  {"messages", x.messages},
                  {"bytes", x.bytes},
                  {"errors", x.errors},
                  {"servers", std::move(points)}});
  }
  report["samples"] = std::move(js);
  return report;
}

bool write_data(const std::string& path, const std::vector<server_ref>& servers,
                const std::vector<sample>& samples, const run_facts& facts) {
  std::ofstream data(path);
  // The plot's markers (run.sh reads them for plot.gp).
  data << "# warmup_end_s " << facts.warm_end << "\n# load_end_s " << facts.load_end << '\n';
  data << "# t hold_up churn_up connects_per_s msgs_per_s";
  for (const auto& srv : servers)
    data << ' ' << srv.name << "_rss_mib " << srv.name << "_fds";
  data << '\n';
  const sample* prev = nullptr;
  for (const auto& x : samples) {
    const double dt = std::max(prev ? x.t - prev->t : x.t, 1e-3);
    data << x.t << ' ' << x.hold_up << ' ' << x.churn_up << ' '
         << static_cast<double>(x.connected - (prev ? prev->connected : 0)) / dt << ' '
         << static_cast<double>(x.messages - (prev ? prev->messages : 0)) / dt;
    for (const auto& p : x.servers)
      data << ' ' << mib(static_cast<double>(p.rss_kib)) << ' ' << p.fds;
    data << '\n';
    prev = &x;
  }
  return static_cast<bool>(data);
}

void print_summary(const verdict& v, const client_totals& totals, const run_facts& facts,
                   double elapsed_s) {
  if (facts.warm_end >= 0)
    std::printf("\nsoak summary (%.0f s of load, warm-up over at %.0f s)\n", facts.load_end,
                facts.warm_end);
  else
    std::printf("\nsoak summary (%.0f s of load, never at full strength)\n", facts.load_end);
  std::printf("  %-10s %10s %12s %10s %8s %8s %10s %8s %8s\n", "server", "RSS before",
              "after warm-up", "at end", "drift", "peak", "fds before", "peak", "end");
  for (const auto& m : v.servers)
    std::printf("  %-10s %7.1f MiB %9.1f MiB %6.1f MiB %7.2f%% %4.1f MiB %10llu %8llu %8llu\n",
                m.name.c_str(), mib(m.rss_before_kib), mib(m.rss_warm_kib), mib(m.rss_end_kib),
                m.drift_percent, mib(m.rss_peak_kib), static_cast<unsigned long long>(m.fds_before),
                static_cast<unsigned long long>(m.fds_peak),
                static_cast<unsigned long long>(m.fds_end));
  std::printf("  connects %llu (churn cycles %llu), messages verified %llu, bytes verified %llu\n",
              static_cast<unsigned long long>(totals.connects),
              static_cast<unsigned long long>(totals.churn_cycles),
              static_cast<unsigned long long>(totals.messages),
              static_cast<unsigned long long>(totals.bytes));
  std::printf("  client CPU %.1f s (%.0f%% of a core); server CPU", totals.cpu_s,
              100 * totals.cpu_s / std::max(elapsed_s, 1e-3));
  for (const auto& m : v.servers)
    std::printf(" %s %.1f s", m.name.c_str(), m.cpu_s);
  std::printf("\n");
  std::printf(
      "  wrong bytes %llu, failed connects %llu, closed unexpectedly %llu, left open %llu\n",
      static_cast<unsigned long long>(totals.mismatched_bytes),
      static_cast<unsigned long long>(totals.connect_failures),
      static_cast<unsigned long long>(totals.closed_early),
      static_cast<unsigned long long>(totals.left_open));
  std::fflush(stdout);  // the summary, then the verdict
  for (const auto& f : v.failures)
    std::fprintf(stderr, "soak: FAILED: %s\n", f.c_str());
}

}  // namespace soak
