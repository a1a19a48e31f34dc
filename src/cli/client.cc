#include "cli/client.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "cli/client_args.h"
#include "cli/client_config.h"
#include "cli/client_context.h"
#include "cli/client_data.h"
#include "cli/http_client.h"
#include "cli/table_printer.h"
#include "common/json.h"

namespace lathe {
namespace cli {
namespace {

// --- login / logout

int CmdLogin(Context& ctx, const ParsedArgs& a) {
  const std::string user = a.Get("username", "admin");
  auto password = ReadSecret(a, ctx.env, "password-stdin", "LATHE_PASSWORD", "Password");
  if (!password.ok()) {
    PrintStatusError(password.status());
    return kExitUsage;
  }
  // Logging in never sends an old token.
  ctx.conn.token.clear();
  Json body = {{"username", user}, {"password", *password}};
  auto resp = ctx.Call("POST", "/api/v1/auth/login", &body);
  if (!resp) return kExitError;
  auto token = GetString(*resp, "token");
  if (!token.ok()) {
    Err("error: the server's login response has no token\n");
    return kExitError;
  }
  Status saved = SaveCredentials(ctx.credentials_path, {ctx.conn.url, *token});
  if (!saved.ok()) {
    PrintStatusError(saved);
    return kExitError;
  }
  if (ctx.json) {
    PrintJson(*resp);
  } else {
    Out("Logged in as " + SanitizeCell(GetStringOr(*resp, "user", user)) + " at " + ctx.conn.url + "\n");
    std::string exp = GetStringOr(*resp, "expires_at", "");
    if (!exp.empty())
      Err("Token saved to " + ctx.credentials_path + " (expires " + SanitizeCell(exp) + ")\n");
  }
  return kExitOk;
}

int CmdLogout(Context& ctx, const ParsedArgs&) {
  int rc = kExitOk;
  if (ctx.conn.token.empty()) {
    Out("Not logged in to " + ctx.conn.url + "\n");
  } else {
    auto r = ctx.Raw("POST", "/api/v1/auth/logout");
    if (!r.ok()) {
      PrintStatusError(r.status());
      rc = kExitError;
    } else if (!r->ok() && r->status != 401) {  // 401: the token had already expired; nothing to revoke
      ctx.PrintApiError(*r);
      rc = kExitError;
    }
  }
  // The saved token is removed even if the server could not be told, so it is not used again.
  if (ctx.saved && NormalizeUrl(ctx.saved->url) == ctx.conn.url) {
    Status s = RemoveCredentials(ctx.credentials_path);
    if (!s.ok()) {
      PrintStatusError(s);
      return kExitError;
    }
  }
  if (rc == kExitOk && !ctx.conn.token.empty()) Out("Logged out of " + ctx.conn.url + "\n");
  return rc;
}

// --- train / runs / jobs

int PrintRunResult(Context& ctx, const std::string& run_id) {
  auto run = ctx.Call("GET", ctx.ProjectPath("/runs/" + UrlEncode(run_id)));
  if (!run) return kExitError;
  if (ctx.json) {
    PrintJson(*run);
  } else {
    std::string line =
        "Run " + SanitizeCell(run_id) + " " + SanitizeCell(GetStringOr(*run, "state", "succeeded"));
    const Json& tr = Member(*run, "train_rows");
    const Json& te = Member(*run, "test_rows");
    if (tr.is_number() && te.is_number())
      line += " (" + FormatCell(tr) + " train rows, " + FormatCell(te) + " test rows";
    const Json& secs = Member(*run, "train_seconds");
    if (tr.is_number() && te.is_number())
      line += secs.is_number() ? ", " + FormatSignificant(secs.get<double>(), 3) + " s)" : ")";
    Out(line + "\n");
    PrintMetricsTable(Member(*run, "metrics"));
  }
  return kExitOk;
}

int FinishJob(Context& ctx, const std::string& job_id, const std::string& run_id) {
  auto job = WaitForJob(ctx, job_id);
  if (!job) return kExitError;
  const std::string state = GetStringOr(*job, "state", "");
  if (state != "succeeded") {
    Err("error: job " + SanitizeCell(job_id) + " " + SanitizeCell(state) + ": " +
        SanitizeCell(JobError(*job)) + "\n");
    if (!run_id.empty()) Err("  run: " + SanitizeCell(run_id) + "\n");
    if (ctx.json) PrintJson(*job);
    return kExitError;
  }
  if (run_id.empty()) {
    if (ctx.json)
      PrintJson(*job);
    else
      Out("Job " + SanitizeCell(job_id) + " succeeded\n");
    return kExitOk;
  }
  return PrintRunResult(ctx, run_id);
}

// Every --param KEY=VALUE as a JSON object (numbers and true/false typed).
Result<Json> ParamFlags(const ParsedArgs& a) {
  Json params = Json::object();
  for (const auto& p : a.GetAll("param")) {
    ASSIGN_OR_RETURN(auto kv, ParseParam(p));
    params[kv.first] = kv.second;
  }
  return params;
}

int CmdTrain(Context& ctx, const ParsedArgs& a) {
  // An unsupervised learner (kmeans, pca, isolation_forest) implies its task and needs no target.
  const bool unsupervised = a.Has("learner") && !a.Has("task") &&
                            (a.Get("learner") == "kmeans" || a.Get("learner") == "pca" ||
                             a.Get("learner") == "isolation_forest");
  for (const char* required : {"dataset", "target", "task"}) {
    if (!a.Has(required) && !(unsupervised && std::string(required) != "dataset")) {
      Err(std::string("error: --") + required + " is required\n");
      return -kExitUsage;  // negative: the dispatcher prints usage
    }
  }
  auto params = ParamFlags(a);
  if (!params.ok()) {
    PrintStatusError(params.status());
    return -kExitUsage;
  }
  auto version = OptionalVersion(a);
  auto fraction = ParseDoubleFlag("test-fraction", a.Get("test-fraction", "0.2"), 0.0, 0.99);
  auto seed = ParseIntFlag("seed", a.Get("seed", "42"), 0, INT64_MAX);
  for (const Status* s : {&version.status(), &fraction.status(), &seed.status()}) {
    if (!s->ok()) {
      PrintStatusError(*s);
      return -kExitUsage;
    }
  }
  // The server validates the split and names the field at fault; flags that do not apply to the method are
  // passed on so that the user hears which one.
  const std::string method = a.Get("split", "holdout");
  Json split = {{"seed", *seed}};
  if (method != "holdout") split["method"] = method;
  if (method == "holdout" || a.Has("test-fraction")) split["test_fraction"] = *fraction;
  if (auto folds = a.GetOptional("folds")) {
    auto n = ParseIntFlag("folds", *folds, 2, 20);
    if (!n.ok()) {
      PrintStatusError(n.status());
      return -kExitUsage;
    }
    split["folds"] = *n;
  }
  if (auto g = a.GetOptional("group-column")) split["group_column"] = *g;
  if (auto t = a.GetOptional("time-column")) split["time_column"] = *t;
  Json body = {{"dataset", a.Get("dataset")},
               {"learner", a.Get("learner", "xgboost")},
               {"params", *params},
               {"split", split}};
  if (a.Has("target")) body["target"] = a.Get("target");
  if (a.Has("task")) body["task"] = a.Get("task");
  if (version->has_value()) body["version"] = **version;
  auto resp = ctx.Call("POST", ctx.ProjectPath("/runs"), &body);
  if (!resp) return kExitError;
  const std::string run_id = IdText(Member(*resp, "run"));
  const std::string job_id = IdText(Member(*resp, "job"));
  if (a.Has("no-wait")) {
    if (ctx.json)
      PrintJson(*resp);
    else
      Out("Run " + SanitizeCell(run_id) + " queued (job " + SanitizeCell(job_id) + ")\n");
    return kExitOk;
  }
  if (job_id.empty()) {
    Err("error: the server did not return a job id\n");
    return kExitError;
  }
  Err("Training run " + SanitizeCell(run_id) + " (job " + SanitizeCell(job_id) + ")\n");
  return FinishJob(ctx, job_id, run_id);
}

// Submits a search (tune or AutoML) and, unless --no-wait, waits and prints its result and leaderboard.
int SubmitSearch(Context& ctx, const ParsedArgs& a, const std::string& path, Json body) {
  auto resp = ctx.Call("POST", ctx.ProjectPath(path), &body);
  if (!resp) return kExitError;
  const std::string run_id = IdText(Member(*resp, "run"));
  const std::string job_id = IdText(Member(*resp, "job"));
  if (a.Has("no-wait")) {
    if (ctx.json)
      PrintJson(*resp);
    else
      Out("Run " + SanitizeCell(run_id) + " queued (job " + SanitizeCell(job_id) + ")\n");
    return kExitOk;
  }
  Err("Search run " + SanitizeCell(run_id) + " (job " + SanitizeCell(job_id) + ")\n");
  const int rc = FinishJob(ctx, job_id, run_id);
  if (rc != kExitOk || ctx.json) return rc;
  auto run = ctx.Call("GET", ctx.ProjectPath("/runs/" + UrlEncode(run_id)));
  if (!run) return kExitError;
  const Json& search = Member(*run, "search");
  const Json& board = Member(search, "leaderboard");
  if (board.is_array() && !board.empty()) {
    Out("\nleaderboard (" + MemberText(search, "metric") + ", out of fold; " + FormatCell(Member(search, "trials")) +
        " trials):\n");
    TablePrinter t({"RANK", "CANDIDATE", "LEARNER", "SCORE", "FIT S", "PREDICT US", "CHOSEN"});
    for (size_t i = 0; i < board.size() && i < 10; ++i) {
      const Json& r = board[i];
      t.AddRow({FormatCell(Member(r, "rank")), MemberText(r, "candidate"), MemberText(r, "learner"),
                FormatCell(Member(r, "score")), FormatCell(Member(r, "fit_seconds")),
                FormatCell(Member(r, "predict_us")), Member(r, "chosen") == true ? "*" : ""});
    }
    Out(t.Render());
  }
  const Json& result = Member(search, "result");
  if (result.is_object()) {
    Out("\nbest trial " + FormatCell(Member(result, "best_trial")) + " of " + FormatCell(Member(result, "trials")) +
        " (" + FormatCell(Member(result, "pruned")) + " pruned): " + MemberText(search, "metric") + " " +
        FormatCell(Member(result, "best_score")) + "\n");
  }
  Out("register it: lathe models register NAME --run " + SanitizeCell(run_id) + "\n");
  return kExitOk;
}

int CmdAutoMl(Context& ctx, const ParsedArgs& a) {
  for (const char* required : {"dataset", "target"}) {
    if (!a.Has(required)) {
      Err(std::string("error: --") + required + " is required\n");
      return -kExitUsage;
    }
  }
  Json body = {{"dataset", a.Get("dataset")}, {"target", a.Get("target")}};
  if (auto t = a.GetOptional("task")) body["task"] = *t;
  if (auto m = a.GetOptional("metric")) body["metric"] = *m;
  auto version = OptionalVersion(a);
  auto budget = ParseDoubleFlag("budget", a.Get("budget", "60"), 0.001, 7 * 86400.0);
  for (const Status* st : {&version.status(), &budget.status()}) {
    if (!st->ok()) {
      PrintStatusError(*st);
      return -kExitUsage;
    }
  }
  if (version->has_value()) body["version"] = **version;
  body["time_budget_s"] = *budget;
  return SubmitSearch(ctx, a, "/automl", body);
}

int CmdTune(Context& ctx, const ParsedArgs& a) {
  for (const char* required : {"dataset", "target", "task"}) {
    if (!a.Has(required)) {
      Err(std::string("error: --") + required + " is required\n");
      return -kExitUsage;
    }
  }
  Json body = {{"dataset", a.Get("dataset")}, {"target", a.Get("target")}, {"task", a.Get("task")},
               {"learner", a.Get("learner", "xgboost")}, {"sampler", a.Get("sampler", "tpe")}};
  auto params = ParamFlags(a);
  if (!params.ok()) {
    PrintStatusError(params.status());
    return -kExitUsage;
  }
  if (!params->empty()) body["params"] = *params;
  if (auto sp = a.GetOptional("space")) {
    try {
      body["space"] = Json::parse(*sp);
    } catch (const std::exception& e) {
      Err("error: --space is not JSON: " + std::string(e.what()) + "\n");
      return -kExitUsage;
    }
  }
  if (auto m = a.GetOptional("metric")) body["metric"] = *m;
  auto version = OptionalVersion(a);
  auto budget = ParseDoubleFlag("budget", a.Get("budget", "300"), 0.001, 7 * 86400.0);
  auto trials = ParseIntFlag("trials", a.Get("trials", "50"), 1, 10000);
  auto folds = ParseIntFlag("folds", a.Get("folds", "5"), 2, 20);
  for (const Status* st : {&version.status(), &budget.status(), &trials.status(), &folds.status()}) {
    if (!st->ok()) {
      PrintStatusError(*st);
      return -kExitUsage;
    }
  }
  if (version->has_value()) body["version"] = **version;
  body["time_budget_s"] = *budget;
  body["max_trials"] = *trials;
  body["split"] = {{"method", "kfold"}, {"folds", *folds}};
  return SubmitSearch(ctx, a, "/tune", body);
}

int CmdRunsTrials(Context& ctx, const ParsedArgs& a) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/runs/" + UrlEncode(a.positionals[0]) + "/trials"));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  TablePrinter t({"TRIAL", "STATE", "LEARNER", "SCORE", "ROUNDS", "SECONDS", "PARAMS"});
  for (const Json& r : Member(*resp, "trials")) {
    const Json& s = Member(r, "search");
    std::string params;
    const Json& p = Member(r, "params");
    if (p.is_object()) {
      for (const char* k : {"max_depth", "learning_rate", "n_estimators", "min_child_weight", "subsample", "alpha"}) {
        if (p.contains(k)) params += (params.empty() ? "" : " ") + std::string(k) + "=" + FormatCell(p[k]);
      }
    }
    t.AddRow({FormatCell(Member(s, "number")), MemberText(r, "state"), MemberText(r, "learner"),
              FormatCell(Member(s, "score")), FormatCell(Member(s, "rounds")), FormatCell(Member(s, "seconds")),
              params});
  }
  Out(t.Render());
  return kExitOk;
}

int CmdRunsShow(Context& ctx, const ParsedArgs& a) {
  auto run = ctx.Call("GET", ctx.ProjectPath("/runs/" + UrlEncode(a.positionals[0])));
  if (!run) return kExitError;
  if (ctx.json) {
    PrintJson(*run);
    return kExitOk;
  }
  PrintKeyValues(*run, {"metrics", "curves"});
  Out("\n");
  PrintMetricsTable(Member(*run, "metrics"));
  const Json& learning = Member(Member(*run, "curves"), "learning");
  const Json& train = Member(learning, "train");
  const Json& valid = Member(learning, "valid");
  if (train.is_array() && !train.empty()) {
    std::string line = "\nlearning curve (" + MemberText(learning, "metric") + ", " + MemberText(learning, "source") +
                       ", " + std::to_string(train.size()) + " rounds): train " + FormatCell(train.front()) + " -> " +
                       FormatCell(train.back());
    if (valid.is_array() && !valid.empty()) {
      line += ", evaluation " + FormatCell(valid.front()) + " -> " + FormatCell(valid.back());
    }
    Out(line + "\n(curves and charts in full: --json)\n");
  }
  return kExitOk;
}

int CmdRunsList(Context& ctx, const ParsedArgs& a) {
  std::string query;
  for (const char* name : {"filter", "sort", "order", "limit"}) {
    if (auto v = a.GetOptional(name)) query += (query.empty() ? "?" : "&") + std::string(name) + "=" + UrlEncode(*v);
  }
  return ListProjectCollection(ctx, "runs",
                               {{"ID", "id"},
                                {"STATE", "state"},
                                {"DATASET", "dataset"},
                                {"VERSION", "version"},
                                {"TARGET", "target"},
                                {"TASK", "task"},
                                {"LEARNER", "learner"},
                                {"METRICS", "metrics", CompactMetrics},
                                {"CREATED", "created_at"}},
                               query);
}

// Parameters, then metrics, one row each, one column per run; differing parameters are marked with '*'.
int CmdRunsCompare(Context& ctx, const ParsedArgs& a) {
  std::string ids;
  for (const auto& id : a.positionals) ids += (ids.empty() ? "" : ",") + id;
  auto resp = ctx.Call("GET", ctx.ProjectPath("/runs/compare?ids=" + UrlEncode(ids)));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  std::vector<std::string> headers = {""};
  for (const auto& r : Member(*resp, "runs")) headers.push_back(IdText(Member(r, "id")));
  TablePrinter t(headers);
  std::set<std::string> differing;
  for (const auto& d : Member(*resp, "differing_params")) differing.insert(d.is_string() ? d.get<std::string>() : "");
  auto add = [&](const std::string& name, const Json& values) {
    std::vector<std::string> row = {name};
    for (const auto& v : values) row.push_back(FormatCell(v));
    t.AddRow(row);
  };
  for (const char* field : {"dataset", "version", "task", "learner", "state"}) {
    Json values = Json::array();
    for (const auto& r : Member(*resp, "runs")) values.push_back(Member(r, field));
    add(field, values);
  }
  {
    Json values = Json::array();
    for (const auto& r : Member(*resp, "runs")) values.push_back(Member(Member(r, "split"), "method"));
    add("split", values);
  }
  for (const auto& [name, values] : Member(*resp, "params").items()) {
    add((differing.count(name) ? "* params." : "  params.") + name, values);
  }
  for (const auto& [name, values] : Member(*resp, "metrics").items()) add("metrics." + name, values);
  Out(t.Render());
  return kExitOk;
}

int CmdJobsShow(Context& ctx, const ParsedArgs& a) {
  auto job = ctx.Call("GET", "/api/v1/jobs/" + UrlEncode(a.positionals[0]));
  if (!job) return kExitError;
  if (ctx.json)
    PrintJson(*job);
  else
    PrintKeyValues(*job, {"log"});
  return kExitOk;
}

int CmdJobsWait(Context& ctx, const ParsedArgs& a) {
  const std::string& id = a.positionals[0];
  auto job = WaitForJob(ctx, id);
  if (!job) return kExitError;
  const std::string state = GetStringOr(*job, "state", "");
  if (ctx.json)
    PrintJson(*job);
  else
    Out("Job " + SanitizeCell(id) + " " + SanitizeCell(state) + "\n");
  if (state != "succeeded") {
    Err("error: job " + SanitizeCell(id) + " " + SanitizeCell(state) + ": " + SanitizeCell(JobError(*job)) +
        "\n");
    return kExitError;
  }
  return kExitOk;
}

int CmdJobsCancel(Context& ctx, const ParsedArgs& a) {
  const std::string& id = a.positionals[0];
  auto job = ctx.Call("POST", "/api/v1/jobs/" + UrlEncode(id) + "/cancel");
  if (!job) return kExitError;
  if (ctx.json)
    PrintJson(*job);
  else
    Out("Cancel requested for job " + SanitizeCell(id) +
        " (state: " + SanitizeCell(GetStringOr(*job, "state", "?")) + ")\n");
  return kExitOk;
}

// --- models / deployments / predict

int CmdModelsRegister(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("run")) {
    Err("error: --run is required\n");
    return -kExitUsage;
  }
  const std::string& name = a.positionals[0];
  Json body = {{"run", a.Get("run")}};
  auto resp = ctx.Call("POST", ctx.ProjectPath("/models/" + UrlEncode(name) + "/versions"), &body);
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson(*resp);
  else
    Out("Registered model " + SanitizeCell(GetStringOr(*resp, "name", name)) + " version " +
        MemberText(*resp, "version") + " from run " + SanitizeCell(GetStringOr(*resp, "run", a.Get("run"))) +
        "\n");
  return kExitOk;
}

int CmdModelsStage(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("stage")) {
    Err("error: --stage is required\n");
    return -kExitUsage;
  }
  const std::string& name = a.positionals[0];
  const std::string& version = a.positionals[1];
  Json body = {{"stage", a.Get("stage")}};
  if (auto on = a.GetOptional("require-better-on")) {
    body["require_better"] = true;
    body["evaluate_on"] = {{"dataset", *on}};
  }
  if (auto m = a.GetOptional("metric")) body["metric"] = *m;
  auto resp = ctx.Call("POST", ctx.ProjectPath("/models/" + UrlEncode(name) + "/versions/" + UrlEncode(version) +
                                               "/stage"),
                       &body);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  Out("Model " + SanitizeCell(name) + " version " + MemberText(*resp, "version") + " is now " +
      MemberText(*resp, "stage") + "\n");
  const Json& c = Member(*resp, "comparison");
  if (c.is_object()) {
    Out(MemberText(c, "metric") + " on " + MemberText(c, "dataset") + " v" + FormatCell(Member(c, "version")) + ": " +
        FormatCell(Member(Member(c, "candidate"), "score")) + " (this version) vs " +
        FormatCell(Member(Member(c, "production"), "score")) + " (version " +
        FormatCell(Member(Member(c, "production"), "version")) + ", now archived)\n");
  }
  return kExitOk;
}

int CmdModelsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "models",
                               {{"NAME", "name"},
                                {"LATEST", "latest_version"},
                                {"VERSIONS", "versions", CountOrValue},
                                {"TASK", "task"},
                                {"METRICS", "metrics", CompactMetrics},
                                {"UPDATED", "updated_at"}});
}

int CmdModelsShow(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  auto resp = ctx.Call("GET", ctx.ProjectPath("/models/" + UrlEncode(name)));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  Out("Model " + SanitizeCell(GetStringOr(*resp, "name", name)) + "\n");
  const Json& versions = Member(*resp, "versions");
  if (versions.is_array() && !versions.empty()) {
    PrintObjectTable(versions, {{"VERSION", "version"},
                                {"RUN", "run"},
                                {"STAGE", "stage"},
                                {"METRICS", "metrics", CompactMetrics},
                                {"CREATED", "created_at"}});
  }
  return kExitOk;
}

// --- API keys

int CmdKeysCreate(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("permission")) {
    Err("error: give at least one --permission (read, write, deploy, predict)\n");
    return -kExitUsage;
  }
  Json body = {{"name", a.positionals[0]}, {"permissions", a.GetAll("permission")}};
  if (a.Has("deployment")) body["deployment"] = a.Get("deployment");
  if (a.Has("expires-days")) {
    auto days = ParseDoubleFlag("expires-days", a.Get("expires-days"), 0.0, 3650.0);
    if (!days.ok()) {
      PrintStatusError(days.status());
      return -kExitUsage;
    }
    body["expires_in_days"] = *days;
  }
  auto resp = ctx.Call("POST", ctx.ProjectPath("/api-keys"), &body);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  Out(MemberText(*resp, "key") + "\n");
  Err("API key " + MemberText(*resp, "id") + " for project " + ctx.project +
      " — shown only now; store it safely (revoke: lathe keys revoke " + MemberText(*resp, "id") + ")\n");
  return kExitOk;
}

