// Deployments (a name bound to one or more model versions: routes with weights, a shadow, input and rollback
// policies) and the prediction protocols: lathe's own predict, the MLflow scoring server's /invocations, and
// the KServe Open Inference Protocol v2. Plus per-deployment stats, events, feedback and request schema.
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "api/serving.h"
#include "common/clock.h"
#include "common/log.h"
#include "ml/metrics.h"
#include "serving/request_body.h"
#include "serving/request_decoder.h"

namespace lathe {
namespace {

std::string PredictPath(const std::string& project, const std::string& name) {
  return "/api/v1/projects/" + project + "/deployments/" + name + "/predict";
}

Json DeploymentJson(const DeploymentRecord& d) {
  Json config = d.config;
  if (!config.contains("routes") || config["routes"].empty()) {
    auto parsed = ParseDeploymentConfig(config, DeploymentConfig{});
    DeploymentConfig c = parsed.ok() ? *parsed : DeploymentConfig{};
    if (c.routes.empty()) c.routes.push_back(RouteSpec{d.model, d.version, 1});
    config = DeploymentConfigJson(c);
  }
  Json j = {{"name", d.name},
            {"project", d.project},
            {"model", d.model},
            {"version", d.version},
            {"state", d.state},
            {"endpoint", PredictPath(d.project, d.name)},
            {"created_at", FormatRfc3339(d.created_at)},
            {"updated_at", FormatRfc3339(d.updated_at)}};
  for (auto it = config.begin(); it != config.end(); ++it) j[it.key()] = it.value();
  return j;
}

// The serving configuration fields a create/PATCH body may carry (everything else is the deployment itself).
Json ConfigFields(const Json& body) {
  Json c = Json::object();
  for (const char* k : {"routes", "shadow", "input", "rollback", "log", "limits", "batching"}) {
    if (body.contains(k)) c[k] = body[k];
  }
  return c;
}

Status CheckBodyKeys(const Json& body, std::initializer_list<const char*> allowed) {
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) {
      return Status::InvalidArgument("unknown field '" + it.key().substr(0, 80) + "'")
          .WithDetail(ErrorDetail::Field(it.key().substr(0, 80), "unknown field"));
    }
  }
  return Status::Ok();
}

// Resolves "latest" (0) versions against the registry, so the stored configuration names exact versions.
Status ResolveVersions(App& app, const std::string& project, DeploymentConfig* c) {
  for (size_t i = 0; i < c->routes.size(); ++i) {
    auto mv = app.store().GetModelVersion(project, c->routes[i].model, c->routes[i].version);
    if (!mv.ok()) {
      const std::string msg = mv.status().message();
      return Status(mv.status().code(), msg).WithDetail(ErrorDetail::Field("routes[" + std::to_string(i) + "]", msg));
    }
    c->routes[i].version = mv->version;
  }
  if (c->shadow) {
    auto mv = app.store().GetModelVersion(project, c->shadow->model, c->shadow->version);
    if (!mv.ok()) {
      const std::string msg = mv.status().message();
      return Status(mv.status().code(), msg).WithDetail(ErrorDetail::Field("shadow", msg));
    }
    c->shadow->version = mv->version;
  }
  return Status::Ok();
}

// ---- KServe Open Inference Protocol v2

const char* KServeDatatype(const std::string& column_type) {
  if (column_type == "integer") return "INT64";
  if (column_type == "float") return "FP64";
  if (column_type == "boolean") return "BOOL";
  return "BYTES";
}

void Flatten(const Json& v, Json* out) {
  if (v.is_array()) {
    for (const auto& x : v) Flatten(x, out);
  } else {
    out->push_back(v);
  }
}

Status CheckTensorValue(const Json& v, const std::string& datatype, const std::string& field) {
  if (v.is_null()) return Status::Ok();
  bool ok;
  if (datatype == "BYTES") ok = v.is_string();
  else if (datatype == "BOOL") ok = v.is_boolean();
  else ok = v.is_number();
  if (ok) return Status::Ok();
  return Status::InvalidArgument(field + ": a " + datatype + " tensor cannot hold " + v.type_name() + " values")
      .WithDetail(ErrorDetail::Field(field, std::string("expected ") + datatype + " values, got " + v.type_name()));
}

// Builds instance objects from the request's input tensors: one tensor per input column (shape [N] or [N,1]),
// or a single [N, F] tensor holding all F inputs in signature order.
Result<Json> KServeInstances(const Json& body, const ml::Predictor& predictor, int64_t max_rows) {
  if (!body.is_object() || !body.contains("inputs") || !body["inputs"].is_array() || body["inputs"].empty()) {
    return Status::InvalidArgument("body needs 'inputs': a non-empty array of tensors {name, shape, datatype, data}")
        .WithDetail(ErrorDetail::Field("inputs", "is required"));
  }
  static const std::set<std::string> kTypes = {"BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                               "INT32", "INT64", "FP16",   "FP32",   "FP64",   "BYTES"};
  const Json signature = predictor.Signature();
  std::vector<std::string> columns;
  for (const auto& in : signature["inputs"]) columns.push_back(in["name"].get<std::string>());
  const Json& tensors = body["inputs"];
  Json instances;
  int64_t rows = -1;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const Json& tensor = tensors[t];
    const std::string where = "inputs[" + std::to_string(t) + "]";
    if (!tensor.is_object() || !tensor.contains("name") || !tensor["name"].is_string() || !tensor.contains("shape") ||
        !tensor["shape"].is_array() || !tensor.contains("datatype") || !tensor["datatype"].is_string() ||
        !tensor.contains("data")) {
      return Status::InvalidArgument(where + " must be a tensor {name, shape, datatype, data}")
          .WithDetail(ErrorDetail::Field(where, "needs name, shape, datatype and data"));
    }
    const std::string name = tensor["name"].get<std::string>();
    const std::string datatype = tensor["datatype"].get<std::string>();
    if (!kTypes.count(datatype)) {
      return Status::InvalidArgument(where + ".datatype '" + datatype.substr(0, 40) + "' is not a v2 datatype")
          .WithDetail(ErrorDetail::Field(where + ".datatype", "unknown datatype"));
    }
    std::vector<int64_t> shape;
    for (const auto& d : tensor["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return Status::InvalidArgument(where + ".shape must hold non-negative integers")
            .WithDetail(ErrorDetail::Field(where + ".shape", "must hold non-negative integers"));
      }
      shape.push_back(d.get<int64_t>());
    }
    if (shape.empty() || shape.size() > 2) {
      return Status::InvalidArgument(where + ".shape must be [rows] or [rows, columns]")
          .WithDetail(ErrorDetail::Field(where + ".shape", "must have 1 or 2 dimensions"));
    }
    if (shape[0] > max_rows) {
      return Status::PayloadTooLarge(where + " has " + std::to_string(shape[0]) + " rows; the limit is " +
                                     std::to_string(max_rows) + " (max_predict_rows)")
          .WithDetail(ErrorDetail::Field(where + ".shape", "too many rows"));
    }
    const int64_t width = shape.size() == 2 ? shape[1] : 1;
    Json flat = Json::array();
    Flatten(tensor["data"], &flat);
    if (static_cast<int64_t>(flat.size()) != shape[0] * width) {
      return Status::InvalidArgument(where + ".data has " + std::to_string(flat.size()) + " values; shape " +
                                     tensor["shape"].dump() + " needs " + std::to_string(shape[0] * width))
          .WithDetail(ErrorDetail::Field(where + ".data", "does not match the shape"));
    }
    for (size_t i = 0; i < flat.size(); ++i) {
      RETURN_IF_ERROR(CheckTensorValue(flat[i], datatype, where + ".data[" + std::to_string(i) + "]"));
    }
    if (rows >= 0 && shape[0] != rows) {
      return Status::InvalidArgument(where + " has " + std::to_string(shape[0]) + " rows; the other inputs have " +
                                     std::to_string(rows))
          .WithDetail(ErrorDetail::Field(where + ".shape", "row count differs from the other inputs"));
    }
    rows = shape[0];
    if (instances.is_null()) {
      instances = Json::array();
      for (int64_t i = 0; i < rows; ++i) instances.push_back(Json::object());
    }
    if (width == 1) {
      for (int64_t i = 0; i < rows; ++i) instances[static_cast<size_t>(i)][name] = flat[static_cast<size_t>(i)];
    } else if (static_cast<size_t>(width) == columns.size() && tensors.size() == 1) {
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t c = 0; c < width; ++c) {
          instances[static_cast<size_t>(i)][columns[static_cast<size_t>(c)]] =
              flat[static_cast<size_t>(i * width + c)];
        }
      }
    } else {
      return Status::InvalidArgument(where + ": a 2-D input must be the only input and have one column per model "
                                     "input (" + std::to_string(columns.size()) + "), in signature order")
          .WithDetail(ErrorDetail::Field(where + ".shape", "expected [rows, " + std::to_string(columns.size()) + "]"));
    }
  }
  if (rows <= 0) {
    return Status::InvalidArgument("inputs hold no rows").WithDetail(ErrorDetail::Field("inputs", "no rows"));
  }
  return instances;
}

