// Recipe steps that learn from the data: impute, clip_outliers, scale_minmax, scale_zscore, log_transform, bin,
// one_hot, ordinal_encode, frequency_encode; and the feature extractors date_parts and text_features.
// Every learning step is fit (state from the table, JSON) + transform (state applied): ApplyRecipe runs both,
// ApplyFitted only the transform, so a served row gets exactly the training value.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include "common/parallel.h"
#include "data/recipe_internal.h"
#include "data/value_parse.h"

namespace lathe::recipe_internal {
namespace {

#define NUM_COLUMNS_SCHEMA R"({"type":"array","items":{"type":"string","minLength":1},"minItems":1,"maxItems":10000})"

Status RequireNumeric(const StepCtx& ctx, const Table& t, const std::vector<size_t>& cols, const char* op) {
  for (size_t j = 0; j < cols.size(); ++j) {
    const Column& c = t.columns[cols[j]];
    if (!IsNumericColumn(c)) {
      return ctx.Error("columns[" + std::to_string(j) + "]", "column '" + c.name + "' is " + ColumnTypeName(c.type) +
                                                                 "; " + op + " needs a numeric column (cast it first)");
    }
  }
  return Status::Ok();
}

// Calls f(x) for every non-missing, non-NaN value of a numeric column in row order, with the type
// switch outside the loop.
template <class F>
void ForNumbers(const Column& c, F f) {
  const uint8_t* v = c.valid.data();
  const size_t n = c.size();
  switch (c.type) {
    case ColumnType::kFloat64:
      for (size_t r = 0; r < n; ++r) {
        if (v[r] && !std::isnan(c.f64[r])) f(c.f64[r]);
      }
      return;
    case ColumnType::kInt64:
      for (size_t r = 0; r < n; ++r) {
        if (v[r]) f(static_cast<double>(c.i64[r]));
      }
      return;
    default:
      for (size_t r = 0; r < n; ++r) {
        if (v[r]) f(c.NumericAt(r));
      }
  }
}

std::vector<double> NonNullValues(const Column& c) {
  std::vector<double> v;
  v.reserve(c.size());
  ForNumbers(c, [&](double x) { v.push_back(x); });
  return v;
}

// Count, sum (in long double, in row order: the same as MeanOf over NonNullValues), min and max of a
// numeric column in one pass without copying it.
struct NumberSummary {
  size_t count = 0;
  long double sum = 0;
  double min = 0, max = 0;
  double Mean() const { return static_cast<double>(sum / static_cast<long double>(count)); }
};

NumberSummary Summarize(const Column& c) {
  NumberSummary out;

  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  size_t k = 0;
  long double sum = 0;
  ForNumbers(c, [&](double x) {
    ++k;
    sum += x;
    mn = std::min(mn, x);
    mx = std::max(mx, x);
  });
  out.count = k;
  out.sum = sum;
  out.min = mn;
  out.max = mx;
  return out;
}

// Population standard deviation around `mean`.
double StdAround(const Column& c, size_t count, double mean) {
  long double s = 0;
  ForNumbers(c, [&](double x) { s += (x - mean) * (x - mean); });
  return static_cast<double>(std::sqrt(s / static_cast<long double>(count)));
}

// Linear-interpolated quantile of sorted values (pandas/numpy default).
double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Json JsonNum(double x) { return std::isfinite(x) ? Json(x) : Json(); }

// State lookup by column name: state {"columns": [{"name": ..., ...}, ...]}.
const Json& StateCols(const Json& state) {
  static const Json kEmpty = Json::array();
  return state.is_object() && state.contains("columns") && state["columns"].is_array() ? state["columns"] : kEmpty;
}

// ---- impute

bool ImputeRowWise(const Json& params) { return params.value("strategy", std::string()) != "forward_fill"; }

Status ImputeCheck(const StepCtx& ctx, const Json& params) {
  if (params["strategy"] == "constant" && !params.contains("value")) {
    return ctx.Error("value", "is required for strategy constant");
  }
  return Status::Ok();
}

// The fill value of a row as JSON, in the column's type.
Json ValueJson(const Column& c, size_t r) {
  switch (c.type) {
    case ColumnType::kInt64:
    case ColumnType::kDatetime: return c.i64[r];
    case ColumnType::kFloat64: return JsonNum(c.f64[r]);
    case ColumnType::kBool: return c.b[r] != 0;
    case ColumnType::kString: return std::string(c.StringAt(r));
  }
  return Json();
}

Result<Json> ImputeFit(const StepCtx& ctx, const Json& params, const Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  const std::string strategy = params["strategy"].get<std::string>();
  Json out = Json::array();
  for (size_t j = 0; j < cols.size(); ++j) {
    const Column& c = t.columns[cols[j]];
    Json entry = {{"name", c.name}};
    Json fill;
    std::string type = ColumnTypeName(c.type);
    if (strategy == "mean" || strategy == "median") {
      if (!IsNumericColumn(c)) {
        return ctx.Error("columns[" + std::to_string(j) + "]", "column '" + c.name + "' is " + ColumnTypeName(c.type) +
                                                                   "; strategy " + strategy + " needs a numeric column");
      }
      if (strategy == "mean") {
        const NumberSummary sum = Summarize(c);
        if (sum.count > 0) fill = JsonNum(sum.Mean());
      } else {
        std::vector<double> v = NonNullValues(c);
        if (!v.empty()) {  // Quantile(sorted v, 0.5) without sorting: the middle one or two values
          const size_t lo = (v.size() - 1) / 2;
          std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
          const double a = v[lo];
          const double b = v.size() % 2 == 0 ? *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end()) : a;
          fill = JsonNum(a + (b - a) * (v.size() % 2 == 0 ? 0.5 : 0.0));
        }
      }
      type = "float";
    } else if (strategy == "mode") {
      std::map<std::string, std::pair<int64_t, size_t>> counts;  // text -> (count, first row)
      for (size_t r = 0; r < c.size(); ++r) {
        if (!c.valid[r]) continue;
        auto [it, ins] = counts.emplace(ValueText(c, r), std::make_pair(int64_t{0}, r));
        ++it->second.first;
      }
      int64_t best = 0;
      size_t best_row = 0;
      for (const auto& [text, cr] : counts) {  // ties: the smallest text wins (map order)
        if (cr.first > best) best = cr.first, best_row = cr.second;
      }
      if (best > 0) fill = ValueJson(c, best_row);
    } else if (strategy == "constant") {
      const Json& v = params["value"];
      bool ok = false;
      switch (c.type) {
        case ColumnType::kInt64: ok = v.is_number_integer(); break;
        case ColumnType::kFloat64: ok = v.is_number(); break;
        case ColumnType::kBool: ok = v.is_boolean(); break;
        case ColumnType::kString: ok = v.is_string(); break;
        case ColumnType::kDatetime: {
          int64_t us = 0;
          ok = v.is_string() && ParseDatetimeMicros(TrimBlanks(v.get<std::string>()), &us);
          if (ok) fill = us;
          break;
        }
      }
      if (!ok) {
        return ctx.Error("value", v.dump() + " does not fit " + ColumnTypeName(c.type) + " column '" + c.name + "'");
      }
      if (c.type != ColumnType::kDatetime) fill = v;
    } else {  // forward_fill: remember the last value for serving
      for (size_t r = c.size(); r-- > 0;) {
        if (c.valid[r]) {
          fill = ValueJson(c, r);
          break;
        }
      }
    }
    entry["type"] = type;
    entry["fill"] = fill;
    out.push_back(std::move(entry));
  }
  return Json{{"columns", out}};
}

Status SetFill(const StepCtx& ctx, Column& c, const Json& fill, size_t r) {
  try {
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: c.i64[r] = fill.get<int64_t>(); break;
      case ColumnType::kFloat64: c.f64[r] = fill.get<double>(); break;
      case ColumnType::kBool: c.b[r] = fill.get<bool>(); break;
      case ColumnType::kString: {
        const std::string& s = fill.get_ref<const std::string&>();
        auto it = std::find(c.dict.begin(), c.dict.end(), s);
        if (it == c.dict.end()) {
          c.dict.push_back(s);
          it = c.dict.end() - 1;
        }
        c.codes[r] = static_cast<int32_t>(it - c.dict.begin());
        break;
      }
    }
  } catch (const std::exception&) {
    return ctx.Error("columns", "fitted fill value " + fill.dump() + " does not fit " + ColumnTypeName(c.type) +
                                    " column '" + c.name + "'");
  }
  c.valid[r] = 1;
  return Status::Ok();
}

