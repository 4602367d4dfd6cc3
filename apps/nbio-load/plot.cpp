#include "plot.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

extern char** environ;

namespace nbio_load {

namespace {

// A double-quoted gnuplot string.
std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  q += '"';
  return q;
}

}  // namespace

std::string gnuplot_script(const std::string& data_path, const std::string& svg_path,
                           const std::string& title, bool with_rss) {
  const std::string data = quoted(data_path);
  std::string s;
  s += "set terminal svg size 1000,700 dynamic enhanced background rgb 'white'\n";
  s += "set output " + quoted(svg_path) + "\n";
  s += "set multiplot layout 2,1 title " + quoted(title) + " noenhanced\n";
  s += "set grid\nset key bottom right\nset xlabel 'elapsed (s)'\n";
  s += "set ylabel 'connections up'\nset yrange [0:*]\n";
  if (with_rss) {
    s += "set y2label 'server RSS (MiB)'\nset y2tics\nset ytics nomirror\nset y2range [0:*]\n";
    s += "plot " + data + " using 1:2 with lines lw 2 title 'connections up', \\\n     " + data +
         " using 1:4 axes x1y2 with lines lw 2 title 'server RSS (MiB)'\n";
    s += "unset y2label\nunset y2tics\nset ytics mirror\n";
  } else {
    s += "plot " + data + " using 1:2 with lines lw 2 title 'connections up'\n";
  }
  s += "set ylabel 'msgs/s'\n";
  s += "plot " + data + " using 1:3 with lines lw 2 title 'msgs/s'\n";
  s += "unset multiplot\n";
  return s;
}

std::string write_plot(const std::vector<plot_sample>& samples, const std::string& svg_path,
                       const std::string& title) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "nbio-load-plot.XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    return std::string("cannot create a temp dir: ") + std::strerror(errno);
  const fs::path dir = tmpl;
  const std::string data_path = (dir / "samples.dat").string();
  const std::string script_path = (dir / "plot.gp").string();
  const std::string err_path = (dir / "gnuplot.err").string();
  auto done = [&](std::string result) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return result;
  };

  bool with_rss = false;
  {
    std::ofstream data(data_path);
    data << "# elapsed_s up msgs_per_s server_rss_mib\n";
    // A sample at 0 so every line starts from the origin of the run.
    data << "0 0 0 "
         << (samples.empty() || samples.front().rss_mib < 0 ? 0.0 : samples.front().rss_mib)
         << '\n';
    for (const auto& s : samples) {
      if (s.rss_mib >= 0) with_rss = true;
      data << s.elapsed_s << ' ' << s.up << ' ' << s.msgs_per_s << ' '
           << (s.rss_mib >= 0 ? s.rss_mib : 0.0) << '\n';
    }
    if (!data) return done("cannot write " + data_path);
  }
  // gnuplot writes to svg_path itself; an absolute path keeps the result where it was asked for.
  std::error_code ec;
  const std::string svg_abs = fs::absolute(svg_path, ec).string();
  if (!(std::ofstream(script_path) << gnuplot_script(data_path, svg_abs, title, with_rss)))
    return done("cannot write " + script_path);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::string prog = "gnuplot";
  char* argv[] = {prog.data(), const_cast<char*>(script_path.c_str()), nullptr};
  // The parent blocks SIGINT and SIGTERM; gnuplot gets the default mask.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "gnuplot", &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return done(std::string("cannot run gnuplot (") + std::strerror(rc) +
                "): install it (Debian: gnuplot-nox, see scripts/deps.sh)");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string first;
    std::ifstream err(err_path);
    std::string line;
    while (std::getline(err, line))
      if (line.find_first_not_of(" \t^") != std::string::npos) first = line;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      return done("gnuplot not found: install it (Debian: gnuplot-nox, see scripts/deps.sh)");
    return done("gnuplot failed" + (first.empty() ? std::string() : ": " + first));
  }
  if (fs::file_size(svg_abs, ec) == 0 || ec) return done("gnuplot wrote no " + svg_path);
  return done({});
}

}  // namespace nbio_load