int CmdKeysList(Context& ctx, const ParsedArgs&) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/api-keys"));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& keys = Member(*resp, "api_keys");
  if (!keys.is_array() || keys.empty()) {
    Out("No API keys in project " + ctx.project + "\n");
    return kExitOk;
  }
  PrintObjectTable(keys, {{"ID", "id"},
                          {"NAME", "name"},
                          {"PERMISSIONS", "permissions"},
                          {"DEPLOYMENT", "deployment"},
                          {"STATE", "state"},
                          {"EXPIRES", "expires_at"},
                          {"LAST USED", "last_used_at"}});
  return kExitOk;
}

int CmdKeysRevoke(Context& ctx, const ParsedArgs& a) {
  const std::string& id = a.positionals[0];
  auto resp = ctx.Call("DELETE", ctx.ProjectPath("/api-keys/" + UrlEncode(id)));
  if (!resp) return kExitError;
  Out("Revoked API key " + SanitizeCell(id) + "\n");
  return kExitOk;
}

// --- server administration

// `lathe admin audit verify|list|export`: the hash-chained audit log (admins).
int CmdAdminAudit(Context& ctx, const ParsedArgs& a) {
  const std::string& action = a.positionals[0];
  std::string query;
  for (const char* f : {"actor", "project", "action", "outcome", "after", "limit"}) {
    if (a.Has(f)) query += std::string(query.empty() ? "?" : "&") + f + "=" + UrlEncode(a.Get(f));
  }
  if (action == "verify") {
    auto resp = ctx.Call("GET", "/api/v1/admin/audit/verify");
    if (!resp) return kExitError;
    const bool ok = Member(*resp, "ok") == true;
    if (ctx.json) {
      PrintJson(*resp);
    } else if (ok) {
      Out("audit log intact: " + MemberText(*resp, "entries") + " entries, chain and head verified\n");
    } else {
      Out("audit log TAMPERED at entry " + MemberText(*resp, "first_bad_seq") + ": " +
          SanitizeCell(MemberText(*resp, "problem")) + "\n");
    }
    return ok ? kExitOk : kExitError;
  }
  if (action == "list") {
    auto resp = ctx.Call("GET", "/api/v1/admin/audit" + query);
    if (!resp) return kExitError;
    if (ctx.json) {
      PrintJson(*resp);
      return kExitOk;
    }
    PrintObjectTable(Member(*resp, "entries"), {{"SEQ", "seq"},
                                                {"AT", "at"},
                                                {"ACTOR", "actor"},
                                                {"KEY", "api_key"},
                                                {"ACTION", "action"},
                                                {"PROJECT", "project"},
                                                {"STATUS", "status"},
                                                {"OUTCOME", "outcome"}});
    if (!Member(*resp, "next_after").is_null()) Err("more: --after " + MemberText(*resp, "next_after") + "\n");
    return kExitOk;
  }
  if (action == "export") {
    const std::string format = a.Get("format", "jsonl");
    if (format != "csv" && format != "jsonl") {
      Err("error: --format must be csv or jsonl\n");
      return -kExitUsage;
    }
    const std::string out = a.Get("output", "audit." + format);
    const std::string path = "/api/v1/admin/audit/export" + (query.empty() ? "?" : query + "&") + "format=" + format;
    auto bytes = DownloadTo(ctx, path, out, "exporting the audit log");
    if (!bytes) return kExitError;
    if (out != "-") Out("Exported the audit log to " + SanitizeCell(out) + " (" + HumanBytes(*bytes) + ")\n");
    return kExitOk;
  }
  Err("error: unknown audit action '" + SanitizeCell(action) + "' (verify, list or export)\n");
  return -kExitUsage;
}

