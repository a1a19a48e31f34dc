// Learner registry: which learners exist, which tasks each supports, and the declared schema of its
// parameters (type, range, default, aliases). Training validates user params against it, and the API/UI/CLI
// render forms and help from LearnerSchemaJson(). Static, immutable data: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "ml/pipeline.h"

namespace lathe::ml {

struct ParamSpec {
  enum class Type { kInteger, kNumber, kEnum, kColumn };  // kColumn: a column name (default null)
  std::string name;                  // canonical name users see
  std::vector<std::string> aliases;  // accepted alternative spellings (e.g. eta for learning_rate)
  Type type = Type::kNumber;
  double min = 0, max = 0;           // inclusive unless min_exclusive
  bool min_exclusive = false;
  std::vector<std::string> choices;  // kEnum
  Json default_value;
  std::string backend_name;          // name passed to the learner's library ("" = not passed through)
  std::vector<Task> tasks;           // empty = all tasks the learner supports
  std::string description;
};

struct LearnerInfo {
  std::string name;
  std::string description;
  std::vector<Task> tasks;
  std::vector<ParamSpec> params;
};

const std::vector<LearnerInfo>& Learners();
// nullptr if unknown.
const LearnerInfo* FindLearner(std::string_view name);

// {"learners":[{"name","description","tasks":[...],"params":[{"name","type","min","max","default",...}]}]}
Json LearnerSchemaJson();

// Checks `params` (a JSON object) against the learner's schema for `task`: unknown names, aliases given twice,
// wrong JSON types and out-of-range values are kInvalidArgument with ErrorDetail::Field("params.<name>").
// Returns the canonical {name: value} object with every default filled in.
Result<Json> ValidateParams(const LearnerInfo& learner, const Json& params, Task task);

}  // namespace lathe::ml
