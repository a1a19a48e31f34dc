// Recipes: no-code cleaning and transform steps.
//
//   GET  /api/v1/recipe-steps                                   every step with its parameter schema
//   POST …/datasets/{name}/versions/{v}/preview {"steps"|"recipe"}   first rows after the steps + per-step counts
//   POST …/datasets/{name}/versions/{v}/apply   {"steps"|"recipe","output"}  a job making a new version whose
//        lineage names the parent version and the recipe (with the statistics it learned)
//   POST/GET/DELETE …/recipes[/{name}]                          saved, versioned, re-applicable recipes
#include "api/app.h"
#include "api/data_import.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "data/dataset_file.h"
#include "data/recipe.h"
#include "data/table_json.h"

namespace lathe {

namespace {

constexpr const char* kRecipeKind = "recipe";
constexpr int64_t kPreviewInputRows = 100000;

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

struct ResolvedRecipe {
  Recipe recipe;
  Json steps = Json::array();
  std::string name;  // "" for inline steps
  int64_t version = 0;
};

// {"steps":[…]} inline, or {"recipe":"name","recipe_version":N} saved.
Result<ResolvedRecipe> ResolveRecipe(App& app, const std::string& project, const Json& body) {
  ResolvedRecipe r;
  if (body.contains("recipe")) {
    if (!body["recipe"].is_string()) return FieldError("recipe", "must be the name of a saved recipe");
    r.name = body["recipe"].get<std::string>();
    int64_t version = GetIntOr(body, "recipe_version", 0);
    ASSIGN_OR_RETURN(auto doc, app.store().GetDocument(project, kRecipeKind, r.name, version));
    r.version = doc.version;
    r.steps = doc.body.value("steps", Json::array());
  } else if (body.contains("steps")) {
    r.steps = body["steps"];
  } else {
    return FieldError("steps", "is required (or name a saved recipe with \"recipe\")");
  }
  ASSIGN_OR_RETURN(r.recipe, ParseRecipe(r.steps));
  return r;
}

Json StepReportsJson(const std::vector<StepReport>& reports) {
  Json out = Json::array();
  for (const auto& s : reports) {
    out.push_back({{"op", s.op}, {"rows_in", s.rows_in}, {"rows_out", s.rows_out}, {"columns_out", s.columns_out}});
  }
  return out;
}

Json SchemaJson(const Table& t) {
  Json cols = Json::array();
  for (const auto& c : t.columns) cols.push_back({{"name", c.name}, {"type", ColumnTypeName(c.type)}});
  return cols;
}

Result<Json> ApplyJob(App& app, JobContext& ctx) {
  const Json& p = ctx.payload();
  const std::string project = ctx.job().project;
  const std::string dataset = p.value("dataset", std::string());
  const int64_t version = p.value("version", int64_t{0});
  const std::string output = p.value("output", dataset);
  ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(project, dataset, version));
  ASSIGN_OR_RETURN(Recipe recipe, ParseRecipe(p.value("steps", Json::array())));
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
  ctx.Progress(0.05, "reading");
  ASSIGN_OR_RETURN(Table input, file->ReadAll());
  file.reset();
  ctx.Progress(0.2, "applying " + std::to_string(recipe.steps.size()) + " steps");
  ApplyOptions opt;
  opt.secret_salt = PiiSalt(app, project);
  int64_t started = MonotonicMicros();
  ASSIGN_OR_RETURN(RecipeOutput out, ApplyRecipe(recipe, std::move(input), opt, [&] { return ctx.Cancelled(); }));
  const double seconds = (MonotonicMicros() - started) / 1e6;
  for (const auto& s : out.steps) {
    ctx.Log(s.op + ": " + std::to_string(s.rows_in) + " -> " + std::to_string(s.rows_out) + " rows");
  }
  ctx.Progress(0.7, "writing");
  const std::string path = app.blobs().TempPath("recipe");
  RETURN_IF_ERROR(WriteDatasetFile(out.table, path));
  Json recipe_json = {{"steps", p.value("steps", Json::array())}, {"fitted", out.fitted},
                      {"step_reports", StepReportsJson(out.steps)}};
  if (p.contains("recipe_name")) {
    recipe_json["name"] = p["recipe_name"];
    recipe_json["version"] = p.value("recipe_version", int64_t{0});
  }
  Json lineage = {{"parent", {{"dataset", v.dataset}, {"version", v.version}}}, {"recipe", recipe_json}};
  return FinishVersion(app, ctx, project, output, path, "", 0, {{"kind", "recipe"}},
                       lineage, {{"apply_seconds", seconds}});
}

}  // namespace

void RegisterRecipeJob(App& app) {
  app.jobs().Register("recipe", {.handler = [&app](JobContext& ctx) { return ApplyJob(app, ctx); }});
}

