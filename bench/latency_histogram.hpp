// latency_histogram: a log-bucketed histogram of durations in nanoseconds (bench-internal).
//
// Fixed memory (3,776 counters, 30 KiB), O(1) record, no per-sample storage. Values below 128 ns
// get exact buckets; above, every power of two is split into 64 buckets, so a bucket is at most
// 1/64 of its value wide and the reported quantile (the bucket's midpoint) is within 0.8% of the
// exact one. Count, min, max and mean are exact.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace bench {

class latency_histogram {
 public:
  void record(std::uint64_t ns) {
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }

  void clear() { *this = latency_histogram{}; }

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value below which a fraction q (0 < q <= 1) of the samples lie; 0 when empty.
  std::uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * count_)));
    if (rank >= count_) return max_;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(midpoint_of(i), min(), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned sub_bits = 6;  // 64 buckets per power of two
  static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;
  static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;

  // Below 2 * sub_count the value is its own bucket; above, bucket = shift * 64 + the value's
  // top 7 bits (64..127), where shift is how far those bits were shifted down.
  static std::size_t bucket_of(std::uint64_t v) {
    if (v < 2 * sub_count) return v;
    const unsigned shift = std::bit_width(v) - 1 - sub_bits;
    return shift * sub_count + (v >> shift);
  }

  static std::uint64_t midpoint_of(std::size_t bucket) {
    if (bucket < 2 * sub_count) return bucket;
    const unsigned shift = bucket / sub_count - 1;
    const std::uint64_t lower = (bucket % sub_count + sub_count) << shift;
    return lower + ((std::uint64_t{1} << shift) >> 1);
  }

  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

}  // namespace bench
