// Recipe steps that reshape columns and clean text: select/drop/rename, cast, trim, change_case,
// replace_values, regex_replace, filter_rows, dedupe, derive, mask_pii.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <regex>
#include <unordered_set>

#include "common/crypto.h"
#include "common/parallel.h"
#include "data/expr.h"
#include "data/recipe_internal.h"
#include "data/value_parse.h"

namespace lathe::recipe_internal {
namespace {

#define COLUMNS_SCHEMA R"({"type":"array","items":{"type":"string","minLength":1},"minItems":1,"maxItems":10000})"

bool IsString(const Column& c) { return c.type == ColumnType::kString; }

Status RequireString(const StepCtx& ctx, const Table& t, const std::vector<size_t>& cols, const char* op) {
  for (size_t j = 0; j < cols.size(); ++j) {
    const Column& c = t.columns[cols[j]];
    if (c.type != ColumnType::kString) {
      return ctx.Error("columns[" + std::to_string(j) + "]", "column '" + c.name + "' is " + ColumnTypeName(c.type) +
                                                                 "; " + op + " applies to string columns");
    }
  }
  return Status::Ok();
}

// Columns resolved at fit time are kept in the state so that serving replays exactly the same set.
Result<Json> FitStringColumns(const StepCtx& ctx, const Json& params, const Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns", IsString));
  return Json{{"columns", NamesJson(t, cols)}};
}

Result<std::vector<size_t>> StateColumns(const StepCtx& ctx, const Table& t, const Json& state) {
  std::vector<size_t> out;
  const Json& names = state.is_object() && state.contains("columns") ? state["columns"] : Json::array();
  for (size_t j = 0; j < names.size(); ++j) {
    ASSIGN_OR_RETURN(size_t c, FindCol(ctx, t, names[j].get<std::string>(), "columns[" + std::to_string(j) + "]"));
    out.push_back(c);
  }
  return out;
}

// ---- select_columns / drop_columns / rename_columns

Status SelectTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  std::vector<Column> out;
  for (size_t c : cols) out.push_back(std::move(t.columns[c]));
  t.columns = std::move(out);
  return Status::Ok();
}

Status DropTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  std::vector<uint8_t> drop(t.columns.size(), 0);
  for (size_t c : cols) drop[c] = 1;
  std::vector<Column> out;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (!drop[i]) out.push_back(std::move(t.columns[i]));
  }
  t.columns = std::move(out);
  return Status::Ok();
}

Status RenameTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  const Json& m = params["mapping"];
  std::vector<std::pair<size_t, std::string>> renames;
  for (auto it = m.begin(); it != m.end(); ++it) {
    ASSIGN_OR_RETURN(size_t c, FindCol(ctx, t, it.key(), "mapping." + it.key()));
    renames.emplace_back(c, it.value().get<std::string>());
  }
  std::vector<std::string> names;
  for (const Column& c : t.columns) names.push_back(c.name);
  for (auto& [c, n] : renames) names[c] = n;
  std::unordered_set<std::string> seen;
  for (const std::string& n : names) {
    if (!seen.insert(n).second) return ctx.Error("mapping", "renaming would give two columns named '" + n + "'");
  }
  for (size_t i = 0; i < names.size(); ++i) t.columns[i].name = names[i];
  return Status::Ok();
}

// ---- cast

Status CastCheck(const StepCtx& ctx, const Json& params) {
  auto t = ParseColumnType(params["to"].get<std::string>());
  if (!t.ok()) return ctx.Error("to", t.status().message());
  return Status::Ok();
}

