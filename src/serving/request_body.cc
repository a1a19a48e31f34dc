#include "serving/request_body.h"

namespace lathe {

Result<Json> SplitToRecords(const Json& split, const std::string& where) {
  if (!split.is_object() || !split.contains("columns") || !split.contains("data") || !split["columns"].is_array() ||
      !split["data"].is_array()) {
    return Status::InvalidArgument(where + " must have 'columns' (array) and 'data' (array of rows)")
        .WithDetail(ErrorDetail::Field(where, "needs columns and data arrays"));
  }
  const Json& cols = split["columns"];
  for (size_t c = 0; c < cols.size(); ++c) {
    if (!cols[c].is_string()) {
      return Status::InvalidArgument(where + ".columns must be strings")
          .WithDetail(ErrorDetail::Field(where + ".columns[" + std::to_string(c) + "]", "must be a string"));
    }
  }
  Json out = Json::array();
  const Json& data = split["data"];
  for (size_t i = 0; i < data.size(); ++i) {
    if (!data[i].is_array() || data[i].size() != cols.size()) {
      return Status::InvalidArgument(where + ".data[" + std::to_string(i) + "] must be an array of " +
                                     std::to_string(cols.size()) + " values")
          .WithDetail(ErrorDetail::Field(where + ".data[" + std::to_string(i) + "]", "wrong number of values"));
    }
    Json rec = Json::object();
    for (size_t c = 0; c < cols.size(); ++c) rec[cols[c].get<std::string>()] = data[i][c];
    out.push_back(std::move(rec));
  }
  return out;
}

Status CheckInstances(const Json& instances, const std::string& field, int64_t max_rows) {
  if (!instances.is_array()) {
    return Status::InvalidArgument("'" + field + "' must be an array of objects")
        .WithDetail(ErrorDetail::Field(field, "must be an array"));
  }
  if (instances.empty()) {
    return Status::InvalidArgument("'" + field + "' is empty").WithDetail(ErrorDetail::Field(field, "is empty"));
  }
  if (static_cast<int64_t>(instances.size()) > max_rows) {
    return Status::PayloadTooLarge("'" + field + "' has " + std::to_string(instances.size()) +
                                   " rows; the limit is " + std::to_string(max_rows) + " (max_predict_rows)")
        .WithDetail(ErrorDetail::Field(field, "too many rows"));
  }
  return Status::Ok();
}

Result<Json> NativeInstances(Json& body, int64_t max_rows) {
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object with 'instances'");
  Json instances;
  std::string field = "instances";
  if (body.contains("instances")) {
    instances = std::move(body["instances"]);
  } else if (body.contains("dataframe_records")) {
    instances = std::move(body["dataframe_records"]);
    field = "dataframe_records";
  } else if (body.contains("inputs")) {
    instances = std::move(body["inputs"]);
    field = "inputs";
  } else if (body.contains("dataframe_split")) {
    ASSIGN_OR_RETURN(instances, SplitToRecords(body["dataframe_split"], "dataframe_split"));
  } else if (body.contains("columns") && body.contains("data")) {
    ASSIGN_OR_RETURN(instances, SplitToRecords(body, "body"));
  } else {
    return Status::InvalidArgument(
               "body needs 'instances' (array of objects), 'dataframe_records', 'dataframe_split' or columns+data")
        .WithDetail(ErrorDetail::Field("instances", "is required"));
  }
  RETURN_IF_ERROR(CheckInstances(instances, field, max_rows));
  return instances;
}

Result<Json> MlflowInstances(Json& body, int64_t max_rows) {
  if (!body.is_object()) {
    return Status::InvalidArgument("body must be a JSON object with one of dataframe_split, dataframe_records, "
                                   "instances or inputs");
  }
  const char* keys[] = {"dataframe_split", "dataframe_records", "instances", "inputs"};
  std::string found;
  for (const char* k : keys) {
    if (!body.contains(k)) continue;
    if (!found.empty()) {
      return Status::InvalidArgument(std::string("give only one of dataframe_split, dataframe_records, instances, "
                                                 "inputs; got both '") + found + "' and '" + k + "'")
          .WithDetail(ErrorDetail::Field(k, "only one input format per request"));
    }
    found = k;
  }
  if (found.empty()) {
    return Status::InvalidArgument("body needs one of dataframe_split, dataframe_records, instances or inputs")
        .WithDetail(ErrorDetail::Field("dataframe_split", "is required"));
  }
  Json instances;
  if (found == "dataframe_split") {
    ASSIGN_OR_RETURN(instances, SplitToRecords(body["dataframe_split"], "dataframe_split"));
  } else if (body[found].is_object()) {
    // Columnar: {"age":[1,2], "plan":["a","b"]}.
    const Json& cols = body[found];
    size_t n = 0;
    bool first = true;
    for (auto it = cols.begin(); it != cols.end(); ++it) {
      if (!it->is_array()) {
        return Status::InvalidArgument(found + "." + it.key() + " must be an array of values")
            .WithDetail(ErrorDetail::Field(found + "." + it.key(), "must be an array"));
      }
      if (!first && it->size() != n) {
        return Status::InvalidArgument(found + ": every column needs the same number of values")
            .WithDetail(ErrorDetail::Field(found + "." + it.key(), "has " + std::to_string(it->size()) +
                                                                     " values, expected " + std::to_string(n)));
      }
      n = it->size();
      first = false;
    }
    instances = Json::array();
    for (size_t i = 0; i < n; ++i) {
      Json rec = Json::object();
      for (auto it = cols.begin(); it != cols.end(); ++it) rec[it.key()] = (*it)[i];
      instances.push_back(std::move(rec));
    }
  } else {
    instances = std::move(body[found]);
  }
  RETURN_IF_ERROR(CheckInstances(instances, found, max_rows));
  return instances;
}

Result<Json> RequestInstances::Take() {
  if (body_ == nullptr) return std::move(json_);
  ASSIGN_OR_RETURN(Json body, ParseJson(*body_));
  body_.reset();
  return shape_ == RequestShape::kNative ? NativeInstances(body, INT64_MAX) : MlflowInstances(body, INT64_MAX);
}

Result<std::string> RequestInstances::TakeText() {
  if (body_ != nullptr && records_.end > records_.begin && records_.end <= body_->size()) {
    std::string text = body_->substr(records_.begin, records_.end - records_.begin);
    body_.reset();
    return text;
  }
  ASSIGN_OR_RETURN(Json j, Take());
  return DumpJson(j);
}

size_t RequestInstances::ApproxBytes() const {
  if (body_ != nullptr) return body_->size();
  // ~64 bytes per DOM value and map node, estimated from the first row (O(1): a bound, not an account).
  if (!json_.is_array() || json_.empty()) return 64;
  const Json& first = json_.front();
  return 64 * json_.size() * (1 + 3 * (first.is_object() ? first.size() : 1));
}

}  // namespace lathe