// The stable route's model (for a deployment's signature, schemas and metadata), loaded if need be.
Result<std::shared_ptr<ml::Predictor>> StableModel(const LoadedDeployment& d) {
  return d.stable().model_slot->Acquire();
}

Json KServeMetadata(const std::string& model_name, const LoadedDeployment& d, const ml::Predictor& p) {
  Json inputs = Json::array();
  const Json signature = p.Signature();
  for (const auto& in : signature["inputs"]) {
    inputs.push_back({{"name", in["name"]}, {"datatype", KServeDatatype(in.value("type", ""))}, {"shape", {-1}}});
  }
  Json outputs = Json::array();
  const std::string task = p.Task();
  if (task == "binary") {
    outputs.push_back({{"name", "probability"}, {"datatype", "FP32"}, {"shape", {-1}}});
    outputs.push_back({{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}});
  } else if (task == "multiclass") {
    outputs.push_back({{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}});
    outputs.push_back({{"name", "probabilities"},
                       {"datatype", "FP32"},
                       {"shape", {-1, static_cast<int64_t>(p.OutputWidth())}}});
  } else if (task == "clustering") {
    outputs.push_back({{"name", "cluster"}, {"datatype", "INT64"}, {"shape", {-1}}});
    outputs.push_back({{"name", "distance"}, {"datatype", "FP32"}, {"shape", {-1}}});
  } else if (task == "decomposition") {
    outputs.push_back({{"name", "components"},
                       {"datatype", "FP32"},
                       {"shape", {-1, static_cast<int64_t>(p.OutputWidth()) - 1}}});
    outputs.push_back({{"name", "reconstruction_error"}, {"datatype", "FP32"}, {"shape", {-1}}});
  } else if (task == "anomaly") {
    outputs.push_back({{"name", "anomaly_score"}, {"datatype", "FP32"}, {"shape", {-1}}});
    outputs.push_back({{"name", "is_anomaly"}, {"datatype", "BOOL"}, {"shape", {-1}}});
  } else {
    outputs.push_back({{"name", "prediction"}, {"datatype", "FP32"}, {"shape", {-1}}});
  }
  Json versions = Json::array();
  for (const auto& r : d.routes) versions.push_back(std::to_string(r.version));
  return {{"name", model_name}, {"versions", versions}, {"platform", "lathe"}, {"inputs", inputs},
          {"outputs", outputs}};
}

// ---- the prediction itself

double Uniform() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

struct Served {
  std::shared_ptr<const LoadedDeployment> deployment;
  const ServingVersion* version = nullptr;
  std::shared_ptr<ml::Predictor> predictor;  // version's model, acquired for this request
  std::vector<float> outputs;  // n * OutputWidth()
  size_t n = 0;
  std::string predictions;  // the JSON text of the predictions (Predictor::PredictionsText)
  Json predictions_json;    // the same as JSON, built on demand by PredictionsJson()
  const Json& PredictionsJson() {
    if (predictions_json.is_null()) predictions_json = predictor->FormatPredictions(outputs.data(), n);
    return predictions_json;
  }
  Json explanations;  // null unless asked
};

bool ExplainRequested(const RequestContext& ctx) {
  const std::string* e = ctx.req.Query("explain");
  return e != nullptr && (*e == "true" || *e == "1");
}

// What a request sends to predict on: the raw body of a native or MLflow request — decoded straight into the
// picked version's rows when the fast path takes it, parsed into instances otherwise — or the instances a
// protocol has already built (KServe).
struct PredictInput {
  bool raw = false;  // the body is ctx.req.body, of `shape`
  RequestShape shape = RequestShape::kNative;
  Json instances;    // when !raw
  static PredictInput Raw(RequestShape shape) { return {.raw = true, .shape = shape, .instances = nullptr}; }
};

// Writes a protocol's success response from a finished prediction.
using Respond = std::function<void(Served& s, HttpResponse& res)>;

// A prediction between encoding and answering: everything the finish needs once the outputs exist (on the
// request's thread, or later on a micro-batcher's worker).
struct Pending {
  App* app = nullptr;
  HttpRequest* req = nullptr;
  HttpResponse* res = nullptr;
  Served s;
  PredictInput in;
  bool fast = false;
  TextSpan records;
  std::chrono::steady_clock::time_point t0;
  Respond respond;
  std::unique_ptr<AdmissionGate::Ticket> ticket;
  std::string key_id;  // the caller's API key, for metering
};

