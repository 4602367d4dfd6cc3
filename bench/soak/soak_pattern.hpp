// Internal to bench/soak. The byte stream a soak connection sends, and the check of its echo.
//
// Each connection has a 64-bit seed; byte n of its stream is one byte of splitmix64(seed, n / 8),
// so the sender and the checker compute any stretch of it from the offset alone and nothing sent
// is stored. Two connections' streams differ from the first byte (their seeds differ), so an echo
// delivered to the wrong connection, a byte dropped, duplicated or reordered all show up as a
// mismatch at the offset where it happened.
#pragma once

#include <cstddef>
#include <cstdint>

namespace soak {

// splitmix64's finaliser: a bijection with good avalanche, so neighbouring words look unrelated.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Reads the stream of `seed` from `offset` on, one byte at a time: one mix per 8 bytes.
class stream_reader {
 public:
  stream_reader(std::uint64_t seed, std::uint64_t offset) noexcept
      : seed_(seed), offset_(offset), word_(word_at(offset >> 3)) {}
  char next() noexcept {
    if ((offset_ & 7) == 0) word_ = word_at(offset_ >> 3);
    return static_cast<char>(word_ >> ((offset_++ & 7) * 8));
  }

 private:
  std::uint64_t word_at(std::uint64_t index) const noexcept { return mix(seed_ ^ mix(index)); }

  std::uint64_t seed_;
  std::uint64_t offset_;
  std::uint64_t word_;
};

// Writes stream bytes [offset, offset + n) of `seed` to `out`.
inline void fill(std::uint64_t seed, std::uint64_t offset, char* out, std::size_t n) noexcept {
  stream_reader stream(seed, offset);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = stream.next();
}

// Compares `got` with stream bytes [offset, offset + n) of `seed`. Returns the number of bytes
// that differ; `first` is set to the index in `got` of the first one (untouched when none).
inline std::size_t count_mismatches(std::uint64_t seed, std::uint64_t offset, const char* got,
                                    std::size_t n, std::size_t& first) noexcept {
  stream_reader stream(seed, offset);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (got[i] != stream.next() && bad++ == 0) first = i;
  return bad;
}

// The size of message `k` (0-based) of a connection: 1..max_size bytes, from the seed, so sizes
// vary between messages and connections (TLS records, partial reads and writes of every length).
constexpr std::size_t message_size(std::uint64_t seed, std::uint32_t k,
                                   std::size_t max_size) noexcept {
  return 1 + static_cast<std::size_t>(mix(seed + 0x632be59bd9b4e019ull * (k + 1)) % max_size);
}

}  // namespace soak