Status ImputeApply(const StepCtx& ctx, const Json& params, const Json& state, Table& t, bool serving) {
  const bool ffill = params["strategy"] == "forward_fill" && !serving;
  const Json& cols = StateCols(state);
  for (size_t j = 0; j < cols.size(); ++j) {
    ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, cols[j].value("name", ""), "columns[" + std::to_string(j) + "]"));
    Column& c = t.columns[ci];
    if (cols[j].value("type", "") == "float") {
      if (!IsNumericColumn(c)) return ctx.Error("columns[" + std::to_string(j) + "]", "column '" + c.name + "' is not numeric");
      ToFloatColumn(c);
    }
    if (ffill) {
      int64_t last = -1;
      for (size_t r = 0; r < c.size(); ++r) {
        if (c.valid[r]) {
          last = static_cast<int64_t>(r);
          continue;
        }
        if (last < 0) continue;
        const size_t l = static_cast<size_t>(last);
        c.valid[r] = 1;
        switch (c.type) {
          case ColumnType::kInt64:
          case ColumnType::kDatetime: c.i64[r] = c.i64[l]; break;
          case ColumnType::kFloat64: c.f64[r] = c.f64[l]; break;
          case ColumnType::kBool: c.b[r] = c.b[l]; break;
          case ColumnType::kString: c.codes[r] = c.codes[l]; break;
        }
      }
      continue;
    }
    const Json& fill = cols[j]["fill"];
    if (fill.is_null()) continue;
    if (c.type == ColumnType::kString) {  // intern once, not per row
      const std::string s = fill.is_string() ? fill.get<std::string>() : fill.dump();
      auto it = std::find(c.dict.begin(), c.dict.end(), s);
      if (it == c.dict.end()) {
        c.dict.push_back(s);
        it = c.dict.end() - 1;
      }
      const int32_t code = static_cast<int32_t>(it - c.dict.begin());
      for (size_t r = 0; r < c.size(); ++r) {
        if (!c.valid[r]) c.valid[r] = 1, c.codes[r] = code;
      }
      continue;
    }
    if (c.type == ColumnType::kFloat64 && fill.is_number()) {
      const double v = fill.get<double>();
      double* __restrict x = c.f64.data();
      uint8_t* __restrict ok = c.valid.data();
      const size_t n = c.size();
      for (size_t r = 0; r < n; ++r) {  // branch-free, so it vectorizes
        x[r] = ok[r] ? x[r] : v;
        ok[r] = 1;
      }
      continue;
    }
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.valid[r]) RETURN_IF_ERROR(SetFill(ctx, c, fill, r));
    }
  }
  return Status::Ok();
}