// Records stats, logs, feeds the shadow and writes the response (or returns the error, `st` if not ok).
Status FinishPrediction(Pending& p, Status st) {
  Served& s = p.s;
  const LoadedDeployment& d = *s.deployment;
  const ServingVersion& sv = *s.version;
  if (st.ok()) s.predictions = s.predictor->PredictionsText(s.outputs.data(), s.n);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p.t0).count();
  const int64_t now = NowMicros();
  sv.stats->Record(now, ms, !st.ok(), st.ok() ? s.outputs.data() : nullptr, s.n);
  p.ticket.reset();  // the slot is free as soon as the model is done
  RETURN_IF_ERROR(st);
  p.app->usage().Add(d.project, p.key_id, kMetricPredictions, 1);
  p.app->usage().Add(d.project, p.key_id, kMetricRowsScored, static_cast<double>(s.n));
  p.res->headers.emplace_back("X-Lathe-Model-Version", sv.model + ":" + std::to_string(sv.version));
  const bool shadow = d.shadow && (d.config.shadow->fraction >= 1 || Uniform() < d.config.shadow->fraction);
  const bool log = d.config.log_sample_rate > 0 &&
                   (d.config.log_sample_rate >= 1 || Uniform() < d.config.log_sample_rate) &&
                   d.log_budget->TryTake(now, d.config.log_max_per_second);
  if (log || shadow) {
    // The request is answered: its body (fast path) or instances move on to the log writer and the shadow.
    RequestInstances inputs =
        p.fast ? RequestInstances(std::make_shared<const std::string>(std::move(p.req->body)), p.in.shape, p.records)
               : RequestInstances(std::move(p.in.instances));
    if (log) {
      p.app->serving().log().Offer(PredictionLogEntry{.project = d.project,
                                                      .deployment = d.name,
                                                      .request_id = p.req->request_id,
                                                      .model = sv.model,
                                                      .version = sv.version,
                                                      .shadow = false,
                                                      .created_at = now,
                                                      .latency_ms = ms,
                                                      .inputs = shadow ? inputs : std::move(inputs),
                                                      .outputs = s.predictions});
    }
    if (shadow) p.app->serving().OfferShadow(s.deployment, std::move(inputs), p.req->request_id);
  }
  p.respond(s, *p.res);
  return Status::Ok();
}

// Admission, route pick, decode and encode, then the prediction: directly, or through the version's
// micro-batcher with the response deferred (the I/O thread is released; the batcher's worker finishes it).
Status RunPrediction(App& app, RequestContext& ctx, std::shared_ptr<const LoadedDeployment> live, PredictInput in,
                     bool explain, Respond respond) {
  auto p = std::make_unique<Pending>();
  p->app = &app;
  p->req = &ctx.req;
  p->res = &ctx.res;
  p->respond = std::move(respond);
  p->key_id = ctx.caller.key_id;
  Served& s = p->s;
  s.deployment = std::move(live);
  const LoadedDeployment& d = *s.deployment;
  RETURN_IF_ERROR(app.usage().CheckPredict(d.project));
  // The deployment's own rate limit, per caller (an API key, else the user).
  if (d.config.limits.rate_per_second > 0) {
    const std::string caller = ctx.caller.IsApiKey() ? "key:" + ctx.caller.key_id : "user:" + ctx.caller.user_id;
    RETURN_IF_ERROR(app.TakeRate("deployment:" + d.project + "/" + d.name + "/" + caller,
                                 RateLimit{d.config.limits.rate_per_second, d.config.limits.rate_burst},
                                 "caller of deployment '" + d.name + "'", ctx.res));
  }
  // Backpressure: a bounded number running, a bounded number waiting until the request's deadline.
  int timeout_ms = d.config.limits.timeout_ms;
  if (const std::string* h = ctx.req.Header("x-request-timeout-ms")) {
    char* end = nullptr;
    const long v = std::strtol(h->c_str(), &end, 10);
    if (h->empty() || end == nullptr || *end != '\0' || v < 1 || v > 3600000) {
      return Status::InvalidArgument("X-Request-Timeout-Ms must be an integer number of milliseconds in [1, 3600000]")
          .WithDetail(ErrorDetail::Field("X-Request-Timeout-Ms", "must be an integer in [1, 3600000]"));
    }
    timeout_ms = timeout_ms > 0 ? std::min<int>(timeout_ms, static_cast<int>(v)) : static_cast<int>(v);
  }
  const auto deadline = timeout_ms > 0 ? AdmissionGate::Clock::now() + std::chrono::milliseconds(timeout_ms)
                                       : AdmissionGate::Clock::time_point::max();
  const AdmissionGate::Outcome admitted =
      d.gate->Enter(d.config.limits.max_concurrency, d.config.limits.max_queue, deadline);
  if (admitted != AdmissionGate::Outcome::kAdmitted) {
    ctx.res.headers.emplace_back("Retry-After", "1");
    if (admitted == AdmissionGate::Outcome::kQueueFull) {
      return Status::ResourceExhausted("deployment '" + d.name + "' is at its limit of " +
                                       std::to_string(d.config.limits.max_concurrency) + " running and " +
                                       std::to_string(d.config.limits.max_queue) + " queued requests; retry later");
    }
    return Status(StatusCode::kUnavailable, "deployment '" + d.name + "' had no free slot within the request's " +
                                                std::to_string(timeout_ms) + " ms deadline; retry later");
  }
  p->ticket = std::make_unique<AdmissionGate::Ticket>(d.gate.get());
  const std::string* key = ctx.req.Header("x-lathe-route-key");
  const ServingVersion& sv = d.Pick(key != nullptr ? std::string_view(*key) : std::string_view(), Uniform());
  s.version = &sv;
  p->t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(s.predictor, sv.model_slot->Acquire());  // held until the response is written
  const ml::Predictor& model = *s.predictor;
  std::vector<float> rows;
  const int64_t max_rows = std::min<int64_t>(app.config().max_predict_rows, ml::Predictor::kMaxInstances);
  p->fast = in.raw && model.direct_input() &&
            DecodeRequestRows(ctx.req.body, in.shape, model.pipeline(), d.config.input,
                              static_cast<size_t>(max_rows), &rows, &s.n, &p->records);
  if (!p->fast) {
    if (in.raw) {  // a body the fast path declined: the DOM path decodes it or says what is wrong with it
      ASSIGN_OR_RETURN(Json body, ParseJson(ctx.req.body, app.config().max_json_depth));  // checked by the caller
      ASSIGN_OR_RETURN(in.instances, in.shape == RequestShape::kNative ? NativeInstances(body, max_rows)
                                                                      : MlflowInstances(body, max_rows));
    }
    s.n = in.instances.size();
    if (Status st = model.EncodeInstances(in.instances, &rows, d.config.input); !st.ok()) {
      p->in = std::move(in);
      return FinishPrediction(*p, std::move(st));
    }
  }
  p->in = std::move(in);
  s.outputs.resize(s.n * model.OutputWidth());
  if (sv.batcher && !explain) {
    if (std::function<void()> complete = ctx.res.Defer()) {
      const size_t n = s.n;
      sv.batcher->Submit(std::move(rows), n, [p = std::shared_ptr<Pending>(std::move(p)), complete](const float* out) {
        std::copy(out, out + p->s.outputs.size(), p->s.outputs.begin());
        Status st;
        try {
          st = FinishPrediction(*p, Status::Ok());
        } catch (const std::exception& e) {
          st = Status::Internal(std::string("unhandled exception: ") + e.what());
        }
        if (!st.ok()) WriteProblem(st, *p->req, *p->res);
        complete();
      });
      return Status::Ok();
    }
  }
  model.PredictRows(rows.data(), s.n, s.outputs.data());
  if (explain) {
    auto contributions = model.Contributions(rows.data(), s.n);
    if (!contributions.ok()) return FinishPrediction(*p, contributions.TakeStatus());
    s.explanations = std::move(contributions).value();
  }
  return FinishPrediction(*p, Status::Ok());
}

