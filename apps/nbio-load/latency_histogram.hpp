// nbio-load. A log-bucketed histogram of nanoseconds: no per-sample storage, exact merge.
//
// 16 buckets per power of two: a reported quantile is its bucket's midpoint, within 3% of the
// exact value. 976 counters (7.8 KiB) per histogram, O(1) record. Two histograms merge exactly
// by adding their buckets, which is how worker processes' latencies are combined; the JSON form
// lists only the non-empty buckets so a worker's result stays a short line on its pipe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

namespace nbio_load {

class latency_histogram {
 public:
  static constexpr unsigned sub_bits = 4;
  static constexpr std::uint64_t sub = std::uint64_t{1} << sub_bits;
  static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub;

  void record(std::uint64_t ns) noexcept;
  void merge(const latency_histogram& other) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  // The value at or below which a fraction q (0..1) of the samples lie; 0 when empty. Never
  // above max().
  std::uint64_t quantile(double q) const noexcept;
  std::uint64_t bucket(std::size_t index) const noexcept { return counts_[index]; }

  static std::size_t bucket_of(std::uint64_t ns) noexcept;
  // The middle of bucket `index`'s range: the value quantile() reports for it.
  static std::uint64_t midpoint_of(std::size_t index) noexcept;

  // {"count":N,"min":ns,"max":ns,"buckets":[[index,count],...]} (non-empty buckets only).
  nlohmann::json to_json() const;
  // The inverse of to_json(). Throws std::invalid_argument on a malformed document (a bucket
  // index out of range, counts that do not add up to "count").
  static latency_histogram from_json(const nlohmann::json& j);

  friend bool operator==(const latency_histogram&, const latency_histogram&) = default;

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
};

}  // namespace nbio_load