Status ImputeTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  return ImputeApply(ctx, params, state, t, false);
}
Status ImputeServe(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  return ImputeApply(ctx, params, state, t, true);
}

// ---- clip_outliers / scale_minmax / scale_zscore: per-column numeric statistics

// stats(column, summary, entry) fills the entry of a column with at least one number.
template <class F>
Result<Json> FitNumeric(const StepCtx& ctx, const Json& params, const Table& t, const char* op, F stats) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  RETURN_IF_ERROR(RequireNumeric(ctx, t, cols, op));
  Json out = Json::array();
  for (size_t c : cols) {
    Json e = {{"name", t.columns[c].name}};
    const NumberSummary sum = Summarize(t.columns[c]);
    if (sum.count > 0) stats(t.columns[c], sum, e);
    out.push_back(std::move(e));
  }
  return Json{{"columns", out}};
}

Result<Json> ClipFit(const StepCtx& ctx, const Json& params, const Table& t) {
  const std::string method = params.value("method", std::string("iqr"));
  const double k = params.value("k", 1.5), z = params.value("z", 3.0);
  return FitNumeric(ctx, params, t, "clip_outliers", [&](const Column& c, const NumberSummary& sum, Json& e) {
    double lo, hi;
    if (method == "iqr") {
      std::vector<double> v = NonNullValues(c);
      std::sort(v.begin(), v.end());
      const double q1 = Quantile(v, 0.25), q3 = Quantile(v, 0.75);
      lo = q1 - k * (q3 - q1);
      hi = q3 + k * (q3 - q1);
    } else {
      const double m = sum.Mean(), s = StdAround(c, sum.count, m);
      lo = m - z * s;
      hi = m + z * s;
    }
    e["lo"] = JsonNum(lo);
    e["hi"] = JsonNum(hi);
  });
}

template <class F>
Status ForStateColumns(const StepCtx& ctx, const Json& state, Table& t, const char* op, F f) {
  const Json& cols = StateCols(state);
  for (size_t j = 0; j < cols.size(); ++j) {
    ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, cols[j].value("name", ""), "columns[" + std::to_string(j) + "]"));
    RETURN_IF_ERROR(RequireNumeric(ctx, t, {ci}, op));
    RETURN_IF_ERROR(f(t.columns[ci], cols[j]));
  }
  return Status::Ok();
}

double Get(const Json& e, const char* key, double fallback) {
  return e.contains(key) && e[key].is_number() ? e[key].get<double>() : fallback;
}

Status ClipTransform(const StepCtx& ctx, const Json&, const Json& state, Table& t) {
  return ForStateColumns(ctx, state, t, "clip_outliers", [](Column& c, const Json& e) -> Status {
    if (!e.contains("lo") || !e["lo"].is_number() || !e["hi"].is_number()) return Status::Ok();
    const double lo = e["lo"].get<double>(), hi = e["hi"].get<double>();
    if (c.type == ColumnType::kInt64) {
      // Clipping integers to [ceil(lo), floor(hi)] keeps them integers and equals clipping to [lo, hi].
      const double clo = std::ceil(lo), chi = std::floor(hi);
      for (size_t r = 0; r < c.size(); ++r) {
        if (!c.valid[r]) continue;
        const double x = static_cast<double>(c.i64[r]);
        if (x < clo && clo > -9.2e18) c.i64[r] = static_cast<int64_t>(clo);
        else if (x > chi && chi < 9.2e18) c.i64[r] = static_cast<int64_t>(chi);
      }
      return Status::Ok();
    }
    ToFloatColumn(c);
    for (size_t r = 0; r < c.size(); ++r) {
      if (c.valid[r] && !std::isnan(c.f64[r])) c.f64[r] = std::clamp(c.f64[r], lo, hi);
    }
    return Status::Ok();
  });
}

Result<Json> MinMaxFit(const StepCtx& ctx, const Json& params, const Table& t) {
  return FitNumeric(ctx, params, t, "scale_minmax", [](const Column&, const NumberSummary& sum, Json& e) {
    e["min"] = JsonNum(sum.min);
    e["max"] = JsonNum(sum.max);
  });
}

Status MinMaxCheck(const StepCtx& ctx, const Json& params) {
  if (params.value("min", 0.0) >= params.value("max", 1.0)) return ctx.Error("max", "must be greater than min");
  return Status::Ok();
}

Status MinMaxTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const double lo = params.value("min", 0.0), hi = params.value("max", 1.0);
  return ForStateColumns(ctx, state, t, "scale_minmax", [&](Column& c, const Json& e) -> Status {
    ToFloatColumn(c);
    const double mn = Get(e, "min", 0), mx = Get(e, "max", 0);
    const double range = mx - mn;
    double* __restrict x = c.f64.data();
    const uint8_t* __restrict ok = c.valid.data();
    const size_t n = c.size();
    // Missing rows keep their (unspecified) slot; the select keeps the loop branch-free.
    if (range > 0) {
      for (size_t r = 0; r < n; ++r) x[r] = ok[r] ? lo + (x[r] - mn) / range * (hi - lo) : x[r];
    } else {
      for (size_t r = 0; r < n; ++r) x[r] = ok[r] ? lo : x[r];
    }
    return Status::Ok();
  });
}

