// Conformance. permessage-deflate for the harness (autobahn_deflate.hpp): zlib raw deflate.
#include "autobahn_deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <random>
#include <vector>

namespace nbio_test::autobahn {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

constexpr std::array<std::string_view, 16> words = {
    "autobahn", "message",  "frame", "deflate", "window", "context", "server", "client",
    "payload",  "sequence", "value", "index",   "stream", "buffer",  "socket", "echo"};

constexpr std::array<std::string_view, 12> german = {
    "Habe",    "nun",  "ach",  "Philosophie", "Juristerei", "und",
    "Medizin", "Grün", "Töne", "Schüler",     "weiß",       "daß"};

}  // namespace

bool parse_deflate_answer(std::string_view answer, deflate_params* out) {
  // The answer names one extension; its parameters follow the first ';'.
  std::string_view rest = answer;
  bool found = false;
  while (!rest.empty()) {
    const std::size_t semi = rest.find(';');
    const std::string_view item = trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (!found) {
      if (!iequals(item, "permessage-deflate")) return false;
      found = true;
      continue;
    }
    const std::size_t eq = item.find('=');
    const std::string_view name = trim(item.substr(0, eq));
    const int bits = eq == std::string_view::npos
                         ? 15
                         : std::atoi(std::string(trim(item.substr(eq + 1))).c_str());
    if (iequals(name, "server_no_context_takeover")) out->server_no_context_takeover = true;
    if (iequals(name, "client_no_context_takeover")) out->client_no_context_takeover = true;
    if (iequals(name, "server_max_window_bits")) out->server_max_window_bits = bits;
    if (iequals(name, "client_max_window_bits")) out->client_max_window_bits = bits;
  }
  return found;
}

struct deflate_codec::streams {
  z_stream ours{};
  z_stream theirs{};
};

deflate_codec::deflate_codec(const deflate_params& p, bool we_are_client)
    : z_(std::make_unique<streams>()) {
  const int bits = std::max(9, we_are_client ? p.client_max_window_bits : p.server_max_window_bits);
  reset_ours_ = we_are_client ? p.client_no_context_takeover : p.server_no_context_takeover;
  reset_theirs_ = we_are_client ? p.server_no_context_takeover : p.client_no_context_takeover;
  // Level 1: the corpora are cut into thousands of messages; the ratio does not matter here.
  deflateInit2(&z_->ours, 1, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY);
  inflateInit2(&z_->theirs, -15);
}

deflate_codec::~deflate_codec() {
  deflateEnd(&z_->ours);
  inflateEnd(&z_->theirs);
}

std::string deflate_codec::compress(std::string_view message) {
  z_stream& z = z_->ours;
  std::string out(deflateBound(&z, message.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  z.avail_in = static_cast<uInt>(message.size());
  std::size_t used = 0;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    z.avail_out = static_cast<uInt>(out.size() - used);
    deflate(&z, Z_SYNC_FLUSH);
    used = out.size() - z.avail_out;
    if (z.avail_out != 0) break;
    out.resize(out.size() * 2);
  }
  out.resize(used);
  if (out.size() >= 4 && out.ends_with(std::string_view("\x00\x00\xff\xff", 4)))
    out.resize(out.size() - 4);
  if (reset_ours_) deflateReset(&z);
  return out;
}

bool deflate_codec::decompress(std::string_view wire, std::string* out) {
  z_stream& z = z_->theirs;
  std::string in(wire);
  in.append("\x00\x00\xff\xff", 4);
  z.next_in = reinterpret_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  out->clear();
  std::array<char, 64 * 1024> buf;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    const int rc = inflate(&z, Z_SYNC_FLUSH);
    out->append(buf.data(), buf.size() - z.avail_out);
    if (rc == Z_STREAM_END) {  // the peer ended its stream (BFINAL): the next starts afresh
      inflateReset(&z);
      if (z.avail_in == 0) break;
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
    if (z.avail_in == 0 && z.avail_out != 0) break;
    if (rc == Z_BUF_ERROR && z.avail_out != 0) return false;
  }
  if (reset_theirs_) inflateReset(&z);
  return true;
}

std::string corpus(std::string_view name, bool* text) {
  std::mt19937 rng(7);
  std::string out;
  auto word = [&] { return words[rng() % words.size()]; };
  *text = name.ends_with(".json") || name.ends_with(".html");
  if (name.ends_with(".json")) {  // data1.json: 194,056 bytes of records
    out = "[\n";
    for (int i = 0; out.size() < 194'056; ++i) {
      out.append("  {\"id\": ").append(std::to_string(i)).append(", \"name\": \"");
      out.append(word()).append(" ").append(word()).append("\", \"value\": ");
      out.append(std::to_string(rng() % 100000)).append(", \"tags\": [\"");
      out.append(word()).append("\", \"").append(word()).append("\"]},\n");
    }
    out.resize(194'056);
  } else if (name.ends_with(".html")) {  // data1.html: 263,647 bytes of markup
    out = "<!DOCTYPE html>\n<html><body>\n";
    while (out.size() < 263'647) {
      out.append("<div class=\"").append(word()).append("\"><p>");
      for (int w = 0; w < 12; ++w)
        out.append(word()).append(" ");
      out.append("</p><a href=\"/").append(word()).append("\">").append(word());
      out.append("</a></div>\n");
    }
    out.resize(263'647);
  } else if (name.ends_with(".bmp")) {  // lena512.bmp: 54 + 1024 palette + 512 x 512 pixels
    out.assign(54 + 1024, '\0');
    out[0] = 'B';
    out[1] = 'M';
    for (int y = 0; y < 512; ++y)
      for (int x = 0; x < 512; ++x)
        out.push_back(static_cast<char>((x + y) / 4 + static_cast<int>(rng() % 16)));
  } else if (name.ends_with(".txt")) {  // pg2229.txt: 222,218 bytes of German prose (UTF-8)
    while (out.size() < 222'218) {
      for (int w = 0; w < 10; ++w)
        out.append(german[rng() % german.size()]).append(w == 9 ? ".\n" : " ");
    }
    out.resize(222'218);
  } else {  // the PDF: 1,042,328 bytes, text objects between binary streams
    out = "%PDF-1.4\n";
    while (out.size() < 1'042'328) {
      out.append("1 0 obj << /Type /Page /Contents ").append(word()).append(" >> stream\n");
      for (int i = 0; i < 900; ++i)
        out.push_back(static_cast<char>(rng()));
      out.append("\nendstream endobj\n");
    }
    out.resize(1'042'328);
  }
  return out;
}

}  // namespace nbio_test::autobahn