// --- admin: master keys

int CmdAdminKeys(Context& ctx, const ParsedArgs&) {
  auto resp = ctx.Call("GET", "/api/v1/admin/keys");
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  PrintKeyValues(*resp);
  return kExitOk;
}

// Rotates the master key: the server answers at once (the new key is active for writes); the job re-wraps
// every blob. The new key never travels unless the operator supplies it (--key-stdin), which the server
// requires when its keys come from LATHE_MASTER_KEY.
int CmdAdminRotateKey(Context& ctx, const ParsedArgs& a) {
  Json body = Json::object();
  if (a.Has("key-stdin")) {
    std::string line;
    int c;
    while ((c = std::fgetc(stdin)) != EOF && c != '\n') {
      line += static_cast<char>(c);
      if (line.size() > 256) break;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) {
      Err("error: --key-stdin: nothing on stdin (give 64 hex characters, e.g. from `openssl rand -hex 32`)\n");
      return -kExitUsage;
    }
    body["key_hex"] = line;
  }
  if (a.Has("keep-old")) body["keep_old"] = true;
  auto resp = ctx.Call("POST", "/api/v1/admin/rotate-key", &body);
  if (!resp) return kExitError;
  const std::string job_id = MemberText(*resp, "job");
  if (!a.Has("wait")) {
    if (ctx.json) {
      PrintJson(*resp);
    } else {
      Out(MemberText(*resp, "key_id") + "\n");
      Err("New master key " + MemberText(*resp, "key_id") + " is active (was " + MemberText(*resp, "previous_key_id") +
          "); job " + job_id + " re-wraps the stored data (lathe jobs wait " + job_id + ")\n");
    }
    if (resp->contains("operator_action")) Err(MemberText(*resp, "operator_action") + "\n");
    return kExitOk;
  }
  auto job = WaitForJob(ctx, job_id);
  if (!job) return kExitError;
  if (ctx.json) {
    Json out = *resp;
    out["job_state"] = Member(*job, "state");
    out["result"] = Member(*job, "result");
    PrintJson(out);
  } else {
    Out(MemberText(*resp, "key_id") + "\n");
  }
  if (GetStringOr(*job, "state", "") != "succeeded") {
    PrintJobFailure(*job, job_id);
    if (resp->contains("operator_action")) Err(MemberText(*resp, "operator_action") + "\n");
    return kExitError;
  }
  if (!ctx.json) {
    const Json& r = Member(*job, "result");
    Err("Master key " + MemberText(*resp, "key_id") + " is active; " + IdText(Member(r, "rewrapped")) +
        " blobs re-wrapped, " + IdText(Member(r, "encrypted")) + " encrypted, " + IdText(Member(r, "secrets_resealed")) +
        " secrets re-sealed; retired keys: " + DumpJson(Member(r, "retired_key_ids")) + "\n");
    for (const auto& n : Member(r, "notes")) Err(n.is_string() ? n.get<std::string>() + "\n" : "");
  }
  if (resp->contains("operator_action")) Err(MemberText(*resp, "operator_action") + "\n");
  return kExitOk;
}