Status CastColumn(const StepCtx& ctx, Column& c, ColumnType to, bool fail) {
  if (c.type == to) return Status::Ok();
  const size_t n = c.size();
  Column out = NullColumn(c.name, to, n);
  auto bad = [&](size_t r) -> Status {
    if (!fail) return Status::Ok();
    const std::string msg = "cannot cast '" + ValueText(c, r) + "' to " + ColumnTypeName(to);
    return Status::InvalidArgument("steps[" + std::to_string(ctx.index) + "]: row " + std::to_string(r + 1) +
                                   ", column '" + c.name + "': " + msg +
                                   " (set on_error to null to turn such values into nulls)")
        .WithDetail(ErrorDetail::Cell(static_cast<int64_t>(r + 1), c.name, msg));
  };
  if (to == ColumnType::kString) {
    std::unordered_map<std::string, int32_t> index;
    for (size_t r = 0; r < n; ++r) {
      if (!c.valid[r]) continue;
      std::string s = ValueText(c, r);
      auto [it, ins] = index.emplace(std::move(s), static_cast<int32_t>(out.dict.size()));
      if (ins) out.dict.push_back(it->first);
      out.codes[r] = it->second;
      out.valid[r] = 1;
    }
    c = std::move(out);
    return Status::Ok();
  }
  if (c.type == ColumnType::kString) {
    // Parse each dictionary entry once: 0 unparsed, 1 ok, 2 bad.
    std::vector<uint8_t> state(c.dict.size(), 0);
    std::vector<int64_t> iv(c.dict.size(), 0);
    std::vector<double> fv(c.dict.size(), 0.0);
    for (size_t r = 0; r < n; ++r) {
      if (!c.valid[r]) continue;
      const size_t k = static_cast<size_t>(c.codes[r]);
      if (state[k] == 0) {
        const std::string_view s = TrimBlanks(c.dict[k]);
        bool ok = false;
        if (IsMissingToken(s)) {
          state[k] = 3;  // a missing-value token becomes null, not an error
          continue;
        }
        switch (to) {
          case ColumnType::kInt64: {
            ok = ParseInt64(s, &iv[k]) == IntParse::kOk;
            double d = 0;
            if (!ok && ParseFloat64(s, &d) && std::floor(d) == d && std::fabs(d) < 9.2e18) {
              iv[k] = static_cast<int64_t>(d);
              ok = true;
            }
            break;
          }
          case ColumnType::kFloat64: ok = ParseFloat64(s, &fv[k]); break;
          case ColumnType::kBool: {
            bool b = false;
            ok = ParseBool(s, &b);
            if (!ok && (s == "0" || s == "1")) ok = true, b = s == "1";
            iv[k] = b;
            break;
          }
          case ColumnType::kDatetime: ok = ParseDatetimeMicros(s, &iv[k]); break;
          default: break;
        }
        state[k] = ok ? 1 : 2;
      }
      if (state[k] == 3) continue;
      if (state[k] == 2) {
        RETURN_IF_ERROR(bad(r));
        continue;
      }
      out.valid[r] = 1;
      if (to == ColumnType::kFloat64) out.f64[r] = fv[k];
      else if (to == ColumnType::kBool) out.b[r] = static_cast<uint8_t>(iv[k]);
      else out.i64[r] = iv[k];
    }
    c = std::move(out);
    return Status::Ok();
  }
  for (size_t r = 0; r < n; ++r) {
    if (!c.valid[r]) continue;
    bool ok = true;
    switch (to) {
      case ColumnType::kFloat64:
        out.f64[r] = c.type == ColumnType::kDatetime ? static_cast<double>(c.i64[r]) / 1e6 : c.NumericAt(r);
        break;
      case ColumnType::kInt64:
        if (c.type == ColumnType::kFloat64) {
          const double d = c.f64[r];
          ok = std::isfinite(d) && std::floor(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0;
          if (ok) out.i64[r] = static_cast<int64_t>(d);
        } else if (c.type == ColumnType::kBool) {
          out.i64[r] = c.b[r];
        } else {  // datetime -> seconds since the epoch
          const int64_t us = c.i64[r];
          out.i64[r] = us / 1000000 - ((us % 1000000 != 0 && us < 0) ? 1 : 0);
        }
        break;
      case ColumnType::kBool: {
        if (c.type == ColumnType::kDatetime) {
          ok = false;
          break;
        }
        const double d = c.NumericAt(r);
        ok = d == 0 || d == 1;
        out.b[r] = d == 1;
        break;
      }
      case ColumnType::kDatetime: {
        if (c.type == ColumnType::kBool) {
          ok = false;
          break;
        }
        const double secs = c.type == ColumnType::kInt64 ? 0 : c.f64[r];
        if (c.type == ColumnType::kInt64) {
          ok = !__builtin_mul_overflow(c.i64[r], int64_t{1000000}, &out.i64[r]);
        } else {
          ok = std::isfinite(secs) && std::fabs(secs) < 9.2e12;
          if (ok) out.i64[r] = static_cast<int64_t>(std::llround(secs * 1e6));
        }
        break;
      }
      default: ok = false;
    }
    if (ok) {
      out.valid[r] = 1;
    } else {
      RETURN_IF_ERROR(bad(r));
    }
  }
  c = std::move(out);
  return Status::Ok();
}

Status CastTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  ASSIGN_OR_RETURN(ColumnType to, ParseColumnType(params["to"].get<std::string>()));
  const bool fail = params.value("on_error", std::string("fail")) == "fail";
  for (size_t c : cols) RETURN_IF_ERROR(CastColumn(ctx, t.columns[c], to, fail));
  return Status::Ok();
}

