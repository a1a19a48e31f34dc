#include "ml/preprocess.h"

#include <cmath>
#include <unordered_map>

#include "data/table_ops.h"
#include "data/value_parse.h"

namespace lathe::ml {

Result<Preprocess> Preprocess::Parse(const Json& j) {
  Preprocess p;
  if (j.is_null() || (j.is_object() && j.empty())) return p;
  if (!j.is_object() || !j.contains("inputs") || !j.contains("recipes")) {
    return Status::DataLoss("model bundle: malformed preprocess section");
  }
  for (const auto& in : j["inputs"]) {
    auto t = ParseColumnType(in.value("type", std::string()));
    if (!t.ok()) return Status::DataLoss("model bundle: preprocess input has an unknown type");
    p.inputs_.emplace_back(in.value("name", std::string()), *t);
  }
  for (const auto& r : j["recipes"]) {
    auto recipe = ParseRecipe(r.value("steps", Json::array()));
    if (!recipe.ok()) return recipe.TakeStatus().Annotate("model bundle: preprocess recipe");
    p.recipes_.emplace_back(std::move(recipe).value(), r.value("fitted", Json::object()));
  }
  return p;
}

Json Preprocess::Signature() const {
  Json inputs = Json::array();
  for (const auto& [name, type] : inputs_) inputs.push_back({{"name", name}, {"type", ColumnTypeName(type)}});
  return inputs;
}

Result<Table> Preprocess::Apply(const Json& instances, const std::string& target, const std::string& secret_salt) const {
  ASSIGN_OR_RETURN(Table t, InstancesToTable(instances, inputs_));
  RETURN_IF_ERROR(ApplyToTable(t, target, secret_salt));
  return t;
}

Status Preprocess::ApplyToTable(Table& t, const std::string& target, const std::string& secret_salt) const {
  // The target is never sent at serving time: present it as all missing.
  bool has_target = false;
  for (auto& c : t.columns) {
    if (c.name == target) {
      std::fill(c.valid.begin(), c.valid.end(), 0);
      has_target = true;
    }
  }
  if (!has_target) {
    for (const auto& [name, type] : inputs_) {
      if (name == target) t.columns.push_back(NullColumn(name, type, static_cast<size_t>(t.num_rows)));
    }
  }
  ApplyOptions opt;
  opt.secret_salt = secret_salt;
  for (const auto& [recipe, fitted] : recipes_) RETURN_IF_ERROR(ApplyFitted(recipe, fitted, t, opt));
  return Status::Ok();
}

Result<Table> InstancesToTable(const Json& instances, const std::vector<std::pair<std::string, ColumnType>>& schema) {
  if (!instances.is_array()) {
    return Status::InvalidArgument("instances must be an array of objects")
        .WithDetail(ErrorDetail::Field("instances", "must be an array of objects"));
  }
  const size_t n = instances.size();
  Table t;
  t.num_rows = static_cast<int64_t>(n);
  std::vector<std::unordered_map<std::string, int32_t>> dicts(schema.size());
  for (const auto& [name, type] : schema) t.columns.push_back(NullColumn(name, type, n));
  for (size_t i = 0; i < n; ++i) {
    const Json& obj = instances[i];
    const std::string where = "instances[" + std::to_string(i) + "]";
    if (!obj.is_object()) {
      return Status::InvalidArgument(where + " must be an object").WithDetail(ErrorDetail::Field(where, "must be an object"));
    }
    for (size_t k = 0; k < schema.size(); ++k) {
      Column& c = t.columns[k];
      auto it = obj.find(c.name);
      if (it == obj.end() || it->is_null()) continue;
      const Json& v = *it;
      const std::string field = where + "." + c.name;
      auto bad = [&](const char* want) {
        return Status::InvalidArgument(field + " must be " + want).WithDetail(ErrorDetail::Field(field, std::string("must be ") + want));
      };
      switch (c.type) {
        case ColumnType::kInt64:
          if (v.is_number_integer()) c.i64[i] = v.get<int64_t>();
          else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                   std::fabs(v.get<double>()) < 9.2e18) c.i64[i] = static_cast<int64_t>(v.get<double>());
          else return bad("an integer");
          break;
        case ColumnType::kFloat64:
          if (!v.is_number()) return bad("a number");
          c.f64[i] = v.get<double>();
          break;
        case ColumnType::kBool:
          if (!v.is_boolean()) return bad("true or false");
          c.b[i] = v.get<bool>();
          break;
        case ColumnType::kDatetime: {
          int64_t micros = 0;
          if (!v.is_string() || !ParseDatetimeMicros(TrimBlanks(v.get<std::string>()), &micros)) {
            return bad("an ISO 8601 date or datetime");
          }
          c.i64[i] = micros;
          break;
        }
        case ColumnType::kString: {
          std::string s = v.is_string() ? v.get<std::string>() : v.dump();
          auto [pos, inserted] = dicts[k].emplace(s, static_cast<int32_t>(c.dict.size()));
          if (inserted) c.dict.push_back(s);
          c.codes[i] = pos->second;
          break;
        }
      }
      c.valid[i] = 1;
    }
  }
  return t;
}

}  // namespace lathe::ml
