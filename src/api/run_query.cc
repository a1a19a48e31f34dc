#include "api/run_query.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace lathe {

const std::vector<std::string> kRunPathRoots = {"metrics",    "params",      "split",     "state",
                                                "dataset",    "version",     "target",    "task",
                                                "learner",    "train_rows",  "test_rows", "train_seconds",
                                                "created_at", "finished_at", "id",        "created_by",
                                                "kind",       "parent",      "experiment", "tags",
                                                "search"};

namespace {

Status FieldError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

Json ParseValue(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  if (!text.empty()) {
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (errno == 0 && end == text.c_str() + text.size() && std::isfinite(d)) return d;
  }
  return text;
}

// -1, 0, 1; `comparable` false when the kinds differ (number vs text) or a value is not a scalar.
int Compare(const Json& a, const Json& b, bool* comparable) {
  *comparable = true;
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_boolean() && b.is_boolean())
    return static_cast<int>(a.get<bool>()) - static_cast<int>(b.get<bool>());
  if (a.is_string() && b.is_string()) {
    const int c = a.get<std::string>().compare(b.get<std::string>());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  *comparable = false;
  return 0;
}

}  // namespace

Result<std::vector<std::string>> ParseRunPath(const std::string& text, const std::string& field) {
  std::vector<std::string> path;
  size_t start = 0;
  while (true) {
    const size_t dot = text.find('.', start);
    const std::string part = text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) return FieldError(field, "'" + text + "' is not a dotted path such as metrics.roc_auc");
    path.push_back(part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (std::find(kRunPathRoots.begin(), kRunPathRoots.end(), path[0]) == kRunPathRoots.end()) {
    std::string roots;
    for (const auto& r : kRunPathRoots) roots += (roots.empty() ? "" : ", ") + r;
    return FieldError(field, "'" + text + "' must start with one of " + roots);
  }
  return path;
}

Result<std::vector<RunCondition>> ParseRunFilter(const std::string& text) {
  std::vector<RunCondition> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string cond =
        Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    const size_t op_at = cond.find_first_of("=!<>");
    if (cond.empty() || op_at == std::string::npos || op_at == 0) {
      return FieldError("filter", "'" + cond + "' is not PATH OP VALUE with OP one of = != > >= < <=");
    }
    RunCondition c;
    size_t op_len = 1;
    const std::string two = cond.substr(op_at, 2);
    if (two == "!=")
      c.op = RunCondition::Op::kNe, op_len = 2;
    else if (two == ">=")
      c.op = RunCondition::Op::kGe, op_len = 2;
    else if (two == "<=")
      c.op = RunCondition::Op::kLe, op_len = 2;
    else if (cond[op_at] == '=')
      c.op = RunCondition::Op::kEq;
    else if (cond[op_at] == '>')
      c.op = RunCondition::Op::kGt;
    else if (cond[op_at] == '<')
      c.op = RunCondition::Op::kLt;
    else
      return FieldError("filter", "'" + cond + "' has no comparison operator (= != > >= < <=)");
    ASSIGN_OR_RETURN(c.path, ParseRunPath(Trim(cond.substr(0, op_at)), "filter"));
    c.value = ParseValue(Trim(cond.substr(op_at + op_len)));
    out.push_back(std::move(c));
  }
  return out;
}

const Json* RunValueAt(const Json& run, const std::vector<std::string>& path) {
  const Json* cur = &run;
  for (const auto& key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur->is_null() ? nullptr : cur;
}

bool RunMatches(const Json& run, const std::vector<RunCondition>& conditions) {
  for (const auto& c : conditions) {
    const Json* v = RunValueAt(run, c.path);
    bool comparable = false;
    const int cmp = v ? Compare(*v, c.value, &comparable) : 0;
    if (!v || !comparable) {
      if (c.op != RunCondition::Op::kNe) return false;
      continue;
    }
    bool ok = false;
    switch (c.op) {
      case RunCondition::Op::kEq:
        ok = cmp == 0;
        break;
      case RunCondition::Op::kNe:
        ok = cmp != 0;
        break;
      case RunCondition::Op::kGt:
        ok = cmp > 0;
        break;
      case RunCondition::Op::kGe:
        ok = cmp >= 0;
        break;
      case RunCondition::Op::kLt:
        ok = cmp < 0;
        break;
      case RunCondition::Op::kLe:
        ok = cmp <= 0;
        break;
    }
    if (!ok) return false;
  }
  return true;
}

void SortRuns(std::vector<Json>* runs, const std::vector<std::string>& path, bool descending) {
  // Rank: 0 numbers, 1 text, 2 anything else or absent; absent always sorts last.
  auto rank = [&](const Json* v) { return !v ? 3 : v->is_number() ? 0 : v->is_string() ? 1 : 2; };
  std::stable_sort(runs->begin(), runs->end(), [&](const Json& a, const Json& b) {
    const Json* va = RunValueAt(a, path);
    const Json* vb = RunValueAt(b, path);
    const int ra = rank(va), rb = rank(vb);
    if (ra != rb) return ra < rb;
    if (ra >= 2) return false;
    bool comparable = false;
    const int c = Compare(*va, *vb, &comparable);
    return descending ? c > 0 : c < 0;
  });
}

Json CompareRuns(const std::vector<Json>& runs) {
  Json summary = Json::array();
  std::set<std::string> param_names, metric_names;
  std::vector<std::map<std::string, Json>> metrics(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const Json& r = runs[i];
    Json s = Json::object();
    for (const char* k : {"id", "dataset", "version", "target", "task", "learner", "split", "state",
                          "train_rows", "test_rows", "train_seconds", "created_at"}) {
      if (r.contains(k)) s[k] = r[k];
    }
    summary.push_back(std::move(s));
    if (r.contains("params") && r["params"].is_object()) {
      for (auto it = r["params"].begin(); it != r["params"].end(); ++it) param_names.insert(it.key());
    }
    if (!r.contains("metrics") || !r["metrics"].is_object()) continue;
    for (auto it = r["metrics"].begin(); it != r["metrics"].end(); ++it) {
      if (it->is_number()) metrics[i][it.key()] = *it;
    }
    if (r["metrics"].contains("cv") && r["metrics"]["cv"].is_object()) {
      for (auto it = r["metrics"]["cv"].begin(); it != r["metrics"]["cv"].end(); ++it) {
        for (const char* stat : {"mean", "std"}) {
          if (it->is_object() && it->contains(stat)) metrics[i]["cv." + it.key() + "." + stat] = (*it)[stat];
        }
      }
    }
    for (const auto& [k, v] : metrics[i]) metric_names.insert(k);
  }
  Json params = Json::object(), metric_table = Json::object(), differing = Json::array();
  for (const auto& name : param_names) {
    Json values = Json::array();
    for (const Json& r : runs) {
      const Json* v = RunValueAt(r, {"params", name});
      values.push_back(v ? *v : Json(nullptr));
    }
    for (const Json& v : values) {
      if (v != values[0]) {
        differing.push_back(name);
        break;
      }
    }
    params[name] = std::move(values);
  }
  for (const auto& name : metric_names) {
    Json values = Json::array();
    for (const auto& m : metrics) {
      auto it = m.find(name);
      values.push_back(it == m.end() ? Json(nullptr) : it->second);
    }
    metric_table[name] = std::move(values);
  }
  return {{"runs", summary}, {"params", params}, {"metrics", metric_table}, {"differing_params", differing}};
}

}  // namespace lathe
