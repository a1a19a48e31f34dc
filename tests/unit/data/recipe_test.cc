#include "data/recipe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/crypto.h"
#include "data/table_ops.h"
#include "data/value_parse.h"

namespace lathe {
namespace {

std::string RecipesDir() { return std::string(LATHE_TEST_DATA_DIR) + "/recipes"; }

// {"columns": [[name, type], ...], "rows": [[v, ...], ...]} -> Table (datetimes as ISO strings).
Table TableFromJson(const Json& j) {
  Table t;
  t.num_rows = static_cast<int64_t>(j["rows"].size());
  const size_t n = static_cast<size_t>(t.num_rows);
  for (size_t ci = 0; ci < j["columns"].size(); ++ci) {
    const Json& spec = j["columns"][ci];
    Column c = NullColumn(spec[0].get<std::string>(), *ParseColumnType(spec[1].get<std::string>()), n);
    for (size_t r = 0; r < n; ++r) {
      const Json& v = j["rows"][r][ci];
      if (v.is_null()) continue;
      c.valid[r] = 1;
      switch (c.type) {
        case ColumnType::kInt64: c.i64[r] = v.get<int64_t>(); break;
        case ColumnType::kFloat64: c.f64[r] = v.get<double>(); break;
        case ColumnType::kBool: c.b[r] = v.get<bool>(); break;
        case ColumnType::kDatetime: ParseDatetimeMicros(v.get<std::string>(), &c.i64[r]); break;
        case ColumnType::kString: {
          auto it = std::find(c.dict.begin(), c.dict.end(), v.get<std::string>());
          if (it == c.dict.end()) it = c.dict.insert(c.dict.end(), v.get<std::string>());
          c.codes[r] = static_cast<int32_t>(it - c.dict.begin());
          break;
        }
      }
    }
    t.columns.push_back(std::move(c));
  }
  return t;
}

void ExpectTableEquals(const Table& got, const Json& want, const std::string& name) {
  ASSERT_EQ(got.columns.size(), want["columns"].size()) << name << ": got columns " << ColumnList(got);
  ASSERT_EQ(got.num_rows, static_cast<int64_t>(want["rows"].size())) << name;
  ASSERT_TRUE(ValidateTable(got).ok()) << name;
  for (size_t ci = 0; ci < got.columns.size(); ++ci) {
    const Column& c = got.columns[ci];
    EXPECT_EQ(c.name, want["columns"][ci][0].get<std::string>()) << name;
    EXPECT_EQ(ColumnTypeName(c.type), want["columns"][ci][1].get<std::string>()) << name << " column " << c.name;
    for (size_t r = 0; r < c.size(); ++r) {
      const Json& w = want["rows"][r][ci];
      if (w.is_null()) {
        EXPECT_FALSE(c.IsValid(r)) << name << " row " << r << " column " << c.name << " = " << ValueText(c, r);
        continue;
      }
      ASSERT_TRUE(c.IsValid(r)) << name << " row " << r << " column " << c.name << " is null, want " << w.dump();
      if (c.type == ColumnType::kFloat64) {
        EXPECT_NEAR(c.f64[r], w.get<double>(), 1e-12) << name << " row " << r << " column " << c.name;
      } else if (c.type == ColumnType::kInt64) {
        EXPECT_EQ(c.i64[r], w.get<int64_t>()) << name << " row " << r << " column " << c.name;
      } else {
        EXPECT_EQ(ValueText(c, r), w.is_string() ? w.get<std::string>() : w.dump())
            << name << " row " << r << " column " << c.name;
      }
    }
  }
}

// Bit-for-bit equality of row `r` of `whole` with the single row of `one`.
void ExpectRowIdentical(const Table& whole, size_t r, const Table& one, const std::string& what) {
  ASSERT_EQ(whole.columns.size(), one.columns.size()) << what;
  ASSERT_EQ(one.num_rows, 1) << what;
  for (size_t ci = 0; ci < whole.columns.size(); ++ci) {
    const Column& a = whole.columns[ci];
    const Column& b = one.columns[ci];
    ASSERT_EQ(a.name, b.name) << what;
    ASSERT_EQ(a.type, b.type) << what << " column " << a.name;
    ASSERT_EQ(a.valid[r] != 0, b.valid[0] != 0) << what << " row " << r << " column " << a.name;
    if (!a.valid[r]) continue;
    switch (a.type) {
      case ColumnType::kFloat64:
        EXPECT_EQ(std::memcmp(&a.f64[r], &b.f64[0], sizeof(double)), 0)
            << what << " row " << r << " column " << a.name << ": " << a.f64[r] << " vs " << b.f64[0];
        break;
      case ColumnType::kInt64:
      case ColumnType::kDatetime: EXPECT_EQ(a.i64[r], b.i64[0]) << what << " row " << r; break;
      case ColumnType::kBool: EXPECT_EQ(a.b[r], b.b[0]) << what << " row " << r; break;
      case ColumnType::kString: EXPECT_EQ(a.StringAt(r), b.StringAt(0)) << what << " row " << r; break;
    }
  }
}

// Replays `fitted` row by row and checks each row against the whole-table output.
void ExpectServingMatches(const Recipe& recipe, const Table& input, const RecipeOutput& out, const std::string& what) {
  ASSERT_EQ(input.num_rows, out.table.num_rows) << what;
  ApplyOptions opt;
  opt.secret_salt = "pepper";
  for (int64_t r = 0; r < input.num_rows; ++r) {
    Table one = TakeRows(input, {r});
    // Serving passes the fitted state through JSON text: the round trip must be exact too.
    auto fitted = ParseJson(out.fitted.dump(), 1000);
    ASSERT_TRUE(fitted.ok());
    Status st = ApplyFitted(recipe, *fitted, one, opt);
    ASSERT_TRUE(st.ok()) << what << " row " << r << ": " << st.ToString();
    ExpectRowIdentical(out.table, static_cast<size_t>(r), one, what);
  }
}

TEST(RecipeFixtures, EveryCaseInTestsDataRecipes) {
  int cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(RecipesDir())) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream f(entry.path());
    std::stringstream ss;
    ss << f.rdbuf();
    auto doc = ParseJson(ss.str(), 64);
    ASSERT_TRUE(doc.ok()) << entry.path() << ": " << doc.status().message();
    for (const Json& c : *doc) {
      const std::string name = entry.path().filename().string() + ": " + c["name"].get<std::string>();
      SCOPED_TRACE(name);
      ++cases;
      Table input = TableFromJson(c["input"]);
      ApplyOptions opt;
      opt.secret_salt = c.value("salt", std::string("pepper"));
      auto recipe = ParseRecipe(c["steps"]);
      Result<RecipeOutput> out = recipe.ok() ? ApplyRecipe(*recipe, input, opt, nullptr) : Result<RecipeOutput>(recipe.status());
      if (c.contains("error")) {
        ASSERT_FALSE(out.ok()) << name;
        const Json& e = c["error"];
        const Status& st = out.status();
        EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name;
        EXPECT_NE(st.message().find(e["contains"].get<std::string>()), std::string::npos) << name << ": " << st.message();
        ASSERT_FALSE(st.details().empty()) << name;
        const ErrorDetail& d = st.details()[0];
        if (e.contains("field")) {
          EXPECT_EQ(d.field, e["field"].get<std::string>()) << name;
        }
        if (e.contains("position")) {
          EXPECT_EQ(d.position, e["position"].get<int64_t>()) << name;
        }
        if (e.contains("line")) {
          EXPECT_EQ(d.line, e["line"].get<int64_t>()) << name;
        }
        if (e.contains("column")) {
          EXPECT_EQ(d.column, e["column"].get<std::string>()) << name;
        }
        continue;
      }
      ASSERT_TRUE(out.ok()) << name << ": " << out.status().ToString();
      ASSERT_EQ(out->steps.size(), recipe->steps.size());
      EXPECT_EQ(out->steps.back().rows_out, out->table.num_rows);
      if (c.contains("expect")) ExpectTableEquals(out->table, c["expect"], name);
      if (c.contains("fitted")) {
        EXPECT_EQ(out->fitted, c["fitted"]) << out->fitted.dump();
      }
      if (c.contains("expect_hash_of")) {
        const std::string want = HexEncode(HmacSha256(opt.secret_salt, c["expect_hash_of"].get<std::string>())).substr(0, 16);
        EXPECT_EQ(ValueText(out->table.columns[0], 0), want);
      }
      bool row_wise = true;
      for (const RecipeStep& s : recipe->steps) row_wise = row_wise && StepIsRowWise(s);
      if (row_wise) ExpectServingMatches(*recipe, input, *out, name);
    }
  }
  EXPECT_GE(cases, 40);
}

