// Private. HTTP dates: IMF-fixdate out, the per-thread cache of the current one, and the three
// formats a recipient accepts in.
#include "http/date.hpp"

#include <cstdio>
#include <cstring>

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

std::optional<std::time_t> parse_http_date(std::string_view value) {
  if (value.size() < 20 || value.size() > 40) return std::nullopt;
  const std::string s(value);
  const int length = static_cast<int>(s.size());
  char day[16] = {}, month[4] = {};
  int mday = 0, year = 0, hour = 0, minute = 0, second = 0, used = -1;
  bool parsed = std::sscanf(s.c_str(), "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", day, &mday, month,
                            &year, &hour, &minute, &second, &used) == 7 &&
                used == length;
  if (!parsed) {
    used = -1;
    parsed = std::sscanf(s.c_str(), "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", day, &mday, month,
                         &year, &hour, &minute, &second, &used) == 7 &&
             used == length;
    if (parsed) year += year < 70 ? 2000 : 1900;  // RFC 850's two-digit years
  }
  if (!parsed) {
    used = -1;
    parsed = std::sscanf(s.c_str(), "%3s %3s %2d %2d:%2d:%2d %4d%n", day, month, &mday, &hour,
                         &minute, &second, &year, &used) == 7 &&
             used == length;
  }
  if (!parsed) return std::nullopt;
  int mon = -1;
  for (std::size_t i = 0; i < month_names.size(); ++i)
    if (std::strcmp(month, month_names[i]) == 0) mon = static_cast<int>(i);
  if (mon < 0 || mday < 1 || mday > 31 || year < 1970 || hour > 23 || minute > 59 || second > 60 ||
      hour < 0 || minute < 0 || second < 0)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = mday;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return timegm(&tm);
}

}  // namespace nbio::http::detail
