#include "serving/deployment_config.h"

#include <cmath>

#include "common/ids.h"

namespace lathe {
namespace {

Status Bad(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

Status CheckKeys(const Json& obj, const std::string& where, std::initializer_list<const char*> allowed) {
  if (!obj.is_object()) return Bad(where, "must be a JSON object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) return Bad(where + "." + it.key(), "unknown field");
  }
  return Status::Ok();
}

Result<double> Number(const Json& obj, const std::string& key, const std::string& field, double lo, double hi,
                      double fallback) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_number() || !std::isfinite(it->get<double>())) return Bad(field, "must be a number");
  const double v = it->get<double>();
  if (v < lo || v > hi) {
    return Bad(field, "must be between " + Json(lo).dump() + " and " + Json(hi).dump());
  }
  return v;
}

Result<int64_t> Version(const Json& obj, const std::string& field) {
  auto it = obj.find("version");
  if (it == obj.end() || it->is_null() || (it->is_string() && *it == "latest")) return int64_t{0};
  if (!it->is_number_integer() || it->get<int64_t>() < 1) return Bad(field, "must be a positive integer");
  return it->get<int64_t>();
}

Result<std::string> ModelName(const Json& obj, const std::string& field) {
  auto it = obj.find("model");
  if (it == obj.end() || !it->is_string()) return Bad(field, "is required (a model name)");
  if (!IsValidName(it->get<std::string>())) return Bad(field, NameRules());
  return it->get<std::string>();
}

Result<std::string> Choice(const Json& obj, const std::string& key, const std::string& field,
                           std::initializer_list<const char*> choices, const std::string& current) {
  auto it = obj.find(key);
  if (it == obj.end()) return current;
  std::string list;
  for (const char* c : choices) {
    if (it->is_string() && *it == c) return std::string(c);
    list += list.empty() ? std::string("'") + c + "'" : std::string(" or '") + c + "'";
  }
  return Bad(field, "must be " + list);
}

// An unresolved version (0) is written as "latest", which parses back to 0.
Json VersionJson(int64_t v) { return v > 0 ? Json(v) : Json("latest"); }

}  // namespace