TEST(RecipeSchema, EveryStepDescribesItself) {
  Json s = RecipeStepsSchemaJson();
  ASSERT_TRUE(s.is_array());
  std::vector<std::string> ops;
  for (const Json& st : s) {
    ops.push_back(st["op"]);
    EXPECT_FALSE(st["summary"].get<std::string>().empty());
    EXPECT_TRUE(st["row_wise"].is_boolean());
    EXPECT_EQ(st["params"]["type"], "object");
  }
  for (const char* op : {"select_columns", "drop_columns", "rename_columns", "cast", "trim", "change_case",
                         "replace_values", "regex_replace", "filter_rows", "dedupe", "impute", "clip_outliers",
                         "scale_minmax", "scale_zscore", "log_transform", "bin", "one_hot", "ordinal_encode",
                         "frequency_encode", "date_parts", "text_features", "derive", "mask_pii"}) {
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
  }
}

TEST(RecipeParse, MalformedInputNamesTheField) {
  struct Case {
    const char* json;
    const char* field;
  };
  const Case cases[] = {
      {R"({"x":1})", "steps"},
      {R"([1])", "steps[0]"},
      {R"([{"params":{}}])", "steps[0].op"},
      {R"([{"op":"trim","extra":1}])", "steps[0].extra"},
      {R"([{"op":"trim"},{"op":"cast","params":{"columns":["a"]}}])", "steps[1].params.to"},
      {R"([{"op":"cast","params":{"columns":["a"],"to":"decimal"}}])", "steps[0].params.to"},
      {R"([{"op":"bin","params":{"column":"a","method":"edges","edges":[3,1]}}])", "steps[0].params.edges[1]"},
      {R"([{"op":"impute","params":{"columns":["a"],"strategy":"constant"}}])", "steps[0].params.value"},
      {R"([{"op":"scale_minmax","params":{"columns":["a"],"min":2,"max":1}}])", "steps[0].params.max"},
      {R"([{"op":"clip_outliers","params":{"columns":["a"],"k":-1}}])", "steps[0].params.k"},
      {R"([{"op":"drop_columns","params":{"columns":[]}}])", "steps[0].params.columns"},
      {R"([{"op":"derive","params":{"name":"x","expr":"1 +"}}])", "steps[0].params.expr"},
  };
  for (const Case& c : cases) {
    auto j = ParseJson(c.json);
    ASSERT_TRUE(j.ok());
    auto r = ParseRecipe(*j);
    ASSERT_FALSE(r.ok()) << c.json;
    ASSERT_FALSE(r.status().details().empty()) << c.json;
    EXPECT_EQ(r.status().details()[0].field, c.field) << c.json << ": " << r.status().message();
  }
  auto deriv = ParseRecipe(*ParseJson(R"([{"op":"derive","params":{"name":"x","expr":"1 +"}}])"));
  EXPECT_EQ(deriv.status().details()[0].position, 4);
  std::string many = "[";
  for (size_t i = 0; i <= kMaxRecipeSteps; ++i) many += std::string(i ? "," : "") + R"({"op":"trim"})";
  many += "]";
  EXPECT_FALSE(ParseRecipe(*ParseJson(many)).ok());
}

