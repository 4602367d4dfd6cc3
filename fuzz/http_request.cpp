// libFuzzer target: nbio::http::request_parser and body_decoder on arbitrary bytes. The input is
// parsed whole and again in reads of 1 to 64 bytes (the first byte picks the size); both must
// give the same head, body, trailers and error, and no call may over-read, hang or crash.
#include <cstdint>
#include <cstdlib>

#include "http_feed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nbio_fuzz;
  if (size == 0) return 0;
  const std::size_t step = data[0] % 64 + 1;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto describe = [](const request_head& h) {
    return std::string(h.method) + " " + std::string(h.target) + " " +
           std::to_string(h.version_minor) + " " + std::string(h.host) +
           (h.expect_continue ? " expect" : "") + (h.upgrade ? " upgrade" : "");
  };
  const outcome whole = feed<request_parser, request_head>(input, input.size() + 1, describe);
  const outcome split = feed<request_parser, request_head>(input, step, describe);
  // A cut may reveal an error sooner (a limit passed before the head is whole), never a
  // different verdict on a head that parses.
  if (whole.status == parse_status::complete && !(whole == split)) std::abort();
  if (whole.status == parse_status::error && split.status == parse_status::complete) std::abort();
  return 0;
}
