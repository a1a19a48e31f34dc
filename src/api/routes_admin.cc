// Admin routes: master key status and rotation (docs/security.md, "Encryption at rest").
//
//   GET  /api/v1/admin/keys         the keyring: active key id, key ids held, blobs per key id
//   POST /api/v1/admin/rotate-key   {"key_hex"?: 64 hex, "keep_old"?: bool} -> 202 {"job","key_id",…}
//
// Rotation without downtime: the new key is active for every write as soon as the route answers; the
// "rotate_key" job then re-wraps every blob's data key (and encrypts blobs stored before encryption) and
// re-seals stored secrets under it. Reads keep working throughout because the ring holds old and new keys.
// When every blob and secret is under the new key, the old keys are retired (unless keep_old). A rotation
// that fails or is cancelled keeps every key, so nothing becomes unreadable; running it again resumes.
#include <mutex>

#include "api/app.h"
#include "api/data_sources.h"
#include "api/problem.h"
#include "common/crypto.h"
#include "common/log.h"

namespace lathe {

namespace {

constexpr const char* kRotateJob = "rotate_key";
constexpr size_t kMaxReportedFailures = 20;

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

Result<Json> RotateKeyJob(App& app, JobContext& ctx) {
  // Jobs of this kind run one at a time even when several were queued (e.g. across a restart).
  static std::mutex rotation_mu;
  std::lock_guard<std::mutex> lock(rotation_mu);
  const bool keep_old = ctx.payload().value("keep_old", false);
  const std::string active = app.keyring().Active().id;
  ctx.Log("re-wrapping blobs under master key " + active);
  ASSIGN_OR_RETURN(std::vector<std::string> ids, app.blobs().List());
  int64_t rewrapped = 0, encrypted = 0, current = 0, gone = 0;
  Json failed = Json::array();
  int64_t failures = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ctx.Cancelled()) return Status::Cancelled("key rotation cancelled; every key was kept, so all data stays readable");
    auto outcome = app.blobs().Rewrap(ids[i]);
    if (!outcome.ok()) {
      ++failures;
      if (failed.size() < kMaxReportedFailures) failed.push_back({{"blob", ids[i]}, {"error", outcome.status().message()}});
      ctx.Log("cannot re-wrap " + ids[i] + ": " + outcome.status().message());
      continue;
    }
    switch (*outcome) {
      case RewrapOutcome::kRewrapped: ++rewrapped; break;
      case RewrapOutcome::kEncrypted: ++encrypted; break;
      case RewrapOutcome::kAlreadyCurrent: ++current; break;
      case RewrapOutcome::kGone: ++gone; break;
    }
    ctx.Progress(0.9 * static_cast<double>(i + 1) / static_cast<double>(ids.size()),
                 "re-wrapped " + std::to_string(i + 1) + " of " + std::to_string(ids.size()) + " blobs");
  }
  ctx.Progress(0.9, "re-sealing stored secrets");
  ASSIGN_OR_RETURN(int64_t resealed, ResealStoredSecrets(app, [&ctx] { return ctx.Cancelled(); }));

  // Retire only when nothing is left under another key: a blob written meanwhile under a key that a second
  // rotation replaced, or one that failed above, keeps its key in the ring.
  ASSIGN_OR_RETURN(auto counts, app.blobs().CountByKeyId());
  const std::string now_active = app.keyring().Active().id;
  int64_t elsewhere = 0;
  for (const auto& [key_id, n] : counts) {
    if (key_id != now_active && !(key_id.empty() && !app.config().encrypt_blobs)) elsewhere += n;
  }
  Json result = {{"active_key_id", now_active},
                 {"blobs", static_cast<int64_t>(ids.size())},
                 {"rewrapped", rewrapped},
                 {"encrypted", encrypted},
                 {"already_current", current},
                 {"removed_meanwhile", gone},
                 {"secrets_resealed", resealed},
                 {"failed", failures},
                 {"failures", failed},
                 {"keep_old", keep_old}};
  Json retired = Json::array();
  Json notes = Json::array();
  if (failures == 0 && elsewhere == 0 && now_active == active) {
    const auto before = app.keyring().Ids();
    ASSIGN_OR_RETURN(auto retire_notes, app.keyring().RetireInactive(keep_old));
    for (const auto& n : retire_notes) notes.push_back(n);
    if (!keep_old) {
      for (const auto& id : before) {
        if (id != now_active) retired.push_back(id);
      }
    }
  } else {
    notes.push_back("old keys were kept: " + std::to_string(failures + elsewhere) +
                    " blobs are not under the active key yet; run the rotation again to finish");
  }
  result["retired_key_ids"] = retired;
  result["key_ids"] = app.keyring().Ids();
  result["notes"] = notes;
  LogInfo("master key rotation finished", {{"job", ctx.job().id}, {"active_key_id", now_active},
                                           {"rewrapped", rewrapped}, {"encrypted", encrypted},
                                           {"failed", failures}, {"retired", retired}});
  if (failures > 0) {
    return Status::DataLoss(std::to_string(failures) + " blobs could not be re-wrapped (first: " +
                            failed[0].value("blob", std::string()) + ": " + failed[0].value("error", std::string()) +
                            "); every key was kept");
  }
  return result;
}

