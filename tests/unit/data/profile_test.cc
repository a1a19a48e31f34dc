#include "data/profile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset_file.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using lathe::testing::ScratchDir;

Column IntCol(const std::string& name, const std::vector<int64_t>& v, std::vector<uint8_t> valid = {}) {
  Column c;
  c.name = name;
  c.type = ColumnType::kInt64;
  c.i64 = v;
  c.valid = valid.empty() ? std::vector<uint8_t>(v.size(), 1) : valid;
  return c;
}

Column FloatCol(const std::string& name, const std::vector<double>& v) {
  Column c;
  c.name = name;
  c.type = ColumnType::kFloat64;
  c.f64 = v;
  c.valid.assign(v.size(), 1);
  return c;
}

// Strings; "<NA>" marks a missing value.
Column StrCol(const std::string& name, const std::vector<std::string>& v) {
  Column c;
  c.name = name;
  c.type = ColumnType::kString;
  std::unordered_map<std::string, int32_t> index;
  for (const std::string& s : v) {
    if (s == "<NA>") {
      c.valid.push_back(0);
      c.codes.push_back(0);
      continue;
    }
    c.valid.push_back(1);
    auto [it, inserted] = index.try_emplace(s, static_cast<int32_t>(c.dict.size()));
    if (inserted) c.dict.push_back(s);
    c.codes.push_back(it->second);
  }
  return c;
}

Table MakeTable(std::vector<Column> cols) {
  Table t;
  t.num_rows = cols.empty() ? 0 : static_cast<int64_t>(cols[0].valid.size());
  t.columns = std::move(cols);
  return t;
}

