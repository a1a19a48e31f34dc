// Private to the recipe implementation (recipe*.cc): the step definition every step registers and the
// helpers steps share. Not part of the data layer's public interface.
#pragma once

#include <string>
#include <vector>

#include "data/recipe.h"
#include "data/table_ops.h"

namespace lathe::recipe_internal {

struct StepCtx {
  size_t index = 0;
  const ApplyOptions* opt = nullptr;
  // "steps[3].params.columns[0]" for path "columns[0]".
  std::string Field(const std::string& path) const;
  // kInvalidArgument "steps[3].params.<path>: msg" with a Field detail.
  Status Error(const std::string& path, const std::string& msg) const;
};

struct StepDef {
  const char* op;
  const char* summary;
  bool row_wise;
  const char* params_schema;  // JSON Schema text
  // Extra validation beyond the schema (may be null).
  Status (*check)(const StepCtx& ctx, const Json& params);
  // Learns the state from the table (may be null: the step learns nothing).
  Result<Json> (*fit)(const StepCtx& ctx, const Json& params, const Table& t);
  // Applies the step with its state.
  Status (*transform)(const StepCtx& ctx, const Json& params, const Json& state, Table& t);
  // Serving-time behaviour of a step that is not row-wise (null: skipped by ApplyFitted).
  Status (*serve)(const StepCtx& ctx, const Json& params, const Json& state, Table& t);
  // Per-params override of row_wise (may be null).
  bool (*row_wise_for)(const Json& params);
};

void AddColumnSteps(std::vector<StepDef>& out);   // recipe_steps_columns.cc
void AddNumericSteps(std::vector<StepDef>& out);  // recipe_steps_numeric.cc

// The column named `name` in `t`, or an error at `path` listing the available columns.
Result<size_t> FindCol(const StepCtx& ctx, const Table& t, const std::string& name, const std::string& path);
// The columns listed in params[key] (an array of names), or — when absent and `default_all` is set — every
// column for which default_all(column) is true.
Result<std::vector<size_t>> FindCols(const StepCtx& ctx, const Table& t, const Json& params, const std::string& key,
                                     bool (*default_all)(const Column&) = nullptr);
// Column names of indices, as a JSON array.
Json NamesJson(const Table& t, const std::vector<size_t>& cols);
std::vector<std::string> StringList(const Json& arr);
// Error unless `name` is free in `t`.
Status CheckNewName(const StepCtx& ctx, const Table& t, const std::string& name, const std::string& path);
bool IsNumericColumn(const Column& c);
// x (a non-missing row of a numeric/bool column) as a double.
inline double NumAt(const Column& c, size_t r) { return c.NumericAt(r); }
// Converts an integer or boolean column to float in place (a float column is left as it is).
void ToFloatColumn(Column& c);

}  // namespace lathe::recipe_internal