int CmdModelsExport(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  const std::string& version = a.positionals[1];
  const std::string format = a.Get("format", "onnx");
  if (format != "onnx" && format != "bundle") {
    Err("error: --format must be onnx or bundle (got '" + SanitizeCell(format) + "')\n");
    return -kExitUsage;
  }
  const std::string ext = format == "onnx" ? ".onnx" : ".lathe";
  const std::string out = a.Get("output", name + "-v" + version + ext);
  auto bytes = DownloadTo(ctx, ctx.ProjectPath("/models/" + UrlEncode(name) + "/versions/" + UrlEncode(version) + "/" + format),
                          out, "exporting " + name);
  if (!bytes) return kExitError;
  if (out == "-") return kExitOk;
  if (ctx.json) {
    PrintJson({{"name", name}, {"version", version}, {"format", format}, {"path", out}, {"bytes", *bytes}});
  } else {
    Out("Exported " + SanitizeCell(name) + " v" + SanitizeCell(version) + " as " + format + " to " +
        SanitizeCell(out) + " (" + HumanBytes(*bytes) + ")\n");
  }
  return kExitOk;
}

int CmdDeploy(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("model")) {
    Err("error: --model is required\n");
    return -kExitUsage;
  }
  auto version = OptionalVersion(a);
  if (!version.ok()) {
    PrintStatusError(version.status());
    return -kExitUsage;
  }
  const std::string& name = a.positionals[0];
  Json body = {{"name", name}, {"model", a.Get("model")}};
  if (version->has_value()) body["version"] = **version;
  auto r = ctx.Raw("POST", ctx.ProjectPath("/deployments"), &body);
  if (!r.ok()) {
    PrintStatusError(r.status());
    return kExitError;
  }
  bool switched = false;
  if (r->status == 409) {
    // It exists: switch it to the requested model version instead.
    Json patch = {{"model", a.Get("model")}};
    if (version->has_value()) patch["version"] = **version;
    r = ctx.Raw("PATCH", ctx.ProjectPath("/deployments/" + UrlEncode(name)), &patch);
    if (!r.ok()) {
      PrintStatusError(r.status());
      return kExitError;
    }
    switched = true;
  }
  if (!r->ok()) {
    ctx.PrintApiError(*r);
    return kExitError;
  }
  auto resp = ctx.ParseOk(*r);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  std::string what = "model " + SanitizeCell(GetStringOr(*resp, "model", a.Get("model"))) + " version " +
                     MemberText(*resp, "version");
  std::string state = GetStringOr(*resp, "state", "");
  Out((switched ? "Deployment " + SanitizeCell(name) + " already existed; switched it to " + what
                : "Deployed " + what + " as " + SanitizeCell(name)) +
      (state.empty() ? "" : " (" + SanitizeCell(state) + ")") + "\n");
  std::string endpoint = GetStringOr(*resp, "endpoint", "");
  if (!endpoint.empty()) Out("Endpoint: " + ctx.conn.url + SanitizeCell(endpoint) + "\n");
  return kExitOk;
}

int CmdDeploymentsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "deployments",
                               {{"NAME", "name"},
                                {"MODEL", "model"},
                                {"VERSION", "version"},
                                {"STATE", "state"},
                                {"UPDATED", "updated_at"}});
}

int CmdDeploymentsShow(Context& ctx, const ParsedArgs& a) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/deployments/" + UrlEncode(a.positionals[0])));
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson(*resp);
  else
    PrintKeyValues(*resp);
  return kExitOk;
}

int CmdDeploymentsDelete(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  auto resp = ctx.Call("DELETE", ctx.ProjectPath("/deployments/" + UrlEncode(name)));
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson(*resp);
  else
    Out("Deleted deployment " + SanitizeCell(name) + "\n");
  return kExitOk;
}

Result<std::string> ReadPredictInput(const ParsedArgs& a) {
  if (a.Has("data") && a.Has("file")) return Status::InvalidArgument("give --data or --file, not both");
  if (a.Has("data")) return a.Get("data");
  std::string file = a.Get("file", "-");
  if (file == "-") {
    if (::isatty(STDIN_FILENO) == 1)
      Err("Reading instances from stdin (JSON or JSON Lines; Ctrl-D to end)\n");
    return ReadAll(stdin, "stdin");
  }
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return Status::NotFound("cannot read " + file + ": " + std::strerror(errno));
  auto text = ReadAll(f, file);
  std::fclose(f);
  return text;
}

