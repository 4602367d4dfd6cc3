// nbio-load. --plot FILE.svg: the parent records one sample a second (connections up, msgs/s in
// that second, summed server RSS) and at the end has gnuplot draw them as an SVG with two
// panels: connections up and server RSS over time, and msgs/s over time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nbio_load {

struct plot_sample {
  double elapsed_s = 0;   // since the run began
  std::uint64_t up = 0;   // connections open
  double msgs_per_s = 0;  // replies in the second before
  double rss_mib = -1;    // summed server VmRSS; < 0 when not sampled
};

// The gnuplot script that draws `data_path` (one sample a line: elapsed up msgs/s rss) into
// `svg_path`; with_rss adds the server RSS on a second y axis of the first panel.
std::string gnuplot_script(const std::string& data_path, const std::string& svg_path,
                           const std::string& title, bool with_rss);

// Writes the samples and the script to a temporary directory, runs `gnuplot` on them and
// removes the directory. Returns "" on success, otherwise one line saying what failed.
std::string write_plot(const std::vector<plot_sample>& samples, const std::string& svg_path,
                       const std::string& title);

}  // namespace nbio_load
