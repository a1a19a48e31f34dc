#include "serving/rate_limiter.h"

#include <gtest/gtest.h>

#include <string>

namespace lathe {
namespace {

TEST(RateLimiter, BurstThenRefillAtTheRate) {
  RateLimiter rl;
  const RateLimit limit{2.0, 3.0};  // 2 per second, bursts of 3
  int64_t t = 1'000'000;
  for (int i = 0; i < 3; ++i) {
    const RateDecision d = rl.Take("u", limit, t);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 3);
    EXPECT_EQ(d.remaining, 2 - i);
  }
  RateDecision d = rl.Take("u", limit, t);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);  // half a second to the next token, rounded up
  EXPECT_EQ(d.reset_s, 2);        // 3 tokens at 2/s
  EXPECT_FALSE(rl.Take("u", limit, t + 400'000).allowed);
  EXPECT_TRUE(rl.Take("u", limit, t + 500'000).allowed);
  // Other keys have their own buckets; a long pause refills to the burst, never beyond.
  EXPECT_TRUE(rl.Take("v", limit, t).allowed);
  t += 60'000'000;
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += rl.Take("u", limit, t).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 3);
}

TEST(RateLimiter, ClockGoingBackwardsGivesNothingAway) {
  RateLimiter rl;
  const RateLimit limit{1.0, 1.0};
  EXPECT_TRUE(rl.Take("k", limit, 10'000'000).allowed);
  EXPECT_FALSE(rl.Take("k", limit, 5'000'000).allowed);
  EXPECT_FALSE(rl.Take("k", limit, 10'500'000).allowed);
  EXPECT_TRUE(rl.Take("k", limit, 11'000'000).allowed);
}

TEST(RateLimiter, ManyKeysStayBounded) {
  RateLimiter rl;
  const RateLimit limit{1000.0, 1.0};
  // Far more distinct keys than the shards may hold: old full buckets are dropped, requests still decided.
  for (int i = 0; i < 1'000'000; ++i) {
    ASSERT_TRUE(rl.Take("ip:" + std::to_string(i), limit, int64_t{i} * 1000).allowed);
  }
}

TEST(RateLimiter, ParseLimits) {
  auto r = ParseRateLimit("10", "x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->per_second, 10);
  EXPECT_EQ(r->capacity(), 10);
  r = ParseRateLimit("0.5/20", "x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->per_second, 0.5);
  EXPECT_EQ(r->capacity(), 20);
  EXPECT_EQ(ParseRateLimit("0.5", "x")->capacity(), 1);  // a burst of at least one request
  EXPECT_FALSE(ParseRateLimit("", "x")->enabled());
  EXPECT_FALSE(ParseRateLimit("0", "x")->enabled());
  for (const char* bad : {"fast", "-1", "1/0", "1/x", "10/", "/5", "nan", "inf", "1e10"}) {
    auto p = ParseRateLimit(bad, "rate-limit-ip");
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_NE(p.status().message().find("rate-limit-ip"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace lathe