TEST(RecipeApply, CancelPreviewAndBadFitted) {
  Table t = TableFromJson(*ParseJson(R"({"columns":[["a","integer"]],"rows":[[1],[2],[3]]})"));
  auto r = ParseRecipe(*ParseJson(R"([{"op":"scale_minmax","params":{"columns":["a"]}}])"));
  ASSERT_TRUE(r.ok());
  auto c = ApplyRecipe(*r, t, {}, [] { return true; });
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kCancelled);
  ApplyOptions opt;
  opt.preview_rows = 2;
  auto p = ApplyRecipe(*r, t, opt, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->table.num_rows, 2);
  EXPECT_EQ(p->steps[0].rows_in, 2);
  Table one = TakeRows(t, {0});
  EXPECT_FALSE(ApplyFitted(*r, Json::array(), one, {}).ok());
  Status bad = ApplyFitted(*r, *ParseJson(R"([{"op":"scale_minmax","state":{"columns":[{"name":"a","min":"x"}]}}])"), one, {});
  EXPECT_TRUE(bad.ok() || bad.code() == StatusCode::kInvalidArgument);
  Status wrong_op = ApplyFitted(*r, *ParseJson(R"([{"op":"trim","state":null}])"), one, {});
  ASSERT_FALSE(wrong_op.ok());
  EXPECT_EQ(wrong_op.details()[0].field, "fitted[0]");
  // mask_pii hash without a salt is refused rather than hashing with an empty key.
  auto m = ParseRecipe(*ParseJson(R"([{"op":"mask_pii","params":{"columns":["s"],"method":"hash"}}])"));
  Table s = TableFromJson(*ParseJson(R"({"columns":[["s","string"]],"rows":[["a@b.io"]]})"));
  auto mo = ApplyRecipe(*m, s, {}, nullptr);
  ASSERT_FALSE(mo.ok());
  EXPECT_EQ(mo.status().details()[0].field, "steps[0].params.method");
}

