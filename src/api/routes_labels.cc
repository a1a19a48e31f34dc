// Label queues: people label the rows of a dataset version whose label column is missing.
//
//   POST …/label-queues {"name","dataset","version","label_column","labels":[allowed…],"labels_per_row":1,
//                        "instructions"}
//   GET  …/label-queues/{q}                  progress, per-labeler counts, agreement (where rows were labeled twice)
//   GET  …/label-queues/{q}/next?limit=N     the next rows this caller has not labeled and that still need labels
//   POST …/label-queues/{q}/labels {"labels":[{"row":5,"label":"spam"}]}   who labeled what and when is recorded
//   GET  …/label-queues/{q}/labels           every recorded label
//   POST …/label-queues/{q}/finish           a job making a new version with the label column filled
//                                            (majority label per row; ties stay missing)
// The queue is a versioned document ("label_queue"); labels are rows in the store.
#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "api/app.h"
#include "api/data_import.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "data/dataset_file.h"
#include "data/labeling.h"
#include "data/table_json.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

constexpr const char* kQueueKind = "label_queue";

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

struct Queue {
  std::string name, dataset, label_column, instructions;
  int64_t version = 0;
  std::vector<std::string> labels;  // allowed; empty = any non-empty text
  int64_t labels_per_row = 1;
  bool finished = false;
};

Queue QueueFromDoc(const DocumentRecord& d) {
  Queue q;
  q.name = d.name;
  q.dataset = d.body.value("dataset", std::string());
  q.version = d.body.value("version", int64_t{0});
  q.label_column = d.body.value("label_column", std::string());
  q.instructions = d.body.value("instructions", std::string());
  q.labels_per_row = d.body.value("labels_per_row", int64_t{1});
  q.finished = d.body.value("finished", false);
  if (d.body.contains("labels")) q.labels = d.body["labels"].get<std::vector<std::string>>();
  return q;
}

Json QueueBody(const Queue& q) {
  return {{"dataset", q.dataset}, {"version", q.version}, {"label_column", q.label_column},
          {"labels", q.labels},   {"labels_per_row", q.labels_per_row}, {"instructions", q.instructions},
          {"finished", q.finished}};
}

// Rows of the queue's version whose label column is missing (every row if the column does not exist).
Result<std::vector<int64_t>> RowsToLabel(const DatasetFile& file, const std::string& label_column) {
  int index = -1;
  for (size_t i = 0; i < file.columns().size(); ++i) {
    if (file.columns()[i].name == label_column) index = static_cast<int>(i);
  }
  std::vector<int64_t> rows;
  for (int64_t off = 0; off < file.num_rows(); off += 65536) {
    ASSIGN_OR_RETURN(Table t, file.ReadRows(off, 65536));
    for (int64_t r = 0; r < t.num_rows; ++r) {
      if (index < 0 || !t.columns[static_cast<size_t>(index)].IsValid(static_cast<size_t>(r))) rows.push_back(off + r);
    }
  }
  return rows;
}

struct Context {
  Queue queue;
  DatasetVersionRecord version;
  std::unique_ptr<DatasetFile> file;
  std::vector<int64_t> rows;  // rows to label, ascending
};

Result<Context> LoadQueue(App& app, const std::string& project, const std::string& name) {
  Context c;
  ASSIGN_OR_RETURN(auto doc, app.store().GetDocument(project, kQueueKind, name, 0));
  c.queue = QueueFromDoc(doc);
  ASSIGN_OR_RETURN(c.version, app.store().GetDatasetVersion(project, c.queue.dataset, c.queue.version));
  ASSIGN_OR_RETURN(c.file, OpenDatasetVersion(app, c.version));
  ASSIGN_OR_RETURN(c.rows, RowsToLabel(*c.file, c.queue.label_column));
  return c;
}

std::vector<RowLabel> RowLabels(const std::vector<LabelRecord>& labels) {
  std::vector<RowLabel> out;
  out.reserve(labels.size());
  for (const auto& l : labels) out.push_back({l.row_index, l.labeler, l.label});
  return out;
}

