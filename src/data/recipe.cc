#include "data/recipe.h"

#include <algorithm>
#include <cmath>

#include "data/recipe_internal.h"

namespace lathe {
namespace recipe_internal {

std::string StepCtx::Field(const std::string& path) const {
  std::string f = "steps[" + std::to_string(index) + "].params";
  if (!path.empty()) f += (path[0] == '[' ? "" : ".") + path;
  return f;
}

Status StepCtx::Error(const std::string& path, const std::string& msg) const {
  const std::string f = Field(path);
  return Status::InvalidArgument(f + ": " + msg).WithDetail(ErrorDetail::Field(f, msg));
}

Result<size_t> FindCol(const StepCtx& ctx, const Table& t, const std::string& name, const std::string& path) {
  const int i = t.FindColumn(name);
  if (i >= 0) return static_cast<size_t>(i);
  std::vector<std::string> names;
  for (const Column& c : t.columns) names.push_back(c.name);
  std::string msg = "column '" + name + "' not found";
  const std::string near = ClosestName(name, names);
  if (!near.empty()) msg += " (did you mean '" + near + "'?)";
  msg += "; available: " + (names.empty() ? std::string("(none)") : ColumnList(t));
  return ctx.Error(path, msg);
}

Result<std::vector<size_t>> FindCols(const StepCtx& ctx, const Table& t, const Json& params, const std::string& key,
                                     bool (*default_all)(const Column&)) {
  std::vector<size_t> out;
  if (!params.contains(key)) {
    if (default_all != nullptr) {
      for (size_t i = 0; i < t.columns.size(); ++i) {
        if (default_all(t.columns[i])) out.push_back(i);
      }
    }
    return out;
  }
  const Json& arr = params[key];
  for (size_t j = 0; j < arr.size(); ++j) {
    ASSIGN_OR_RETURN(size_t c, FindCol(ctx, t, arr[j].get<std::string>(), key + "[" + std::to_string(j) + "]"));
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

Json NamesJson(const Table& t, const std::vector<size_t>& cols) {
  Json a = Json::array();
  for (size_t c : cols) a.push_back(t.columns[c].name);
  return a;
}

std::vector<std::string> StringList(const Json& arr) {
  std::vector<std::string> out;
  if (!arr.is_array()) return out;
  for (const Json& v : arr) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

Status CheckNewName(const StepCtx& ctx, const Table& t, const std::string& name, const std::string& path) {
  if (t.FindColumn(name) >= 0) return ctx.Error(path, "a column named '" + name + "' already exists");
  return Status::Ok();
}

bool IsNumericColumn(const Column& c) {
  return c.type == ColumnType::kInt64 || c.type == ColumnType::kFloat64 || c.type == ColumnType::kBool;
}

void ToFloatColumn(Column& c) {
  if (c.type == ColumnType::kFloat64) return;
  std::vector<double> f(c.size(), 0.0);
  for (size_t r = 0; r < c.size(); ++r) {
    if (c.valid[r]) f[r] = c.NumericAt(r);
  }
  c.f64 = std::move(f);
  c.i64.clear();
  c.i64.shrink_to_fit();
  c.b.clear();
  c.b.shrink_to_fit();
  c.type = ColumnType::kFloat64;
}

}  // namespace recipe_internal

namespace {

using recipe_internal::StepCtx;
using recipe_internal::StepDef;

const std::vector<StepDef>& Registry() {
  static const std::vector<StepDef>* reg = [] {
    auto* v = new std::vector<StepDef>();
    recipe_internal::AddColumnSteps(*v);
    recipe_internal::AddNumericSteps(*v);
    return v;
  }();
  return *reg;
}

const StepDef* FindStep(const std::string& op) {
  for (const StepDef& d : Registry()) {
    if (op == d.op) return &d;
  }
  return nullptr;
}

const Json& SchemaOf(const StepDef& d) {
  static const std::vector<Json>* parsed = [] {
    auto* v = new std::vector<Json>();
    for (const StepDef& s : Registry()) v->push_back(Json::parse(s.params_schema));
    return v;
  }();
  return (*parsed)[static_cast<size_t>(&d - Registry().data())];
}

// A validator for the JSON Schema subset the step schemas use: type, enum, properties, required,
// additionalProperties, items, minItems, maxItems, minimum, maximum, exclusiveMinimum, minLength, maxLength,
// minProperties. Errors name the field path.
Status Validate(const Json& v, const Json& schema, const std::string& path) {
  auto err = [&](const std::string& msg) {
    return Status::InvalidArgument(path + ": " + msg).WithDetail(ErrorDetail::Field(path, msg));
  };
  if (schema.contains("type")) {
    auto matches = [&](const std::string& t) {
      if (t == "string") return v.is_string();
      if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::isfinite(v.get<double>()));
      if (t == "number") return v.is_number();
      if (t == "boolean") return v.is_boolean();
      if (t == "array") return v.is_array();
      if (t == "object") return v.is_object();
      if (t == "null") return v.is_null();
      return false;
    };
    const Json& ty = schema["type"];
    bool ok = false;
    std::string names;
    if (ty.is_string()) {
      ok = matches(ty.get<std::string>());
      names = ty.get<std::string>();
    } else {
      for (const Json& t : ty) {
        ok = ok || matches(t.get<std::string>());
        names += (names.empty() ? "" : " or ") + t.get<std::string>();
      }
    }
    if (!ok) return err("must be " + (names == "integer" || names == "array" || names == "object" ? std::string("an ") : std::string("a ")) + names);
  }
  if (schema.contains("enum")) {
    bool found = false;
    std::string list;
    for (const Json& e : schema["enum"]) {
      found = found || e == v;
      list += (list.empty() ? "" : ", ") + (e.is_string() ? e.get<std::string>() : e.dump());
    }
    if (!found) return err("must be one of: " + list);
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (!std::isfinite(x)) return err("must be a finite number");
    if (schema.contains("minimum") && x < schema["minimum"].get<double>()) {
      return err("must be at least " + schema["minimum"].dump());
    }
    if (schema.contains("exclusiveMinimum") && x <= schema["exclusiveMinimum"].get<double>()) {
      return err("must be greater than " + schema["exclusiveMinimum"].dump());
    }
    if (schema.contains("maximum") && x > schema["maximum"].get<double>()) {
      return err("must be at most " + schema["maximum"].dump());
    }
  }
  if (v.is_string()) {
    const size_t n = v.get_ref<const std::string&>().size();
    if (schema.contains("minLength") && n < schema["minLength"].get<size_t>()) return err("must not be empty");
    if (schema.contains("maxLength") && n > schema["maxLength"].get<size_t>()) {
      return err("is longer than " + schema["maxLength"].dump() + " bytes");
    }
  }
  if (v.is_array()) {
    if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>()) {
      return err("needs at least " + schema["minItems"].dump() + " item" + (schema["minItems"] == 1 ? "" : "s"));
    }
    if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>()) {
      return err("has more than " + schema["maxItems"].dump() + " items");
    }
    if (schema.contains("items")) {
      for (size_t i = 0; i < v.size(); ++i) {
        RETURN_IF_ERROR(Validate(v[i], schema["items"], path + "[" + std::to_string(i) + "]"));
      }
    }
  }
  if (v.is_object()) {
    if (schema.contains("minProperties") && v.size() < schema["minProperties"].get<size_t>()) {
      return err("needs at least " + schema["minProperties"].dump() + " entry");
    }
    if (schema.contains("required")) {
      for (const Json& r : schema["required"]) {
        if (!v.contains(r.get<std::string>())) {
          const std::string f = path + "." + r.get<std::string>();
          return Status::InvalidArgument(f + ": is required").WithDetail(ErrorDetail::Field(f, "is required"));
        }
      }
    }
    const Json* props = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string f = path + "." + it.key();
      if (props != nullptr && props->contains(it.key())) {
        RETURN_IF_ERROR(Validate(it.value(), (*props)[it.key()], f));
        continue;
      }
      if (schema.contains("additionalProperties")) {
        const Json& ap = schema["additionalProperties"];
        if (ap.is_boolean() && !ap.get<bool>()) {
          std::string known;
          if (props != nullptr) {
            for (auto p = props->begin(); p != props->end(); ++p) known += (known.empty() ? "" : ", ") + p.key();
          }
          return Status::InvalidArgument(f + ": unknown parameter; expected one of: " + known)
              .WithDetail(ErrorDetail::Field(f, "unknown parameter; expected one of: " + known));
        }
        if (ap.is_object()) RETURN_IF_ERROR(Validate(it.value(), ap, f));
      }
    }
  }
  return Status::Ok();
}

std::string OpList() {
  std::string s;
  for (const StepDef& d : Registry()) s += (s.empty() ? "" : ", ") + std::string(d.op);
  return s;
}

bool RowWise(const StepDef& d, const Json& params) {
  return d.row_wise_for != nullptr ? d.row_wise_for(params) : d.row_wise;
}

}  // namespace

