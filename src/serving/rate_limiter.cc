#include "serving/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>

namespace lathe {

Result<RateLimit> ParseRateLimit(std::string_view text, const std::string& what) {
  RateLimit out;
  if (text.empty() || text == "0") return out;
  auto bad = [&]() {
    return Status::InvalidArgument(what + " must be R or R/B: R requests per second (> 0) and a burst B (>= 1), "
                                          "not '" + std::string(text.substr(0, 40)) + "'");
  };
  const size_t slash = text.find('/');
  auto number = [](std::string_view s, double* v) {
    const std::string str(s);
    char* end = nullptr;
    *v = std::strtod(str.c_str(), &end);
    return !str.empty() && end == str.c_str() + str.size() && std::isfinite(*v);
  };
  if (!number(text.substr(0, slash), &out.per_second) || !(out.per_second > 0) || out.per_second > 1e9) return bad();
  if (slash != std::string_view::npos &&
      (!number(text.substr(slash + 1), &out.burst) || out.burst < 1 || out.burst > 1e9)) {
    return bad();
  }
  return out;
}

RateDecision RateLimiter::Take(std::string_view key, const RateLimit& limit, int64_t now_us) {
  const double capacity = limit.capacity();
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= kMaxBucketsPerShard) {
      // Full buckets hold nothing a new one would not: drop them first.
      for (auto b = shard.buckets.begin(); b != shard.buckets.end();) {
        const double refilled =
            b->second.tokens + static_cast<double>(now_us - b->second.last_us) * limit.per_second / 1e6;
        b = refilled >= capacity ? shard.buckets.erase(b) : std::next(b);
      }
      if (shard.buckets.size() >= kMaxBucketsPerShard) shard.buckets.clear();
    }
    it = shard.buckets.emplace(std::string(key), Bucket{capacity, now_us}).first;
  }
  Bucket& b = it->second;
  const auto elapsed_us = static_cast<double>(std::max<int64_t>(0, now_us - b.last_us));
  b.tokens = std::min(capacity, b.tokens + elapsed_us * limit.per_second / 1e6);
  b.last_us = std::max(b.last_us, now_us);
  RateDecision d;
  d.limit = static_cast<int64_t>(capacity);
  constexpr double kSlack = 1e-9;  // refills summed in pieces must not fall a rounding error short of a token
  if (b.tokens >= 1.0 - kSlack) {
    b.tokens = std::max(0.0, b.tokens - 1.0);
  } else {
    d.allowed = false;
    d.retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - b.tokens) / limit.per_second)));
  }
  d.remaining = static_cast<int64_t>(std::floor(b.tokens));
  d.reset_s = static_cast<int64_t>(std::ceil((capacity - b.tokens) / limit.per_second));
  return d;
}

}  // namespace lathe