Result<Json> FinishQueue(App& app, JobContext& ctx) {
  const std::string project = ctx.job().project;
  const std::string name = ctx.payload().value("queue", std::string());
  ASSIGN_OR_RETURN(Context c, LoadQueue(app, project, name));
  ASSIGN_OR_RETURN(auto labels, app.store().ListLabels(project, name));
  auto consensus = ConsensusLabels(RowLabels(labels));
  if (consensus.empty()) return Status::FailedPrecondition("label queue '" + name + "' has no agreed labels yet");
  ASSIGN_OR_RETURN(Table t, c.file->ReadAll());
  // The label column as strings, keeping the labels the version already had.
  Column out;
  out.name = c.queue.label_column;
  out.type = ColumnType::kString;
  out.valid.assign(static_cast<size_t>(t.num_rows), 0);
  out.codes.assign(static_cast<size_t>(t.num_rows), 0);
  std::map<std::string, int32_t> dict;
  auto code_of = [&](const std::string& s) {
    auto [it, inserted] = dict.emplace(s, static_cast<int32_t>(out.dict.size()));
    if (inserted) out.dict.push_back(s);
    return it->second;
  };
  int existing = t.FindColumn(c.queue.label_column);
  if (existing >= 0) {
    const Column& old = t.columns[static_cast<size_t>(existing)];
    for (int64_t r = 0; r < t.num_rows; ++r) {
      size_t i = static_cast<size_t>(r);
      if (!old.IsValid(i)) continue;
      std::string text;
      switch (old.type) {
        case ColumnType::kString: text = std::string(old.StringAt(i)); break;
        case ColumnType::kInt64: text = std::to_string(old.i64[i]); break;
        case ColumnType::kBool: text = old.b[i] ? "true" : "false"; break;
        case ColumnType::kDatetime: text = FormatDatetimeMicros(old.i64[i]); break;
        case ColumnType::kFloat64: {
          char buf[32];
          auto res = std::to_chars(buf, buf + sizeof(buf), old.f64[i]);
          text.assign(buf, res.ptr);
          break;
        }
      }
      out.valid[i] = 1;
      out.codes[i] = code_of(text);
    }
  }
  int64_t applied = 0;
  for (const auto& [row, label] : consensus) {
    if (row < 0 || row >= t.num_rows) continue;
    out.valid[static_cast<size_t>(row)] = 1;
    out.codes[static_cast<size_t>(row)] = code_of(label);
    ++applied;
  }
  if (existing >= 0) t.columns[static_cast<size_t>(existing)] = std::move(out);
  else t.columns.push_back(std::move(out));
  const std::string path = app.blobs().TempPath("labeled");
  RETURN_IF_ERROR(WriteDatasetFile(t, path));
  Json lineage = {{"parent", {{"dataset", c.queue.dataset}, {"version", c.queue.version}}},
                  {"labeling", {{"queue", name}, {"labels", labels.size()}, {"rows_labeled", applied}}}};
  ASSIGN_OR_RETURN(Json version, FinishVersion(app, ctx, project, c.queue.dataset, path, "", 0,
                                               {{"kind", "labeling"}, {"queue", name}}, lineage, Json::object()));
  c.queue.finished = true;
  DocumentRecord doc{.project = project, .kind = kQueueKind, .name = name, .body = QueueBody(c.queue),
                     .created_by = ctx.job().created_by, .created_at = NowMicros()};
  RETURN_IF_ERROR(app.store().PutDocument(doc).status());
  return version;
}

}  // namespace

