// Test support. Payloads whose every byte can be checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace nbio_test {

// `n` pseudo-random bytes (all 256 values occur), the same for the same seed.
inline std::string random_payload(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>(rng() & 0xff);
  return s;
}

// The byte at stream offset `i` of a position-dependent pattern: a dropped, duplicated or
// reordered chunk shows up as a mismatch at a known offset.
inline char pattern_byte(std::size_t i) {
  return static_cast<char>((i * 2654435761u >> 13) ^ (i >> 16));
}

inline std::string pattern(std::size_t offset, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = pattern_byte(offset + i);
  return s;
}

// Offset of the first byte of `got` that differs from the pattern at `offset`; npos if none.
inline std::size_t pattern_mismatch(const std::string& got, std::size_t offset = 0) {
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != pattern_byte(offset + i)) return i;
  return std::string::npos;
}

}  // namespace nbio_test
