#include "data/quality.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <regex>
#include <unordered_set>

#include "data/expr.h"
#include "data/lcol_format.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

constexpr size_t kMaxRegexBytes = 1000;
constexpr size_t kMaxExamples = 5;
constexpr size_t kMaxAllowed = 10000;

Status ContractError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument("contract: " + field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

Result<double> BoundValue(const Json& v, const std::string& field) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    int64_t micros = 0;
    if (ParseDatetimeMicros(TrimBlanks(v.get<std::string>()), &micros)) return static_cast<double>(micros) / 1e6;
  }
  return ContractError(field, "must be a number or an ISO 8601 date");
}

std::string ValueText(const Column& c, size_t row) {
  if (!c.IsValid(row)) return "";
  switch (c.type) {
    case ColumnType::kString: return std::string(c.StringAt(row));
    case ColumnType::kInt64: return std::to_string(c.i64[row]);
    case ColumnType::kBool: return c.b[row] ? "true" : "false";
    case ColumnType::kDatetime: return FormatDatetimeMicros(c.i64[row]);
    case ColumnType::kFloat64: {
      char buf[64];
      int n = std::snprintf(buf, sizeof(buf), "%.17g", c.f64[row]);
      return std::string(buf, static_cast<size_t>(n));
    }
  }
  return "";
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t HashValue(const Column& c, size_t row) {
  switch (c.type) {
    case ColumnType::kString: return std::hash<std::string_view>{}(c.StringAt(row)) * 31 + 7;
    case ColumnType::kFloat64: {
      double v = c.f64[row] == 0.0 ? 0.0 : c.f64[row];
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof(bits));
      return Mix(bits);
    }
    case ColumnType::kBool: return Mix(c.b[row]);
    default: return Mix(static_cast<uint64_t>(c.i64[row]));
  }
}

struct Check {
  std::string rule;
  std::string column;  // "" for dataset rules
  int64_t failing = 0;
  Json examples = Json::array();
  std::string message;
  bool evaluated = true;

  void Fail(int64_t row, const std::string& value) {
    ++failing;
    if (examples.size() < kMaxExamples) examples.push_back({{"row", row}, {"value", value.substr(0, 200)}});
  }
};

struct ColumnState {
  const ColumnRule* rule = nullptr;
  int index = -1;  // in the file; -1 when missing
  Check* not_null = nullptr;
  Check* type = nullptr;
  Check* min = nullptr;
  Check* max = nullptr;
  Check* regex = nullptr;
  Check* allowed = nullptr;
  Check* unique = nullptr;
  std::optional<std::regex> re;
  std::unordered_set<std::string> allowed_set;
  std::unordered_set<uint64_t> seen;
};

}  // namespace

Result<Contract> ParseContract(const Json& j) {
  Contract c;
  if (!j.is_object()) return ContractError("contract", "must be an object");
  for (const auto& [key, value] : j.items()) {
    if (key == "columns") {
      if (!value.is_object()) return ContractError("contract.columns", "must be an object of column name to rules");
      for (const auto& [col, rules] : value.items()) {
        const std::string base = "contract.columns." + col;
        if (!rules.is_object()) return ContractError(base, "must be an object of rules");
        ColumnRule r;
        r.column = col;
        for (const auto& [rk, rv] : rules.items()) {
          const std::string field = base + "." + rk;
          if (rk == "required" || rk == "not_null" || rk == "unique") {
            if (!rv.is_boolean()) return ContractError(field, "must be true or false");
            (rk == "required" ? r.required : rk == "not_null" ? r.not_null : r.unique) = rv.get<bool>();
          } else if (rk == "type") {
            auto t = rv.is_string() ? ParseColumnType(rv.get<std::string>()) : Result<ColumnType>(Status::InvalidArgument(""));
            if (!t.ok()) return ContractError(field, "must be integer, float, boolean, string or datetime");
            r.type = *t;
          } else if (rk == "min") {
            ASSIGN_OR_RETURN(r.min, BoundValue(rv, field));
          } else if (rk == "max") {
            ASSIGN_OR_RETURN(r.max, BoundValue(rv, field));
          } else if (rk == "regex") {
            if (!rv.is_string() || rv.get<std::string>().empty() || rv.get<std::string>().size() > kMaxRegexBytes) {
              return ContractError(field, "must be a regular expression of 1-1000 characters");
            }
            try {
              std::regex test(rv.get<std::string>(), kWholeMatchRegexFlags);
            } catch (const std::regex_error& e) {
              return ContractError(field, std::string("is not a valid regular expression: ") + e.what());
            }
            r.regex = rv.get<std::string>();
          } else if (rk == "allowed") {
            if (!rv.is_array() || rv.empty() || rv.size() > kMaxAllowed) {
              return ContractError(field, "must be a non-empty array of at most 10000 values");
            }
            std::vector<std::string> values;
            for (const auto& a : rv) {
              if (a.is_string()) values.push_back(a.get<std::string>());
              else if (a.is_number() || a.is_boolean()) values.push_back(a.dump());
              else return ContractError(field, "must hold strings, numbers or booleans");
            }
            r.allowed = std::move(values);
          } else {
            return ContractError(field, "is not a known rule (required, not_null, type, min, max, regex, allowed, unique)");
          }
        }
        if (r.min && r.max && *r.min > *r.max) return ContractError(base + ".min", "is greater than max");
        c.columns.push_back(std::move(r));
      }
    } else if (key == "rows") {
      if (!value.is_object()) return ContractError("contract.rows", "must be an object with min and/or max");
      for (const auto& [rk, rv] : value.items()) {
        if ((rk != "min" && rk != "max") || !rv.is_number_integer() || rv.get<int64_t>() < 0) {
          return ContractError("contract.rows." + rk, "must be min or max with a non-negative integer");
        }
        (rk == "min" ? c.min_rows : c.max_rows) = rv.get<int64_t>();
      }
    } else if (key == "freshness") {
      if (!value.is_object() || !value.contains("column") || !value["column"].is_string() ||
          !value.contains("max_age_hours") || !value["max_age_hours"].is_number() ||
          value["max_age_hours"].get<double>() <= 0) {
        return ContractError("contract.freshness", "must be {\"column\": name, \"max_age_hours\": positive number}");
      }
      c.freshness_column = value["column"].get<std::string>();
      c.freshness_max_age_hours = value["max_age_hours"].get<double>();
    } else {
      return ContractError("contract." + key.substr(0, 40), "is not a known section (columns, rows, freshness)");
    }
  }
  return c;
}

