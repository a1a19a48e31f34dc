// Preprocess: the recipe steps a model's training data went through (dataset lineage: raw version ->
// recipe -> … -> training version), replayed at serving time on raw input so the model sees exactly the
// transforms it was trained on (training/serving consistency).
//
// Stored in the model bundle's meta as {"inputs":[{"name","type"}], "recipes":[{"steps":[…],"fitted":…}]}:
// `inputs` are the raw columns (the root version's schema), `recipes` in application order with the
// statistics each learned (means, categories, bin edges…). Steps that are not row-wise (filter_rows,
// dedupe, …) are skipped by recipe replay (data/recipe.h ApplyFitted). The training target, absent at
// serving, is supplied as an all-missing column so steps that mention it still apply.
// Immutable after Parse; thread-safe for concurrent Apply calls.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/recipe.h"
#include "data/table.h"

namespace lathe::ml {

class Preprocess {
 public:
  // {} or null = no preprocessing (empty()).
  static Result<Preprocess> Parse(const Json& j);
  bool empty() const { return recipes_.empty(); }
  // The raw input columns a caller sends (the training target excluded).
  Json Signature() const;

  // Builds a Table of the raw inputs from JSON objects (errors name "instances[i].column"), then replays
  // every recipe. `secret_salt` is the mask_pii salt the training data was masked with.
  Result<Table> Apply(const Json& instances, const std::string& target, const std::string& secret_salt) const;
  // Replays every recipe on a Table of raw columns in place (batch scoring); the target, if present, is
  // blanked and, if absent, added all-missing.
  Status ApplyToTable(Table& t, const std::string& target, const std::string& secret_salt) const;

 private:
  std::vector<std::pair<std::string, ColumnType>> inputs_;
  std::vector<std::pair<Recipe, Json>> recipes_;  // recipe, fitted
};

// A Table with the given typed columns from a JSON array of objects. Values: numbers, booleans, strings
// (datetimes as ISO 8601 text), null or absent = missing. A value of the wrong kind is kInvalidArgument with
// Field("instances[i].name"). Unknown keys are ignored.
Result<Table> InstancesToTable(const Json& instances, const std::vector<std::pair<std::string, ColumnType>>& schema);

}  // namespace lathe::ml
