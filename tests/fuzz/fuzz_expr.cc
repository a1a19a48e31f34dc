// Fuzz target: the expression language — parse, type-check and evaluate against a small typed table.
#include <cstdlib>

#include "data/expr.h"
#include "data/value_parse.h"

namespace {

lathe::Table SampleTable() {
  using namespace lathe;
  Table t;
  t.num_rows = 4;
  auto col = [&](const char* name, ColumnType type) -> Column& {
    Column c;
    c.name = name;
    c.type = type;
    c.valid = {1, 1, 0, 1};
    t.columns.push_back(std::move(c));
    return t.columns.back();
  };
  col("age", ColumnType::kInt64).i64 = {30, -5, 0, 9223372036854775807LL};
  col("score", ColumnType::kFloat64).f64 = {1.5, -0.0, 0, 1e308};
  col("ok", ColumnType::kBool).b = {1, 0, 0, 1};
  Column& s = col("name", ColumnType::kString);
  s.dict = {"ann@example.com", "", "Ünïcødé"};
  s.codes = {0, 1, 0, 2};
  int64_t d = 0;
  ParseDatetimeMicros("2024-02-29T12:00:00Z", &d);
  col("when", ColumnType::kDatetime).i64 = {d, 0, 0, -d};
  col("with space", ColumnType::kInt64).i64 = {1, 2, 3, 4};
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lathe;
  static const Table table = SampleTable();
  auto expr = ParseExpr(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!expr.ok()) {
    if (expr.status().code() != StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  auto type = CheckExpr(*expr, table);
  if (!type.ok()) {
    if (type.status().code() != StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  auto column = EvalExpr(*expr, table);
  if (column.ok() && column->size() != static_cast<size_t>(table.num_rows)) std::abort();
  (void)FilterRows(table, *expr);
  return 0;
}
