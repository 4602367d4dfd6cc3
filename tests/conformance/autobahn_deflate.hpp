// Conformance. The harness' side of permessage-deflate (RFC 7692) for the Autobahn 12.x/13.x
// cases, in either role: the agreed parameters read from a Sec-WebSocket-Extensions answer, one
// end's compressor and decompressor (zlib, raw deflate), and the corpora the cases cut their
// messages from. zlib is independent of nbio's own deflate code, so a bug there cannot hide.
//
//   deflate_params p;
//   if (parse_deflate_answer(answer, &p)) {
//     deflate_codec codec(p, /*we_are_client=*/true);
//     std::string wire = codec.compress(message);     // the payload of a frame with RSV1
//     std::string back;
//     codec.decompress(wire_from_peer, &back);        // false: not a valid deflate stream
//   }
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace nbio_test::autobahn {

// What a Sec-WebSocket-Extensions answer agreed (RFC 7692 7.1); window bits 8-15.
struct deflate_params {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;
  int client_max_window_bits = 15;
};

// Reads a server's permessage-deflate answer ("permessage-deflate; client_max_window_bits=9").
// False when `answer` holds no permessage-deflate.
bool parse_deflate_answer(std::string_view answer, deflate_params* out);

// One end's compression state for one connection: its own messages compressed with its own
// direction's parameters (no context takeover: a fresh stream per message; the window as
// agreed, at least 9, as zlib's raw deflate cannot do 8), the peer's decompressed with a window
// of 15 (a larger window reads any smaller one), its context kept unless the peer agreed to
// drop it.
class deflate_codec {
 public:
  deflate_codec(const deflate_params& p, bool we_are_client);
  ~deflate_codec();
  deflate_codec(const deflate_codec&) = delete;
  deflate_codec& operator=(const deflate_codec&) = delete;

  // One message's payload as it goes on the wire (the final 00 00 ff ff removed, 7.2.1).
  std::string compress(std::string_view message);
  // One message from the peer (the frames' payloads joined). False on a bad stream.
  bool decompress(std::string_view wire, std::string* out);

 private:
  struct streams;
  std::unique_ptr<streams> z_;
  bool reset_ours_ = false;    // our no_context_takeover
  bool reset_theirs_ = false;  // the peer's
};

// The corpus named by a case's extra.testdata, made up here (the originals are not shipped):
// the same kind and size (JSON and HTML as ASCII text, the rest binary: a bitmap, German prose
// as UTF-8, a PDF-like mix). Deterministic. `text` says whether its messages go as TEXT.
std::string corpus(std::string_view name, bool* text);

}  // namespace nbio_test::autobahn
