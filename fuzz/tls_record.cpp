// libFuzzer target: nbio's TLS 1.3 record opener (src/tls/record.hpp). The first byte picks
// the suite and the mode:
//   raw    the rest is a byte stream from the peer: framed with record_size and opened record
//          by record, until the first error (a forged record must fail its tag, never crash);
//   sealed the rest is cut into plaintexts (a length byte, then that many bytes, the type the
//          low bits of the length byte), each sealed by nbio; one byte of the stream may then
//          be flipped (at a position from the input). Every record before the flipped one must
//          open to exactly its plaintext and type, the flipped one must be refused, and
//          nothing after it is opened.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tls/record.hpp"

namespace {

using namespace nbio::tls::detail;

const suite suites[] = {suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384,
                        suite::chacha20_poly1305_sha256};

void raw(suite s, std::string wire) {
  const std::vector<std::uint8_t> secret(hash_size(s), 0x42);
  record_direction rx;
  if (!rx.init(record_direction::opens, s, secret)) std::abort();
  std::size_t at = 0;
  while (at < wire.size()) {
    std::size_t total = 0;
    if (record_size(std::string_view(wire).substr(at), total) != record_error::ok) return;
    if (total == 0 || at + total > wire.size()) return;
    content type{};
    std::string_view plain;
    if (rx.open({wire.data() + at, total}, type, plain) != record_error::ok) return;
    if (plain.size() > max_plaintext) std::abort();
    at += total;
  }
}

void sealed(suite s, std::string_view in) {
  const std::vector<std::uint8_t> secret(hash_size(s), 0x17);
  record_direction tx, rx;
  if (!tx.init(record_direction::seals, s, secret) || !rx.init(record_direction::opens, s, secret))
    std::abort();
  if (in.size() < 2) return;
  const std::size_t flip =
      (std::size_t{static_cast<std::uint8_t>(in[0])} << 8 | static_cast<std::uint8_t>(in[1]));
  in.remove_prefix(2);
  std::string wire;
  std::vector<std::pair<content, std::string>> sent;
  std::vector<std::size_t> ends;
  while (!in.empty() && sent.size() < 64) {
    const auto len = static_cast<std::uint8_t>(in[0]);
    in.remove_prefix(1);
    std::string plain(in.substr(0, len));
    in.remove_prefix(plain.size());
    const content type = static_cast<content>(21 + len % 3);  // alert, handshake, data
    if (tx.seal(type, plain, wire) != record_error::ok) std::abort();
    sent.emplace_back(type, std::move(plain));
    ends.push_back(wire.size());
  }
  const bool flipped = flip < wire.size();
  if (flipped) wire[flip] = static_cast<char>(wire[flip] ^ 0x01);
  std::size_t at = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const bool damaged = flipped && flip >= at && flip < ends[i];
    std::size_t total = 0;
    const record_error framing = record_size(std::string_view(wire).substr(at), total);
    if (framing != record_error::ok || total != ends[i] - at) {
      if (!damaged) std::abort();  // only the flipped header may frame differently
      return;
    }
    content type{};
    std::string_view plain;
    const record_error e = rx.open({wire.data() + at, total}, type, plain);
    if (damaged) {
      if (e == record_error::ok) std::abort();  // a changed byte must not authenticate
      return;
    }
    if (e != record_error::ok || type != sent[i].first || plain != sent[i].second) std::abort();
    at = ends[i];
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const suite s = suites[data[0] % 3];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 0x80)
    sealed(s, rest);
  else
    raw(s, std::string(rest));
  return 0;
}
