// libFuzzer target: nbio::address::parse and split_host_port on arbitrary text. Any address
// that parses must print back to text that parses to the same address.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nbio/core/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string host;
  std::uint16_t port = 0;
  nbio::address::split_host_port(text, host, port);
  auto parsed = nbio::address::parse(text);
  if (!parsed) return 0;
  auto again = nbio::address::parse(parsed->to_string());
  if (!again || !(*again == *parsed)) std::abort();
  return 0;
}
