// libFuzzer target: nbio::http::body_decoder on arbitrary bytes as a chunked body, whole and in
// reads of 1 to 64 bytes (first byte). Both must decode the same bytes and trailers, or fail;
// the decoded size never passes max_body.
#include <cstdint>
#include <cstdlib>

#include "http_feed.hpp"

namespace {

nbio_fuzz::outcome decode(std::string_view input, std::size_t step) {
  using namespace nbio_fuzz;
  outcome o;
  body_decoder d(body_kind::chunked, 0, small_limits());
  std::string buffer;
  decode_body(o, d, buffer, input, 0, step);
  if (o.body_bytes.size() > small_limits().max_body) std::abort();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = data[0] % 64 + 1;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto whole = decode(input, input.size() + 1);
  const auto split = decode(input, step);
  if (whole.body_complete && !(whole == split)) std::abort();
  if (whole.body_error && split.body_complete) std::abort();
  return 0;
}