Result<DeploymentConfig> ParseDeploymentConfig(const Json& j, const DeploymentConfig& base) {
  DeploymentConfig c = base;
  if (!j.is_object()) return Bad("body", "must be a JSON object");
  if (auto it = j.find("routes"); it != j.end()) {
    if (!it->is_array() || it->empty()) return Bad("routes", "must be a non-empty array of {model, version, weight}");
    if (it->size() > 16) return Bad("routes", "at most 16 routes");
    c.routes.clear();
    double total = 0;
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& r = (*it)[i];
      const std::string where = "routes[" + std::to_string(i) + "]";
      RETURN_IF_ERROR(CheckKeys(r, where, {"model", "version", "weight"}));
      RouteSpec spec;
      ASSIGN_OR_RETURN(spec.model, ModelName(r, where + ".model"));
      ASSIGN_OR_RETURN(spec.version, Version(r, where + ".version"));
      ASSIGN_OR_RETURN(spec.weight, Number(r, "weight", where + ".weight", 0, 1e6, 1));
      total += spec.weight;
      c.routes.push_back(std::move(spec));
    }
    if (total <= 0) return Bad("routes", "at least one route needs a positive weight");
  }
  if (auto it = j.find("shadow"); it != j.end()) {
    if (it->is_null()) {
      c.shadow.reset();
    } else {
      RETURN_IF_ERROR(CheckKeys(*it, "shadow", {"model", "version", "fraction"}));
      ShadowSpec s;
      ASSIGN_OR_RETURN(s.model, ModelName(*it, "shadow.model"));
      ASSIGN_OR_RETURN(s.version, Version(*it, "shadow.version"));
      ASSIGN_OR_RETURN(s.fraction, Number(*it, "fraction", "shadow.fraction", 0, 1, 1));
      if (s.fraction <= 0) return Bad("shadow.fraction", "must be greater than 0 (remove the shadow with null)");
      c.shadow = std::move(s);
    }
  }
  if (auto it = j.find("input"); it != j.end()) {
    RETURN_IF_ERROR(CheckKeys(*it, "input", {"unknown_fields", "unseen_categories", "missing_fields"}));
    ASSIGN_OR_RETURN(std::string unknown, Choice(*it, "unknown_fields", "input.unknown_fields", {"reject", "ignore"},
                                                 c.input.ignore_unknown_fields ? "ignore" : "reject"));
    ASSIGN_OR_RETURN(std::string unseen,
                     Choice(*it, "unseen_categories", "input.unseen_categories", {"missing", "reject"},
                            c.input.reject_unseen_categories ? "reject" : "missing"));
    ASSIGN_OR_RETURN(std::string missing, Choice(*it, "missing_fields", "input.missing_fields", {"reject", "null"},
                                                 c.input.missing_fields_as_null ? "null" : "reject"));
    c.input.ignore_unknown_fields = unknown == "ignore";
    c.input.reject_unseen_categories = unseen == "reject";
    c.input.missing_fields_as_null = missing == "null";
  }
  if (auto it = j.find("rollback"); it != j.end()) {
    if (it->is_null()) {
      c.rollback.reset();
    } else {
      RETURN_IF_ERROR(CheckKeys(*it, "rollback", {"max_error_rate", "max_p99_ms", "window_s", "min_requests"}));
      RollbackPolicy p = c.rollback.value_or(RollbackPolicy{});
      ASSIGN_OR_RETURN(p.max_error_rate, Number(*it, "max_error_rate", "rollback.max_error_rate", 0, 1, p.max_error_rate));
      ASSIGN_OR_RETURN(p.max_p99_ms, Number(*it, "max_p99_ms", "rollback.max_p99_ms", 0, 3.6e6, p.max_p99_ms));
      ASSIGN_OR_RETURN(double window, Number(*it, "window_s", "rollback.window_s", 1, 600, p.window_s));
      ASSIGN_OR_RETURN(double min_requests,
                       Number(*it, "min_requests", "rollback.min_requests", 1, 1e9, static_cast<double>(p.min_requests)));
      p.window_s = static_cast<int>(window);
      p.min_requests = static_cast<int64_t>(min_requests);
      c.rollback = p;
    }
  }
  if (auto it = j.find("log"); it != j.end()) {
    RETURN_IF_ERROR(CheckKeys(*it, "log", {"sample_rate", "max_per_second"}));
    ASSIGN_OR_RETURN(c.log_sample_rate, Number(*it, "sample_rate", "log.sample_rate", 0, 1, c.log_sample_rate));
    ASSIGN_OR_RETURN(double per_second, Number(*it, "max_per_second", "log.max_per_second", 0, 1e7,
                                               static_cast<double>(c.log_max_per_second)));
    c.log_max_per_second = static_cast<int64_t>(per_second);
  }
  if (auto it = j.find("limits"); it != j.end()) {
    RETURN_IF_ERROR(CheckKeys(*it, "limits", {"max_concurrency", "max_queue", "timeout_ms", "rate_per_second",
                                              "rate_burst"}));
    ASSIGN_OR_RETURN(double conc, Number(*it, "max_concurrency", "limits.max_concurrency", 0, 100000,
                                         c.limits.max_concurrency));
    ASSIGN_OR_RETURN(double queue, Number(*it, "max_queue", "limits.max_queue", 0, 100000, c.limits.max_queue));
    ASSIGN_OR_RETURN(double timeout, Number(*it, "timeout_ms", "limits.timeout_ms", 0, 3.6e6, c.limits.timeout_ms));
    ASSIGN_OR_RETURN(double rate, Number(*it, "rate_per_second", "limits.rate_per_second", 0, 1e9,
                                         c.limits.rate_per_second));
    ASSIGN_OR_RETURN(double burst, Number(*it, "rate_burst", "limits.rate_burst", 0, 1e9, c.limits.rate_burst));
    if (burst > 0 && burst < 1) return Bad("limits.rate_burst", "must be 0 (the rate) or at least 1");
    c.limits = {static_cast<int>(conc), static_cast<int>(queue), static_cast<int>(timeout), rate, burst};
  }
  if (auto it = j.find("batching"); it != j.end()) {
    if (it->is_null()) {
      c.batching.reset();
    } else {
      RETURN_IF_ERROR(CheckKeys(*it, "batching", {"max_batch_rows", "max_delay_us"}));
      BatchingOptions b = c.batching.value_or(BatchingOptions{});
      ASSIGN_OR_RETURN(double rows, Number(*it, "max_batch_rows", "batching.max_batch_rows", 1, 10000,
                                           static_cast<double>(b.max_batch_rows)));
      ASSIGN_OR_RETURN(double delay, Number(*it, "max_delay_us", "batching.max_delay_us", 0, 1e6,
                                            static_cast<double>(b.max_delay_us)));
      c.batching = BatchingOptions{static_cast<size_t>(rows), static_cast<int64_t>(delay)};
    }
  }
  return c;
}

Json DeploymentConfigJson(const DeploymentConfig& c) {
  Json routes = Json::array();
  for (const auto& r : c.routes) routes.push_back({{"model", r.model}, {"version", VersionJson(r.version)}, {"weight", r.weight}});
  Json j = {{"routes", std::move(routes)},
            {"shadow", nullptr},
            {"input",
             {{"unknown_fields", c.input.ignore_unknown_fields ? "ignore" : "reject"},
              {"unseen_categories", c.input.reject_unseen_categories ? "reject" : "missing"},
              {"missing_fields", c.input.missing_fields_as_null ? "null" : "reject"}}},
            {"rollback", nullptr},
            {"log", {{"sample_rate", c.log_sample_rate}, {"max_per_second", c.log_max_per_second}}},
            {"limits",
             {{"max_concurrency", c.limits.max_concurrency},
              {"max_queue", c.limits.max_queue},
              {"timeout_ms", c.limits.timeout_ms},
              {"rate_per_second", c.limits.rate_per_second},
              {"rate_burst", c.limits.rate_burst}}},
            {"batching", nullptr}};
  if (c.shadow) {
    j["shadow"] = {{"model", c.shadow->model}, {"version", VersionJson(c.shadow->version)}, {"fraction", c.shadow->fraction}};
  }
  if (c.batching) {
    j["batching"] = {{"max_batch_rows", c.batching->max_batch_rows}, {"max_delay_us", c.batching->max_delay_us}};
  }
  if (c.rollback) {
    j["rollback"] = {{"max_error_rate", c.rollback->max_error_rate},
                     {"max_p99_ms", c.rollback->max_p99_ms},
                     {"window_s", c.rollback->window_s},
                     {"min_requests", c.rollback->min_requests}};
  }
  return j;
}

}  // namespace lathe