// ---- trim / change_case / replace_values / regex_replace: dictionary rewrites

template <class F>
Status RewriteStrings(const StepCtx& ctx, const Json& state, Table& t, const char* op, F f) {
  ASSIGN_OR_RETURN(auto cols, StateColumns(ctx, t, state));
  RETURN_IF_ERROR(RequireString(ctx, t, cols, op));
  for (size_t ci : cols) {
    Column& c = t.columns[ci];
    std::vector<std::string> vals(c.dict.size());
    std::vector<uint8_t> drop(c.dict.size(), 0);
    for (size_t k = 0; k < c.dict.size(); ++k) {
      bool keep = true;
      vals[k] = f(c.dict[k], &keep);
      drop[k] = !keep;
    }
    RewriteDictionary(c, std::move(vals), drop);
  }
  return Status::Ok();
}

std::string_view TrimWhite(std::string_view s) {
  auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t b = 0, e = s.size();
  while (b < e && sp(s[b])) ++b;
  while (e > b && sp(s[e - 1])) --e;
  return s.substr(b, e - b);
}

Status TrimTransform(const StepCtx& ctx, const Json&, const Json& state, Table& t) {
  return RewriteStrings(ctx, state, t, "trim", [](const std::string& s, bool*) { return std::string(TrimWhite(s)); });
}

Status CaseTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const std::string mode = params["case"].get<std::string>();
  return RewriteStrings(ctx, state, t, "change_case", [&](const std::string& s, bool*) {
    std::string o = s;
    bool word_start = true;
    for (char& ch : o) {
      const auto u = static_cast<unsigned char>(ch);
      if (mode == "lower") ch = static_cast<char>(std::tolower(u));
      else if (mode == "upper") ch = static_cast<char>(std::toupper(u));
      else {
        ch = static_cast<char>(word_start ? std::toupper(u) : std::tolower(u));
        word_start = !std::isalnum(u) && u < 0x80 && ch != '\'';
      }
    }
    return o;
  });
}

Status ReplaceCheck(const StepCtx& ctx, const Json& params) {
  for (auto it = params["mapping"].begin(); it != params["mapping"].end(); ++it) {
    const Json& v = it.value();
    if (!v.is_string() && !v.is_number() && !v.is_boolean() && !v.is_null()) {
      return ctx.Error("mapping." + it.key(), "must be a string, number, boolean or null");
    }
  }
  return Status::Ok();
}

Result<Json> FitNamedColumns(const StepCtx& ctx, const Json& params, const Table& t) {
  ASSIGN_OR_RETURN(auto cols, FindCols(ctx, t, params, "columns"));
  return Json{{"columns", NamesJson(t, cols)}};
}

Status ReplaceTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  ASSIGN_OR_RETURN(auto cols, StateColumns(ctx, t, state));
  const Json& m = params["mapping"];
  for (size_t j = 0; j < cols.size(); ++j) {
    Column& c = t.columns[cols[j]];
    if (c.type == ColumnType::kString) {
      std::vector<std::string> vals(c.dict.size());
      std::vector<uint8_t> drop(c.dict.size(), 0);
      for (size_t k = 0; k < c.dict.size(); ++k) {
        auto it = m.find(c.dict[k]);
        if (it == m.end()) {
          vals[k] = c.dict[k];
        } else if (it->is_null()) {
          drop[k] = 1;
        } else if (it->is_string()) {
          vals[k] = it->get<std::string>();
        } else {
          vals[k] = it->dump();
        }
      }
      RewriteDictionary(c, std::move(vals), drop);
      continue;
    }
    // Typed columns: keys compare with the value's canonical text, targets must fit the column type.
    std::unordered_map<std::string, std::pair<bool, double>> num;  // text -> (is_null, value)
    for (auto it = m.begin(); it != m.end(); ++it) {
      const Json& v = it.value();
      if (v.is_null()) {
        num[it.key()] = {true, 0};
      } else if (v.is_number() && (c.type == ColumnType::kFloat64 ||
                                   (c.type == ColumnType::kInt64 && v.is_number_integer()))) {
        num[it.key()] = {false, v.get<double>()};
      } else if (v.is_boolean() && c.type == ColumnType::kBool) {
        num[it.key()] = {false, v.get<bool>() ? 1.0 : 0.0};
      } else {
        return ctx.Error("mapping." + it.key(), "cannot put " + v.dump() + " into " + ColumnTypeName(c.type) +
                                                     " column '" + c.name + "'");
      }
    }
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.valid[r]) continue;
      auto it = num.find(ValueText(c, r));
      if (it == num.end()) continue;
      if (it->second.first) {
        c.valid[r] = 0;
        continue;
      }
      if (c.type == ColumnType::kFloat64) c.f64[r] = it->second.second;
      else if (c.type == ColumnType::kBool) c.b[r] = it->second.second != 0;
      else if (c.type == ColumnType::kInt64) {
        const Json& v = m[std::string(it->first)];
        c.i64[r] = v.get<int64_t>();
      }
    }
  }
  return Status::Ok();
}