int CmdPredict(Context& ctx, const ParsedArgs& a) {
  auto text = ReadPredictInput(a);
  if (!text.ok()) {
    PrintStatusError(text.status());
    return text.status().code() == StatusCode::kNotFound ? kExitError : kExitUsage;
  }
  auto instances = ParseInstances(*text, kMaxInputBytes);
  if (!instances.ok()) {
    PrintStatusError(instances.status().Annotate("input"));
    return kExitUsage;
  }
  Json body = {{"instances", std::move(*instances)}};
  auto resp =
      ctx.Call("POST", ctx.ProjectPath("/deployments/" + UrlEncode(a.positionals[0]) + "/predict"), &body);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& preds = Member(*resp, "predictions");
  if (!preds.is_array()) {
    Err("error: the server's response has no predictions array\n");
    return kExitError;
  }
  std::string out;
  for (const auto& p : preds) out += DumpJson(p) + "\n";
  Out(out);
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------------------
// The command table.

// The core commands; the data commands (client_data.h) are merged in by Commands().
std::vector<Command> CoreCommands() {
  return {
      {"login",
       "",
       "log in and save the token for later commands",
       {{"username", "USER", "user name (default: admin)"},
        {"password-stdin", "",
         "read the password from the first line of stdin (else $LATHE_PASSWORD, else a prompt)"}},
       0,
       0,
       CmdLogin},
      {"logout", "", "revoke the saved token and forget it", {}, 0, 0, CmdLogout},
      {"train",
       "",
       "train a model on a dataset and wait for the run",
       {{"dataset", "N", "dataset name (required)"},
        {"version", "V", "dataset version (default: latest)"},
        {"target", "T", "target column (required unless the learner is unsupervised)"},
        {"task", "TASK", "binary|multiclass|regression (required); clustering|decomposition|anomaly"},
        {"learner", "L", "learner (default: xgboost; kmeans, pca and isolation_forest need no target or task)"},
        {"param", "KEY=VALUE", "learner parameter; numbers and true/false are typed (repeatable)", true},
        {"split", "METHOD", "holdout|kfold|group_kfold|time (default: holdout)"},
        {"test-fraction", "F", "held-out fraction for holdout and time, 0..0.9 (default: 0.2)"},
        {"folds", "K", "folds for kfold and group_kfold, 2..20 (default: 5)"},
        {"group-column", "C", "group_kfold: rows with one value of C stay in one fold"},
        {"time-column", "C", "time: train on the earliest rows by datetime column C, evaluate on the latest"},
        {"seed", "N", "split and learner seed (default: 42)"},
        {"no-wait", "", "print the run and job ids and return at once"}},
       0,
       0,
       CmdTrain},
      {"runs list",
       "",
       "list training runs",
       {{"filter", "F", "conditions such as metrics.roc_auc>=0.8,params.max_depth=6 (all must hold)"},
        {"sort", "PATH", "sort by a metric or param, e.g. metrics.roc_auc"},
        {"order", "desc|asc", "sort order (default: desc)"},
        {"limit", "N", "at most N runs (default: 100)"}},
       0,
       0,
       CmdRunsList},
      {"automl",
       "",
       "find the best model for a target in a time budget (task inferred unless given) and wait for it",
       {{"dataset", "N", "dataset name (required)"},
        {"version", "V", "dataset version (default: latest)"},
        {"target", "T", "target column (required)"},
        {"task", "TASK", "binary|multiclass|regression (default: inferred from the target)"},
        {"metric", "M", "metric to optimize (default: roc_auc, log_loss or rmse by task)"},
        {"budget", "SECONDS", "time budget (default: 60)"},
        {"no-wait", "", "print the run and job ids and return at once"}},
       0,
       0,
       CmdAutoMl},
      {"tune",
       "",
       "search a learner's params (grid, random or TPE with early stopping) and wait for the best",
       {{"dataset", "N", "dataset name (required)"},
        {"version", "V", "dataset version (default: latest)"},
        {"target", "T", "target column (required unless the learner is unsupervised)"},
        {"task", "TASK", "binary|multiclass|regression (required); clustering|decomposition|anomaly"},
        {"learner", "L", "learner (default: xgboost; kmeans, pca and isolation_forest need no target or task)"},
        {"sampler", "S", "tpe|random|grid (default: tpe)"},
        {"space", "JSON", "search space, e.g. '{\"max_depth\":{\"type\":\"int\",\"low\":2,\"high\":8}}' "
                          "(default: the learner's own)"},
        {"param", "KEY=VALUE", "a fixed learner parameter (repeatable)", true},
        {"metric", "M", "metric to optimize (default: roc_auc, log_loss or rmse by task)"},
        {"trials", "N", "trials at most (default: 50)"},
        {"budget", "SECONDS", "time budget (default: 300)"},
        {"folds", "K", "cross-validation folds (default: 5)"},
        {"no-wait", "", "print the run and job ids and return at once"}},
       0,
       0,
       CmdTune},
      {"runs trials", "ID", "list the trials of a tune or AutoML run", {}, 1, 1, CmdRunsTrials},
      {"runs compare", "ID ID...", "compare 2 to 10 runs side by side: params and metrics", {}, 2, 10, CmdRunsCompare},
      {"runs show", "ID", "show a run and its metrics", {}, 1, 1, CmdRunsShow},
      {"jobs show", "ID", "show a job's state and progress", {}, 1, 1, CmdJobsShow},
      {"jobs wait",
       "ID",
       "wait for a job to finish, with a progress bar; exit 1 unless it succeeded",
       {},
       1,
       1,
       CmdJobsWait},
      {"jobs cancel", "ID", "ask a job to stop", {}, 1, 1, CmdJobsCancel},
      {"models register",
       "NAME",
       "register a run's model as a new version of model NAME",
       {{"run", "RUN", "run id (required)"}},
       1,
       1,
       CmdModelsRegister},
      {"models list", "", "list registered models", {}, 0, 0, CmdModelsList},
      {"models stage",
       "NAME VERSION",
       "move a model version to none|staging|production|archived (production archives the previous one)",
       {{"stage", "S", "none|staging|production|archived (required)"},
        {"require-better-on", "DATASET", "production only if it beats the production version on DATASET"},
        {"metric", "M", "metric of that comparison (default: roc_auc, log_loss or rmse by task)"}},
       2,
       2,
       CmdModelsStage},
      {"models show", "NAME", "show a model's versions", {}, 1, 1, CmdModelsShow},
      {"keys create",
       "NAME",
       "create an API key for the project; prints the key (shown only once)",
       {{"permission", "P", "read|write|deploy|predict (repeatable; required)", true},
        {"deployment", "D", "limit the key to calling this deployment"},
        {"expires-days", "N", "expire after N days (default: never)"}},
       1,
       1,
       CmdKeysCreate},
      {"keys list", "", "list the project's API keys (never the keys themselves)", {}, 0, 0, CmdKeysList},
      {"keys revoke", "ID", "revoke an API key at once", {}, 1, 1, CmdKeysRevoke},
      {"admin audit",
       "verify|list|export",
       "the audit log (admins): verify its hash chain, list entries, or export them",
       {{"actor", "USER", "only this actor"},
        {"project", "P", "only this project"},
        {"action", "PREFIX", "only actions starting with PREFIX (e.g. 'POST', 'login', 'key.use')"},
        {"outcome", "O", "ok|denied|failed"},
        {"after", "SEQ", "entries after this sequence number"},
        {"limit", "N", "at most N entries"},
        {"format", "F", "export: csv|jsonl (default jsonl)"},
        {"output", "FILE", "export: where to write (default audit.FORMAT; - = stdout)", false, 'o'}},
       1,
       1,
       CmdAdminAudit},
      {"admin keys", "", "show the master keys: active key id, key ids held, blobs per key (admin)", {}, 0, 0,
       CmdAdminKeys},
      {"admin rotate-key",
       "",
       "rotate the master key without downtime; prints the new key id (admin)",
       {{"wait", "", "wait until every blob and secret is re-wrapped and the old key retired"},
        {"keep-old", "", "keep the old key readable after the rotation"},
        {"key-stdin", "", "read the new key (64 hex) from stdin instead of generating one; required when the "
                          "server's keys come from LATHE_MASTER_KEY"}},
       0,
       0,
       CmdAdminRotateKey},
      {"models export",
       "NAME VERSION",
       "download a model version as ONNX (default) or as lathe's bundle",
       {{"format", "F", "onnx|bundle (default onnx)"}, {"output", "FILE", "where to write (default NAME-vVERSION.onnx; - = stdout)", false, 'o'}},
       2,
       2,
       CmdModelsExport},
      {"deploy",
       "NAME",
       "serve a model version at deployment NAME (switches it if NAME exists)",
       {{"model", "M", "registered model name (required)"},
        {"version", "V", "model version (default: latest)"}},
       1,
       1,
       CmdDeploy},
      {"deployments list", "", "list deployments", {}, 0, 0, CmdDeploymentsList},
      {"deployments show", "NAME", "show a deployment", {}, 1, 1, CmdDeploymentsShow},
      {"deployments delete", "NAME", "delete a deployment", {}, 1, 1, CmdDeploymentsDelete},
      {"predict",
       "DEPLOYMENT",
       "score instances: one JSON object, an array of objects, or JSON Lines",
       {{"data", "JSON", "the instances inline"},
        {"file", "F", "read the instances from F ('-' = stdin, the default)"}},
       1,
       1,
       CmdPredict},
  };
}

// Every command, in help order: login/logout, the datasets group, the core commands, then the other data
// groups (recipes, connections, labels).
const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = [] {
    std::vector<Command> core = CoreCommands();
    std::vector<Command> data = DataCommands();
    std::vector<Command> out;
    auto take = [&](std::vector<Command>& from, auto pred) {
      for (auto& c : from) {
        if (c.run && pred(c)) {
          out.push_back(std::move(c));
          c.run = nullptr;
        }
      }
    };
    auto is_auth = [](const Command& c) { return c.name == "login" || c.name == "logout"; };
    auto is_datasets = [](const Command& c) { return c.name.rfind("datasets ", 0) == 0; };
    auto any = [](const Command&) { return true; };
    take(core, is_auth);
    take(data, is_datasets);
    take(core, any);
    take(data, any);
    return out;
  }();
  return kCommands;
}

const std::set<std::string>& Groups() {
  static const std::set<std::string> kGroups = {"datasets", "runs",    "jobs",        "models",
                                                "deployments", "recipes", "connections", "labels", "keys",
                                                "admin"};
  return kGroups;
}

std::string FlagLine(const FlagSpec& f) {
  std::string left = "  ";
  left += f.short_name ? std::string("-") + f.short_name + ", " : "";
  left += "--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
  if (left.size() < 26)
    left += std::string(26 - left.size(), ' ');
  else
    left += "  ";
  return left + f.help + "\n";
}