std::shared_ptr<const LoadedDeployment> FindLive(App& app, const std::string& project, const std::string& name,
                                                 Status* st) {
  auto live = app.deployments().Get(project, name);
  if (!live) *st = Status::NotFound("deployment '" + name + "' not found in project '" + project + "'");
  return live;
}

// {"predictions": …[, "model", "version", "deployment" when `identify`][, "explanations": …]}, written directly:
// the predictions are already JSON text.
void WritePredictions(Served& s, HttpResponse& res, bool identify) {
  res.status = 200;
  res.content_type = "application/json";
  res.body = "{\"predictions\":";
  res.body += s.predictions;
  if (identify) {
    res.body += ",\"model\":";
    res.body += DumpJson(Json(s.version->model));
    res.body += ",\"version\":";
    res.body += std::to_string(s.version->version);
    res.body += ",\"deployment\":";
    res.body += DumpJson(Json(s.deployment->name));
  }
  if (!s.explanations.is_null()) {
    res.body += ",\"explanations\":";
    res.body += DumpJson(s.explanations);
  }
  res.body += '}';
}

Status NativePredict(App& app, RequestContext& ctx) {
  Status st;
  auto live = FindLive(app, ctx.Project(), ctx.Param("name"), &st);
  if (!live) return st;
  RETURN_IF_ERROR(ctx.CheckJsonBody());
  return RunPrediction(app, ctx, std::move(live), PredictInput::Raw(RequestShape::kNative), ExplainRequested(ctx),
                       [](Served& s, HttpResponse& res) { WritePredictions(s, res, /*identify=*/true); });
}

Status MlflowInvocations(App& app, RequestContext& ctx) {
  Status st;
  auto live = FindLive(app, ctx.Project(), ctx.Param("name"), &st);
  if (!live) return st;
  const std::string* ct = ctx.req.Header("content-type");
  if (ct != nullptr && ct->find("json") == std::string::npos) {
    return Status(StatusCode::kUnsupportedMedia,
                  "Content-Type '" + ct->substr(0, 80) + "' is not supported; send application/json");
  }
  RETURN_IF_ERROR(ctx.CheckJsonBody());
  return RunPrediction(app, ctx, std::move(live), PredictInput::Raw(RequestShape::kMlflow), ExplainRequested(ctx),
                       [](Served& s, HttpResponse& res) { WritePredictions(s, res, /*identify=*/false); });
}

// The KServe model name of a route: "{deployment}" under /api/v1/projects/{project}/v2, and
// "{project}:{deployment}" (or just "{deployment}" for the default project) under /v2.
std::string ModelParam(const RequestContext& ctx) { return ctx.Param("model"); }
// The deployment a KServe route names: split from the model name under /v2, the model name itself per project.
const std::string& DeploymentParam(const RequestContext& ctx) {
  const std::string& d = ctx.Param("deployment");
  return d.empty() ? ctx.Param("model") : d;
}

Status KServeInfer(App& app, RequestContext& ctx) {
  Status st;
  auto live = FindLive(app, ctx.Project(), DeploymentParam(ctx), &st);
  if (!live) return st;
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  ASSIGN_OR_RETURN(auto stable_model, StableModel(*live));
  ASSIGN_OR_RETURN(Json instances, KServeInstances(body, *stable_model, app.config().max_predict_rows));
  bool explain = ExplainRequested(ctx);
  if (body.contains("parameters") && body["parameters"].is_object()) {
    explain = explain || body["parameters"].value("explain", false);
  }
  std::set<std::string> wanted;
  if (body.contains("outputs")) {
    if (!body["outputs"].is_array()) {
      return Status::InvalidArgument("'outputs' must be an array of {name}")
          .WithDetail(ErrorDetail::Field("outputs", "must be an array"));
    }
    for (size_t i = 0; i < body["outputs"].size(); ++i) {
      const Json& o = body["outputs"][i];
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
        return Status::InvalidArgument("outputs[" + std::to_string(i) + "] needs a name")
            .WithDetail(ErrorDetail::Field("outputs[" + std::to_string(i) + "].name", "is required"));
      }
      wanted.insert(o["name"].get<std::string>());
    }
  }
  const Json metadata = KServeMetadata(ModelParam(ctx), *live, *stable_model);
  for (const auto& w : wanted) {
    bool known = false;
    for (const auto& o : metadata["outputs"]) known = known || o["name"] == w;
    if (!known) {
      return Status::InvalidArgument("unknown output '" + w.substr(0, 80) + "'")
          .WithDetail(ErrorDetail::Field("outputs", "unknown output '" + w.substr(0, 80) + "'"));
    }
  }
  std::string id = body.contains("id") && body["id"].is_string() ? body["id"].get<std::string>() : ctx.req.request_id;
  Respond respond = [wanted = std::move(wanted), model_name = ModelParam(ctx), id = std::move(id)](Served& s,
                                                                                                 HttpResponse& res) {
    const ml::Predictor& p = *s.predictor;
    const size_t n = s.n, k = p.OutputWidth();
    Json outputs = Json::array();
    auto add = [&](const char* name, const char* datatype, Json shape, Json data) {
      if (!wanted.empty() && !wanted.count(name)) return;
      outputs.push_back({{"name", name}, {"datatype", datatype}, {"shape", std::move(shape)}, {"data", std::move(data)}});
    };
    const std::string task = p.Task();
    if (task == "binary") {
      Json prob = Json::array(), label = Json::array();
      const auto& labels = p.pipeline().label_keys();
      for (size_t i = 0; i < n; ++i) {
        prob.push_back(static_cast<double>(s.outputs[i]));
        label.push_back(labels[s.outputs[i] >= 0.5f ? 1 : 0]);
      }
      add("probability", "FP32", {n}, std::move(prob));
      add("label", "BYTES", {n}, std::move(label));
    } else if (task == "multiclass") {
      Json label = Json::array(), probs = Json::array();
      for (size_t i = 0; i < n; ++i) {
        label.push_back(LabelText(s.PredictionsJson()[i]["label"]));
        for (size_t c = 0; c < k; ++c) probs.push_back(static_cast<double>(s.outputs[i * k + c]));
      }
      add("label", "BYTES", {n}, std::move(label));
      add("probabilities", "FP32", {n, k}, std::move(probs));
    } else if (p.unsupervised()) {
      // Each row's outputs (ml::Predictor::OutputWidth): the first k-1 (or 1) and the last.
      Json first = Json::array(), last = Json::array();
      for (size_t i = 0; i < n; ++i) {
        const float* o = &s.outputs[i * k];
        if (task == "clustering") {
          first.push_back(static_cast<int64_t>(o[0]));
          last.push_back(static_cast<double>(o[1]));
        } else if (task == "anomaly") {
          first.push_back(static_cast<double>(o[0]));
          last.push_back(o[1] > 0.5f);
        } else {
          for (size_t c = 0; c + 1 < k; ++c) first.push_back(static_cast<double>(o[c]));
          last.push_back(static_cast<double>(o[k - 1]));
        }
      }
      if (task == "clustering") {
        add("cluster", "INT64", {n}, std::move(first));
        add("distance", "FP32", {n}, std::move(last));
      } else if (task == "anomaly") {
        add("anomaly_score", "FP32", {n}, std::move(first));
        add("is_anomaly", "BOOL", {n}, std::move(last));
      } else {
        add("components", "FP32", {n, k - 1}, std::move(first));
        add("reconstruction_error", "FP32", {n}, std::move(last));
      }
    } else {
      Json pred = Json::array();
      for (size_t i = 0; i < n; ++i) pred.push_back(static_cast<double>(s.outputs[i]));
      add("prediction", "FP32", {n}, std::move(pred));
    }
    Json out = {{"model_name", model_name},
                {"model_version", std::to_string(s.version->version)},
                {"id", id},
                {"outputs", std::move(outputs)}};
    if (!s.explanations.is_null()) out["parameters"] = {{"explanations", std::move(s.explanations)}};
    WriteJson(200, out, res);
  };
  return RunPrediction(app, ctx, std::move(live), PredictInput{.instances = std::move(instances)}, explain,
                       std::move(respond));
}

