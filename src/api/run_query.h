// Listing runs by what they achieved: filter conditions and sort keys over a run's JSON (as GET …/runs/{id}
// returns it), and the side-by-side comparison of a few runs. Pure functions; thread-safe.
//
// A path names a value by dotted keys: "metrics.roc_auc", "metrics.cv.roc_auc.mean", "params.max_depth",
// "split.method", or a top-level field ("state", "learner", "train_seconds", "created_at", …). It must start
// with one of kRunPathRoots.
//
// A filter is conditions separated by commas, all of which must hold: PATH OP VALUE with OP one of
// = != > >= < <=. VALUE is a number when it parses as one (compared numerically), true/false, or text
// (compared as text; the ordering operators then compare bytes). A run without the path never matches, except
// for "!=".
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe {

extern const std::vector<std::string> kRunPathRoots;

struct RunCondition {
  enum class Op { kEq, kNe, kGt, kGe, kLt, kLe };
  std::vector<std::string> path;
  Op op = Op::kEq;
  Json value;  // number, boolean or string
};

// Parses a dotted path; errors name `field` (the query parameter).
Result<std::vector<std::string>> ParseRunPath(const std::string& text, const std::string& field);
// Parses a filter; errors name "filter" and quote the bad condition.
Result<std::vector<RunCondition>> ParseRunFilter(const std::string& text);

// The value at `path` in `run`, or nullptr when absent.
const Json* RunValueAt(const Json& run, const std::vector<std::string>& path);
bool RunMatches(const Json& run, const std::vector<RunCondition>& conditions);

// Stable sort of run JSONs by the value at `path`: numbers before text, runs lacking it last whatever the
// order; ties keep their incoming order (newest first from the store).
void SortRuns(std::vector<Json>* runs, const std::vector<std::string>& path, bool descending);

// {"runs":[{id, dataset, version, target, task, learner, split, state, train_rows, test_rows, train_seconds,
//  created_at}], "params":{name:[value per run]}, "metrics":{name:[value per run]},
//  "differing_params":[names]}
// `metrics` holds the scalar metrics and, for cross-validated runs, "cv.<name>.mean" / "cv.<name>.std"; a run
// without a value has null in its place.
Json CompareRuns(const std::vector<Json>& runs);

}  // namespace lathe