std::string CommandUsage(const Command& c) {
  std::string s =
      "usage: lathe " + c.name + (c.args.empty() ? "" : " " + c.args) + " [flags]\n\n" + c.summary + "\n";
  if (!c.flags.empty()) {
    s += "\nflags:\n";
    for (const auto& f : c.flags) s += FlagLine(f);
  }
  s += "\nglobal flags:\n";
  for (const auto& f : GlobalFlags()) {
    bool shadowed = false;
    for (const auto& own : c.flags) shadowed = shadowed || own.name == f.name;
    s += shadowed ? "  (--" + f.name + " above is this command's own; the server comes from $LATHE_URL or the saved "
                    "login)\n"
                  : FlagLine(f);
  }
  return s;
}

std::string CommandList(const std::string& group) {
  std::string s;
  for (const auto& c : Commands()) {
    if (!group.empty() && c.name.rfind(group + " ", 0) != 0) continue;
    std::string left = "  lathe " + c.name + (c.args.empty() ? "" : " " + c.args);
    if (left.size() < 40)
      left += std::string(40 - left.size(), ' ');
    else
      left += "  ";
    s += left + c.summary + "\n";
  }
  return s;
}

std::string TopUsage() {
  std::string s = "usage: lathe <command> [args] [flags]\n\ncommands:\n" + CommandList("");
  s += "\nglobal flags (anywhere on the line):\n";
  for (const auto& f : GlobalFlags()) s += FlagLine(f);
  s += "\nRun `lathe <command> --help` for a command's flags. Exit codes: 0 ok, 1 server or job error, 2 "
       "usage.\n";
  return s;
}

int UsageError(const std::string& message, const Command& cmd) {
  Err("error: " + message + "\n\n" + CommandUsage(cmd));
  return kExitUsage;
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}

}  // namespace
}  // namespace cli

void PrintClientUsage() { cli::Out(cli::TopUsage()); }

int RunClient(const std::vector<std::string>& args) {
  using namespace cli;
  CommandLine line = SplitCommandWords(args, Groups());
  if (line.words.empty()) {
    if (WantsHelp(args)) {
      Out(TopUsage());
      return kExitOk;
    }
    Err("error: no command given\n\n" + TopUsage());
    return kExitUsage;
  }
  const std::string& first = line.words[0];
  if (first == "help") {
    // `lathe help`, `lathe help GROUP`, `lathe help GROUP COMMAND`, `lathe help COMMAND`.
    std::vector<std::string> topic;
    for (const auto& w : line.rest) {
      if (!w.empty() && w[0] == '-') continue;
      topic.push_back(w);
    }
    if (!topic.empty()) {
      const std::string name = topic.size() >= 2 ? topic[0] + " " + topic[1] : topic[0];
      for (const auto& c : Commands()) {
        if (c.name == name || (topic.size() >= 2 && c.name == topic[0])) {
          Out(CommandUsage(c));
          return kExitOk;
        }
      }
      if (Groups().count(topic[0])) {
        Out("usage: lathe " + topic[0] + " <command>\n\ncommands:\n" + CommandList(topic[0]));
        return kExitOk;
      }
      Err("error: no help for '" + SanitizeCell(name) + "'\n\n" + TopUsage());
      return kExitUsage;
    }
    Out(TopUsage());
    return kExitOk;
  }
  const bool is_group = Groups().count(first) > 0;
  if (is_group && line.words.size() < 2) {
    std::string s = "usage: lathe " + first + " <command>\n\ncommands:\n" + CommandList(first);
    if (WantsHelp(args)) {
      Out(s);
      return kExitOk;
    }
    Err("error: `lathe " + first + "` needs a command\n\n" + s);
    return kExitUsage;
  }
  const std::string name = is_group ? first + " " + line.words[1] : first;
  const Command* cmd = nullptr;
  for (const auto& c : Commands()) {
    if (c.name == name) cmd = &c;
  }
  if (!cmd) {
    std::string s =
        is_group ? "usage: lathe " + first + " <command>\n\ncommands:\n" + CommandList(first) : TopUsage();
    Err("error: unknown command '" + SanitizeCell(name) + "'\n\n" + s);
    return kExitUsage;
  }
  if (WantsHelp(line.rest)) {
    Out(CommandUsage(*cmd));
    return kExitOk;
  }
  // A command flag named like a global one shadows it for that command (`connections save --url` is the
  // source's URL; the server then comes from $LATHE_URL or the saved login).
  auto defines = [&](const std::string& flag) {
    for (const auto& f : cmd->flags) {
      if (f.name == flag) return true;
    }
    return false;
  };
  std::vector<FlagSpec> flags = cmd->flags;
  for (const auto& g : GlobalFlags()) {
    if (!defines(g.name)) flags.push_back(g);
  }
  auto parsed = ParseArgs(line.rest, flags);
  if (!parsed.ok()) return UsageError(parsed.status().message(), *cmd);
  const ParsedArgs& a = *parsed;
  if (a.positionals.size() < cmd->min_positionals) {
    return UsageError("missing " + cmd->args, *cmd);
  }
  if (a.positionals.size() > cmd->max_positionals) {
    return UsageError("unexpected argument '" + SanitizeCell(a.positionals[cmd->max_positionals]) + "'",
                      *cmd);
  }

  Context ctx;
  ctx.credentials_path = CredentialsPath(ctx.env);
  auto saved = LoadCredentials(ctx.credentials_path);
  if (saved.ok()) {
    ctx.saved = *saved;
  } else {
    Err("warning: ignoring the saved login: " + saved.status().message() + "\n");
  }
  ctx.conn = ResolveConnection(defines("url") ? std::nullopt : a.GetOptional("url"), a.GetOptional("token"), ctx.env,
                               ctx.saved);
  ctx.project = a.Get("project", "default");
  ctx.json = a.Has("json");
  if (ctx.project.empty()) return UsageError("--project must not be empty", *cmd);
  if (ctx.conn.url.rfind("http://", 0) != 0 && ctx.conn.url.rfind("https://", 0) != 0) {
    return UsageError("the server URL must start with http:// or https:// (got '" +
                          SanitizeCell(ctx.conn.url) + "' from " + ctx.conn.url_source + ")",
                      *cmd);
  }
  int rc = cmd->run(ctx, a);
  if (rc < 0) {  // a usage problem found by the handler, already described
    Err("\n" + CommandUsage(*cmd));
    return -rc;
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace lathe

