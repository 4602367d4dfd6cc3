#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace nbio_load {

// Values below 2 * sub are their own bucket; above, bucket = shift * sub + the value's top five
// bits (16..31), shift being how far those bits were shifted down.
std::size_t latency_histogram::bucket_of(std::uint64_t ns) noexcept {
  if (ns < 2 * sub) return static_cast<std::size_t>(ns);
  const unsigned shift = static_cast<unsigned>(std::bit_width(ns)) - 1 - sub_bits;
  return shift * sub + static_cast<std::size_t>(ns >> shift);
}

std::uint64_t latency_histogram::midpoint_of(std::size_t index) noexcept {
  if (index < 2 * sub) return index;
  const unsigned shift = static_cast<unsigned>(index / sub) - 1;
  return ((index % sub + sub) << shift) + ((std::uint64_t{1} << shift) >> 1);
}

void latency_histogram::record(std::uint64_t ns) noexcept {
  ++counts_[bucket_of(ns)];
  ++count_;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
  for (std::size_t i = 0; i < bucket_count; ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::uint64_t latency_histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(clamped * static_cast<double>(count_) + 0.5));
  if (rank >= count_) return max_;  // the top sample is known exactly
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(midpoint_of(i), min_, max_);
  }
  return max_;
}

nlohmann::json latency_histogram::to_json() const {
  nlohmann::json buckets = nlohmann::json::array();
  for (std::size_t i = 0; i < bucket_count; ++i)
    if (counts_[i]) buckets.push_back({i, counts_[i]});
  return {{"count", count_}, {"min", min()}, {"max", max_}, {"buckets", std::move(buckets)}};
}

latency_histogram latency_histogram::from_json(const nlohmann::json& j) {
  latency_histogram h;
  std::uint64_t total = 0;
  for (const auto& b : j.at("buckets")) {
    const auto index = b.at(0).get<std::size_t>();
    const auto n = b.at(1).get<std::uint64_t>();
    if (index >= bucket_count) throw std::invalid_argument("histogram bucket index out of range");
    h.counts_[index] += n;
    total += n;
  }
  h.count_ = j.at("count").get<std::uint64_t>();
  if (total != h.count_) throw std::invalid_argument("histogram buckets do not add up to count");
  h.max_ = j.at("max").get<std::uint64_t>();
  if (h.count_) h.min_ = j.at("min").get<std::uint64_t>();
  return h;
}

}  // namespace nbio_load