Json KeyStatus(App& app) {
  Json by_key = Json::object();
  auto counts = app.blobs().CountByKeyId();
  if (counts.ok()) {
    for (const auto& [key_id, n] : *counts) by_key[key_id.empty() ? "plaintext" : key_id] = n;
  }
  return {{"active_key_id", app.keyring().Active().id},
          {"key_ids", app.keyring().Ids()},
          {"key_source", app.keyring().from_environment() ? "environment" : "file"},
          {"encrypt_blobs", app.config().encrypt_blobs},
          {"blobs_by_key_id", by_key}};
}

}  // namespace

void RegisterAdminRoutes(Router& router, App& app) {
  app.jobs().Register(kRotateJob, {.handler = [&app](JobContext& ctx) { return RotateKeyJob(app, ctx); },
                                   .on_finished = [&app](const JobRecord&) { app.EndRotation(); }});
  router.Add({.method = "GET", .pattern = "/api/v1/admin/keys", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                WriteJson(200, KeyStatus(app), ctx.res);
                return Status::Ok();
              },
              .summary = "Master keys: the active key id, the key ids held, and how many blobs each key wraps",
              .tag = "admin",
              .user_only = true});
  router.Add({.method = "POST", .pattern = "/api/v1/admin/rotate-key", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                Json body = Json::object();
                if (!ctx.req.body.empty()) {
                  ASSIGN_OR_RETURN(body, ctx.JsonBody(app.config().max_json_depth));
                  if (!body.is_object()) return FieldError("body", "must be a JSON object");
                }
                for (const auto& [k, v] : body.items()) {
                  if (k != "key_hex" && k != "keep_old") return FieldError(k.substr(0, 40), "is not a field of a key rotation");
                }
                if (body.contains("keep_old") && !body["keep_old"].is_boolean()) {
                  return FieldError("keep_old", "must be true or false");
                }
                const bool keep_old = body.value("keep_old", false);
                std::string key;
                if (body.contains("key_hex")) {
                  if (!body["key_hex"].is_string()) return FieldError("key_hex", "must be a string of 64 hex characters");
                  auto parsed = Keyring::ParseKeyHex(body["key_hex"].get<std::string>(), "key_hex");
                  if (!parsed.ok()) return FieldError("key_hex", "must hold exactly 64 hex characters (32 bytes)");
                  key = *parsed;
                } else if (app.keyring().from_environment()) {
                  return FieldError("key_hex",
                                    "is required: this server's master keys come from LATHE_MASTER_KEY, and lathe does "
                                    "not write keys it generates to disk in that mode. Generate one (openssl rand -hex "
                                    "32), send it as key_hex, and put it into LATHE_MASTER_KEY for the next start");
                } else {
                  key = RandomBytes(kAesGcmKeyBytes);
                }
                if (!app.BeginRotation()) {
                  return Status::FailedPrecondition("a key rotation is already running; wait for its job to finish");
                }
                const std::string previous = app.keyring().Active().id;
                auto id = app.keyring().AddActive(key);
                if (!id.ok()) {
                  app.EndRotation();
                  return id.status();
                }
                LogInfo("master key rotated: new writes use the new key", {{"key_id", *id}, {"previous_key_id", previous},
                                                                           {"by", ctx.caller.username}});
                auto job = app.jobs().Submit(kRotateJob, "default", {{"keep_old", keep_old}, {"key_id", *id}},
                                             ctx.caller.user_id);
                if (!job.ok()) {
                  app.EndRotation();
                  return job.status();
                }
                Json out = {{"job", job->id}, {"key_id", *id}, {"previous_key_id", previous}, {"keep_old", keep_old},
                            {"key_source", app.keyring().from_environment() ? "environment" : "file"}};
                if (app.keyring().from_environment()) {
                  out["operator_action"] =
                      "The master keys come from LATHE_MASTER_KEY and the new key is held in memory only. Before the "
                      "next restart, set LATHE_MASTER_KEY to the key you sent (id " + *id + ") followed by a comma "
                      "and the old key while job " + job->id + " has not succeeded — e.g. "
                      "LATHE_MASTER_KEY=NEW_HEX,OLD_HEX — and to the new key alone once it has.";
                }
                ctx.res.headers.emplace_back("Location", "/api/v1/jobs/" + job->id);
                WriteJson(202, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Rotate the master key: a new key (generated, or key_hex) is active at once; a job re-wraps "
                         "every blob's data key and re-seals stored secrets, then retires the old key (keep_old "
                         "keeps it)",
              .tag = "admin",
              .success_status = 202,
              .request_example = {{"keep_old", false}},
              .user_only = true});
}

}  // namespace lathe