Json RecipeStepsSchemaJson() {
  Json out = Json::array();
  for (const StepDef& d : Registry()) {
    out.push_back({{"op", d.op}, {"summary", d.summary}, {"row_wise", d.row_wise}, {"params", SchemaOf(d)}});
  }
  return out;
}

bool StepIsRowWise(const RecipeStep& step) {
  const StepDef* d = FindStep(step.op);
  return d != nullptr && RowWise(*d, step.params);
}

Result<Recipe> ParseRecipe(const Json& steps_array) {
  const Json* arr = &steps_array;
  if (steps_array.is_object() && steps_array.contains("steps")) arr = &steps_array["steps"];
  if (!arr->is_array()) {
    return Status::InvalidArgument("steps: must be an array of steps")
        .WithDetail(ErrorDetail::Field("steps", "must be an array of steps"));
  }
  if (arr->size() > kMaxRecipeSteps) {
    return Status::InvalidArgument("steps: more than " + std::to_string(kMaxRecipeSteps) + " steps")
        .WithDetail(ErrorDetail::Field("steps", "more than " + std::to_string(kMaxRecipeSteps) + " steps"));
  }
  Recipe r;
  for (size_t i = 0; i < arr->size(); ++i) {
    const Json& s = (*arr)[i];
    const std::string at = "steps[" + std::to_string(i) + "]";
    auto err = [&](const std::string& field, const std::string& msg) {
      return Status::InvalidArgument(field + ": " + msg).WithDetail(ErrorDetail::Field(field, msg));
    };
    if (!s.is_object()) return err(at, "must be an object {\"op\", \"params\"}");
    if (!s.contains("op") || !s["op"].is_string()) return err(at + ".op", "is required (a step name)");
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (it.key() != "op" && it.key() != "params" && it.key() != "comment") {
        return err(at + "." + it.key(), "unknown key; a step has op, params and an optional comment");
      }
    }
    const std::string op = s["op"].get<std::string>();
    const StepDef* d = FindStep(op);
    if (d == nullptr) return err(at + ".op", "unknown step '" + op + "'; valid steps: " + OpList());
    Json params = s.contains("params") ? s["params"] : Json::object();
    if (params.is_null()) params = Json::object();
    RETURN_IF_ERROR(Validate(params, SchemaOf(*d), at + ".params"));
    StepCtx ctx;
    ctx.index = i;
    if (d->check != nullptr) RETURN_IF_ERROR(d->check(ctx, params));
    r.steps.push_back({op, std::move(params)});
  }
  return r;
}

