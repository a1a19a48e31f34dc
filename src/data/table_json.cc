#include "data/table_json.h"

#include <cmath>

#include "data/value_parse.h"

namespace lathe {

Json TableRowsToJson(const Table& t) {
  Json rows = Json::array();
  for (int64_t r = 0; r < t.num_rows; ++r) {
    size_t i = static_cast<size_t>(r);
    Json row = Json::object();
    for (const Column& c : t.columns) {
      if (i >= c.valid.size() || !c.valid[i]) {
        row[c.name] = nullptr;
        continue;
      }
      switch (c.type) {
        case ColumnType::kInt64: row[c.name] = c.i64[i]; break;
        case ColumnType::kFloat64: row[c.name] = std::isfinite(c.f64[i]) ? Json(c.f64[i]) : Json(nullptr); break;
        case ColumnType::kBool: row[c.name] = c.b[i] != 0; break;
        case ColumnType::kDatetime: row[c.name] = FormatDatetimeMicros(c.i64[i]); break;
        case ColumnType::kString: row[c.name] = std::string(c.StringAt(i)); break;
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace lathe