// ---- per-deployment OpenAPI

Json InputSchema(const LoadedDeployment& d, const ml::Predictor& p) {
  Json props = Json::object();
  Json required = Json::array();
  std::map<std::string, const ml::FeaturePipeline::InputColumn*> columns;
  for (const auto& in : p.pipeline().inputs()) columns[in.name] = &in;
  const Json signature = p.Signature();
  for (const auto& in : signature["inputs"]) {
    const std::string name = in["name"].get<std::string>();
    const std::string type = in.value("type", "float");
    Json schema;
    if (type == "integer") schema = {{"type", Json::array({"integer", "null"})}};
    else if (type == "float") schema = {{"type", Json::array({"number", "null"})}};
    else if (type == "boolean") schema = {{"type", Json::array({"boolean", "null"})}};
    else if (type == "datetime") schema = {{"type", Json::array({"string", "null"})}, {"format", "date-time"}};
    else schema = {{"type", Json::array({"string", "null"})}};
    auto col = columns.find(name);
    if (type == "string" && d.config.input.reject_unseen_categories && col != columns.end()) {
      Json values = Json::array();
      for (const auto& [value, code] : col->second->category_codes) values.push_back(value);
      values.push_back(nullptr);
      schema["enum"] = std::move(values);
    }
    props[name] = std::move(schema);
    required.push_back(name);
  }
  Json instance = {{"type", "object"}, {"properties", props}};
  if (!d.config.input.missing_fields_as_null) instance["required"] = required;
  instance["additionalProperties"] = d.config.input.ignore_unknown_fields;
  return instance;
}