Result<Json> ZFit(const StepCtx& ctx, const Json& params, const Table& t) {
  return FitNumeric(ctx, params, t, "scale_zscore", [](const Column& c, const NumberSummary& sum, Json& e) {
    const double m = sum.Mean();
    e["mean"] = JsonNum(m);
    e["std"] = JsonNum(StdAround(c, sum.count, m));
  });
}

Status ZTransform(const StepCtx& ctx, const Json&, const Json& state, Table& t) {
  return ForStateColumns(ctx, state, t, "scale_zscore", [&](Column& c, const Json& e) -> Status {
    ToFloatColumn(c);
    const double m = Get(e, "mean", 0), s = Get(e, "std", 0);
    double* __restrict x = c.f64.data();
    const uint8_t* __restrict ok = c.valid.data();
    const size_t n = c.size();
    if (s > 0) {
      for (size_t r = 0; r < n; ++r) x[r] = ok[r] ? (x[r] - m) / s : x[r];
    } else {
      for (size_t r = 0; r < n; ++r) x[r] = ok[r] ? 0.0 : x[r];
    }
    return Status::Ok();
  });
}

// ---- log_transform

Result<Json> NumericColumnsFit(const StepCtx& ctx, const Json& params, const Table& t) {
  return FitNumeric(ctx, params, t, "log_transform", [](const Column&, const NumberSummary&, Json&) {});
}

Status LogTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const bool to_null = params.value("on_negative", std::string("error")) == "null";
  return ForStateColumns(ctx, state, t, "log_transform", [&](Column& c, const Json&) -> Status {
    ToFloatColumn(c);
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.valid[r]) continue;
      if (c.f64[r] < 0) {
        if (to_null) {
          c.valid[r] = 0;
          c.f64[r] = 0;
          continue;
        }
        const std::string msg = "negative value " + ValueText(c, r) + " (log_transform computes log(1 + x) of "
                                "values >= 0; set on_negative to null to turn them into nulls)";
        return Status::InvalidArgument("steps[" + std::to_string(ctx.index) + "]: row " + std::to_string(r + 1) +
                                       ", column '" + c.name + "': " + msg)
            .WithDetail(ErrorDetail::Cell(static_cast<int64_t>(r + 1), c.name, msg));
      }
      c.f64[r] = std::log1p(c.f64[r]);
    }
    return Status::Ok();
  });
}

// ---- bin

Status BinCheck(const StepCtx& ctx, const Json& params) {
  const std::string method = params["method"].get<std::string>();
  if (method == "edges") {
    if (!params.contains("edges")) return ctx.Error("edges", "is required for method edges");
    const Json& e = params["edges"];
    for (size_t i = 1; i < e.size(); ++i) {
      if (!(e[i].get<double>() > e[i - 1].get<double>())) {
        return ctx.Error("edges[" + std::to_string(i) + "]", "edges must increase");
      }
    }
    if (params.contains("labels") && params["labels"].size() != e.size() - 1) {
      return ctx.Error("labels", "needs " + std::to_string(e.size() - 1) + " labels (one per bin), got " +
                                     std::to_string(params["labels"].size()));
    }
  } else {
    if (!params.contains("n")) return ctx.Error("n", "is required for method " + method);
    if (params.contains("labels") && params["labels"].size() != params["n"].get<size_t>()) {
      return ctx.Error("labels", "needs " + params["n"].dump() + " labels (one per bin), got " +
                                     std::to_string(params["labels"].size()));
    }
  }
  return Status::Ok();
}

Result<Json> BinFit(const StepCtx& ctx, const Json& params, const Table& t) {
  const std::string col = params["column"].get<std::string>();
  ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, col, "column"));
  const Column& c = t.columns[ci];
  if (!IsNumericColumn(c)) {
    return ctx.Error("column", "column '" + c.name + "' is " + ColumnTypeName(c.type) + "; bin needs a numeric column");
  }
  const std::string method = params["method"].get<std::string>();
  Json edges = Json::array();
  if (method == "edges") {
    edges = params["edges"];
  } else {
    std::vector<double> v = NonNullValues(c);
    std::vector<double> e;
    const int64_t n = params["n"].get<int64_t>();
    if (!v.empty()) {
      std::sort(v.begin(), v.end());
      const double mn = v.front(), mx = v.back();
      for (int64_t i = 0; i <= n; ++i) {
        const double q = static_cast<double>(i) / static_cast<double>(n);
        double x = method == "quantile" ? Quantile(v, q) : (i == n ? mx : mn + (mx - mn) * q);
        if (!std::isfinite(x)) continue;
        // Equal-width bins always number n (equal edges when every value is the same); quantile edges that
        // coincide are merged, as pandas.qcut(duplicates="drop") does.
        if (e.empty() || x > e.back() || method == "equal_width") e.push_back(x);
      }
      if (e.size() == 1) e.push_back(e[0]);  // one distinct value: a single bin
    }
    if (params.contains("labels") && !e.empty() && e.size() - 1 != params["labels"].size()) {
      return ctx.Error("labels", "the data gives " + std::to_string(e.size() - 1) + " distinct bins but " +
                                     std::to_string(params["labels"].size()) + " labels were given");
    }
    for (double x : e) edges.push_back(x);
  }
  return Json{{"edges", edges}, {"clamp", method != "edges"}};
}

