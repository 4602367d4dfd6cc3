// Private. IMF-fixdate, and the per-thread cache of the current one.
#include "http/date.hpp"

#include <cstdio>

namespace nbio::http::detail {
namespace {

// Writes the 29 bytes of IMF-fixdate (and a NUL) into `out`.
void format_into(std::time_t t, std::array<char, 32>& out) noexcept {
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::snprintf(out.data(), out.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                day_names[static_cast<std::size_t>(tm.tm_wday) % 7], tm.tm_mday,
                month_names[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

std::string format_http_date(std::time_t t) {
  std::array<char, 32> text{};
  format_into(t, text);
  return text.data();
}

std::string_view http_date_now() noexcept {
  // Per thread, not per server or per loop object: the callers are loop threads and the
  // threads of blocking-mode connections (one each), and a thread_local reaches both with no
  // lock and no pointer to pass down. time() is a vDSO read (~20 ns); gmtime_r and snprintf
  // (~300 ns) run once a second per thread, not once per response.
  thread_local std::time_t cached = -1;
  thread_local std::array<char, 32> text{};
  const std::time_t now = std::time(nullptr);
  if (now != cached) {
    format_into(now, text);
    cached = now;
  }
  return {text.data(), 29};
}

}  // namespace nbio::http::detail
