#include "data/table.h"

namespace lathe {

const char* ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kInt64: return "integer";
    case ColumnType::kFloat64: return "float";
    case ColumnType::kBool: return "boolean";
    case ColumnType::kString: return "string";
    case ColumnType::kDatetime: return "datetime";
  }
  return "string";
}

Result<ColumnType> ParseColumnType(std::string_view name) {
  if (name == "integer" || name == "int") return ColumnType::kInt64;
  if (name == "float" || name == "number") return ColumnType::kFloat64;
  if (name == "boolean" || name == "bool") return ColumnType::kBool;
  if (name == "string") return ColumnType::kString;
  if (name == "datetime" || name == "date") return ColumnType::kDatetime;
  return Status::InvalidArgument("unknown column type '" + std::string(name) +
                                 "'; expected integer, float, boolean, string or datetime");
}

double Column::NumericAt(size_t row) const {
  switch (type) {
    case ColumnType::kInt64: return static_cast<double>(i64[row]);
    case ColumnType::kDatetime: return static_cast<double>(i64[row]) / 1e6;
    case ColumnType::kFloat64: return f64[row];
    case ColumnType::kBool: return b[row] ? 1.0 : 0.0;
    case ColumnType::kString: return 0.0;
  }
  return 0.0;
}

int Table::FindColumn(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace lathe