Status BinTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const std::string col = params["column"].get<std::string>();
  ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, col, "column"));
  if (!IsNumericColumn(t.columns[ci])) return ctx.Error("column", "column '" + col + "' is not numeric");
  std::vector<double> edges;
  if (state.is_object() && state.contains("edges")) {
    for (const Json& e : state["edges"]) edges.push_back(e.get<double>());
  }
  const bool clamp = state.is_object() && state.value("clamp", false);
  const bool labeled = params.contains("labels");
  const std::string out_name = params.value("output", col);
  const size_t n = static_cast<size_t>(t.num_rows);
  Column out = NullColumn(out_name, labeled ? ColumnType::kString : ColumnType::kInt64, n);
  if (labeled) out.dict = StringList(params["labels"]);
  const Column& c = t.columns[ci];
  const int64_t bins = edges.size() >= 2 ? static_cast<int64_t>(edges.size()) - 1 : 0;
  for (size_t r = 0; r < n && bins > 0; ++r) {
    if (!c.valid[r]) continue;
    const double x = c.NumericAt(r);
    if (std::isnan(x)) continue;
    int64_t b;
    if (x < edges.front() || x > edges.back()) {
      if (!clamp) continue;
      b = x < edges.front() ? 0 : bins - 1;
    } else {
      // Bins are [e_i, e_i+1), the last one closed.
      b = static_cast<int64_t>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin()) - 1;
      b = std::clamp<int64_t>(b, 0, bins - 1);
    }
    out.valid[r] = 1;
    if (labeled) {
      if (b >= static_cast<int64_t>(out.dict.size())) {
        out.valid[r] = 0;
        continue;
      }
      out.codes[r] = static_cast<int32_t>(b);
    } else {
      out.i64[r] = b;
    }
  }
  if (out_name == col) {
    t.columns[ci] = std::move(out);
  } else {
    const int existing = t.FindColumn(out_name);
    if (existing >= 0) t.columns[static_cast<size_t>(existing)] = std::move(out);
    else t.columns.insert(t.columns.begin() + static_cast<std::ptrdiff_t>(ci) + 1, std::move(out));
  }
  return Status::Ok();
}

// ---- one_hot / ordinal_encode / frequency_encode: categories keyed by the value's canonical text

// For each dictionary entry (strings) or row (other types), the key of the value. Calls f(row, key) for
// every non-missing row.
template <class F>
void ForKeys(const Column& c, F f) {
  if (c.type == ColumnType::kString) {
    for (size_t r = 0; r < c.size(); ++r) {
      if (c.valid[r]) f(r, std::string_view(c.dict[static_cast<size_t>(c.codes[r])]));
    }
    return;
  }
  for (size_t r = 0; r < c.size(); ++r) {
    if (c.valid[r]) {
      const std::string k = ValueText(c, r);
      f(r, std::string_view(k));
    }
  }
}

// Maps each row to an index via `lookup` (key -> index or -1), once per dictionary entry for strings.
std::vector<int32_t> RowIndex(const Column& c, const std::unordered_map<std::string, int32_t>& lookup) {
  std::vector<int32_t> out(c.size(), -2);  // -2 missing, -1 unknown
  if (c.type == ColumnType::kString) {
    std::vector<int32_t> per(c.dict.size());
    for (size_t k = 0; k < c.dict.size(); ++k) {
      auto it = lookup.find(c.dict[k]);
      per[k] = it == lookup.end() ? -1 : it->second;
    }
    const int32_t* codes = c.codes.data();
    const uint8_t* valid = c.valid.data();
    for (size_t r = 0; r < c.size(); ++r) out[r] = valid[r] ? per[static_cast<size_t>(codes[r])] : -2;
    return out;
  }
  for (size_t r = 0; r < c.size(); ++r) {
    if (!c.valid[r]) continue;
    auto it = lookup.find(ValueText(c, r));
    out[r] = it == lookup.end() ? -1 : it->second;
  }
  return out;
}

