// Per-dataset settings, stored as the versioned document ("dataset_settings", dataset name): the target
// column (used by the profile's leakage and imbalance warnings), the data contract checked on every new
// version (and whether a breaking version is refused), column tags (public | internal | confidential |
// personal), retention (versions older than N days are deleted unless a registered model references
// them; the latest version is always kept) and dp_epsilon (differentially private profiles). Internal to
// the api layer.
#pragma once

#include <map>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "data/quality.h"

namespace lathe {

class App;

struct DatasetSettings {
  std::string target;
  Json contract = Json::object();  // {} = none
  bool enforce_contract = false;
  std::map<std::string, std::string> tags;  // column -> tag
  int64_t retention_days = 0;               // 0 = keep forever
  std::string description;
  // > 0: the profile endpoint publishes a differentially private view with this total budget (data/privacy.h);
  // 0 = exact profiles.
  double dp_epsilon = 0;
};

Result<DatasetSettings> ParseDatasetSettings(const Json& j);
Json DatasetSettingsToJson(const DatasetSettings& s);
// The stored settings, or defaults when none were saved.
Result<DatasetSettings> LoadDatasetSettings(App& app, const std::string& project, const std::string& dataset);

// Deletes versions older than the retention period. Returns {"deleted":[versions],"kept":[{"version",
// "reason"}]}. `now_micros` is injected for tests.
Result<Json> ApplyRetention(App& app, const std::string& project, const std::string& dataset, int64_t now_micros);

// Deletes one version (refused with the referencing models' names) and releases blobs nothing else uses.
Status DeleteVersion(App& app, const std::string& project, const std::string& dataset, int64_t version);

void RegisterDatasetSettingsRoutes(class Router& router, App& app);

}  // namespace lathe
