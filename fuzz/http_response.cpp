// libFuzzer target: nbio::http::response_parser and body_decoder on arbitrary bytes, whole and
// in reads of 1 to 64 bytes (first byte); the second byte picks the request method (GET, HEAD
// or CONNECT), which decides whether a body follows.
#include <cstdint>
#include <cstdlib>

#include "http_feed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nbio_fuzz;
  if (size < 2) return 0;
  const std::size_t step = data[0] % 64 + 1;
  static constexpr std::string_view methods[] = {"GET", "HEAD", "CONNECT"};
  const std::string_view method = methods[data[1] % 3];
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  auto describe = [](const response_head& h) {
    return std::to_string(h.status) + " " + std::string(h.reason) + " " +
           std::to_string(h.version_minor) + (h.upgrade ? " upgrade" : "");
  };
  const outcome whole =
      feed<response_parser, response_head>(input, input.size() + 1, describe, method);
  const outcome split = feed<response_parser, response_head>(input, step, describe, method);
  if (whole.status == parse_status::complete && !(whole == split)) std::abort();
  if (whole.status == parse_status::error && split.status == parse_status::complete) std::abort();
  return 0;
}