Json Profile(const Table& t, ProfileOptions o = {}) {
  auto r = ProfileTable(t, o, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Json();
}

const Json& Col(const Json& p, const std::string& name) {
  for (const Json& c : p["columns"]) {
    if (c["name"] == name) return c;
  }
  static Json none;
  ADD_FAILURE() << "no column " << name;
  return none;
}

bool HasKind(const Json& col, const std::string& kind) {
  for (const Json& k : col["semantic_kinds"]) {
    if (k == kind) return true;
  }
  return false;
}

bool HasWarning(const Json& p, const std::string& kind, const std::string& column) {
  for (const Json& w : p["warnings"]) {
    if (w["kind"] != kind) continue;
    if (column.empty()) return true;
    for (const Json& c : w["columns"]) {
      if (c == column) return true;
    }
  }
  return false;
}

double PairValue(const Json& assoc, const std::string& a, const std::string& b) {
  for (const Json& p : assoc["pairs"]) {
    if ((p["columns"][0] == a && p["columns"][1] == b) || (p["columns"][0] == b && p["columns"][1] == a)) {
      return p["value"].get<double>();
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Constants below were computed with numpy / pandas (np.quantile default 'linear', std ddof=1, corrcoef;
// Cramér's V from the uncorrected chi-square of pd.crosstab).
Table SmallTable() {
  double nan = std::numeric_limits<double>::quiet_NaN();
  return MakeTable({IntCol("x", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}),
                    FloatCol("y", {1, 3, 2, 5, 4, 6, 8, 7, 10, 9}),
                    FloatCol("z", {2.5, -1, 0, 7, 3.25, nan, 1, 0, 4, -2}),
                    StrCol("a", {"p", "p", "p", "q", "q", "q", "r", "r", "r", "r"}),
                    StrCol("b", {"u", "u", "v", "v", "v", "w", "w", "w", "w", "u"})});
}

TEST(ProfileTest, NumericStatisticsMatchNumpy) {
  Json p = Profile(SmallTable());
  EXPECT_EQ(p["rows"], 10);
  EXPECT_EQ(p["num_columns"], 5);
  const Json& x = Col(p, "x");
  EXPECT_EQ(x["type"], "integer");
  EXPECT_EQ(x["count"], 10);
  EXPECT_EQ(x["missing"], 0);
  EXPECT_EQ(x["distinct"], 10);
  EXPECT_FALSE(x["distinct_approximate"].get<bool>());
  EXPECT_EQ(x["min"], 1);
  EXPECT_EQ(x["max"], 10);
  EXPECT_DOUBLE_EQ(x["mean"].get<double>(), 5.5);
  EXPECT_NEAR(x["std"].get<double>(), 3.0276503540974917, 1e-12);
  const double want[] = {1.09, 1.45, 3.25, 5.5, 7.75, 9.55, 9.91};
  const char* names[] = {"p1", "p5", "p25", "p50", "p75", "p95", "p99"};
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(x["quantiles"][names[i]].get<double>(), want[i], 1e-12) << names[i];
  EXPECT_FALSE(x["quantiles_approximate"].get<bool>());
  // Integers 1..10 with 20 bins: one bin per value.
  ASSERT_EQ(x["histogram"]["bins"].size(), 10u);
  for (const Json& b : x["histogram"]["bins"]) EXPECT_EQ(b["count"], 1);

  const Json& z = Col(p, "z");
  EXPECT_EQ(z["count"], 10);  // NaN is a present value
  EXPECT_EQ(z["nan"], 1);
  EXPECT_EQ(z["zeros"], 2);
  EXPECT_EQ(z["negatives"], 2);
  EXPECT_EQ(z["distinct"], 9);  // 8 distinct numbers + NaN
  EXPECT_NEAR(z["mean"].get<double>(), 1.6388888888888888, 1e-12);
  EXPECT_NEAR(z["std"].get<double>(), 2.8204363334617413, 1e-12);
  const double zq[] = {-1.92, -1.6, 0.0, 1.0, 3.25, 5.8, 6.76};
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(z["quantiles"][names[i]].get<double>(), zq[i], 1e-9) << names[i];
  int64_t hist_total = 0;
  for (const Json& b : z["histogram"]["bins"]) hist_total += b["count"].get<int64_t>();
  EXPECT_EQ(hist_total, 9);
  EXPECT_EQ(z["histogram"]["bins"].size(), 20u);
  EXPECT_DOUBLE_EQ(z["histogram"]["bins"][0]["lo"].get<double>(), -2.0);
  EXPECT_DOUBLE_EQ(z["histogram"]["bins"][19]["hi"].get<double>(), 7.0);

  const Json& a = Col(p, "a");
  EXPECT_EQ(a["distinct"], 3);
  EXPECT_EQ(a["top_values"][0]["value"], "r");
  EXPECT_EQ(a["top_values"][0]["count"], 4);
  EXPECT_EQ(a["length"]["min"], 1);
  EXPECT_EQ(a["length"]["max"], 1);
  EXPECT_EQ(a["histogram"]["kind"], "top_values");
  EXPECT_EQ(a["histogram"]["other"], 0);
}

TEST(ProfileTest, PearsonAndCramersVMatchPandas) {
  Json p = Profile(SmallTable());
  const Json& pearson = p["correlations"]["pearson"];
  EXPECT_NEAR(PairValue(pearson, "x", "y"), 0.9515151515151514, 1e-12);
  EXPECT_NEAR(PairValue(pearson, "x", "z"), -0.1735721466742307, 1e-12);
  ASSERT_TRUE(pearson.contains("matrix"));
  EXPECT_EQ(pearson["matrix"].size(), 3u);
  EXPECT_DOUBLE_EQ(pearson["matrix"][0][0].get<double>(), 1.0);
  const Json& cv = p["correlations"]["cramers_v"];
  EXPECT_NEAR(PairValue(cv, "a", "b"), 0.60380736442456, 1e-12);
  EXPECT_TRUE(HasWarning(p, "high_correlation", "x"));
  EXPECT_FALSE(HasWarning(p, "high_correlation", "z"));
}

TEST(ProfileTest, DatasetFileGivesTheSameNumbersAsTheTable) {
  ScratchDir dir;
  Table t = SmallTable();
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("s.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("s.lcol"));
  ASSERT_TRUE(f.ok());
  auto r = ProfileDataset(**f, {}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Json a = *r, b = Profile(t);
  EXPECT_GT(a["file_bytes"].get<int64_t>(), 0);
  a.erase("file_bytes");
  b.erase("file_bytes");
  EXPECT_EQ(a["columns"], b["columns"]);
  EXPECT_NEAR(PairValue(a["correlations"]["pearson"], "x", "z"), -0.1735721466742307, 1e-12);
  EXPECT_NEAR(PairValue(a["correlations"]["cramers_v"], "a", "b"), 0.60380736442456, 1e-12);
}

TEST(ProfileTest, SemanticKindsPositiveAndNegative) {
  const int n = 40;
  std::vector<std::string> email, phone, idcn, ssn, url, text, code, yn, words, fake_email, bad_id;
  std::vector<int64_t> ids, constant;
  for (int i = 0; i < n; ++i) {
    email.push_back("user" + std::to_string(i) + "@example.com");
    phone.push_back(i % 2 ? "+1 (555) 010-" + std::to_string(1000 + i) : "138" + std::to_string(10000000 + i));
    idcn.push_back(i % 2 ? "11010519491231002X" : "440524198001010013");
    ssn.push_back("123-45-" + std::to_string(1000 + i));
    url.push_back("https://example.org/item/" + std::to_string(i));
    text.push_back("the quick brown fox number " + std::to_string(i) + " jumps over the lazy dog");
    code.push_back("CUST-" + std::to_string(100000 + i));
    yn.push_back(i % 3 ? "Y" : "N");
    words.push_back(i % 2 ? "apple" : "banana");
    fake_email.push_back("user" + std::to_string(i) + "@localhost");
    bad_id.push_back("110105194912310021");  // checksum digit wrong (should be X)
    ids.push_back(1000 + 7 * i);
    constant.push_back(5);
  }
  Table t = MakeTable({StrCol("email", email), StrCol("phone", phone), StrCol("idcn", idcn), StrCol("ssn", ssn),
                       StrCol("url", url), StrCol("text", text), StrCol("code", code), StrCol("yn", yn),
                       StrCol("words", words), StrCol("fake_email", fake_email), StrCol("bad_id", bad_id),
                       IntCol("id", ids), IntCol("constant", constant)});
  Json p = Profile(t);
  EXPECT_TRUE(HasKind(Col(p, "email"), "email"));
  EXPECT_TRUE(HasKind(Col(p, "phone"), "phone"));
  EXPECT_TRUE(HasKind(Col(p, "idcn"), "id_card"));
  EXPECT_TRUE(HasKind(Col(p, "ssn"), "id_card"));
  EXPECT_TRUE(HasKind(Col(p, "url"), "url"));
  EXPECT_TRUE(HasKind(Col(p, "text"), "free_text"));
  EXPECT_TRUE(HasKind(Col(p, "code"), "identifier"));
  EXPECT_TRUE(HasKind(Col(p, "yn"), "boolean_like"));
  EXPECT_TRUE(HasKind(Col(p, "id"), "identifier"));
  EXPECT_TRUE(HasKind(Col(p, "constant"), "constant"));
  EXPECT_TRUE(HasWarning(p, "constant", "constant"));
  EXPECT_TRUE(HasWarning(p, "identifier", "id"));
  // Negatives.
  EXPECT_TRUE(Col(p, "words")["semantic_kinds"].empty()) << Col(p, "words")["semantic_kinds"];
  EXPECT_FALSE(HasKind(Col(p, "fake_email"), "email"));
  EXPECT_FALSE(HasKind(Col(p, "bad_id"), "id_card"));
  EXPECT_FALSE(HasKind(Col(p, "email"), "phone"));
  EXPECT_FALSE(HasKind(Col(p, "text"), "identifier"));
  EXPECT_FALSE(HasKind(Col(p, "url"), "free_text"));
  EXPECT_FALSE(HasKind(Col(p, "constant"), "identifier"));
  EXPECT_FALSE(HasKind(Col(p, "yn"), "identifier"));
}

TEST(ProfileTest, NearConstantHighCardinalityAndHighMissing) {
  std::vector<std::string> mostly, many, sparse;
  for (int i = 0; i < 3000; ++i) {
    mostly.push_back(i == 7 ? "other" : "same");
    many.push_back("value number " + std::to_string(i % 2500));
    sparse.push_back(i % 3 == 0 ? "x" : "<NA>");
  }
  Json p = Profile(MakeTable({StrCol("mostly", mostly), StrCol("many", many), StrCol("sparse", sparse)}));
  EXPECT_TRUE(HasKind(Col(p, "mostly"), "near_constant"));
  EXPECT_FALSE(HasKind(Col(p, "mostly"), "constant"));
  EXPECT_TRUE(HasWarning(p, "near_constant", "mostly"));
  EXPECT_TRUE(HasKind(Col(p, "many"), "high_cardinality"));
  EXPECT_FALSE(HasKind(Col(p, "many"), "identifier"));
  EXPECT_EQ(Col(p, "sparse")["missing"], 2000);
  EXPECT_NEAR(Col(p, "sparse")["missing_fraction"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_TRUE(HasWarning(p, "high_missing", "sparse"));
  EXPECT_TRUE(HasKind(Col(p, "sparse"), "constant"));
}

TEST(ProfileTest, EmptyDatasetOneRowAllMissingAndNonFinite) {
  Json empty = Profile(MakeTable({IntCol("a", {}), StrCol("s", {})}));
  EXPECT_EQ(empty["rows"], 0);
  EXPECT_EQ(Col(empty, "a")["count"], 0);
  EXPECT_TRUE(Col(empty, "a")["mean"].is_null());
  EXPECT_TRUE(Col(empty, "a")["quantiles"]["p50"].is_null());
  EXPECT_EQ(empty["duplicate_rows"], 0);

  Json one = Profile(MakeTable({IntCol("a", {42}), StrCol("s", {"hi"})}));
  EXPECT_EQ(Col(one, "a")["mean"], 42.0);
  EXPECT_TRUE(Col(one, "a")["std"].is_null());
  EXPECT_EQ(Col(one, "a")["quantiles"]["p99"], 42.0);
  EXPECT_TRUE(HasKind(Col(one, "a"), "constant"));

  Json miss = Profile(MakeTable({IntCol("m", {0, 0, 0}, {0, 0, 0}), StrCol("s", {"<NA>", "<NA>", "<NA>"})}));
  EXPECT_EQ(Col(miss, "m")["missing"], 3);
  EXPECT_EQ(Col(miss, "m")["distinct"], 0);
  EXPECT_TRUE(Col(miss, "m")["min"].is_null());
  EXPECT_TRUE(Col(miss, "s")["length"]["min"].is_null());
  EXPECT_TRUE(HasWarning(miss, "high_missing", "m"));
  EXPECT_EQ(miss["duplicate_rows"], 2);

  double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  Json nf = Profile(MakeTable({FloatCol("f", {1, inf, -inf, nan, 3}), IntCol("k", {1, 2, 3, 4, 5})}));
  const Json& f = Col(nf, "f");
  EXPECT_EQ(f["infinite"], 2);
  EXPECT_EQ(f["nan"], 1);
  EXPECT_DOUBLE_EQ(f["mean"].get<double>(), 2.0);  // finite values only
  EXPECT_EQ(f["min"].get<double>(), -inf);
  EXPECT_EQ(f["max"].get<double>(), inf);
  EXPECT_EQ(f["quantiles"]["p1"].get<double>(), -inf);
  int64_t total = 0;
  for (const Json& b : f["histogram"]["bins"]) total += b["count"].get<int64_t>();
  EXPECT_EQ(total, 2);
  Json back = Json::parse(nf.dump());  // non-finite numbers serialise as null
  EXPECT_TRUE(Col(back, "f")["min"].is_null());
}

TEST(ProfileTest, DuplicateRowsTargetLeakageAndClassImbalance) {
  std::vector<int64_t> feature, label, copy;
  std::vector<std::string> cls;
  for (int i = 0; i < 200; ++i) {
    feature.push_back(i % 50);
    label.push_back(i % 25 == 0 ? 1 : 0);
    copy.push_back(i % 25 == 0 ? 1 : 0);
    cls.push_back(i % 25 == 0 ? "rare" : "common");
  }
  Json p = Profile(MakeTable({IntCol("feature", feature), IntCol("label", label), IntCol("leak", copy),
                              StrCol("cls", cls)}),
                   ProfileOptions{"label"});
  EXPECT_EQ(p["target"], "label");
  EXPECT_EQ(p["duplicate_rows"], 150);  // 50 distinct rows
  EXPECT_FALSE(p["duplicate_rows_approximate"].get<bool>());
  EXPECT_TRUE(HasWarning(p, "duplicate_rows", ""));
  EXPECT_TRUE(HasWarning(p, "target_leakage", "leak"));
  EXPECT_TRUE(HasWarning(p, "target_leakage", "cls"));  // Cramér's V = 1 with the integer target
  EXPECT_FALSE(HasWarning(p, "target_leakage", "feature"));
  EXPECT_TRUE(HasWarning(p, "class_imbalance", "label"));
  EXPECT_NEAR(PairValue(p["correlations"]["cramers_v"], "cls", "label"), 1.0, 1e-12);

  ProfileOptions bad;
  bad.target = "nope";
  auto r = ProfileTable(MakeTable({IntCol("a", {1})}), bad, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  ProfileOptions bins;
  bins.histogram_bins = 0;
  EXPECT_FALSE(ProfileTable(MakeTable({IntCol("a", {1})}), bins, nullptr).ok());
}

TEST(ProfileTest, SketchesTakeOverAboveTheExactLimit) {
  const int n = 200000;
  std::vector<double> v(n);
  std::vector<int64_t> k(n);
  std::vector<std::string> s(n);
  for (int i = 0; i < n; ++i) {
    v[static_cast<size_t>(i)] = static_cast<double>((i * 7919LL) % n);  // a permutation of 0..n-1
    k[static_cast<size_t>(i)] = i % 7;
    s[static_cast<size_t>(i)] = "s" + std::to_string(i % 50000);
  }
  ScratchDir dir;
  Table t = MakeTable({FloatCol("v", v), IntCol("k", k), StrCol("s", s)});
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("big.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("big.lcol"));
  ASSERT_TRUE(f.ok());
  ProfileOptions o;
  o.exact_distinct_limit = 1000;
  for (int threads : {1, 2}) {
    o.num_threads = threads;
    auto r = ProfileDataset(**f, o, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const Json& vc = Col(*r, "v");
    EXPECT_TRUE(vc["distinct_approximate"].get<bool>());
    EXPECT_NEAR(vc["distinct"].get<double>(), n, 0.03 * n);
    EXPECT_TRUE(vc["quantiles_approximate"].get<bool>());
    EXPECT_NEAR(vc["quantiles"]["p50"].get<double>(), 0.5 * (n - 1), 0.005 * n);
    EXPECT_NEAR(vc["quantiles"]["p1"].get<double>(), 0.01 * (n - 1), 0.005 * n);
    EXPECT_NEAR(vc["quantiles"]["p99"].get<double>(), 0.99 * (n - 1), 0.005 * n);
    EXPECT_NEAR(vc["mean"].get<double>(), (n - 1) / 2.0, 1e-6);
    int64_t total = 0;
    for (const Json& b : vc["histogram"]["bins"]) total += b["count"].get<int64_t>();
    EXPECT_EQ(total, n);  // sampled sketches are scaled back to the exact count
    EXPECT_EQ(vc["histogram"]["bins"].front()["lo"].get<double>(), 0.0);  // the exact range, not the sample's
    EXPECT_EQ(vc["histogram"]["bins"].back()["hi"].get<double>(), n - 1.0);
    // Equal-width bins over a permutation hold ~n/bins values each, sampled or not.
    const Json& bins = vc["histogram"]["bins"];
    for (const Json& b : bins) {
      EXPECT_NEAR(b["count"].get<double>(), static_cast<double>(n) / bins.size(), 0.1 * n / bins.size());
    }
    const Json& sc = Col(*r, "s");
    EXPECT_TRUE(sc["distinct_approximate"].get<bool>());
    EXPECT_NEAR(sc["distinct"].get<double>(), 50000, 1500);
    const Json& kc = Col(*r, "k");  // few values: stays exact
    EXPECT_FALSE(kc["distinct_approximate"].get<bool>());
    EXPECT_EQ(kc["distinct"], 7);
    EXPECT_EQ(kc["quantiles"]["p50"], 3.0);
    EXPECT_EQ((*r)["duplicate_rows"], 0);
  }
}

// Large datasets estimate Pearson r from a deterministic quarter of the rows: close to the exact value, the
// same on every run and thread count, and flagged.
TEST(ProfileTest, PearsonOnASampleOfLargeDatasets) {
  const int n = 200000;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> x(n), y(n), z(n);
  for (int i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = g(rng);
    y[static_cast<size_t>(i)] = 0.6 * x[static_cast<size_t>(i)] + 0.8 * g(rng);  // r = 0.6
    z[static_cast<size_t>(i)] = g(rng);                                          // r = 0
  }
  Table t = MakeTable({FloatCol("x", x), FloatCol("y", y), FloatCol("z", z)});
  ProfileOptions exact, sampled;
  sampled.correlation_exact_rows = 1000;
  auto e = ProfileTable(t, exact, nullptr);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_FALSE((*e)["correlations"]["pearson"]["sampled"].get<bool>());
  Json first;
  for (int threads : {1, 2}) {
    sampled.num_threads = threads;
    auto s = ProfileTable(t, sampled, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    const Json& ps = (*s)["correlations"]["pearson"];
    EXPECT_TRUE(ps["sampled"].get<bool>());
    EXPECT_NEAR(PairValue(ps, "x", "y"), PairValue((*e)["correlations"]["pearson"], "x", "y"), 0.01);
    EXPECT_NEAR(PairValue(ps, "x", "y"), 0.6, 0.01);
    EXPECT_NEAR(ps["matrix"][0][2].get<double>(), 0.0, 0.02);
    if (first.is_null()) first = ps;
    // The same rows on every run and thread count (sums may differ in the last bits by merge order).
    EXPECT_EQ(ps["pairs"][0]["n"], first["pairs"][0]["n"]);
    EXPECT_NEAR(PairValue(ps, "x", "y"), PairValue(first, "x", "y"), 1e-12);
  }
}

// Equal JSON, except that non-integer numbers may differ in the last bits (sums merged in another order, a
// different Pearson shift).
void ExpectSameProfile(const Json& a, const Json& b, const std::string& path) {
  if (a.is_number_float() || b.is_number_float()) {
    ASSERT_TRUE(a.is_number() && b.is_number()) << path << ": " << a << " vs " << b;
    if (a.get<double>() == b.get<double>()) return;  // also +-inf
    EXPECT_NEAR(a.get<double>(), b.get<double>(), 1e-12 * std::max(1.0, std::fabs(b.get<double>()))) << path;
  } else if (a.is_object() && b.is_object()) {
    EXPECT_EQ(a.size(), b.size()) << path;
    for (auto it = b.begin(); it != b.end(); ++it) {
      ASSERT_TRUE(a.contains(it.key())) << path << "." << it.key();
      ExpectSameProfile(a[it.key()], it.value(), path + "." + it.key());
    }
  } else if (a.is_array() && b.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << path;
    for (size_t i = 0; i < a.size(); ++i) ExpectSameProfile(a[i], b[i], path + "[" + std::to_string(i) + "]");
  } else {
    EXPECT_EQ(a, b) << path;
  }
}

// The file path counts exact values through the storage's ordinals (decimal mantissas of any scale, integer
// offsets, datetime steps) and direct-address tables; the table path sorts 64-bit keys. Both must give the
// same profile, including columns whose chunks switch encoding or scale, negatives, -0.0, NaN, infinities and
// nulls, and when the exact limit is crossed while counting in a table.
TEST(ProfileTest, StorageOrdinalsAndDenseTablesMatchTheSortPath) {
  const size_t n = 150000;  // three row groups
  const size_t half = 70000;
  std::mt19937_64 rng(11);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::normal_distribution<double> g(0, 3);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<int64_t> small(n), wide(n), stepped(n), day(n), pool(5000);
  std::vector<double> dec_a(n), dec_b(n), plain(n), mixed(n);
  std::vector<uint8_t> small_valid(n), flag(n);
  for (int64_t& v : pool) v = uniform(-1000000000000, 1000000000000);
  for (size_t i = 0; i < n; ++i) {
    small[i] = uniform(-20, 20);
    small_valid[i] = uniform(0, 99) >= 3;
    wide[i] = pool[static_cast<size_t>(uniform(0, 4999))];
    stepped[i] = 1000 * uniform(-5000, 5000);
    day[i] = int64_t{86400000000} * uniform(16000, 19000);
    // Two decimals, then four (and the other way round): chunk scales differ.
    const double two = static_cast<double>(uniform(-5000, 5000)) / 100,
                 four = static_cast<double>(uniform(-500000, 500000)) / 10000;
    dec_a[i] = i < half ? two : four;
    // Narrower, so that even at four decimals the range fits a direct-address table (then scale 2 is scaled
    // up).
    const double two_b = static_cast<double>(uniform(-2000, 2000)) / 100,
                 four_b = static_cast<double>(uniform(-200000, 200000)) / 10000;
    dec_b[i] = i < half ? four_b : two_b;
    if (i % 1000 == 7) dec_b[i] = -0.0;
    plain[i] = g(rng);
    if (i % 997 == 3) plain[i] = nan;
    if (i % 1999 == 5) plain[i] = i % 2 ? inf : -inf;
    mixed[i] = i < half ? two : plain[i];  // decimal chunks, then plain ones
    flag[i] = static_cast<uint8_t>(uniform(0, 1));
  }
  Column dt = IntCol("day", day);
  dt.type = ColumnType::kDatetime;
  Column fl;
  fl.name = "flag";
  fl.type = ColumnType::kBool;
  fl.b = flag;
  fl.valid.assign(n, 1);
  Column pl = FloatCol("plain", plain);
  for (size_t i = 0; i < n; i += 13) pl.valid[i] = 0;
  Table t =
      MakeTable({IntCol("small", small, small_valid), IntCol("wide", wide), IntCol("stepped", stepped), dt,
                 FloatCol("dec_a", dec_a), FloatCol("dec_b", dec_b), pl, FloatCol("mixed", mixed), fl});
  ScratchDir dir;
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("o.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("o.lcol"));
  ASSERT_TRUE(f.ok());
  for (int64_t limit : {int64_t{100000}, int64_t{30}}) {
    for (int threads : {1, 2}) {
      ProfileOptions o;
      o.exact_distinct_limit = limit;
      o.num_threads = threads;
      auto a = ProfileDataset(**f, o, nullptr);
      auto b = ProfileTable(t, o, nullptr);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      if (limit > 1000) {
        Json ja = *a, jb = *b;
        ja.erase("file_bytes");
        jb.erase("file_bytes");
        ExpectSameProfile(ja["columns"], jb["columns"], "columns");
        ExpectSameProfile(ja["correlations"], jb["correlations"], "correlations");
        // Without room for dense tables (the memory budget spent) the file path sorts, with the same result.
        ProfileOptions no_dense = o;
        no_dense.max_dense_table_bytes = 0;
        auto c = ProfileDataset(**f, no_dense, nullptr);
        ASSERT_TRUE(c.ok()) << c.status().ToString();
        Json jc = *c;
        jc.erase("file_bytes");
        ExpectSameProfile(ja["columns"], jc["columns"], "columns without dense tables");
        // An independent check of the exact counts.
        std::map<int64_t, int64_t> counts;
        for (size_t i = 0; i < n; ++i) {
          if (small_valid[i]) ++counts[small[i]];
        }
        const Json& sc = Col(*a, "small");
        EXPECT_EQ(sc["distinct"].get<size_t>(), counts.size());
        EXPECT_EQ(sc["min"], counts.begin()->first);
        EXPECT_EQ(sc["max"], counts.rbegin()->first);
        int64_t best = 0;
        for (const auto& [v, c] : counts) best = std::max(best, c);
        EXPECT_EQ(sc["top_values"][0]["count"], best);
        std::map<double, int64_t> dcounts;
        for (double v : dec_b) ++dcounts[v == 0 ? 0.0 : v];
        const Json& dc = Col(*a, "dec_b");
        EXPECT_FALSE(dc["distinct_approximate"].get<bool>());
        EXPECT_EQ(dc["distinct"].get<size_t>(), dcounts.size());
        EXPECT_EQ(dc["min"].get<double>(), dcounts.begin()->first);
        EXPECT_EQ(dc["max"].get<double>(), dcounts.rbegin()->first);
        EXPECT_EQ(Col(*a, "plain")["nan"], Col(*b, "plain")["nan"]);
      } else {
        // Past the limit: the same columns turn approximate, with the same exact range and counts.
        for (const char* name :
             {"small", "wide", "stepped", "day", "dec_a", "dec_b", "plain", "mixed", "flag"}) {
          const Json& ca = Col(*a, name);
          const Json& cb = Col(*b, name);
          EXPECT_EQ(ca["distinct_approximate"], cb["distinct_approximate"]) << name;
          for (const char* k : {"count", "missing", "min", "max", "zeros", "negatives"})
            EXPECT_EQ(ca[k], cb[k]) << name << " " << k;
          EXPECT_NEAR(ca["distinct"].get<double>(), cb["distinct"].get<double>(),
                      0.05 * cb["distinct"].get<double>())
              << name;
        }
        EXPECT_TRUE(Col(*a, "small")["distinct_approximate"].get<bool>());  // 41 values > 30
        EXPECT_FALSE(Col(*a, "flag")["distinct_approximate"].get<bool>());
      }
    }
  }
}

TEST(ProfileTest, CancelStopsTheProfile) {
  auto r = ProfileTable(SmallTable(), {}, [] { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
}

TEST(ProfileTest, InconsistentTableIsAnError) {
  Table t = SmallTable();
  t.columns[0].i64.pop_back();
  auto r = ProfileTable(t, {}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lathe