void RegisterLabelRoutes(Router& router, App& app) {
  app.jobs().Register("label_finish", {.handler = [&app](JobContext& ctx) { return FinishQueue(app, ctx); }});
  const std::string base = "/api/v1/projects/{project}/label-queues";
  router.Add({.method = "POST", .pattern = base, .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object()) return FieldError("body", "must be a JSON object");
                Queue q;
                q.name = body.value("name", std::string());
                RETURN_IF_ERROR(CheckName(q.name, "name"));
                ASSIGN_OR_RETURN(q.dataset, GetString(body, "dataset"));
                ASSIGN_OR_RETURN(q.version, OptionalVersionField(body, "version"));
                ASSIGN_OR_RETURN(q.label_column, GetString(body, "label_column"));
                if (q.label_column.empty()) return FieldError("label_column", "must name a column");
                if (body.contains("labels")) {
                  if (!body["labels"].is_array()) return FieldError("labels", "must be an array of strings");
                  for (const auto& l : body["labels"]) {
                    if (!l.is_string() || l.get<std::string>().empty()) {
                      return FieldError("labels", "must hold non-empty strings");
                    }
                    q.labels.push_back(l.get<std::string>());
                  }
                }
                q.labels_per_row = GetIntOr(body, "labels_per_row", 1);
                if (q.labels_per_row < 1 || q.labels_per_row > 10) return FieldError("labels_per_row", "must be 1..10");
                q.instructions = body.value("instructions", std::string());
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), q.dataset, q.version));
                q.version = v.version;
                if (app.store().GetDocument(ctx.Project(), kQueueKind, q.name, 0).ok()) {
                  return Status::AlreadyExists("label queue '" + q.name + "' exists");
                }
                DocumentRecord doc{.project = ctx.Project(), .kind = kQueueKind, .name = q.name, .body = QueueBody(q),
                                   .created_by = ctx.caller.user_id, .created_at = NowMicros()};
                RETURN_IF_ERROR(app.store().PutDocument(doc).status());
                Json out = QueueBody(q);
                out["name"] = q.name;
                WriteJson(201, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Create a label queue over the rows of a version whose label column is missing",
              .tag = "labeling", .success_status = 201,
              .request_example = {{"name", "spam-round-1"}, {"dataset", "messages"}, {"label_column", "label"},
                                  {"labels", {"spam", "ham"}}, {"labels_per_row", 2}}});
  router.Add({.method = "GET", .pattern = base + "/{queue}", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Context c, LoadQueue(app, ctx.Project(), ctx.Param("queue")));
                ASSIGN_OR_RETURN(auto labels, app.store().ListLabels(ctx.Project(), ctx.Param("queue")));
                std::map<std::string, int64_t> per_labeler;
                std::map<int64_t, int64_t> per_row;
                for (const auto& l : labels) {
                  per_labeler[l.labeler]++;
                  per_row[l.row_index]++;
                }
                int64_t done = 0;
                for (const auto& [row, n] : per_row) done += n >= c.queue.labels_per_row;
                Json labelers = Json::array();
                std::map<std::string, std::string> names;  // user id -> username
                for (const auto& [who, n] : per_labeler) {
                  auto u = app.store().GetUserById(who);
                  names[who] = u.ok() ? u->username : who;
                  labelers.push_back({{"user", names[who]}, {"labels", n}});
                }
                Json out = QueueBody(c.queue);
                out["name"] = c.queue.name;
                out["rows_to_label"] = static_cast<int64_t>(c.rows.size());
                out["rows_done"] = done;
                out["labels_recorded"] = static_cast<int64_t>(labels.size());
                out["labelers"] = labelers;
                out["agreement"] = LabelAgreement(RowLabels(labels));
                // Labels are kept by user id; people read usernames.
                if (out["agreement"].contains("cohens_kappa")) {
                  for (Json& who : out["agreement"]["cohens_kappa"]["labelers"]) {
                    auto it = names.find(who.get<std::string>());
                    if (it != names.end()) who = it->second;
                  }
                }
                WriteJson(200, out, ctx.res);
                return Status::Ok();
              },
              .summary = "A label queue's progress, labelers and agreement", .tag = "labeling"});
  router.Add({.method = "GET", .pattern = base + "/{queue}/next", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(ctx.req, "limit", 10, 1, 1000));
                ASSIGN_OR_RETURN(Context c, LoadQueue(app, ctx.Project(), ctx.Param("queue")));
                ASSIGN_OR_RETURN(auto labels, app.store().ListLabels(ctx.Project(), ctx.Param("queue")));
                std::map<int64_t, int64_t> count;
                std::set<int64_t> mine;
                for (const auto& l : labels) {
                  count[l.row_index]++;
                  if (l.labeler == ctx.caller.user_id) mine.insert(l.row_index);
                }
                Json rows = Json::array();
                for (int64_t r : c.rows) {
                  if (static_cast<int64_t>(rows.size()) >= limit) break;
                  if (mine.count(r) || count[r] >= c.queue.labels_per_row) continue;
                  ASSIGN_OR_RETURN(Table one, c.file->ReadRows(r, 1));
                  rows.push_back({{"row", r}, {"values", TableRowsToJson(one)[0]}});
                }
                WriteJson(200, {{"queue", c.queue.name}, {"labels", c.queue.labels},
                                {"instructions", c.queue.instructions}, {"rows", rows}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "The next rows for the caller to label (?limit=N)", .tag = "labeling"});
  router.Add({.method = "POST", .pattern = base + "/{queue}/labels", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object() || !body.contains("labels") || !body["labels"].is_array() ||
                    body["labels"].empty() || body["labels"].size() > 10000) {
                  return FieldError("labels", "must be an array of 1..10000 {\"row\", \"label\"} objects");
                }
                ASSIGN_OR_RETURN(Context c, LoadQueue(app, ctx.Project(), ctx.Param("queue")));
                if (c.queue.finished) {
                  return Status::FailedPrecondition("label queue '" + c.queue.name + "' is finished");
                }
                std::set<int64_t> open(c.rows.begin(), c.rows.end());
                std::vector<LabelRecord> records;
                const int64_t now = NowMicros();
                for (size_t i = 0; i < body["labels"].size(); ++i) {
                  const Json& l = body["labels"][i];
                  const std::string field = "labels[" + std::to_string(i) + "]";
                  if (!l.is_object() || !l.contains("row") || !l["row"].is_number_integer() || !l.contains("label") ||
                      !l["label"].is_string()) {
                    return FieldError(field, "must be {\"row\": integer, \"label\": string}");
                  }
                  int64_t row = l["row"].get<int64_t>();
                  std::string label = l["label"].get<std::string>();
                  if (!open.count(row)) return FieldError(field + ".row", "is not a row of this queue");
                  if (label.empty() || label.size() > 1000) return FieldError(field + ".label", "must be 1..1000 characters");
                  if (!c.queue.labels.empty() &&
                      std::find(c.queue.labels.begin(), c.queue.labels.end(), label) == c.queue.labels.end()) {
                    return FieldError(field + ".label", "must be one of the queue's labels");
                  }
                  records.push_back({ctx.Project(), c.queue.name, row, ctx.caller.user_id, label, now});
                }
                RETURN_IF_ERROR(app.store().PutLabels(records));
                WriteJson(200, {{"recorded", records.size()}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Submit labels for rows of the queue", .tag = "labeling"});
  router.Add({.method = "GET", .pattern = base + "/{queue}/labels", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().GetDocument(ctx.Project(), kQueueKind, ctx.Param("queue"), 0).status());
                ASSIGN_OR_RETURN(auto labels, app.store().ListLabels(ctx.Project(), ctx.Param("queue")));
                Json out = Json::array();
                for (const auto& l : labels) {
                  auto u = app.store().GetUserById(l.labeler);
                  out.push_back({{"row", l.row_index}, {"label", l.label},
                                 {"labeler", u.ok() ? u->username : l.labeler},
                                 {"labeled_at", FormatRfc3339(l.created_at)}});
                }
                WriteJson(200, {{"labels", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Every label recorded in the queue: row, label, who, when", .tag = "labeling"});
  router.Add({.method = "POST", .pattern = base + "/{queue}/finish", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().GetDocument(ctx.Project(), kQueueKind, ctx.Param("queue"), 0).status());
                ASSIGN_OR_RETURN(JobRecord job, app.jobs().Submit("label_finish", ctx.Project(),
                                                                  {{"queue", ctx.Param("queue")}}, ctx.caller.user_id));
                ASSIGN_OR_RETURN(JobRecord done, app.jobs().Wait(job.id, 600000));
                if (done.state == JobState::kFailed && done.result.contains("error")) {
                  return StatusFromJson(done.result["error"]);
                }
                if (done.state != JobState::kSucceeded) {
                  WriteJson(202, {{"job", job.id}, {"state", JobStateName(done.state)}}, ctx.res);
                  return Status::Ok();
                }
                Json out = done.result;
                out["job"] = job.id;
                WriteJson(201, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Finish the round: a new version with the agreed labels filled in", .tag = "labeling",
              .success_status = 201});
}

}  // namespace lathe