Status RegexCheck(const StepCtx& ctx, const Json& params) {
  Status st = ValidateSafeRegex(params["pattern"].get<std::string>());
  if (!st.ok()) return ctx.Error("pattern", st.message());
  return Status::Ok();
}

Status RegexTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const std::string pattern = params["pattern"].get<std::string>();
  const std::string repl = params.value("replacement", std::string());
  RETURN_IF_ERROR(RegexCheck(ctx, params));
  // The breadth-first executor: linear in the value for a given pattern (the backtracking one hangs on
  // a*a*a*b); it keeps ECMAScript's match priority, so captures ($1) are the same.
  std::regex re(pattern, kWholeMatchRegexFlags);
  return RewriteStrings(ctx, state, t, "regex_replace", [&](const std::string& s, bool*) {
    if (s.size() > kMaxRegexInputBytes) return s;  // too long to search safely: left as it is
    try {
      return std::regex_replace(s, re, repl);
    } catch (const std::regex_error&) {
      return s;
    }
  });
}

// ---- filter_rows / derive

Status ExprCheckAt(const StepCtx& ctx, const std::string& key, const std::string& text, Expr* out) {
  auto e = ParseExpr(text);
  if (!e.ok()) {
    Status st = e.status();
    const int64_t pos = st.details().empty() ? 1 : st.details()[0].position;
    const std::string f = ctx.Field(key);
    return Status::InvalidArgument(f + ": " + st.message()).WithDetail(ErrorDetail::Position(f, pos, st.message()));
  }
  if (out != nullptr) *out = std::move(*e);
  return Status::Ok();
}

Status WrapExprError(const StepCtx& ctx, const std::string& key, const Status& st) {
  if (st.details().empty() || st.details()[0].position < 0) return st;
  const std::string f = ctx.Field(key);
  return Status(st.code(), f + ": " + st.message()).WithDetail(ErrorDetail::Position(f, st.details()[0].position, st.message()));
}

Status FilterCheck(const StepCtx& ctx, const Json& params) {
  return ExprCheckAt(ctx, "expr", params["expr"].get<std::string>(), nullptr);
}

Status FilterTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  Expr e;
  RETURN_IF_ERROR(ExprCheckAt(ctx, "expr", params["expr"].get<std::string>(), &e));
  auto keep = EvalPredicate(e, t);
  if (!keep.ok()) return WrapExprError(ctx, "expr", keep.status());
  KeepRowsInPlace(t, *keep);
  return Status::Ok();
}

Status DeriveCheck(const StepCtx& ctx, const Json& params) {
  return ExprCheckAt(ctx, "expr", params["expr"].get<std::string>(), nullptr);
}

Status DeriveTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  Expr e;
  RETURN_IF_ERROR(ExprCheckAt(ctx, "expr", params["expr"].get<std::string>(), &e));
  auto col = EvalExpr(e, t);
  if (!col.ok()) return WrapExprError(ctx, "expr", col.status());
  const std::string name = params["name"].get<std::string>();
  col->name = name;
  const int at = t.FindColumn(name);
  if (at >= 0) {
    t.columns[static_cast<size_t>(at)] = std::move(*col);
  } else {
    t.columns.push_back(std::move(*col));
  }
  return Status::Ok();
}

