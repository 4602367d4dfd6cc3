// Conformance. Payload decoding and event descriptions for the Autobahn case data
// (autobahn_case.hpp).
#include "autobahn_case.hpp"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace nbio_test::autobahn {

namespace {

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("bad hex digit in autobahn_cases.json");
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

}  // namespace

std::string payload_bytes(const nlohmann::json& p, bool* complete) {
  if (complete) *complete = true;
  const std::size_t len = p.at("len").get<std::size_t>();
  if (p.contains("rep") && p["rep"].is_string()) {
    const std::string unit = from_hex(p["rep"].get<std::string>());
    std::string out;
    out.reserve(len);
    while (out.size() < len)
      out.append(unit, 0, std::min(unit.size(), len - out.size()));
    return out;
  }
  std::string hex = p.at("hex").get<std::string>();
  if (hex.ends_with("...")) {
    hex.resize(hex.size() - 3);
    if (complete) *complete = false;
  }
  return from_hex(hex);
}

std::string describe(const event& e) {
  switch (e.what) {
    case event::kind::message:
      return std::string("message(") + (e.binary ? "binary, " : "text, ") +
             std::to_string(e.payload.size()) + " bytes)";
    case event::kind::pong:
      return "pong(" + std::to_string(e.payload.size()) + " bytes)";
    case event::kind::ping:
      return "ping(" + std::to_string(e.payload.size()) + " bytes)";
    case event::kind::timeout:
      return "timeout(" + e.payload + ")";
  }
  return "?";
}

std::string describe(const std::vector<event>& events) {
  std::string out = "[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i) out += ", ";
    out += describe(events[i]);
  }
  return out + "]";
}

std::string group_of(const std::string& id) {
  return id.substr(0, id.find('.'));
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

bool selected(const std::string& id, const std::string& filter) {
  if (filter.empty()) return true;
  std::stringstream ss(filter);
  std::string prefix;
  while (std::getline(ss, prefix, ','))
    if (!prefix.empty() && (id == prefix || id.starts_with(prefix))) return true;
  return false;
}

// "5.15 reason..." per line; '#' starts a comment.
std::map<std::string, std::string> load_known_failures(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t sp = line.find_first_of(" \t");
    out[line.substr(0, sp)] = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  return out;
}

// Numeric order of ids: 1.1.2 before 1.1.10.
bool id_less(const std::string& a, const std::string& b) {
  std::stringstream sa(a), sb(b);
  std::string x, y;
  for (;;) {
    const bool ha = static_cast<bool>(std::getline(sa, x, '.'));
    const bool hb = static_cast<bool>(std::getline(sb, y, '.'));
    if (!ha || !hb) return !ha && hb;
    if (std::stoi(x) != std::stoi(y)) return std::stoi(x) < std::stoi(y);
  }
}

}  // namespace nbio_test::autobahn