// Counts per key, most frequent first, ties by key.
std::vector<std::pair<std::string, int64_t>> CountKeys(const Column& c) {
  std::unordered_map<std::string, int64_t> counts;
  if (c.type == ColumnType::kString) {
    std::vector<int64_t> per(c.dict.size(), 0);
    for (size_t r = 0; r < c.size(); ++r) {
      if (c.valid[r]) ++per[static_cast<size_t>(c.codes[r])];
    }
    for (size_t k = 0; k < c.dict.size(); ++k) {
      if (per[k] > 0) counts[c.dict[k]] += per[k];
    }
  } else {
    ForKeys(c, [&](size_t, std::string_view k) { ++counts[std::string(k)]; });
  }
  std::vector<std::pair<std::string, int64_t>> v(counts.begin(), counts.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return v;
}

Result<Json> OneHotFit(const StepCtx& ctx, const Json& params, const Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  const size_t max_cat = params.value("max_categories", size_t{20});
  const bool other = params.value("other", true);
  Json out = Json::array();
  for (size_t ci : cols) {
    const Column& c = t.columns[ci];
    if (c.type == ColumnType::kFloat64) {
      return ctx.Error("columns", "column '" + c.name + "' is float; one_hot needs categories (bin it first)");
    }
    auto counts = CountKeys(c);
    Json cats = Json::array();
    for (size_t i = 0; i < counts.size() && i < max_cat; ++i) cats.push_back(counts[i].first);
    out.push_back({{"name", c.name}, {"categories", cats}, {"other", other && counts.size() > max_cat}});
  }
  return Json{{"columns", out}};
}

Status OneHotTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const bool drop = params.value("drop_original", true);
  const Json& cols = StateCols(state);
  for (size_t j = 0; j < cols.size(); ++j) {
    const std::string name = cols[j].value("name", "");
    ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, name, "columns[" + std::to_string(j) + "]"));
    std::unordered_map<std::string, int32_t> lookup;
    std::vector<std::string> cats = StringList(cols[j]["categories"]);
    for (size_t k = 0; k < cats.size(); ++k) lookup.emplace(cats[k], static_cast<int32_t>(k));
    const bool other = cols[j].value("other", false);
    const std::vector<int32_t> idx = RowIndex(t.columns[ci], lookup);
    const size_t n = idx.size();
    std::vector<Column> added(cats.size() + (other ? 1 : 0));
    for (size_t k = 0; k < added.size(); ++k) {
      const std::string cname = name + "_" + (k < cats.size() ? cats[k] : std::string("_other"));
      if (t.FindColumn(cname) >= 0 && !(drop && cname == name)) {
        return ctx.Error("columns[" + std::to_string(j) + "]", "one_hot would create column '" + cname +
                                                                   "', which already exists");
      }
      added[k].name = cname;
      added[k].type = ColumnType::kBool;
    }
    // One output column per task: b[r] = (the row's category is k), a compare that vectorizes; the "other"
    // column takes the known values outside the categories (-1); missing rows (-2) are all false.
    ParallelFor(added.size(), ThreadsFor(n * added.size(), size_t{1} << 20), [&](size_t k) {
      Column& o = added[k];
      o.valid.assign(n, 1);
      o.b.resize(n);
      const int32_t want = k < cats.size() ? static_cast<int32_t>(k) : -1;
      const int32_t* __restrict in = idx.data();
      uint8_t* __restrict out = o.b.data();
      const size_t rows = n;  // a local bound: a byte store could alias the captured one
      for (size_t r = 0; r < rows; ++r) out[r] = static_cast<uint8_t>(in[r] == want);
    });
    auto pos = t.columns.begin() + static_cast<std::ptrdiff_t>(ci);
    if (drop) pos = t.columns.erase(pos);
    else ++pos;
    t.columns.insert(pos, std::make_move_iterator(added.begin()), std::make_move_iterator(added.end()));
  }
  return Status::Ok();
}

Status OrdinalCheck(const StepCtx& ctx, const Json& params) {
  if (!params.contains("order")) return Status::Ok();
  for (auto it = params["order"].begin(); it != params["order"].end(); ++it) {
    const auto list = StringList(it.value());
    std::vector<std::string> sorted = list;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return ctx.Error("order." + it.key(), "lists a value twice");
    }
  }
  return Status::Ok();
}

Result<Json> OrdinalFit(const StepCtx& ctx, const Json& params, const Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  Json out = Json::array();
  for (size_t ci : cols) {
    const Column& c = t.columns[ci];
    Json cats = Json::array();
    if (params.contains("order") && params["order"].contains(c.name)) {
      cats = params["order"][c.name];
    } else {
      auto counts = CountKeys(c);
      if (c.type == ColumnType::kString) {
        std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      } else {  // numeric order for numbers, dates and booleans
        std::vector<std::pair<double, std::string>> keyed;
        std::unordered_map<std::string, double> num;
        for (size_t r = 0; r < c.size(); ++r) {
          if (c.valid[r]) num.emplace(ValueText(c, r), c.type == ColumnType::kDatetime ? static_cast<double>(c.i64[r]) : c.NumericAt(r));
        }
        for (const auto& [k, v] : num) keyed.emplace_back(v, k);
        std::sort(keyed.begin(), keyed.end());
        counts.clear();
        for (auto& [v, k] : keyed) counts.emplace_back(k, 0);
      }
      for (const auto& kc : counts) cats.push_back(kc.first);
    }
    out.push_back({{"name", c.name}, {"categories", cats}});
  }
  return Json{{"columns", out}};
}

Status OrdinalTransform(const StepCtx& ctx, const Json&, const Json& state, Table& t) {
  const Json& cols = StateCols(state);
  for (size_t j = 0; j < cols.size(); ++j) {
    ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, cols[j].value("name", ""), "columns[" + std::to_string(j) + "]"));
    std::unordered_map<std::string, int32_t> lookup;
    const auto cats = StringList(cols[j]["categories"]);
    for (size_t k = 0; k < cats.size(); ++k) lookup.emplace(cats[k], static_cast<int32_t>(k));
    const std::vector<int32_t> idx = RowIndex(t.columns[ci], lookup);
    Column o = NullColumn(t.columns[ci].name, ColumnType::kInt64, idx.size());
    for (size_t r = 0; r < idx.size(); ++r) {
      if (idx[r] >= 0) o.valid[r] = 1, o.i64[r] = idx[r];
    }
    t.columns[ci] = std::move(o);
  }
  return Status::Ok();
}

