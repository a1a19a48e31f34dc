// RateLimiter: token buckets by key (an API key, a user, a client address, a deployment's caller). A bucket
// holds up to `burst` tokens and refills at `per_second`; each request takes one. Buckets live in memory on
// this node (a cluster behind a load balancer limits per node), in 16 independently locked shards; a shard
// that grows past kMaxBucketsPerShard first drops the buckets that have refilled completely (they carry no
// state worth keeping), then, if still too large, all of them.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace lathe {

struct RateLimit {
  double per_second = 0;  // 0 = no limit
  double burst = 0;       // bucket size; 0 = max(1, per_second)
  bool enabled() const { return per_second > 0; }
  double capacity() const { return burst > 0 ? burst : (per_second > 1 ? per_second : 1); }
};

// "R" or "R/B": R requests per second (> 0), burst B (>= 1); "" or "0" = no limit. kInvalidArgument naming
// `what` otherwise.
Result<RateLimit> ParseRateLimit(std::string_view text, const std::string& what);

struct RateDecision {
  bool allowed = true;
  int64_t limit = 0;          // the bucket's capacity (RateLimit-Limit)
  int64_t remaining = 0;      // whole tokens left after this request (RateLimit-Remaining)
  int64_t reset_s = 0;        // seconds until the bucket is full again (RateLimit-Reset)
  int64_t retry_after_s = 0;  // refused: seconds until one token is back (Retry-After)
};

class RateLimiter {
 public:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxBucketsPerShard = 50000;

  // Takes one token from the bucket of `key` (refused: takes nothing). `limit` must be enabled.
  RateDecision Take(std::string_view key, const RateLimit& limit, int64_t now_us);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_us = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  Shard shards_[kShards];
};

}  // namespace lathe