Result<RecipeOutput> ApplyRecipe(const Recipe& r, Table input, const ApplyOptions& opt,
                                 const std::function<bool()>& cancel) {
  RETURN_IF_ERROR(ValidateTable(input));
  RecipeOutput out;
  out.table = HeadRows(std::move(input), opt.preview_rows);
  out.fitted = Json::array();
  for (size_t i = 0; i < r.steps.size(); ++i) {
    if (cancel && cancel()) return Status::Cancelled("recipe cancelled before step " + std::to_string(i));
    const RecipeStep& s = r.steps[i];
    const StepDef* d = FindStep(s.op);
    if (d == nullptr) return Status::InvalidArgument("steps[" + std::to_string(i) + "].op: unknown step '" + s.op + "'");
    StepCtx ctx;
    ctx.index = i;
    ctx.opt = &opt;
    StepReport rep;
    rep.op = s.op;
    rep.rows_in = out.table.num_rows;
    Json state;
    // Params were validated by ParseRecipe; a Recipe built by hand may still hold wrong JSON types, which
    // nlohmann reports by throwing.
    try {
      if (d->fit != nullptr) {
        ASSIGN_OR_RETURN(state, d->fit(ctx, s.params, out.table));
      }
      RETURN_IF_ERROR(d->transform(ctx, s.params, state, out.table));
    } catch (const std::exception& e) {
      return ctx.Error("", std::string("invalid parameters (") + e.what() + "); validate the recipe with ParseRecipe");
    }
    rep.rows_out = out.table.num_rows;
    rep.columns_out = static_cast<int64_t>(out.table.columns.size());
    out.steps.push_back(rep);
    out.fitted.push_back({{"op", s.op}, {"state", std::move(state)}});
  }
  for (Column& c : out.table.columns) CompactDictionary(c);
  return out;
}

Status ApplyFitted(const Recipe& r, const Json& fitted, Table& rows, const ApplyOptions& opt) {
  RETURN_IF_ERROR(ValidateTable(rows));
  if (!fitted.is_array() || fitted.size() != r.steps.size()) {
    return Status::InvalidArgument("fitted: must hold one entry per recipe step (" + std::to_string(r.steps.size()) + ")")
        .WithDetail(ErrorDetail::Field("fitted", "must hold one entry per recipe step"));
  }
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const RecipeStep& s = r.steps[i];
    const Json& f = fitted[i];
    const std::string at = "fitted[" + std::to_string(i) + "]";
    if (!f.is_object() || !f.contains("op") || f["op"] != s.op) {
      return Status::InvalidArgument(at + ": does not belong to step '" + s.op + "'")
          .WithDetail(ErrorDetail::Field(at, "does not belong to step '" + s.op + "'"));
    }
    const StepDef* d = FindStep(s.op);
    if (d == nullptr) return Status::InvalidArgument("steps[" + std::to_string(i) + "].op: unknown step '" + s.op + "'");
    StepCtx ctx;
    ctx.index = i;
    ctx.opt = &opt;
    const Json state = f.contains("state") ? f["state"] : Json();
    try {
      if (RowWise(*d, s.params)) {
        RETURN_IF_ERROR(d->transform(ctx, s.params, state, rows));
      } else if (d->serve != nullptr) {
        RETURN_IF_ERROR(d->serve(ctx, s.params, state, rows));
      }
    } catch (const std::exception& e) {
      return Status::InvalidArgument(at + ": malformed fitted state (" + e.what() + ")")
          .WithDetail(ErrorDetail::Field(at, "malformed fitted state"));
    }
  }
  return Status::Ok();
}

}  // namespace lathe