// ---- dedupe

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

Status DedupeTransform(const StepCtx& ctx, const Json& params, const Json&, Table& t) {
  std::vector<size_t> cols;
  if (params.contains("columns")) {
    ASSIGN_OR_RETURN(cols, FindCols(ctx, t, params, "columns"));
  } else {
    for (size_t i = 0; i < t.columns.size(); ++i) cols.push_back(i);
  }
  const size_t n = static_cast<size_t>(t.num_rows);
  // Canonical ids for strings (a dictionary may hold duplicates) and floats (-0.0 == 0.0, one NaN).
  std::vector<std::vector<int32_t>> canon(cols.size());
  for (size_t j = 0; j < cols.size(); ++j) {
    const Column& c = t.columns[cols[j]];
    if (c.type != ColumnType::kString) continue;
    std::unordered_map<std::string_view, int32_t> ids;
    canon[j].resize(c.dict.size());
    for (size_t k = 0; k < c.dict.size(); ++k) canon[j][k] = ids.emplace(c.dict[k], static_cast<int32_t>(ids.size())).first->second;
  }
  auto key = [&](size_t j, size_t r) -> uint64_t {
    const Column& c = t.columns[cols[j]];
    if (!c.valid[r]) return 0x6e756c6cULL;
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: return static_cast<uint64_t>(c.i64[r]);
      case ColumnType::kBool: return c.b[r];
      case ColumnType::kString: return static_cast<uint64_t>(canon[j][static_cast<size_t>(c.codes[r])]);
      case ColumnType::kFloat64: {
        double d = c.f64[r];
        if (d == 0) d = 0;
        if (std::isnan(d)) return 0x7ff8000000000000ULL;
        uint64_t u;
        std::memcpy(&u, &d, 8);
        return u;
      }
    }
    return 0;
  };
  // Row hashes, one typed pass per key column over row ranges.
  std::vector<uint64_t> hash(n, 0);
  const int threads = ThreadsFor(n);
  const size_t blocks = static_cast<size_t>(threads) * 4;
  const size_t per = (n + blocks - 1) / std::max<size_t>(1, blocks);
  ParallelFor(blocks, threads, [&](size_t bi) {
    const size_t lo = bi * per, hi = std::min(n, lo + per);
    for (size_t j = 0; j < cols.size(); ++j) {
      const Column& c = t.columns[cols[j]];
      const uint8_t* v = c.valid.data();
      if (c.type == ColumnType::kInt64 || c.type == ColumnType::kDatetime) {
        const int64_t* x = c.i64.data();
        for (size_t r = lo; r < hi; ++r) {
          hash[r] = Mix(hash[r], v[r] ? static_cast<uint64_t>(x[r]) : 0x6e756c6cULL ^ 0xabcdefULL);
        }
      } else {
        for (size_t r = lo; r < hi; ++r) hash[r] = Mix(hash[r], key(j, r) ^ (v[r] ? 0 : 0xabcdefULL));
      }
    }
  });
  auto equal = [&](size_t a, size_t b) {
    for (size_t j = 0; j < cols.size(); ++j) {
      const Column& c = t.columns[cols[j]];
      if (c.valid[a] != c.valid[b]) return false;
      if (c.valid[a] && key(j, a) != key(j, b)) return false;
    }
    return true;
  };
  // Rows are first scattered into 2^pbits partitions by the top bits of their mixed hash (stable, so each
  // partition lists its rows in table order), then each partition is deduplicated with its own small
  // open-addressing table that stays in cache. Rows are < 2^32 (tables are bounded by max_browse_rows long
  // before that).
  int pbits = 0;
  while (pbits < 12 && (n >> pbits) > 4096) ++pbits;
  const size_t parts = size_t{1} << pbits;
  auto part_of = [&](size_t row) {
    return pbits == 0 ? size_t{0} : static_cast<size_t>((hash[row] * 0x9e3779b97f4a7c15ULL) >> (64 - pbits));
  };
  std::vector<uint32_t> start(parts + 1, 0);
  for (size_t r = 0; r < n; ++r) ++start[part_of(r) + 1];
  for (size_t p = 0; p < parts; ++p) start[p + 1] += start[p];
  // order[i]: the rows of each partition in turn; ohash[i] = hash[order[i]], so probing reads memory in
  // partition order instead of at random rows.
  std::unique_ptr<uint32_t[]> order(new uint32_t[std::max<size_t>(1, n)]);
  std::unique_ptr<uint64_t[]> ohash(new uint64_t[std::max<size_t>(1, n)]);
  {
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (size_t r = 0; r < n; ++r) {
      const uint32_t pos = fill[part_of(r)]++;
      order[pos] = static_cast<uint32_t>(r);
      ohash[pos] = hash[r];
    }
  }
  // One key column without missing values: Mix(0, key) is a bijection of the key, and every type's key is
  // canonical (strings by canonical id, floats with one zero and one NaN), so equal hashes mean equal rows
  // and the rows themselves need not be read.
  const bool hash_decides = cols.size() == 1 && std::memchr(t.columns[cols[0]].valid.data(), 0, n) == nullptr;
  // Each thread takes a contiguous run of partitions and writes its verdicts in partition order (`first`),
  // so no two threads write into the same cache line; they go back to table order afterwards.
  std::unique_ptr<uint8_t[]> first(new uint8_t[std::max<size_t>(1, n)]);
  const bool last = params.value("keep", std::string("first")) == "last";
  ParallelFor(threads, threads, [&](size_t tid) {
    std::vector<uint64_t> slots;
    const size_t p_lo = parts * tid / static_cast<size_t>(threads), p_hi = parts * (tid + 1) / static_cast<size_t>(threads);
    for (size_t p = p_lo; p < p_hi; ++p) {
      const size_t b = start[p], e = start[p + 1];
      size_t cap = 16;
      int bits = 4;
      while (cap < 2 * (e - b)) cap <<= 1, ++bits;
      slots.assign(cap, 0);
      const size_t mask = cap - 1;
      // A slot holds the position in `order` + 1 (low 32 bits; 0 = empty) and the hash's top 32 bits as a
      // tag, so a probe reads the table only unless the tags match.
      auto insert = [&](size_t pos) {
        const uint64_t h = ohash[pos];
        const uint64_t tag = h & 0xFFFFFFFF00000000ULL;
        size_t at = static_cast<size_t>(((h * 0x9e3779b97f4a7c15ULL) << pbits) >> (64 - bits));  // bits below the partition's
        while (true) {
          const uint64_t s = slots[at];
          if (s == 0) {
            slots[at] = tag | (pos + 1);
            return true;
          }
          if ((s & 0xFFFFFFFF00000000ULL) == tag) {
            const size_t other = static_cast<size_t>((s & 0xFFFFFFFFULL) - 1);
            if (ohash[other] == h && (hash_decides || equal(order[other], order[pos]))) return false;
          }
          at = (at + 1) & mask;
        }
      };
      if (last) {
        for (size_t i = e; i-- > b;) first[i] = insert(i);
      } else {
        for (size_t i = b; i < e; ++i) first[i] = insert(i);
      }
    }
  });
  std::vector<uint8_t> keep(n);
  for (size_t i = 0; i < n; ++i) keep[order[i]] = first[i];
  KeepRowsInPlace(t, keep);
  return Status::Ok();
}