// Random tables: every row-wise step, applied to the whole table, then replayed row by row with the fitted
// state, gives bit-identical rows.
Table RandomTable(std::mt19937_64& rng, size_t n) {
  Table t;
  t.num_rows = static_cast<int64_t>(n);
  Column i = NullColumn("i", ColumnType::kInt64, n);
  Column f = NullColumn("f", ColumnType::kFloat64, n);
  Column s = NullColumn("s", ColumnType::kString, n);
  Column d = NullColumn("d", ColumnType::kDatetime, n);
  Column b = NullColumn("b", ColumnType::kBool, n);
  s.dict = {" red", "green ", "blue", "Blue", "x@y.com", "call 555-123-4567", "", "12"};
  std::uniform_real_distribution<double> u(-50, 150);
  for (size_t r = 0; r < n; ++r) {
    i.valid[r] = rng() % 7 != 0;
    i.i64[r] = static_cast<int64_t>(rng() % 200) - 20;
    f.valid[r] = rng() % 5 != 0;
    f.f64[r] = u(rng) / 3.0;
    s.valid[r] = rng() % 6 != 0;
    s.codes[r] = static_cast<int32_t>(rng() % s.dict.size());
    d.valid[r] = rng() % 8 != 0;
    d.i64[r] = static_cast<int64_t>(rng() % 2000000000) * 1000000 - 500000000000000LL;
    b.valid[r] = rng() % 4 != 0;
    b.b[r] = rng() % 2;
  }
  t.columns = {i, f, s, d, b};
  return t;
}

TEST(RecipeProperty, ApplyFittedRowByRowEqualsApplyRecipe) {
  const char* recipes[] = {
      R"([{"op":"impute","params":{"columns":["i","f"],"strategy":"mean"}}])",
      R"([{"op":"impute","params":{"columns":["i","f"],"strategy":"median"}}])",
      R"([{"op":"impute","params":{"columns":["i","s","b","d"],"strategy":"mode"}}])",
      R"([{"op":"impute","params":{"columns":["s"],"strategy":"constant","value":"none"}}])",
      R"([{"op":"clip_outliers","params":{"columns":["i","f"],"method":"iqr","k":0.5}}])",
      R"([{"op":"clip_outliers","params":{"columns":["f"],"method":"zscore","z":1}}])",
      R"([{"op":"scale_minmax","params":{"columns":["i","f","b"],"min":-1,"max":1}}])",
      R"([{"op":"scale_zscore","params":{"columns":["i","f"]}}])",
      R"([{"op":"log_transform","params":{"columns":["i","f"],"on_negative":"null"}}])",
      R"([{"op":"bin","params":{"column":"f","method":"quantile","n":4}}])",
      R"([{"op":"bin","params":{"column":"i","method":"equal_width","n":3,"labels":["lo","mid","hi"],"output":"ib"}}])",
      R"([{"op":"bin","params":{"column":"f","method":"edges","edges":[-10,0,10,20]}}])",
      R"([{"op":"one_hot","params":{"columns":["s","b"],"max_categories":3}}])",
      R"([{"op":"ordinal_encode","params":{"columns":["s","i","d"]}}])",
      R"([{"op":"frequency_encode","params":{"columns":["s","i"]}}])",
      R"([{"op":"date_parts","params":{"column":"d","parts":["year","month","day","weekday","hour","dayofyear"]}}])",
      R"([{"op":"text_features","params":{"column":"s"}}])",
      R"([{"op":"trim"},{"op":"change_case","params":{"case":"title"}}])",
      R"([{"op":"replace_values","params":{"columns":["s"],"mapping":{"blue":"BLUE","":null}}}])",
      R"([{"op":"regex_replace","params":{"columns":["s"],"pattern":"[aeiou]","replacement":"_"}}])",
      R"([{"op":"cast","params":{"columns":["i","f"],"to":"string"}},{"op":"cast","params":{"columns":["s"],"to":"integer","on_error":"null"}}])",
      R"j([{"op":"derive","params":{"name":"z","expr":"if(f > 0, round(f * i, 2), coalesce(to_float(i), -1.5)) + length(s)"}}])j",
      R"([{"op":"mask_pii","params":{"columns":["s"],"kind":"any","method":"hash"}}])",
      R"([{"op":"select_columns","params":{"columns":["f","i"]}},{"op":"rename_columns","params":{"mapping":{"f":"g"}}}])",
      R"([{"op":"impute","params":{"columns":["f"],"strategy":"median"}},{"op":"scale_zscore","params":{"columns":["f"]}},
          {"op":"one_hot","params":{"columns":["s"]}},{"op":"derive","params":{"name":"k","expr":"f * 2 + i"}}])",
  };
  std::mt19937_64 rng(7);
  for (const char* text : recipes) {
    for (size_t n : {1, 2, 17, 200}) {
      Table input = RandomTable(rng, n);
      auto recipe = ParseRecipe(*ParseJson(text));
      ASSERT_TRUE(recipe.ok()) << text << ": " << recipe.status().ToString();
      ApplyOptions opt;
      opt.secret_salt = "pepper";
      auto out = ApplyRecipe(*recipe, input, opt, nullptr);
      ASSERT_TRUE(out.ok()) << text << ": " << out.status().ToString();
      for (const RecipeStep& s : recipe->steps) ASSERT_TRUE(StepIsRowWise(s)) << s.op;
      ExpectServingMatches(*recipe, input, *out, text);
    }
  }
}