Result<Json> CheckContract(const DatasetFile& file, const Contract& contract, int64_t now_micros) {
  std::vector<std::unique_ptr<Check>> checks;
  auto add = [&](std::string rule, std::string column) {
    checks.push_back(std::make_unique<Check>());
    checks.back()->rule = std::move(rule);
    checks.back()->column = std::move(column);
    return checks.back().get();
  };
  const auto& cols = file.columns();
  auto find = [&](const std::string& name) {
    for (size_t i = 0; i < cols.size(); ++i) {
      if (cols[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  std::vector<ColumnState> states;
  states.reserve(contract.columns.size());
  for (const auto& r : contract.columns) {
    ColumnState s;
    s.rule = &r;
    s.index = find(r.column);
    if (s.index < 0) {
      if (r.required) {
        Check* c = add("required", r.column);
        c->failing = 1;
        c->message = "column '" + r.column + "' is missing";
      }
      continue;
    }
    const ColumnType t = cols[static_cast<size_t>(s.index)].type;
    if (r.not_null) s.not_null = add("not_null", r.column);
    if (r.type) {
      Check* c = add("type", r.column);
      bool ok = t == *r.type || (*r.type == ColumnType::kFloat64 && t == ColumnType::kInt64);
      if (!ok) {
        c->failing = file.num_rows();
        c->message = std::string("column is ") + ColumnTypeName(t) + ", expected " + ColumnTypeName(*r.type);
      }
    }
    const bool numeric = t == ColumnType::kInt64 || t == ColumnType::kFloat64 || t == ColumnType::kDatetime ||
                         t == ColumnType::kBool;
    if (r.min) {
      s.min = add("min", r.column);
      if (!numeric) {
        s.min->failing = file.num_rows();
        s.min->message = std::string("min applies to numbers and datetimes; column is ") + ColumnTypeName(t);
        s.min = nullptr;
      }
    }
    if (r.max) {
      s.max = add("max", r.column);
      if (!numeric) {
        s.max->failing = file.num_rows();
        s.max->message = std::string("max applies to numbers and datetimes; column is ") + ColumnTypeName(t);
        s.max = nullptr;
      }
    }
    if (r.regex) {
      s.regex = add("regex", r.column);
      try {
        s.re.emplace(*r.regex, kWholeMatchRegexFlags | std::regex::optimize);
      } catch (const std::regex_error& e) {  // a contract saved before the rules tightened (back-references)
        s.regex->failing = file.num_rows();
        s.regex->message = std::string("regex cannot be checked: ") + e.what();
        s.regex = nullptr;
      }
    }
    if (r.allowed) {
      s.allowed = add("allowed", r.column);
      s.allowed_set.insert(r.allowed->begin(), r.allowed->end());
    }
    if (r.unique) s.unique = add("unique", r.column);
    states.push_back(std::move(s));
  }
  Check* fresh = nullptr;
  int fresh_index = -1;
  int64_t newest = INT64_MIN;
  if (!contract.freshness_column.empty()) {
    fresh = add("freshness", contract.freshness_column);
    fresh_index = find(contract.freshness_column);
    if (fresh_index < 0 || cols[static_cast<size_t>(fresh_index)].type != ColumnType::kDatetime) {
      fresh->failing = 1;
      fresh->message = "freshness needs a datetime column named '" + contract.freshness_column + "'";
      fresh = nullptr;
    }
  }

  for (int64_t offset = 0; offset < file.num_rows(); offset += kLcolRowsPerGroup) {
    ASSIGN_OR_RETURN(Table t, file.ReadRows(offset, kLcolRowsPerGroup));
    for (auto& s : states) {
      if (s.index < 0) continue;
      const Column& c = t.columns[static_cast<size_t>(s.index)];
      const ColumnRule& r = *s.rule;
      // Per dictionary entry for strings: regex and allowed are decided once per distinct value.
      std::vector<int8_t> dict_regex, dict_allowed;
      if (c.type == ColumnType::kString) {
        if (s.regex) {
          dict_regex.resize(c.dict.size());
          for (size_t d = 0; d < c.dict.size(); ++d) {
            dict_regex[d] = c.dict[d].size() <= kMaxRegexInputBytes && std::regex_match(c.dict[d], *s.re);
          }
        }
        if (s.allowed) {
          dict_allowed.resize(c.dict.size());
          for (size_t d = 0; d < c.dict.size(); ++d) dict_allowed[d] = s.allowed_set.count(c.dict[d]) > 0;
        }
      }
      for (size_t i = 0; i < c.size(); ++i) {
        const int64_t row = offset + static_cast<int64_t>(i);
        if (!c.IsValid(i)) {
          if (s.not_null) s.not_null->Fail(row, "");
          continue;
        }
        if (s.min || s.max) {
          double v = c.NumericAt(i);
          if (s.min && v < *r.min) s.min->Fail(row, ValueText(c, i));
          if (s.max && v > *r.max) s.max->Fail(row, ValueText(c, i));
        }
        if (s.regex) {
          bool ok;
          if (c.type == ColumnType::kString) {
            ok = dict_regex[static_cast<size_t>(c.codes[i])] != 0;
          } else {
            std::string text = ValueText(c, i);
            ok = std::regex_match(text, *s.re);
          }
          if (!ok) s.regex->Fail(row, ValueText(c, i));
        }
        if (s.allowed) {
          bool ok = c.type == ColumnType::kString ? dict_allowed[static_cast<size_t>(c.codes[i])] != 0
                                                  : s.allowed_set.count(ValueText(c, i)) > 0;
          if (!ok) s.allowed->Fail(row, ValueText(c, i));
        }
        if (s.unique && !s.seen.insert(HashValue(c, i)).second) s.unique->Fail(row, ValueText(c, i));
      }
    }
    if (fresh) {
      const Column& c = t.columns[static_cast<size_t>(fresh_index)];
      for (size_t i = 0; i < c.size(); ++i) {
        if (c.IsValid(i)) newest = std::max(newest, c.i64[i]);
      }
    }
  }

  if (contract.min_rows || contract.max_rows) {
    Check* c = add("rows", "");
    if (contract.min_rows && file.num_rows() < *contract.min_rows) {
      c->failing = 1;
      c->message = std::to_string(file.num_rows()) + " rows, fewer than the minimum " + std::to_string(*contract.min_rows);
    } else if (contract.max_rows && file.num_rows() > *contract.max_rows) {
      c->failing = 1;
      c->message = std::to_string(file.num_rows()) + " rows, more than the maximum " + std::to_string(*contract.max_rows);
    }
  }
  if (fresh) {
    const double max_age_us = contract.freshness_max_age_hours * 3600e6;
    if (newest == INT64_MIN) {
      fresh->failing = 1;
      fresh->message = "column has no values, so the data's age is unknown";
    } else if (static_cast<double>(now_micros - newest) > max_age_us) {
      fresh->failing = 1;
      fresh->message = "newest value " + FormatDatetimeMicros(newest) + " is older than " +
                       std::to_string(contract.freshness_max_age_hours) + " hours";
    }
  }

  Json out_checks = Json::array();
  Json failed = Json::array();
  for (const auto& c : checks) {
    const bool passed = c->failing == 0;
    std::string message = c->message;
    if (!passed && message.empty()) {
      const std::string n = std::to_string(c->failing) + (c->failing == 1 ? " row" : " rows");
      if (c->rule == "not_null") message = n + " missing";
      else if (c->rule == "min") message = n + " below the minimum";
      else if (c->rule == "max") message = n + " above the maximum";
      else if (c->rule == "regex") message = n + " not matching the pattern";
      else if (c->rule == "allowed") message = n + " outside the allowed values";
      else if (c->rule == "unique") message = n + " repeating an earlier value";
    }
    Json j = {{"rule", c->rule}, {"passed", passed}, {"failing_rows", c->failing}};
    if (!c->column.empty()) j["column"] = c->column;
    if (!c->examples.empty()) j["examples"] = c->examples;
    if (!message.empty()) j["message"] = message;
    if (!passed) failed.push_back(c->column.empty() ? c->rule : c->column + "." + c->rule);
    out_checks.push_back(std::move(j));
  }
  const bool passed = failed.empty();
  std::string summary = passed ? "all " + std::to_string(checks.size()) + " checks passed"
                               : std::to_string(failed.size()) + " of " + std::to_string(checks.size()) +
                                     " checks failed: " + failed.dump();
  return Json{{"passed", passed}, {"summary", summary}, {"failed", failed}, {"checks", out_checks}};
}

}  // namespace lathe