Json DeploymentOpenApi(const LoadedDeployment& d, const ml::Predictor& p) {
  Json output = p.Signature()["output"];
  Json prediction;
  const std::string task = p.Task();
  if (task == "multiclass") {
    prediction = {{"type", "object"},
                  {"properties", {{"label", Json::object()},
                                  {"probabilities", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}}}}};
  } else if (p.unsupervised()) {
    prediction = {{"type", "object"}, {"description", output.value("description", "")}};
  } else {
    prediction = {{"type", "number"}};
  }
  Json request = {{"type", "object"},
                  {"required", {"instances"}},
                  {"properties",
                   {{"instances", {{"type", "array"}, {"minItems", 1}, {"items", {{"$ref", "#/components/schemas/Instance"}}}}}}}};
  Json response = {{"type", "object"},
                   {"properties",
                    {{"predictions", {{"type", "array"}, {"items", prediction}}},
                     {"model", {{"type", "string"}}},
                     {"version", {{"type", "integer"}}},
                     {"deployment", {{"type", "string"}}}}}};
  return {{"openapi", "3.1.0"},
          {"info", {{"title", "lathe deployment " + d.project + "/" + d.name}, {"version", std::to_string(d.stable().version)},
                    {"description", output.value("description", "")}}},
          {"paths",
           {{PredictPath(d.project, d.name),
             {{"post",
               {{"summary", "Predict with " + d.name},
                {"requestBody",
                 {{"required", true},
                  {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/PredictRequest"}}}}}}}}},
                {"responses",
                 {{"200", {{"description", "predictions, one per instance"},
                           {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/PredictResponse"}}}}}}}}},
                  {"400", {{"description", "an instance does not match the signature (problem+json names the field)"}}}}}}}}}}},
          {"components",
           {{"schemas", {{"Instance", InputSchema(d, p)}, {"PredictRequest", request}, {"PredictResponse", response}}}}}};
}

// ---- feedback and live metrics

Json FeedbackMetrics(const ServingVersion& v, const std::vector<PredictionRecord>& records) {
  const std::string& task = v.task;
  // Live metrics compare predictions with labels one row at a time: classification and regression only.
  if (task != "binary" && task != "multiclass" && task != "regression") {
    return {{"labeled_rows", 0}, {"unmatched_labels", 0}, {"note", "no live metrics for " + task + " models"}};
  }
  std::vector<float> y, pred;
  const auto& keys = v.label_keys;
  std::map<std::string, int> index;
  for (size_t c = 0; c < keys.size(); ++c) index[keys[c]] = static_cast<int>(c);
  int64_t unmatched = 0;
  for (const auto& r : records) {
    auto outputs = ParseJson(r.outputs, 256);
    auto labels = ParseJson(r.labels, 256);
    if (!outputs.ok() || !labels.ok() || !outputs->is_array() || !labels->is_array()) continue;
    const size_t n = std::min(outputs->size(), labels->size());
    for (size_t i = 0; i < n; ++i) {
      const Json& o = (*outputs)[i];
      const Json& l = (*labels)[i];
      if (l.is_null()) continue;
      if (task == "regression") {
        if (!l.is_number() || !o.is_number()) { ++unmatched; continue; }
        y.push_back(l.get<float>());
        pred.push_back(o.get<float>());
        continue;
      }
      auto it = index.find(LabelText(l));
      if (it == index.end()) { ++unmatched; continue; }
      if (task == "binary") {
        if (!o.is_number()) { ++unmatched; continue; }
        y.push_back(static_cast<float>(it->second));
        pred.push_back(o.get<float>());
      } else {
        if (!o.is_object() || !o.contains("probabilities")) { ++unmatched; continue; }
        y.push_back(static_cast<float>(it->second));
        for (const auto& key : keys) pred.push_back(o["probabilities"].value(key, 0.0f));
      }
    }
  }
  Json out = {{"labeled_rows", y.size()}, {"unmatched_labels", unmatched}};
  if (y.empty()) return out;
  Result<Json> m = task == "regression" ? ml::RegressionMetrics(y, pred)
                   : task == "binary"   ? ml::BinaryMetrics(y, pred)
                                        : ml::MulticlassMetrics(y, pred, static_cast<int>(keys.size()));
  if (!m.ok()) return out;
  for (const char* k : {"accuracy", "roc_auc", "log_loss", "f1", "rmse", "mae", "r2"}) {
    if (m->contains(k)) out[k] = (*m)[k];
  }
  return out;
}

Status Feedback(App& app, RequestContext& ctx) {
  Status st;
  auto live = FindLive(app, ctx.Project(), ctx.Param("name"), &st);
  if (!live) return st;
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  Json items = Json::array();
  if (body.is_object() && body.contains("feedback")) {
    if (!body["feedback"].is_array() || body["feedback"].empty() || body["feedback"].size() > 10000) {
      return Status::InvalidArgument("'feedback' must be an array of 1-10000 {request_id, label|labels}")
          .WithDetail(ErrorDetail::Field("feedback", "must be a non-empty array (at most 10000)"));
    }
    items = body["feedback"];
  } else {
    items.push_back(body);
  }
  // What was predicted just now may still be in the log's buffer.
  app.serving().log().Flush();
  int64_t matched = 0;
  Json missing = Json::array();
  const int64_t now = NowMicros();
  for (size_t i = 0; i < items.size(); ++i) {
    const Json& it = items[i];
    const std::string where = items.size() == 1 && !body.contains("feedback") ? "" : "feedback[" + std::to_string(i) + "].";
    if (!it.is_object() || !it.contains("request_id") || !it["request_id"].is_string()) {
      return Status::InvalidArgument(where + "request_id is required (the X-Request-Id of the prediction)")
          .WithDetail(ErrorDetail::Field(where + "request_id", "is required"));
    }
    Json labels;
    if (it.contains("labels")) {
      if (!it["labels"].is_array()) {
        return Status::InvalidArgument(where + "labels must be an array, one label per instance")
            .WithDetail(ErrorDetail::Field(where + "labels", "must be an array"));
      }
      labels = it["labels"];
    } else if (it.contains("label")) {
      labels = Json::array({it["label"]});
    } else {
      return Status::InvalidArgument(where + "label (or labels, one per instance) is required")
          .WithDetail(ErrorDetail::Field(where + "label", "is required"));
    }
    const std::string id = it["request_id"].get<std::string>();
    ASSIGN_OR_RETURN(int64_t n, app.store().SetPredictionLabels(ctx.Project(), ctx.Param("name"), id, labels.dump(), now));
    if (n == 0) missing.push_back(id.substr(0, 128));
    matched += n;
  }
  if (matched == 0) {
    return Status::NotFound("no logged prediction of deployment '" + ctx.Param("name") + "' has request id '" +
                            missing[0].get<std::string>() + "' (is the prediction log sampling it?)")
        .WithDetail(ErrorDetail::Field("request_id", "not in the prediction log"));
  }
  WriteJson(200, {{"matched", matched}, {"not_found", missing}}, ctx.res);
  return Status::Ok();
}

Status Stats(App& app, RequestContext& ctx) {
  Status st;
  auto live = FindLive(app, ctx.Project(), ctx.Param("name"), &st);
  if (!live) return st;
  app.serving().log().Flush();
  PredictionQuery q{.labeled_only = true, .include_shadow = false, .since = 0, .limit = 10000};
  ASSIGN_OR_RETURN(auto labeled, app.store().ListPredictions(live->project, live->name, q));
  auto version_json = [&](const ServingVersion& v) {
    Json j = {{"model", v.model}, {"version", v.version}, {"loaded", v.model_slot->loaded()},
              {"stats", v.stats->ToJson()}};
    std::vector<PredictionRecord> mine;
    for (const auto& r : labeled) {
      if (r.model == v.model && r.version == v.version) mine.push_back(r);
    }
    j["feedback"] = FeedbackMetrics(v, mine);
    if (v.batcher) j["batching"] = v.batcher->ToJson();
    return j;
  };
  Json routes = Json::array();
  for (const auto& r : live->routes) {
    Json j = version_json(r);
    j["weight"] = r.weight;
    routes.push_back(std::move(j));
  }
  Json out = {{"deployment", live->name},
              {"routes", std::move(routes)},
              {"shadow", live->shadow ? version_json(*live->shadow) : Json(nullptr)},
              {"prediction_log",
               {{"written", app.serving().log().written()},
                {"dropped", app.serving().log().dropped()},
                {"queued", app.serving().log().queued()},
                {"sample_rate", live->config.log_sample_rate},
                {"max_per_second", live->config.log_max_per_second},
                {"over_rate", live->log_budget->refused()}}},
              {"shadow_dropped", app.serving().shadow_dropped()},
              {"admission", live->gate->ToJson()}};
  WriteJson(200, out, ctx.res);
  return Status::Ok();
}

// ---- deployment changes

Status RecordEvent(App& app, const DeploymentRecord& d, const std::string& kind, const std::string& by) {
  return app.store().AddDeploymentEvent(DeploymentEventRecord{
      d.project, d.name, NowMicros(), kind, {{"by", by}, {"config", d.config}}});
}

Status CreateDeployment(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  RETURN_IF_ERROR(CheckBodyKeys(body, {"name", "model", "version", "routes", "shadow", "input", "rollback", "log", "limits",
                                     "batching"}));
  DeploymentRecord d;
  d.project = ctx.Project();
  ASSIGN_OR_RETURN(d.name, GetString(body, "name"));
  RETURN_IF_ERROR(CheckName(d.name, "name"));
  ASSIGN_OR_RETURN(DeploymentConfig config, ParseDeploymentConfig(ConfigFields(body), DeploymentConfig{}));
  if (config.routes.empty()) {
    RouteSpec r;
    ASSIGN_OR_RETURN(r.model, GetString(body, "model"));
    ASSIGN_OR_RETURN(r.version, OptionalVersionField(body, "version"));
    auto mv = app.store().GetModelVersion(d.project, r.model, r.version);
    if (!mv.ok()) {
      Status st = mv.TakeStatus();
      std::string msg = st.message();
      return std::move(st).WithDetail(ErrorDetail::Field(r.version ? "version" : "model", msg));
    }
    config.routes.push_back(std::move(r));
  } else if (body.contains("model") || body.contains("version")) {
    return Status::InvalidArgument("give either model/version or routes, not both")
        .WithDetail(ErrorDetail::Field("routes", "conflicts with model/version"));
  }
  RETURN_IF_ERROR(ResolveVersions(app, d.project, &config));
  d.model = config.routes[0].model;
  d.version = config.routes[0].version;
  d.config = DeploymentConfigJson(config);
  std::lock_guard lock(app.serving().mutation_mutex());
  if (app.store().GetDeployment(d.project, d.name).ok()) {
    return Status::AlreadyExists("deployment '" + d.name + "' already exists; PATCH it to change its model version");
  }
  ASSIGN_OR_RETURN(auto live, app.serving().Build(d, nullptr));
  d.state = "ready";
  d.created_at = d.updated_at = NowMicros();
  RETURN_IF_ERROR(app.store().CreateDeployment(d));
  app.deployments().Put(std::move(live));
  (void)RecordEvent(app, d, "created", ctx.caller.username);
  LogInfo("deployment created", {{"project", d.project}, {"deployment", d.name}, {"model", d.model},
                                 {"version", d.version}});
  WriteJson(201, DeploymentJson(d), ctx.res);
  return Status::Ok();
}

Status UpdateDeployment(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  RETURN_IF_ERROR(CheckBodyKeys(body, {"model", "version", "routes", "shadow", "input", "rollback", "log", "limits", "batching"}));
  std::lock_guard lock(app.serving().mutation_mutex());
  ASSIGN_OR_RETURN(DeploymentRecord d, app.store().GetDeployment(ctx.Project(), ctx.Param("name")));
  ASSIGN_OR_RETURN(DeploymentConfig current, ParseDeploymentConfig(d.config, DeploymentConfig{}));
  if (current.routes.empty()) current.routes.push_back(RouteSpec{d.model, d.version, 1});
  ASSIGN_OR_RETURN(DeploymentConfig config, ParseDeploymentConfig(ConfigFields(body), current));
  if (body.contains("model") || body.contains("version")) {
    if (body.contains("routes")) {
      return Status::InvalidArgument("give either model/version or routes, not both")
          .WithDetail(ErrorDetail::Field("routes", "conflicts with model/version"));
    }
    // A plain version switch: all traffic to that version.
    RouteSpec r{d.model, 0, 1};
    if (body.contains("model")) {
      ASSIGN_OR_RETURN(r.model, GetString(body, "model"));
    }
    ASSIGN_OR_RETURN(r.version, OptionalVersionField(body, "version"));
    auto mv = app.store().GetModelVersion(d.project, r.model, r.version);
    if (!mv.ok()) {
      Status st = mv.TakeStatus();
      std::string msg = st.message();
      return std::move(st).WithDetail(ErrorDetail::Field(body.contains("version") ? "version" : "model", msg));
    }
    config.routes = {r};
  }
  RETURN_IF_ERROR(ResolveVersions(app, d.project, &config));
  d.model = config.routes[0].model;
  d.version = config.routes[0].version;
  d.config = DeploymentConfigJson(config);
  // Load first: a model that cannot load never replaces the one serving.
  auto previous = app.deployments().Get(d.project, d.name);
  ASSIGN_OR_RETURN(auto live, app.serving().Build(d, previous.get()));
  d.state = "ready";
  d.updated_at = NowMicros();
  RETURN_IF_ERROR(app.store().UpdateDeployment(d));
  app.deployments().Put(std::move(live));
  (void)RecordEvent(app, d, "updated", ctx.caller.username);
  LogInfo("deployment updated", {{"project", d.project}, {"deployment", d.name}, {"model", d.model},
                                 {"version", d.version}});
  WriteJson(200, DeploymentJson(d), ctx.res);
  return Status::Ok();
}

// Under /v2 a model name is "{deployment}" (project "default") or "{project}:{deployment}".
void KServeRoutes(Router& router, App& app, const std::string& prefix) {
  const bool scoped = prefix.find("{project}") != std::string::npos;
  const std::string model_doc = scoped ? "the deployment's name" : "'{project}:{deployment}', or '{deployment}' in the default project";
  router.Add({.method = "GET", .pattern = prefix + "/v2/models/{model}", .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) -> Status {
                Status st;
                auto live = FindLive(app, ctx.Project(), DeploymentParam(ctx), &st);
                if (!live) return st;
                ASSIGN_OR_RETURN(auto model, StableModel(*live));
                WriteJson(200, KServeMetadata(ModelParam(ctx), *live, *model), ctx.res);
                return Status::Ok();
              },
              .summary = "KServe v2 model metadata; the model is " + model_doc, .tag = "serving",
              .project_in = scoped ? "" : "model"});
  router.Add({.method = "GET", .pattern = prefix + "/v2/models/{model}/ready", .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) -> Status {
                auto live = app.deployments().Get(ctx.Project(), DeploymentParam(ctx));
                if (!live) {
                  return Status::NotFound("deployment '" + DeploymentParam(ctx) + "' not found in project '" +
                                          ctx.Project() + "'");
                }
                WriteJson(200, {{"name", ModelParam(ctx)}, {"ready", true}}, ctx.res);
                return Status::Ok();
              },
              .summary = "KServe v2 model readiness", .tag = "serving", .project_in = scoped ? "" : "model"});
  router.Add({.method = "POST", .pattern = prefix + "/v2/models/{model}/infer", .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) { return KServeInfer(app, ctx); },
              .summary = "KServe v2 inference: one tensor per input column (or one [rows, inputs] tensor)",
              .tag = "serving",
              .request_example = {{"inputs",
                                   Json::array({{{"name", "age"}, {"shape", {2}}, {"datatype", "INT64"}, {"data", {42, 37}}},
                                                {{"name", "plan"}, {"shape", {2}}, {"datatype", "BYTES"},
                                                 {"data", {"pro", "basic"}}}})}},
              .project_in = scoped ? "" : "model"});
}

}  // namespace

Status LoadDeployments(App& app) {
  ASSIGN_OR_RETURN(auto all, app.store().ListAllDeployments());
  for (auto& d : all) {
    auto live = app.serving().Build(d, nullptr);
    if (!live.ok()) {
      LogError("deployment could not be loaded; it is not serving",
               {{"project", d.project}, {"deployment", d.name}, {"error", live.status().message()}});
      d.state = "failed";
      d.updated_at = NowMicros();
      (void)app.store().UpdateDeployment(d);
      (void)app.store().AddDeploymentEvent(DeploymentEventRecord{
          d.project, d.name, d.updated_at, "load_failed", {{"error", live.status().message()}}});
      continue;
    }
    app.deployments().Put(std::move(live).value());
  }
  return Status::Ok();
}

void RegisterDeploymentRoutes(Router& router, App& app) {
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/deployments", .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) { return CreateDeployment(app, ctx); },
              .summary = "Deploy a model version (or weighted routes, a shadow, input and rollback policies) under "
                         "a name; it serves as soon as this returns",
              .tag = "deployments", .success_status = 201,
              .request_example = {{"name", "churn-api"}, {"model", "churn"}, {"version", 1}}});
  router.Add({.method = "PATCH", .pattern = "/api/v1/projects/{project}/deployments/{name}",
              .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) { return UpdateDeployment(app, ctx); },
              .summary = "Switch version, set canary routes/shadow/policies (atomic; in-flight requests finish on "
                         "the old configuration)",
              .tag = "deployments",
              .request_example = {{"routes", Json::array({{{"model", "churn"}, {"version", 1}, {"weight", 90}},
                                                          {{"model", "churn"}, {"version", 2}, {"weight", 10}}})}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto list, app.store().ListDeployments(ctx.Project()));
                Json out = Json::array();
                for (const auto& d : list) out.push_back(DeploymentJson(d));
                WriteJson(200, {{"deployments", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List deployments", .tag = "deployments"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments/{name}",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto d, app.store().GetDeployment(ctx.Project(), ctx.Param("name")));
                Json j = DeploymentJson(d);
                if (auto live = app.deployments().Get(d.project, d.name)) {
                  if (auto model = StableModel(*live); model.ok()) j["signature"] = (*model)->Signature();
                }
                WriteJson(200, j, ctx.res);
                return Status::Ok();
              },
              .summary = "A deployment: routes, shadow, policies, state, input signature", .tag = "deployments"});
  router.Add({.method = "DELETE", .pattern = "/api/v1/projects/{project}/deployments/{name}",
              .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                std::lock_guard lock(app.serving().mutation_mutex());
                RETURN_IF_ERROR(app.store().DeleteDeployment(ctx.Project(), ctx.Param("name")));
                app.deployments().Remove(ctx.Project(), ctx.Param("name"));
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Stop and delete a deployment", .tag = "deployments", .success_status = 204});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments/{name}/events",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto d, app.store().GetDeployment(ctx.Project(), ctx.Param("name")));
                ASSIGN_OR_RETURN(auto events, app.store().ListDeploymentEvents(d.project, d.name, 200));
                Json out = Json::array();
                for (const auto& e : events) {
                  out.push_back({{"at", FormatRfc3339(e.at)}, {"kind", e.kind}, {"detail", e.detail}});
                }
                WriteJson(200, {{"events", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "What happened to a deployment, newest first: created, updated, rollback, load_failed",
              .tag = "deployments"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments/{name}/stats",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) { return Stats(app, ctx); },
              .summary = "Live stats per route: requests, errors, latency histogram, prediction distribution, "
                         "metrics from feedback",
              .tag = "deployments"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments/{name}/openapi.json",
              .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) -> Status {
                Status st;
                auto live = FindLive(app, ctx.Project(), ctx.Param("name"), &st);
                if (!live) return st;
                ASSIGN_OR_RETURN(auto model, StableModel(*live));
                WriteJson(200, DeploymentOpenApi(*live, *model), ctx.res);
                return Status::Ok();
              },
              .summary = "This deployment's own OpenAPI document: its request and response schema",
              .tag = "serving"});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/deployments/{name}/predict",
              .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) { return NativePredict(app, ctx); },
              .summary = "Predict: {\"instances\":[{column: value}]} or {\"columns\",\"data\"}; ?explain=true adds "
                         "SHAP values",
              .tag = "serving",
              .request_example = {{"instances", Json::array({{{"age", 42}, {"plan", "pro"}}})}}});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/deployments/{name}/invocations",
              .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) { return MlflowInvocations(app, ctx); },
              .summary = "MLflow scoring-server protocol: dataframe_split, dataframe_records, instances or inputs",
              .tag = "serving",
              .request_example = {{"dataframe_split", {{"columns", {"age", "plan"}}, {"data", {{42, "pro"}}}}}}});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/deployments/{name}/feedback",
              .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) { return Feedback(app, ctx); },
              .summary = "Ground truth for a logged prediction: {\"request_id\",\"label\"} (or \"labels\", or a "
                         "\"feedback\" array)",
              .tag = "serving", .request_example = {{"request_id", "req-123"}, {"label", "yes"}}});

  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments/{name}/predictions",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                Status st;
                auto live = FindLive(app, ctx.Project(), ctx.Param("name"), &st);
                if (!live) return st;
                PredictionQuery q;
                ASSIGN_OR_RETURN(q.limit, QueryInt(ctx.req, "limit", 100, 1, 10000));
                ASSIGN_OR_RETURN(q.since, QueryInt(ctx.req, "since_us", 0, 0, INT64_MAX));
                const std::string* shadow = ctx.req.Query("shadow");
                q.include_shadow = shadow != nullptr && (*shadow == "true" || *shadow == "1");
                const std::string* labeled = ctx.req.Query("labeled");
                q.labeled_only = labeled != nullptr && (*labeled == "true" || *labeled == "1");
                app.serving().log().Flush();  // what was answered before this call is in the list
                ASSIGN_OR_RETURN(auto records, app.store().ListPredictions(live->project, live->name, q));
                Json items = Json::array();
                for (const PredictionRecord& r : records) {
                  auto parse = [](const std::string& text) {
                    auto j = ParseJson(text, 256);
                    return j.ok() ? std::move(j).value() : Json(nullptr);
                  };
                  items.push_back({{"request_id", r.request_id},
                                   {"model", r.model},
                                   {"version", r.version},
                                   {"shadow", r.shadow},
                                   {"created_at", FormatRfc3339(r.created_at)},
                                   {"latency_ms", r.latency_ms},
                                   {"inputs", parse(r.inputs)},
                                   {"outputs", parse(r.outputs)},
                                   {"labels", r.labels.empty() ? Json(nullptr) : parse(r.labels)}});
                }
                WriteJson(200, {{"items", std::move(items)}}, ctx.res);
                return Status::Ok();
              },
              .summary = "The prediction log, newest first (?limit=, ?since_us=, ?shadow=true, ?labeled=true)",
              .tag = "serving"});

  // KServe Open Inference Protocol v2: server-wide endpoints, then models at /v2 and per project.
  router.Add({.method = "GET", .pattern = "/v2/health/live", .permission = Permission::kPublic,
              .handler = [](RequestContext& ctx) {
                WriteJson(200, {{"live", true}}, ctx.res);
                return Status::Ok();
              },
              .summary = "KServe v2 server liveness", .tag = "serving"});
  router.Add({.method = "GET", .pattern = "/v2/health/ready", .permission = Permission::kPublic,
              .handler = [&app](RequestContext& ctx) {
                WriteJson(app.ready() ? 200 : 503, {{"ready", app.ready()}}, ctx.res);
                return Status::Ok();
              },
              .summary = "KServe v2 server readiness", .tag = "serving"});
  router.Add({.method = "GET", .pattern = "/v2", .permission = Permission::kAuthenticated,
              .handler = [](RequestContext& ctx) {
                WriteJson(200, {{"name", "lathe"}, {"version", LATHE_VERSION}, {"extensions", Json::array()}}, ctx.res);
                return Status::Ok();
              },
              .summary = "KServe v2 server metadata", .tag = "serving"});
  KServeRoutes(router, app, "");
  KServeRoutes(router, app, "/api/v1/projects/{project}");
}

}  // namespace lathe