TEST(RecipeProperty, NonRowWiseStepsAtServingTime) {
  Table t = TableFromJson(*ParseJson(R"({"columns":[["a","float"]],"rows":[[1.0],[null],[3.0],[null]]})"));
  auto r = ParseRecipe(*ParseJson(R"([{"op":"filter_rows","params":{"expr":"a > 100"}},
      {"op":"dedupe"}])"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(StepIsRowWise(r->steps[0]));
  auto out = ApplyRecipe(*r, t, {}, nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->table.num_rows, 0);
  Table rows = t;
  ASSERT_TRUE(ApplyFitted(*r, out->fitted, rows, {}).ok());
  EXPECT_EQ(rows.num_rows, 4);  // serving never drops rows
  auto ff = ParseRecipe(*ParseJson(R"([{"op":"impute","params":{"columns":["a"],"strategy":"forward_fill"}}])"));
  auto fo = ApplyRecipe(*ff, t, {}, nullptr);
  ASSERT_TRUE(fo.ok());
  EXPECT_EQ(fo->table.columns[0].f64[1], 1.0);
  Table one = TakeRows(t, {3});
  ASSERT_TRUE(ApplyFitted(*ff, fo->fitted, one, {}).ok());
  EXPECT_EQ(one.columns[0].f64[0], 3.0);  // the last value seen in training
}

TEST(RecipeApply, MissingColumnAtApplyTimeListsColumnsAtThatPoint) {
  Table t = TableFromJson(*ParseJson(R"({"columns":[["a","integer"],["b","integer"]],"rows":[[1,2]]})"));
  auto r = ParseRecipe(*ParseJson(R"([{"op":"drop_columns","params":{"columns":["b"]}},
      {"op":"scale_zscore","params":{"columns":["b"]}}])"));
  ASSERT_TRUE(r.ok());
  auto out = ApplyRecipe(*r, t, {}, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().details()[0].field, "steps[1].params.columns[0]");
  EXPECT_NE(out.status().message().find("available: a"), std::string::npos) << out.status().message();
}

TEST(RecipeApply, MalformedTableIsRefused) {
  Table t = TableFromJson(*ParseJson(R"({"columns":[["s","string"]],"rows":[["x"]]})"));
  t.columns[0].codes[0] = 7;  // outside the dictionary
  auto r = ParseRecipe(*ParseJson(R"([{"op":"trim"}])"));
  EXPECT_FALSE(ApplyRecipe(*r, t, {}, nullptr).ok());
}

}  // namespace
}  // namespace lathe
