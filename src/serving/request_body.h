// Prediction request bodies -> instances (a JSON array of objects), the DOM path of every protocol that sends
// rows: lathe's native body and the MLflow scoring server's. serving/request_decoder.h is the fast path for
// the same bodies; these functions are the reference it is tested against and the one that words errors.
//
// Errors: kInvalidArgument with ErrorDetail::Field naming the field ("dataframe_split.data[3]", "instances"),
// kPayloadTooLarge past max_rows. Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "serving/request_decoder.h"

namespace lathe {

// {"columns":[...],"data":[[...]]} -> records; `where` names the object in errors.
Result<Json> SplitToRecords(const Json& split, const std::string& where);
// An array of 1..max_rows elements, else the error naming `field`.
Status CheckInstances(const Json& instances, const std::string& field, int64_t max_rows);
// lathe's own body: {"instances":[{...}]} or {"columns":[...],"data":[[...]]}; the MLflow scoring-server
// shapes are accepted too, so a client can switch endpoints without changing its body. `body` is consumed.
Result<Json> NativeInstances(Json& body, int64_t max_rows);
// MLflow scoring server (/invocations): exactly one of dataframe_split, dataframe_records, instances, inputs;
// `inputs` may be records or a columnar object {"col": [values...]}. `body` is consumed.
Result<Json> MlflowInstances(Json& body, int64_t max_rows);

// A request's instances as the request thread hands them to the consumers after it (the prediction log
// writer, the shadow worker): a JSON array already built, or the raw request body still to be parsed — so the
// fast path never builds a DOM on the request thread. Copies share the body. One object is used by one thread.
class RequestInstances {
 public:
  RequestInstances() = default;
  explicit RequestInstances(Json instances) : json_(std::move(instances)) {}
  // `records`: where the body holds the instances array as sent (DecodeRequestRows), if it does.
  RequestInstances(std::shared_ptr<const std::string> body, RequestShape shape, TextSpan records = {})
      : body_(std::move(body)), shape_(shape), records_(records) {}

  // The raw body when the instances have not been parsed (nullptr otherwise), and its shape.
  const std::string* body() const { return body_.get(); }
  RequestShape shape() const { return shape_; }
  // The instances array, parsing the body if need be (its errors as NativeInstances / MlflowInstances give).
  Result<Json> Take();
  // The instances array as JSON text: the records as sent when the body has them, else Take() dumped.
  Result<std::string> TakeText();
  // Rough memory held, for bounded queues.
  size_t ApproxBytes() const;

 private:
  Json json_;
  std::shared_ptr<const std::string> body_;
  RequestShape shape_ = RequestShape::kNative;
  TextSpan records_;
};

}  // namespace lathe