Result<Json> FrequencyFit(const StepCtx& ctx, const Json& params, const Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  const bool normalize = params.value("normalize", true);
  Json out = Json::array();
  for (size_t ci : cols) {
    const Column& c = t.columns[ci];
    Json freq = Json::object();
    const double n = static_cast<double>(std::max<int64_t>(1, t.num_rows));
    for (const auto& [k, count] : CountKeys(c)) {
      freq[k] = normalize ? Json(static_cast<double>(count) / n) : Json(count);
    }
    out.push_back({{"name", c.name}, {"values", freq}});
  }
  return Json{{"columns", out}, {"normalize", normalize}};
}

Status FrequencyTransform(const StepCtx& ctx, const Json&, const Json& state, Table& t) {
  const Json& cols = StateCols(state);
  const bool normalize = state.is_object() && state.value("normalize", true);
  for (size_t j = 0; j < cols.size(); ++j) {
    ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, cols[j].value("name", ""), "columns[" + std::to_string(j) + "]"));
    std::unordered_map<std::string, int32_t> lookup;
    std::vector<double> values;
    const Json& vals = cols[j]["values"];
    for (auto it = vals.begin(); it != vals.end(); ++it) {
      lookup.emplace(it.key(), static_cast<int32_t>(values.size()));
      values.push_back(it.value().get<double>());
    }
    const std::vector<int32_t> idx = RowIndex(t.columns[ci], lookup);
    Column o = NullColumn(t.columns[ci].name, normalize ? ColumnType::kFloat64 : ColumnType::kInt64, idx.size());
    for (size_t r = 0; r < idx.size(); ++r) {
      if (idx[r] == -2) continue;
      const double v = idx[r] >= 0 ? values[static_cast<size_t>(idx[r])] : 0.0;  // unseen: never seen, 0
      o.valid[r] = 1;
      if (normalize) o.f64[r] = v;
      else o.i64[r] = static_cast<int64_t>(v);
    }
    t.columns[ci] = std::move(o);
  }
  return Status::Ok();
}

// ---- date_parts / text_features

int64_t FloorDivI(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

Status DatePartsTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  const std::string col = params["column"].get<std::string>();
  ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, col, "column"));
  if (t.columns[ci].type != ColumnType::kDatetime) {
    return ctx.Error("column", "column '" + col + "' is " + ColumnTypeName(t.columns[ci].type) +
                                   "; date_parts needs a datetime column (cast it first)");
  }
  std::vector<std::string> parts = params.contains("parts") ? StringList(params["parts"])
                                                            : std::vector<std::string>{"year", "month", "day", "weekday"};
  const size_t n = static_cast<size_t>(t.num_rows);
  std::vector<Column> added;
  for (const std::string& p : parts) {
    const std::string name = col + "_" + p;
    RETURN_IF_ERROR(CheckNewName(ctx, t, name, "parts"));
    added.push_back(NullColumn(name, ColumnType::kInt64, n));
  }
  const Column& c = t.columns[ci];
  constexpr int64_t kDay = 86400LL * 1000000LL;
  for (size_t r = 0; r < n; ++r) {
    if (!c.valid[r]) continue;
    const int64_t us = c.i64[r];
    const int64_t days = FloorDivI(us, kDay);
    // Civil date (H. Hinnant).
    int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy_mar + 2) / 153;
    const int64_t d = doy_mar - (153 * mp + 2) / 5 + 1;
    const int64_t m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = yoe + era * 400 + (m <= 2);
    for (size_t k = 0; k < parts.size(); ++k) {
      const std::string& p = parts[k];
      int64_t v = 0;
      if (p == "year") v = y;
      else if (p == "month") v = m;
      else if (p == "day") v = d;
      else if (p == "weekday") v = ((days % 7) + 7 + 3) % 7;  // Monday = 0
      else if (p == "hour") v = FloorDivI(us - days * kDay, 3600LL * 1000000LL);
      else if (p == "dayofyear") v = days - DaysFromCivil(y, 1, 1) + 1;
      added[k].valid[r] = 1;
      added[k].i64[r] = v;
    }
  }
  auto pos = t.columns.begin() + static_cast<std::ptrdiff_t>(ci);
  if (params.value("drop_original", false)) pos = t.columns.erase(pos);
  else ++pos;
  t.columns.insert(pos, std::make_move_iterator(added.begin()), std::make_move_iterator(added.end()));
  return Status::Ok();
}

Status TextFeaturesTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  const std::string col = params["column"].get<std::string>();
  ASSIGN_OR_RETURN(size_t ci, FindCol(ctx, t, col, "column"));
  if (t.columns[ci].type != ColumnType::kString) {
    return ctx.Error("column", "column '" + col + "' is " + ColumnTypeName(t.columns[ci].type) +
                                   "; text_features needs a string column");
  }
  std::vector<std::string> feats = params.contains("features") ? StringList(params["features"])
                                                               : std::vector<std::string>{"length", "token_count"};
  const Column& c = t.columns[ci];
  std::vector<int64_t> len(c.dict.size()), tokens(c.dict.size());
  for (size_t k = 0; k < c.dict.size(); ++k) {
    const std::string& s = c.dict[k];
    int64_t chars = 0, tok = 0;
    bool in = false;
    for (char ch : s) {
      chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
      const bool sp = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
      if (!sp && !in) ++tok;
      in = !sp;
    }
    len[k] = chars;
    tokens[k] = tok;
  }
  const size_t n = static_cast<size_t>(t.num_rows);
  std::vector<Column> added;
  for (const std::string& f : feats) {
    const std::string name = col + (f == "length" ? "_length" : "_tokens");
    RETURN_IF_ERROR(CheckNewName(ctx, t, name, "features"));
    Column o = NullColumn(name, ColumnType::kInt64, n);
    for (size_t r = 0; r < n; ++r) {
      if (!c.valid[r]) continue;
      o.valid[r] = 1;
      o.i64[r] = (f == "length" ? len : tokens)[static_cast<size_t>(c.codes[r])];
    }
    added.push_back(std::move(o));
  }
  t.columns.insert(t.columns.begin() + static_cast<std::ptrdiff_t>(ci) + 1, std::make_move_iterator(added.begin()),
                   std::make_move_iterator(added.end()));
  return Status::Ok();
}

}  // namespace