void RegisterRecipeRoutes(Router& router, App& app) {
  router.Add({.method = "GET", .pattern = "/api/v1/recipe-steps", .permission = Permission::kAuthenticated,
              .handler = [](RequestContext& ctx) -> Status {
                WriteJson(200, {{"steps", RecipeStepsSchemaJson()}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Every recipe step: name, summary, whether it is row-wise, parameter JSON Schema",
              .tag = "recipes"});
  const std::string version = "/api/v1/projects/{project}/datasets/{name}/versions/{version}";
  router.Add({.method = "POST", .pattern = version + "/preview", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t vnum, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object()) return FieldError("body", "must be a JSON object");
                ASSIGN_OR_RETURN(int64_t limit, [&]() -> Result<int64_t> {
                  int64_t l = GetIntOr(body, "limit", 20);
                  if (l < 0 || l > app.config().max_page_rows) return FieldError("limit", "is out of range");
                  return l;
                }());
                ASSIGN_OR_RETURN(ResolvedRecipe r, ResolveRecipe(app, ctx.Project(), body));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), vnum));
                ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
                const bool sampled = file->num_rows() > kPreviewInputRows;
                ASSIGN_OR_RETURN(Table input, file->ReadRows(0, kPreviewInputRows));
                ApplyOptions opt;
                opt.secret_salt = PiiSalt(app, ctx.Project());
                ASSIGN_OR_RETURN(RecipeOutput out, ApplyRecipe(r.recipe, std::move(input), opt, nullptr));
                Table head = std::move(out.table);
                const int64_t rows_out = head.num_rows;
                if (head.num_rows > limit) {
                  for (auto& c : head.columns) {
                    const size_t n = static_cast<size_t>(limit);
                    c.valid.resize(n);
                    if (!c.i64.empty()) c.i64.resize(n);
                    if (!c.f64.empty()) c.f64.resize(n);
                    if (!c.b.empty()) c.b.resize(n);
                    if (!c.codes.empty()) c.codes.resize(n);
                  }
                  head.num_rows = limit;
                }
                WriteJson(200, {{"steps", StepReportsJson(out.steps)}, {"columns", SchemaJson(head)},
                                {"rows", TableRowsToJson(head)}, {"rows_out", rows_out},
                                {"input_rows", std::min<int64_t>(file->num_rows(), kPreviewInputRows)},
                                {"sampled", sampled}, {"fitted", out.fitted}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "Preview steps on a version: the first rows after them and per-step row counts "
                         "(over the first 100000 rows)",
              .tag = "recipes",
              .request_example = {{"steps", {{{"op", "drop_columns"}, {"params", {{"columns", {"id"}}}}}}},
                                  {"limit", 20}},
              .changes_nothing = true});
  router.Add({.method = "POST", .pattern = version + "/apply", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t vnum, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object()) return FieldError("body", "must be a JSON object");
                ASSIGN_OR_RETURN(ResolvedRecipe r, ResolveRecipe(app, ctx.Project(), body));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), vnum));
                std::string output = body.value("output", v.dataset);
                RETURN_IF_ERROR(CheckName(output, "output"));
                Json payload = {{"dataset", v.dataset}, {"version", v.version}, {"output", output}, {"steps", r.steps}};
                if (!r.name.empty()) {
                  payload["recipe_name"] = r.name;
                  payload["recipe_version"] = r.version;
                }
                ASSIGN_OR_RETURN(JobRecord job, app.jobs().Submit("recipe", ctx.Project(), payload, ctx.caller.user_id));
                const std::string* w = ctx.req.Query("wait");
                return RespondWithJob(app, ctx, job, w != nullptr && *w == "true", {{"dataset", output}});
              },
              .summary = "Apply steps or a saved recipe to a version: a job making a new version with lineage "
                         "(?wait=true waits)",
              .tag = "recipes", .success_status = 202,
              .request_example = {{"recipe", "clean-sales"}, {"output", "sales-clean"}}});

  const std::string base = "/api/v1/projects/{project}/recipes";
  router.Add({.method = "POST", .pattern = base, .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object()) return FieldError("body", "must be a JSON object");
                std::string name = body.value("name", std::string());
                RETURN_IF_ERROR(CheckName(name, "name"));
                if (!body.contains("steps")) return FieldError("steps", "is required");
                RETURN_IF_ERROR(ParseRecipe(body["steps"]).status());
                DocumentRecord doc{.project = ctx.Project(), .kind = kRecipeKind, .name = name,
                                   .body = {{"steps", body["steps"]},
                                            {"description", body.value("description", std::string())}},
                                   .created_by = ctx.caller.user_id, .created_at = NowMicros()};
                ASSIGN_OR_RETURN(doc.version, app.store().PutDocument(doc));
                WriteJson(201, {{"name", name}, {"version", doc.version}, {"steps", body["steps"]},
                                {"description", doc.body["description"]}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "Save a recipe (saving an existing name adds a version)", .tag = "recipes",
              .success_status = 201});
  router.Add({.method = "GET", .pattern = base, .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto docs, app.store().ListDocuments(ctx.Project(), kRecipeKind));
                Json out = Json::array();
                for (const auto& d : docs) {
                  out.push_back({{"name", d.name}, {"version", d.version}, {"steps", d.body.value("steps", Json::array()).size()},
                                 {"description", d.body.value("description", std::string())},
                                 {"updated_at", FormatRfc3339(d.created_at)}});
                }
                WriteJson(200, {{"recipes", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List saved recipes", .tag = "recipes"});
  router.Add({.method = "GET", .pattern = base + "/{recipe}", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, QueryInt(ctx.req, "version", 0, 0, INT64_MAX / 2));
                ASSIGN_OR_RETURN(auto d, app.store().GetDocument(ctx.Project(), kRecipeKind, ctx.Param("recipe"), version));
                ASSIGN_OR_RETURN(auto versions, app.store().ListDocumentVersions(ctx.Project(), kRecipeKind, d.name));
                WriteJson(200, {{"name", d.name}, {"version", d.version}, {"versions", versions.size()},
                                {"steps", d.body.value("steps", Json::array())},
                                {"description", d.body.value("description", std::string())},
                                {"updated_at", FormatRfc3339(d.created_at)}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "A saved recipe (?version=N, default latest)", .tag = "recipes"});
  router.Add({.method = "DELETE", .pattern = base + "/{recipe}", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().DeleteDocument(ctx.Project(), kRecipeKind, ctx.Param("recipe")));
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Delete a saved recipe (versions made with it keep their lineage)", .tag = "recipes",
              .success_status = 204});
}

}  // namespace lathe
