// Shared pieces of the run resources (routes_runs.cc, routes_search.cc): the JSON a run and a job are shown
// as, the validation of a run request against its dataset version, and the table a run's job trains on.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "api/app.h"
#include "common/json.h"
#include "common/status.h"
#include "data/table.h"
#include "jobs/job_runner.h"
#include "ml/train.h"
#include "store/store.h"

namespace lathe {

Json RunJson(const RunRecord& r);
Json JobJson(const JobRecord& j, const std::vector<std::pair<int64_t, std::string>>* log);
// Validates {"dataset","version","target","task","learner","params","split"} against the dataset version's
// schema (unknown fields are a 400); params are not checked against the learner here (ValidateTrainParams).
Result<RunRecord> ParseRunRequest(App& app, const std::string& project, const Json& body);
// The experiment-tracking fields of a request body (experiment, tags, notes), checked for type and size.
Status ParseTracking(const Json& body, RunRecord* run);
// Checks the learner and its params against the learner registry; returns the canonical params.
Result<Json> ValidateTrainParams(const std::string& learner, const std::string& task, const Json& params);
// Marks the run succeeded with a training output's metrics, curves, explanations, signature and rows.
void ApplyTrainOutput(const ml::TrainOutput& out, RunRecord* run);
// A job's on_finished for jobs that carry {"run"}: a failed or cancelled job marks its run so, with the error.
void MirrorJobFailure(App& app, const JobRecord& job);
// Loads the run's dataset version and fills `spec` from the run (target, task, learner, params, split,
// the recipes to replay at serving).
Result<Table> LoadRunTable(App& app, JobContext& ctx, const RunRecord& run, ml::TrainSpec* spec);

}  // namespace lathe