void AddNumericSteps(std::vector<StepDef>& out) {
  out.push_back({"impute",
                 "Fill missing values: mean, median (numeric, give float columns), mode, a constant, or forward "
                 "fill (not row-wise: at serving time nulls get the last value seen in training)",
                 true,
                 R"({"type":"object","required":["columns","strategy"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "strategy":{"type":"string","enum":["mean","median","mode","constant","forward_fill"]},
                      "value":{"type":["string","number","boolean"]}}})",
                 ImputeCheck, ImputeFit, ImputeTransform, ImputeServe, ImputeRowWise});
  out.push_back({"clip_outliers",
                 "Clip values outside Q1 - k*IQR .. Q3 + k*IQR (iqr) or mean +- z*std (zscore) to those bounds", true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "method":{"type":"string","enum":["iqr","zscore"],"default":"iqr"},
                      "k":{"type":"number","exclusiveMinimum":0,"maximum":1000,"default":1.5},
                      "z":{"type":"number","exclusiveMinimum":0,"maximum":1000,"default":3}}})",
                 nullptr, ClipFit, ClipTransform, nullptr, nullptr});
  out.push_back({"scale_minmax", "Scale numeric columns linearly so the training range maps to min..max (float)",
                 true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "min":{"type":"number","default":0},"max":{"type":"number","default":1}}})",
                 MinMaxCheck, MinMaxFit, MinMaxTransform, nullptr, nullptr});
  out.push_back({"scale_zscore", "Standardise numeric columns: (x - mean) / std (population std; float)", true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(}})",
                 nullptr, ZFit, ZTransform, nullptr, nullptr});
  out.push_back({"log_transform", "log(1 + x) of numeric columns; negative values fail the step or become null", true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "on_negative":{"type":"string","enum":["error","null"],"default":"error"}}})",
                 nullptr, NumericColumnsFit, LogTransform, nullptr, nullptr});
  out.push_back({"bin",
                 "Bucket a numeric column into n equal-width or quantile bins, or explicit edges; gives the bin "
                 "index (0-based integer) or the given labels",
                 true,
                 R"({"type":"object","required":["column","method"],"additionalProperties":false,
                    "properties":{"column":{"type":"string","minLength":1},
                      "method":{"type":"string","enum":["equal_width","quantile","edges"]},
                      "n":{"type":"integer","minimum":1,"maximum":1000},
                      "edges":{"type":"array","items":{"type":"number"},"minItems":2,"maxItems":1001},
                      "labels":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":1000},
                      "output":{"type":"string","minLength":1}}})",
                 BinCheck, BinFit, BinTransform, nullptr, nullptr});
  out.push_back({"one_hot",
                 "One boolean column per category (the most frequent max_categories), plus <col>__other for "
                 "the rest when other is true",
                 true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "max_categories":{"type":"integer","minimum":1,"maximum":1000,"default":20},
                      "other":{"type":"boolean","default":true},
                      "drop_original":{"type":"boolean","default":true}}})",
                 nullptr, OneHotFit, OneHotTransform, nullptr, nullptr});
  out.push_back({"ordinal_encode",
                 "Replace categories by their 0-based rank (sorted, or the given order); unseen values become null",
                 true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "order":{"type":"object","additionalProperties":{"type":"array","items":{"type":"string"}}}}})",
                 OrdinalCheck, OrdinalFit, OrdinalTransform, nullptr, nullptr});
  out.push_back({"frequency_encode",
                 "Replace categories by their share of the training rows (or count); unseen values get 0", true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" NUM_COLUMNS_SCHEMA R"(,
                      "normalize":{"type":"boolean","default":true}}})",
                 nullptr, FrequencyFit, FrequencyTransform, nullptr, nullptr});
  out.push_back({"date_parts", "Add integer columns <col>_<part> from a datetime column (weekday: Monday = 0)", true,
                 R"({"type":"object","required":["column"],"additionalProperties":false,
                    "properties":{"column":{"type":"string","minLength":1},
                      "parts":{"type":"array","minItems":1,"items":{"type":"string",
                        "enum":["year","month","day","weekday","hour","dayofyear"]}},
                      "drop_original":{"type":"boolean","default":false}}})",
                 nullptr, nullptr, DatePartsTransform, nullptr, nullptr});
  out.push_back({"text_features", "Add <col>_length (characters) and <col>_tokens (whitespace-separated words)", true,
                 R"({"type":"object","required":["column"],"additionalProperties":false,
                    "properties":{"column":{"type":"string","minLength":1},
                      "features":{"type":"array","minItems":1,"items":{"type":"string",
                        "enum":["length","token_count"]}}}})",
                 nullptr, nullptr, TextFeaturesTransform, nullptr, nullptr});
}

}  // namespace lathe::recipe_internal