// ---- mask_pii

bool IsEmailLocal(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool IsDomainChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

struct Span {
  size_t begin, end;
};

std::vector<Span> FindEmails(std::string_view s) {
  std::vector<Span> out;
  size_t from = 0;
  while (true) {
    const size_t at = s.find('@', from);
    if (at == std::string_view::npos) break;
    size_t b = at;
    while (b > 0 && IsEmailLocal(s[b - 1])) --b;
    size_t e = at + 1;
    while (e < s.size() && IsDomainChar(s[e])) ++e;
    while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
    const std::string_view domain = s.substr(at + 1, e - at - 1);
    const size_t dot = domain.rfind('.');
    bool ok = b < at && dot != std::string_view::npos && dot > 0 && domain.size() - dot - 1 >= 2;
    if (ok) {
      for (size_t k = dot + 1; k < domain.size(); ++k) ok = ok && std::isalpha(static_cast<unsigned char>(domain[k]));
    }
    if (ok) {
      out.push_back({b, e});
      from = e;
    } else {
      from = at + 1;
    }
  }
  return out;
}

// Phone numbers: an optional '+', then 7-15 digits with single spaces, dots, dashes or parentheses between.
std::vector<Span> FindPhones(std::string_view s) {
  std::vector<Span> out;
  size_t i = 0;
  while (i < s.size()) {
    const bool starts = IsDigit(s[i]) || ((s[i] == '+' || s[i] == '(') && i + 1 < s.size() && IsDigit(s[i + 1]));
    if (!starts || (i > 0 && (std::isalnum(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '+'))) {
      ++i;
      continue;
    }
    size_t e = i + 1, digits = IsDigit(s[i]) ? 1 : 0, last_digit_end = IsDigit(s[i]) ? i + 1 : i;
    while (e < s.size()) {
      if (IsDigit(s[e])) {
        ++digits;
        last_digit_end = e + 1;
        ++e;
      } else {
        // Up to two separators in a row ("(555) 123"), then a digit.
        auto sep = [](char c) { return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'; };
        size_t k = e;
        while (k < s.size() && k - e < 2 && sep(s[k])) ++k;
        if (k == e || k >= s.size() || !IsDigit(s[k])) break;
        e = k;
      }
    }
    const bool boundary = last_digit_end >= s.size() || !std::isalnum(static_cast<unsigned char>(s[last_digit_end]));
    if (digits >= 7 && digits <= 15 && boundary) {
      out.push_back({i, last_digit_end});
      i = last_digit_end;
    } else {
      i = std::max(e, i + 1);
    }
  }
  return out;
}

// Identifiers: a word of letters, digits and dashes, at least 6 long, with at least 4 digits (account numbers,
// national ids, card numbers, licence plates).
std::vector<Span> FindIds(std::string_view s) {
  std::vector<Span> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!std::isalnum(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t e = i, digits = 0;
    while (e < s.size() && (std::isalnum(static_cast<unsigned char>(s[e])) || s[e] == '-')) digits += IsDigit(s[e++]);
    while (e > i && s[e - 1] == '-') --e;
    if (e - i >= 6 && digits >= 4) out.push_back({i, e});
    i = std::max(e, i + 1);
  }
  return out;
}

std::string MaskSpan(std::string_view span, const std::string& kind, const std::string& method, int64_t keep_n,
                     const std::string& salt) {
  if (method == "hash") return HexEncode(HmacSha256(salt, span)).substr(0, 16);
  if (method == "keep_last") {
    std::string o(span);
    const size_t keep = static_cast<size_t>(std::max<int64_t>(0, keep_n));
    for (size_t k = 0; k + keep < o.size(); ++k) {
      if (std::isalnum(static_cast<unsigned char>(o[k]))) o[k] = '*';
    }
    return o;
  }
  std::string tag = kind;
  for (char& c : tag) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "[" + tag + "]";
}

std::string MaskText(const std::string& s, const std::string& kind, const std::string& method, int64_t n,
                     const std::string& salt) {
  std::string cur = s;
  const char* kinds[] = {"email", "phone", "id"};
  for (const char* k : kinds) {
    if (kind != "any" && kind != k) continue;
    const std::string kk = k;
    std::vector<Span> spans = kk == "email" ? FindEmails(cur) : kk == "phone" ? FindPhones(cur) : FindIds(cur);
    if (spans.empty()) continue;
    std::string next;
    size_t at = 0;
    for (const Span& sp : spans) {
      const std::string_view v = std::string_view(cur).substr(sp.begin, sp.end - sp.begin);
      // Do not re-mask what an earlier kind produced.
      if (v.find('[') != std::string_view::npos) continue;
      next.append(cur, at, sp.begin - at);
      next += MaskSpan(v, kk, method, n, salt);
      at = sp.end;
    }
    next.append(cur, at, std::string::npos);
    cur = std::move(next);
  }
  return cur;
}

Status MaskTransform(const StepCtx& ctx, const Json& params, const Json& state, Table& t) {
  const std::string kind = params.value("kind", std::string("any"));
  const std::string method = params.value("method", std::string("redact"));
  const int64_t n = params.value("n", int64_t{4});
  const std::string salt = ctx.opt != nullptr ? ctx.opt->secret_salt : std::string();
  if (method == "hash" && salt.empty()) {
    return ctx.Error("method", "hash needs a secret salt, and none is configured for this project");
  }
  return RewriteStrings(ctx, state, t, "mask_pii", [&](const std::string& s, bool*) {
    return MaskText(s, kind, method, n, salt);
  });
}

}  // namespace

void AddColumnSteps(std::vector<StepDef>& out) {
  out.push_back({"select_columns", "Keep only the listed columns, in the listed order", true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(}})",
                 nullptr, nullptr, SelectTransform, nullptr, nullptr});
  out.push_back({"drop_columns", "Remove the listed columns", true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(}})",
                 nullptr, nullptr, DropTransform, nullptr, nullptr});
  out.push_back({"rename_columns", "Rename columns: mapping old name -> new name", true,
                 R"({"type":"object","required":["mapping"],"additionalProperties":false,
                    "properties":{"mapping":{"type":"object","minProperties":1,
                      "additionalProperties":{"type":"string","minLength":1,"maxLength":1024}}}})",
                 nullptr, nullptr, RenameTransform, nullptr, nullptr});
  out.push_back({"cast", "Change the type of columns; values that do not convert fail the step or become null", true,
                 R"({"type":"object","required":["columns","to"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(,
                      "to":{"type":"string","enum":["integer","float","boolean","string","datetime"]},
                      "on_error":{"type":"string","enum":["fail","null"],"default":"fail"}}})",
                 CastCheck, nullptr, CastTransform, nullptr, nullptr});
  out.push_back({"trim", "Strip leading and trailing whitespace from text columns (default: every text column)", true,
                 R"({"type":"object","additionalProperties":false,"properties":{"columns":)" COLUMNS_SCHEMA R"(}})",
                 nullptr, FitStringColumns, TrimTransform, nullptr, nullptr});
  out.push_back({"change_case", "Lower-, upper- or title-case text columns (ASCII letters)", true,
                 R"({"type":"object","required":["case"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(,
                      "case":{"type":"string","enum":["lower","upper","title"]}}})",
                 nullptr, FitStringColumns, CaseTransform, nullptr, nullptr});
  out.push_back({"replace_values", "Replace exact values using a mapping (value text -> new value or null)", true,
                 R"({"type":"object","required":["columns","mapping"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(,
                      "mapping":{"type":"object","minProperties":1}}})",
                 ReplaceCheck, FitNamedColumns, ReplaceTransform, nullptr, nullptr});
  out.push_back({"regex_replace",
                 "Replace every match of a regular expression in text columns ($1 refers to a group)", true,
                 R"({"type":"object","required":["columns","pattern"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(,
                      "pattern":{"type":"string","minLength":1,"maxLength":256},
                      "replacement":{"type":"string","maxLength":4096,"default":""}}})",
                 RegexCheck, FitNamedColumns, RegexTransform, nullptr, nullptr});
  out.push_back({"filter_rows", "Keep the rows where an expression is true (null counts as false)", false,
                 R"({"type":"object","required":["expr"],"additionalProperties":false,
                    "properties":{"expr":{"type":"string","minLength":1,"maxLength":65536}}})",
                 FilterCheck, nullptr, FilterTransform, nullptr, nullptr});
  out.push_back({"dedupe", "Drop repeated rows, comparing whole rows or the key columns; keep the first or last",
                 false,
                 R"({"type":"object","additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(,
                      "keep":{"type":"string","enum":["first","last"],"default":"first"}}})",
                 nullptr, nullptr, DedupeTransform, nullptr, nullptr});
  out.push_back({"derive", "Add (or replace) a column computed by an expression", true,
                 R"({"type":"object","required":["name","expr"],"additionalProperties":false,
                    "properties":{"name":{"type":"string","minLength":1,"maxLength":1024},
                      "expr":{"type":"string","minLength":1,"maxLength":65536}}})",
                 DeriveCheck, nullptr, DeriveTransform, nullptr, nullptr});
  out.push_back({"mask_pii",
                 "Mask emails, phone numbers or identifiers inside text: redact, hash (HMAC-SHA256 with the "
                 "project's secret salt, 16 hex digits) or keep the last n characters",
                 true,
                 R"({"type":"object","required":["columns"],"additionalProperties":false,
                    "properties":{"columns":)" COLUMNS_SCHEMA R"(,
                      "kind":{"type":"string","enum":["email","phone","id","any"],"default":"any"},
                      "method":{"type":"string","enum":["redact","hash","keep_last"],"default":"redact"},
                      "n":{"type":"integer","minimum":0,"maximum":64,"default":4}}})",
                 nullptr, FitNamedColumns, MaskTransform, nullptr, nullptr});
}

}  // namespace lathe::recipe_internal
