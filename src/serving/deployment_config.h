// DeploymentConfig: how one deployment serves — which model versions take its traffic and in what shares
// (canary), which version receives a copy of it (shadow), how strictly input is checked against the model
// signature, when a canary is rolled back automatically, and how much of the traffic is logged.
//
// JSON form (stored with the deployment and returned by the API; every field optional on input):
//   {"routes":   [{"model":"churn","version":3,"weight":90}, {"model":"churn","version":4,"weight":10}],
//    "shadow":   {"model":"churn","version":5,"fraction":1.0} | null,
//    "input":    {"unknown_fields":"reject"|"ignore", "unseen_categories":"missing"|"reject",
//                 "missing_fields":"reject"|"null"},
//    "rollback": {"max_error_rate":0.05,"max_p99_ms":250,"window_s":60,"min_requests":50} | null,
//    "log":      {"sample_rate":1.0, "max_per_second":1000},
//    "limits":   {"max_concurrency":0, "max_queue":0, "timeout_ms":0, "rate_per_second":0, "rate_burst":0},
//    "batching": {"max_batch_rows":64, "max_delay_us":1000} | null}
// routes[0] is the stable version: the one a rollback returns traffic to. Weights are relative (any
// non-negative numbers, at least one positive). A sticky request (header X-Lathe-Route-Key) always lands on
// the same route while the weights stay the same.
//
// Errors: ParseDeploymentConfig returns kInvalidArgument with ErrorDetail::Field naming the bad field
// ("routes[1].weight", "shadow.fraction", "input.unknown_fields", ...). Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "ml/pipeline.h"
#include "serving/rate_limiter.h"

namespace lathe {

struct RouteSpec {
  std::string model;
  int64_t version = 0;  // 0 = latest at the time the deployment is created or changed (resolved by the API)
  double weight = 1;
};

struct ShadowSpec {
  std::string model;
  int64_t version = 0;
  double fraction = 1.0;  // share of requests copied to the shadow, (0, 1]
};

struct RollbackPolicy {
  double max_error_rate = 0.05;  // errors / requests of the canary over the window
  double max_p99_ms = 0;         // 0 = no latency limit
  int window_s = 60;
  int64_t min_requests = 50;     // below this many requests in the window the canary is not judged
};

// Backpressure (serving/admission.h). max_concurrency 0 = no limit; timeout_ms 0 = no default deadline
// (a request may still bring its own with X-Request-Timeout-Ms).
// rate_per_second > 0 limits each caller (API key, else user) of this deployment to that many requests per
// second with bursts of rate_burst (0 = max(1, rate)): serving/rate_limiter.h, 429 with Retry-After.
struct ServingLimits {
  int max_concurrency = 0;
  int max_queue = 0;
  int timeout_ms = 0;
  double rate_per_second = 0;
  double rate_burst = 0;
};

// Micro-batching (serving/micro_batcher.h): off (nullopt) by default.
struct BatchingOptions {
  size_t max_batch_rows = 64;
  int64_t max_delay_us = 1000;
  bool operator==(const BatchingOptions&) const = default;
};

struct DeploymentConfig {
  std::vector<RouteSpec> routes;
  std::optional<ShadowSpec> shadow;
  ml::FeaturePipeline::InputPolicy input;
  std::optional<RollbackPolicy> rollback;
  double log_sample_rate = 1.0;  // share of requests written to the prediction log, [0, 1]
  // At most this many entries per second per deployment (0 = no cap): everything at modest traffic, a bounded
  // sample at high traffic, where writing every request would cost more than serving it.
  int64_t log_max_per_second = 1000;
  ServingLimits limits;
  std::optional<BatchingOptions> batching;
};

// Parses `j` on top of `base` (fields absent from `j` keep base's value; "shadow": null / "rollback": null
// remove them). The routes' versions are not resolved here.
Result<DeploymentConfig> ParseDeploymentConfig(const Json& j, const DeploymentConfig& base);
Json DeploymentConfigJson(const DeploymentConfig& c);

}  // namespace lathe
