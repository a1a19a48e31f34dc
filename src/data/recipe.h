// Recipes: ordered, no-code cleaning and transform steps over a Table, from a self-describing registry.
//
// A recipe is a JSON array of steps: [{"op": "impute", "params": {"columns": ["age"], "strategy": "mean"}}, ...].
// RecipeStepsSchemaJson() lists every step with its summary, its `row_wise` flag and the JSON Schema of its
// params; the API, CLI and UI build their forms from it. ParseRecipe validates every step against that schema
// and the step's own rules (expressions parse, edges increase, ...) before anything runs.
//
// ApplyRecipe runs the steps in order. Steps that learn from the data (impute mean, scaling min/max, one_hot
// categories, bin edges, ...) record what they learned in `fitted` — a JSON array with one
// {"op", "state"} entry per step. ApplyFitted replays the row-wise steps with that state on new rows (serving
// time): for every row-wise step, ApplyFitted on one raw row gives bit for bit the value ApplyRecipe gave that
// row. Steps that are not row-wise are handled at serving time as follows:
//   filter_rows, dedupe       skipped (a served row is never dropped)
//   impute forward_fill       nulls get the last non-null value seen in the training data
// Column types produced are fixed by params and state, never by the data of one batch: mean/median impute and
// all scalers give float columns, one_hot gives boolean columns, ordinal_encode integer columns, bin gives integer bin indices (or string
// labels when `labels` is given).
//
// Errors (kInvalidArgument unless said): each names the step field, e.g. Field("steps[2].params.columns[0]",
// "column 'x' not found; available: a, b"); expression errors carry the character position
// (ErrorDetail::Position("steps[2].params.expr", pos, msg)); a value that cannot be processed under a
// fail policy names the row and column (ErrorDetail::Cell). Cancelled -> kCancelled.
// Memory: about two copies of the widest column touched plus the table; dedupe keeps one 8-byte hash per row.
// Thread safety: pure functions; the registry is immutable after first use.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"

namespace lathe {

inline constexpr size_t kMaxRecipeSteps = 500;

struct RecipeStep {
  std::string op;
  Json params;
};

struct Recipe {
  std::vector<RecipeStep> steps;
};

// [{"op", "summary", "row_wise", "params": <JSON Schema (draft 2020-12 subset)>}, ...]
Json RecipeStepsSchemaJson();

// `steps_array` is the JSON array of steps (an object {"steps": [...]} is accepted too).
Result<Recipe> ParseRecipe(const Json& steps_array);

// True if the step transforms each row independently of the others (ApplyFitted replays it exactly).
bool StepIsRowWise(const RecipeStep& step);

struct ApplyOptions {
  std::string secret_salt;    // key for mask_pii method=hash (HMAC-SHA256); required by that step only
  int64_t preview_rows = -1;  // >= 0: apply to the first preview_rows input rows only
};

struct StepReport {
  std::string op;
  int64_t rows_in = 0;
  int64_t rows_out = 0;
  int64_t columns_out = 0;
};

struct RecipeOutput {
  Table table;
  std::vector<StepReport> steps;
  Json fitted;  // [{"op": ..., "state": {...} | null}, ...], one per step
};

// `cancel` (may be empty) is polled between steps.
Result<RecipeOutput> ApplyRecipe(const Recipe& r, Table input, const ApplyOptions& opt,
                                 const std::function<bool()>& cancel);

// Replays `r` with the state ApplyRecipe learned (`fitted`) on `rows`, in place (see the table above for
// the steps that are not row-wise). Errors: fitted not matching the recipe -> Field("fitted[i]"); a missing
// column or a failing value as in ApplyRecipe.
Status ApplyFitted(const Recipe& r, const Json& fitted, Table& rows, const ApplyOptions& opt);

}  // namespace lathe
