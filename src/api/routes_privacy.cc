// Privacy: one person's data across a dataset's versions, and differentially private profiles.
//
//   GET  …/datasets/{name}/subjects?column=C&value=V[&match=exact|case_insensitive][&version=N][&limit=L]
//        [&download=true]                 every row (and quarantined line) of the person, by version
//   POST …/datasets/{name}/subjects {"column","value","match"}   the same, keeping the value out of URLs
//   POST …/datasets/{name}/erase {"column","value","match","reason"}   a job ("erase"), see below
//   GET  …/datasets/{name}/erasures        the erasures done on the dataset
//
// Erasure semantics (docs/security.md, "Privacy"). For every version of the dataset whose identifier column
// holds a matching value, or whose quarantined bad rows contain the value as text:
//  - the version is rewritten in place: a new columnar file without those rows (and a quarantine file
//    without those lines), a new profile, statistics and row count; its number and creation time stay; its
//    lineage gains {"erasures":[{"erasure","at","rows_removed"}]} and the API shows it "erased": true.
//    Data-contract reports keep their verdicts but lose their example values (row numbers moved).
//  - if the latest version was rewritten, a new latest version is added with the same content (source
//    {"kind":"erasure"}), so anything that follows "latest" sees a change and retrains.
//  - all new files are written and profiled first; then one store transaction switches every version, adds
//    the new one and the erasure record; only then are the old files deleted from the blob store (unless
//    another version, run or model still uses the same bytes, which the result reports). A failure or a
//    cancellation before the switch changes nothing.
//  - the erasure record (document kind "erasure") keeps who, when, why, which column, the versions and rows
//    affected, and a keyed hash of the value (HMAC-SHA256 with the project's secret PII salt), never the
//    value. The job's payload holds the value sealed with the master key.
// Not covered (listed in the result where lathe can see them): models and runs trained on affected
// versions (they may still carry values of the rows; retrain and delete them), versions of other datasets
// made from or feeding into affected versions, logged predictions, backups and copies outside lathe.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "api/app.h"
#include "api/data_import.h"
#include "api/data_settings.h"
#include "api/params.h"
#include "api/privacy.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"
#include "data/dataset_file.h"
#include "data/lcol_format.h"
#include "data/privacy.h"
#include "data/profile.h"
#include "data/table_json.h"
#include "data/table_ops.h"

namespace lathe {

namespace fs = std::filesystem;

namespace {

constexpr const char* kErasureKind = "erasure";
constexpr size_t kMaxValueBytes = 1000;
constexpr double kMaxEpsilon = 100;

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

// Who to look for: an identifier column and its value.
struct SubjectQuery {
  std::string column;
  std::string value;
  SubjectMatch match = SubjectMatch::kExact;
};

// From a JSON object {"column","value","match"} (numbers and booleans are taken as their text); `allowed`
// names the other fields the caller accepts.
Result<SubjectQuery> ParseSubjectQuery(const Json& body, const std::set<std::string>& allowed) {
  if (!body.is_object()) return FieldError("body", "must be a JSON object");
  for (const auto& [k, v] : body.items()) {
    if (k != "column" && k != "value" && k != "match" && !allowed.count(k)) {
      return FieldError(k.substr(0, 40), "is not a known field");
    }
  }
  SubjectQuery q;
  if (!body.contains("column") || !body["column"].is_string() || body["column"].get<std::string>().empty()) {
    return FieldError("column", "is required: the identifier column to look in");
  }
  q.column = body["column"].get<std::string>();
  if (!body.contains("value")) return FieldError("value", "is required: the person's identifier");
  const Json& v = body["value"];
  if (v.is_string())
    q.value = v.get<std::string>();
  else if (v.is_number_integer() || v.is_number_unsigned() || v.is_boolean())
    q.value = v.dump();
  else if (v.is_number_float())
    q.value = DumpJson(v);
  else
    return FieldError("value", "must be a string or a number");
  if (q.value.empty() || q.value.size() > kMaxValueBytes) {
    return FieldError("value", "must be 1.." + std::to_string(kMaxValueBytes) + " bytes");
  }
  if (body.contains("match")) {
    if (!body["match"].is_string()) return FieldError("match", "must be exact or case_insensitive");
    ASSIGN_OR_RETURN(q.match, ParseSubjectMatch(body["match"].get<std::string>()));
  }
  return q;
}

// kInvalidArgument naming `column` unless some version of the dataset has it.
Status CheckColumnExists(const std::vector<DatasetVersionRecord>& versions, const std::string& column) {
  std::set<std::string> all;
  for (const auto& v : versions) {
    for (const auto& c : v.columns) {
      const std::string name = c.value("name", std::string());
      if (name == column) return Status::Ok();
      all.insert(name);
    }
  }
  std::string list;
  for (const auto& n : all) {
    if (list.size() > 300) {
      list += ", …";
      break;
    }
    list += (list.empty() ? "" : ", ") + n;
  }
  return FieldError("column", "names no column of any version of '" + versions.front().dataset +
                                  "' (columns: " + list + ")");
}

int ColumnIndex(const DatasetFile& file, const std::string& name) {
  for (size_t i = 0; i < file.columns().size(); ++i) {
    if (file.columns()[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// Calls `on_group(first_row, table, matching local rows)` for each row group of `file` that has matches.
template <typename F>
Status ScanMatches(const DatasetFile& file, int column, const SubjectMatcher& matcher,
                   const std::function<bool()>& cancel, F&& on_group) {
  for (int64_t off = 0; off < file.num_rows(); off += kLcolRowsPerGroup) {
    if (cancel && cancel()) return Status::Cancelled("cancelled");
    ASSIGN_OR_RETURN(Table t, file.ReadRows(off, kLcolRowsPerGroup));
    std::vector<int64_t> rows = matcher.MatchingRows(t.columns[static_cast<size_t>(column)]);
    if (!rows.empty()) RETURN_IF_ERROR(on_group(off, t, rows));
  }
  return Status::Ok();
}

struct QuarantineLine {
  int64_t index = 0;  // 0-based line of the quarantine file
  Json entry;         // {line, reason, raw}
};

// The quarantined bad rows of `v` that contain the value, and the quarantine text without them.
Result<std::vector<QuarantineLine>> ScanQuarantine(App& app, const DatasetVersionRecord& v,
                                                   const SubjectMatcher& matcher, std::string* kept) {
  std::vector<QuarantineLine> hits;
  if (v.quarantine_blob.empty()) return hits;
  ASSIGN_OR_RETURN(std::string text, app.blobs().Get(v.quarantine_blob));
  size_t start = 0;
  int64_t index = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    bool hit = false;
    Json entry;
    auto parsed = ParseJson(line, 16);
    if (parsed.ok() && parsed->is_object()) {
      entry = std::move(parsed).value();
      hit = matcher.Contains(entry.value("raw", std::string()));
    } else {
      entry = {{"raw", std::string(line)}};
      hit = matcher.Contains(line);
    }
    if (hit) {
      hits.push_back({index, std::move(entry)});
    } else if (kept != nullptr && !line.empty()) {
      kept->append(line);
      kept->push_back('\n');
    }
    start = end + 1;
    ++index;
  }
  return hits;
}

// ---------------------------------------------------------------- export

Status ExportSubject(App& app, RequestContext& ctx, const SubjectQuery& q) {
  ASSIGN_OR_RETURN(int64_t only_version, QueryInt(ctx.req, "version", 0, 0, INT64_MAX / 2));
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(ctx.req, "limit", 1000, 1, app.config().max_page_rows));
  bool download = false;
  if (const std::string* d = ctx.req.Query("download")) {
    if (*d != "true" && *d != "false") return FieldError("download", "must be true or false");
    download = *d == "true";
  }
  ASSIGN_OR_RETURN(auto versions, app.store().ListDatasetVersions(ctx.Project(), ctx.Param("name")));
  RETURN_IF_ERROR(CheckColumnExists(versions, q.column));
  if (only_version > 0) {
    auto it = std::find_if(versions.begin(), versions.end(),
                           [&](const auto& v) { return v.version == only_version; });
    if (it == versions.end()) {
      return Status::NotFound("dataset '" + ctx.Param("name") + "' has no version " +
                              std::to_string(only_version));
    }
    versions = {*it};
  }
  const SubjectMatcher matcher(q.value, q.match);
  int64_t total = 0, returned = 0;
  Json out_versions = Json::array(), without = Json::array();
  for (const auto& v : versions) {
    ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
    const int col = ColumnIndex(*file, q.column);
    Json rows = Json::array();
    int64_t matches = 0;
    if (col < 0) {
      without.push_back(v.version);
    } else {
      RETURN_IF_ERROR(
          ScanMatches(*file, col, matcher, nullptr,
                      [&](int64_t first, const Table& t, const std::vector<int64_t>& local) -> Status {
                        matches += static_cast<int64_t>(local.size());
                        std::vector<int64_t> take;
                        for (int64_t r : local) {
                          if (returned + static_cast<int64_t>(take.size()) >= limit) break;
                          take.push_back(r);
                        }
                        if (take.empty()) return Status::Ok();
                        Json values = TableRowsToJson(TakeRows(t, take));
                        for (size_t i = 0; i < take.size(); ++i) {
                          rows.push_back({{"row", first + take[i]}, {"values", std::move(values[i])}});
                        }
                        returned += static_cast<int64_t>(take.size());
                        return Status::Ok();
                      }));
    }
    ASSIGN_OR_RETURN(auto quarantined, ScanQuarantine(app, v, matcher, nullptr));
    total += matches;
    if (matches == 0 && quarantined.empty()) continue;
    Json entry = {{"version", v.version}, {"matches", matches}, {"rows", std::move(rows)}};
    if (!quarantined.empty()) {
      Json lines = Json::array();
      for (auto& l : quarantined) lines.push_back(std::move(l.entry));
      entry["quarantined"] = std::move(lines);
    }
    if (v.lineage.contains("erasures")) entry["erased"] = true;
    out_versions.push_back(std::move(entry));
  }
  Json out = {{"dataset", ctx.Param("name")},
              {"column", q.column},
              {"match", SubjectMatchName(q.match)},
              {"total_matches", total},
              {"returned", returned},
              {"truncated", total > returned},
              {"versions", std::move(out_versions)},
              {"versions_without_column", std::move(without)}};
  if (total > returned) {
    out["message"] = std::to_string(total) + " rows match; showing the first " + std::to_string(returned) +
                     ". Ask per version (?version=N) or raise ?limit= (at most " +
                     std::to_string(app.config().max_page_rows) + ")";
  } else if (total == 0 && out["versions"].empty()) {
    out["message"] =
        "no version of '" + ctx.Param("name") + "' holds this value in column '" + q.column + "'";
  }
  if (download) {
    ctx.res.headers.emplace_back("Content-Disposition",
                                 "attachment; filename=\"" + ctx.Param("name") + "-subject-export.json\"");
  }
  WriteJson(200, out, ctx.res);
  return Status::Ok();
}

// ---------------------------------------------------------------- erase

// The keyed hash recorded instead of the value: a plain SHA-256 of an e-mail address is reversed by hashing
// guesses; this one needs the project's secret salt (derived from the master key).
std::string ValueHash(App& app, const std::string& project, const SubjectMatcher& matcher) {
  return HexEncode(HmacSha256(PiiSalt(app, project), "erasure:" + matcher.normalized()));
}

std::string SealAad(const std::string& job_id) { return "lathe-erasure:" + job_id; }

Result<std::string> UnhexSealed(const std::string& hex) {
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2) return Status::DataLoss("the sealed value of the erasure job is not hex");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nib(hex[i]), lo = nib(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status::DataLoss("the sealed value of the erasure job is not hex");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Removes the listed blobs that nothing references any more; returns the ones kept.
Json ReleaseBlobs(App& app, const std::set<std::string>& blobs) {
  Json kept = Json::array();
  for (const auto& b : blobs) {
    if (b.empty()) continue;
    auto used = app.store().BlobReferenced(b);
    if (!used.ok()) {
      kept.push_back({{"blob", b}, {"reason", "could not check references: " + used.status().message()}});
    } else if (*used) {
      kept.push_back({{"blob", b},
                      {"reason", "the same bytes are still used by another dataset version, run or model"}});
    } else if (Status st = app.blobs().Remove(b); !st.ok()) {
      kept.push_back({{"blob", b}, {"reason", "removing it failed: " + st.message()}});
    }
  }
  return kept;
}

// A version after erasure: every field recomputed from the new file.
struct Rewrite {
  DatasetVersionRecord before;
  DatasetVersionRecord after;
  int64_t rows_removed = 0;
  int64_t lines_removed = 0;
};

Status WriteWithoutRows(const DatasetFile& file, const std::vector<int64_t>& drop, const std::string& path,
                        const std::function<bool()>& cancel) {
  std::vector<std::string> names;
  std::vector<ColumnType> types;
  for (const auto& c : file.columns()) {
    names.push_back(c.name);
    types.push_back(c.type);
  }
  ASSIGN_OR_RETURN(auto writer, DatasetWriter::Create(path, names));
  size_t next = 0;  // into drop (ascending)
  for (int64_t off = 0; off < file.num_rows(); off += kLcolRowsPerGroup) {
    if (cancel()) return Status::Cancelled("the erasure was cancelled before it changed anything");
    ASSIGN_OR_RETURN(Table t, file.ReadRows(off, kLcolRowsPerGroup));
    std::vector<uint8_t> keep(static_cast<size_t>(t.num_rows), 1);
    while (next < drop.size() && drop[next] < off + t.num_rows)
      keep[static_cast<size_t>(drop[next++] - off)] = 0;
    KeepRowsInPlace(t, keep);
    if (t.num_rows > 0) RETURN_IF_ERROR(writer->AppendTable(t));
  }
  return writer->Finish(types).status();
}

// Data-contract examples are values of rows (maybe the erased ones) at row numbers that moved.
Json StripExamples(Json quality) {
  if (!quality.is_object() || !quality.contains("checks") || !quality["checks"].is_array()) return quality;
  bool stripped = false;
  for (auto& c : quality["checks"]) {
    if (c.is_object() && c.contains("examples")) {
      c.erase("examples");
      stripped = true;
    }
  }
  if (stripped) quality["examples_removed_by_erasure"] = true;
  return quality;
}

Result<Json> EraseJob(App& app, JobContext& ctx) {
  const Json& p = ctx.payload();
  const std::string project = ctx.job().project;
  const std::string dataset = p.value("dataset", std::string());
  const std::string column = p.value("column", std::string());
  const std::string erasure_id = p.value("erasure", std::string());
  ASSIGN_OR_RETURN(SubjectMatch match, ParseSubjectMatch(p.value("match", std::string("exact"))));
  ASSIGN_OR_RETURN(std::string sealed, UnhexSealed(p.value("value_sealed", std::string())));
  ASSIGN_OR_RETURN(std::string value,
                   app.keyring().Open(SealedValue{p.value("value_key_id", std::string()), sealed},
                                      SealAad(ctx.job().id)));
  const SubjectMatcher matcher(value, match);
  auto cancel = [&] { return ctx.Cancelled(); };

  ASSIGN_OR_RETURN(auto versions, app.store().ListDatasetVersions(project, dataset));
  ASSIGN_OR_RETURN(DatasetSettings settings, LoadDatasetSettings(app, project, dataset));
  const int64_t latest = versions.back().version;
  const int64_t now = NowMicros();
  const Json erasure_mark = {{"erasure", erasure_id}, {"at", FormatRfc3339(now)}};

  // 1. Find the person and write every new file (nothing visible changes yet).
  std::vector<Rewrite> rewrites;
  std::set<std::string> new_blobs;
  struct ReleaseNewOnFailure {
    App& app;
    std::set<std::string>& blobs;
    bool committed = false;
    ~ReleaseNewOnFailure() {
      if (!committed) (void)ReleaseBlobs(app, blobs);
    }
  } guard{app, new_blobs};
  for (size_t i = 0; i < versions.size(); ++i) {
    const DatasetVersionRecord& v = versions[i];
    ctx.Progress(0.8 * static_cast<double>(i) / static_cast<double>(versions.size()),
                 "looking in version " + std::to_string(v.version));
    ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
    std::vector<int64_t> drop;
    const int col = ColumnIndex(*file, column);
    if (col >= 0) {
      RETURN_IF_ERROR(
          ScanMatches(*file, col, matcher, cancel,
                      [&](int64_t first, const Table&, const std::vector<int64_t>& local) -> Status {
                        for (int64_t r : local) drop.push_back(first + r);
                        return Status::Ok();
                      }));
    }
    std::string kept_lines;
    ASSIGN_OR_RETURN(auto lines, ScanQuarantine(app, v, matcher, &kept_lines));
    if (drop.empty() && lines.empty()) continue;
    Rewrite w{.before = v,
              .after = v,
              .rows_removed = static_cast<int64_t>(drop.size()),
              .lines_removed = static_cast<int64_t>(lines.size())};
    if (!drop.empty()) {
      const std::string path = app.blobs().TempPath("erase");
      struct RemoveTemp {
        std::string path;
        ~RemoveTemp() {
          std::error_code ec;
          fs::remove(path, ec);
        }
      } temp{path};
      RETURN_IF_ERROR(WriteWithoutRows(*file, drop, path, cancel));
      ASSIGN_OR_RETURN(auto out, DatasetFile::Open(path));
      ProfileOptions popt;
      popt.target = settings.target;
      ASSIGN_OR_RETURN(Json profile, ProfileDataset(*out, popt, cancel));
      w.after.rows = out->num_rows();
      w.after.bytes = out->file_bytes();
      w.after.stats = out->StatsJson();
      w.after.columns = Json::array();
      for (const auto& c : out->columns()) {
        w.after.columns.push_back(
            {{"name", c.name}, {"type", ColumnTypeName(c.type)}, {"missing", c.missing}});
      }
      out.reset();
      ASSIGN_OR_RETURN(w.after.profile_blob, app.blobs().Put(DumpJson(profile)));
      new_blobs.insert(w.after.profile_blob);
      ASSIGN_OR_RETURN(w.after.blob, app.blobs().AdoptFile(path));
      new_blobs.insert(w.after.blob);
    }
    if (!lines.empty()) {
      w.after.bad_rows = std::max<int64_t>(0, v.bad_rows - static_cast<int64_t>(lines.size()));
      w.after.quarantine_blob.clear();
      if (!kept_lines.empty()) {
        ASSIGN_OR_RETURN(w.after.quarantine_blob, app.blobs().Put(kept_lines));
        new_blobs.insert(w.after.quarantine_blob);
      }
    }
    w.after.quality = StripExamples(v.quality);
    Json mark = erasure_mark;
    mark["rows_removed"] = w.rows_removed;
    if (w.lines_removed) mark["quarantined_lines_removed"] = w.lines_removed;
    if (!w.after.lineage.is_object()) w.after.lineage = Json::object();
    w.after.lineage["erasures"].push_back(mark);
    ctx.Log("version " + std::to_string(v.version) + ": " + std::to_string(w.rows_removed) + " rows" +
            (w.lines_removed ? ", " + std::to_string(w.lines_removed) + " quarantined lines" : "") +
            " to erase");
    rewrites.push_back(std::move(w));
  }

  // What was trained on the affected versions, and what other datasets are linked to them.
  std::set<int64_t> affected;
  for (const auto& w : rewrites) affected.insert(w.before.version);
  Json models = Json::array(), runs = Json::array(), linked = Json::array();
  for (int64_t v : affected) {
    ASSIGN_OR_RETURN(auto names, app.store().ModelsUsingDatasetVersion(project, dataset, v));
    for (const auto& m : names) models.push_back({{"model", m}, {"dataset_version", v}});
  }
  if (!affected.empty()) {
    ASSIGN_OR_RETURN(auto all_runs, app.store().ListRuns(project, 1000000, true));
    for (const auto& r : all_runs) {
      if (r.dataset == dataset && affected.count(r.dataset_version)) {
        runs.push_back(
            {{"run", r.id}, {"kind", r.kind}, {"state", r.state}, {"dataset_version", r.dataset_version}});
      }
    }
    ASSIGN_OR_RETURN(auto datasets, app.store().ListDatasets(project));
    for (const auto& d : datasets) {
      if (d.name == dataset) continue;
      ASSIGN_OR_RETURN(auto vs, app.store().ListDatasetVersions(project, d.name));
      for (const auto& v : vs) {
        const Json parent = v.lineage.value("parent", Json::object());
        if (parent.value("dataset", std::string()) == dataset &&
            affected.count(parent.value("version", int64_t{0}))) {
          linked.push_back({{"dataset", d.name},
                            {"version", v.version},
                            {"relation", "made from"},
                            {"of_version", parent.value("version", int64_t{0})}});
        }
      }
    }
    for (const auto& w : rewrites) {
      const Json parent = w.before.lineage.value("parent", Json::object());
      const std::string pd = parent.value("dataset", std::string());
      if (!pd.empty() && pd != dataset) {
        linked.push_back({{"dataset", pd},
                          {"version", parent.value("version", int64_t{0})},
                          {"relation", "made into"},
                          {"of_version", w.before.version}});
      }
    }
  }

  // 2. The erasure record and, if the latest version changes, the new latest version.
  int64_t rows_removed = 0, lines_removed = 0;
  Json versions_json = Json::array();
  std::vector<DatasetVersionRewrite> switches;
  std::optional<DatasetVersionRecord> append;
  for (const auto& w : rewrites) {
    rows_removed += w.rows_removed;
    lines_removed += w.lines_removed;
    versions_json.push_back({{"version", w.before.version},
                             {"rows_before", w.before.rows},
                             {"rows_after", w.after.rows},
                             {"rows_removed", w.rows_removed},
                             {"quarantined_lines_removed", w.lines_removed}});
    switches.push_back({w.after, w.before.blob});
    if (w.before.version == latest) {
      DatasetVersionRecord n = w.after;
      n.created_at = now;
      n.source = {{"kind", "erasure"}, {"erasure", erasure_id}, {"of_version", latest}};
      // A version made by a recipe keeps its recipe lineage, so a model trained on the new version still
      // serves raw input (PreprocessFromLineage); otherwise the parent is the version it was made from.
      n.lineage = w.before.lineage.contains("recipe") ? w.before.lineage : Json::object();
      if (!n.lineage.contains("parent")) n.lineage["parent"] = {{"dataset", dataset}, {"version", latest}};
      n.lineage.erase("erasures");
      n.lineage["erasure"] = {{"erasure", erasure_id}, {"of_version", latest}};
      append = std::move(n);
    }
  }
  Json record = {{"dataset", dataset},
                 {"column", column},
                 {"match", SubjectMatchName(match)},
                 {"value_hash",
                  {{"algorithm", "hmac-sha256"},
                   {"key", "project PII salt"},
                   {"hex", ValueHash(app, project, matcher)}}},
                 {"reason", p.value("reason", std::string())},
                 {"requested_by", p.value("requested_by", std::string())},
                 {"at", FormatRfc3339(now)},
                 {"job", ctx.job().id},
                 {"found", !rewrites.empty()},
                 {"rows_removed", rows_removed},
                 {"quarantined_lines_removed", lines_removed},
                 {"versions", versions_json},
                 {"models_affected", models},
                 {"runs_affected", runs},
                 {"linked_versions", linked}};
  if (append) record["new_version_of"] = latest;
  DocumentRecord doc{.project = project,
                     .kind = kErasureKind,
                     .name = erasure_id,
                     .body = record,
                     .created_by = ctx.job().created_by,
                     .created_at = now};

  // 3. Switch: one transaction for every version, the new version and the record.
  if (ctx.Cancelled()) return Status::Cancelled("the erasure was cancelled before it changed anything");
  ctx.Progress(0.9, "switching versions");
  ASSIGN_OR_RETURN(int64_t new_version, app.store().RewriteDatasetVersions(switches, append, doc));
  guard.committed = true;
  {
    // The erasure in the audit log (the erasure record above is already durable; this entry points at it).
    AuditRecord e;
    e.actor = p.value("requested_by", std::string());
    e.actor_id = ctx.job().created_by;
    e.action = "dataset.erase";
    e.project = project;
    e.target = "datasets/" + dataset;
    e.request_id = ctx.job().id;
    e.outcome = "ok";
    e.detail = Json{{"erasure", erasure_id}, {"column", record.value("column", Json())},
                    {"value_hash", record.value("value_hash", Json())}, {"rows_removed", rows_removed},
                    {"new_version", new_version}}.dump();
    app.audit().Record(std::move(e));
  }
  if (new_version > 0) {
    record["new_version"] = new_version;
    doc.body = record;
    doc.created_at = NowMicros();
    auto put = app.store().PutDocument(doc);
    if (!put.ok())
      ctx.Log("could not add the new version number to the erasure record: " + put.status().ToString());
  }

  // 4. The old bytes go, unless something else still uses them.
  std::set<std::string> old;
  for (const auto& w : rewrites) {
    for (const auto* b : {&w.before.blob, &w.before.profile_blob, &w.before.quarantine_blob}) {
      if (*b != w.after.blob && *b != w.after.profile_blob && *b != w.after.quarantine_blob) old.insert(*b);
    }
  }
  Json kept = ReleaseBlobs(app, old);
  LogInfo("erasure done", {{"project", project},
                           {"dataset", dataset},
                           {"erasure", erasure_id},
                           {"versions", static_cast<int64_t>(rewrites.size())},
                           {"rows_removed", rows_removed}});
  Json out = record;
  out["erasure"] = erasure_id;
  out["new_version"] = new_version > 0 ? Json(new_version) : Json(nullptr);
  out["blobs_kept"] = kept;
  if (rewrites.empty()) {
    out["message"] = "nothing to erase: no version of '" + dataset + "' holds this value in column '" +
                     column + "' or in its quarantined rows";
  } else {
    out["message"] = "erased " + std::to_string(rows_removed) + " rows from " +
                     std::to_string(rewrites.size()) + " versions" +
                     (models.empty() ? "" : "; retrain the models listed in models_affected");
  }
  return out;
}

Status SubmitErase(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  ASSIGN_OR_RETURN(SubjectQuery q, ParseSubjectQuery(body, {"reason"}));
  std::string reason;
  if (body.contains("reason")) {
    if (!body["reason"].is_string() || body["reason"].get<std::string>().size() > 2000) {
      return FieldError("reason", "must be a string of at most 2000 characters");
    }
    reason = body["reason"].get<std::string>();
  }
  bool wait = false;
  if (const std::string* w = ctx.req.Query("wait")) {
    if (*w != "true" && *w != "false") return FieldError("wait", "must be true or false");
    wait = *w == "true";
  }
  ASSIGN_OR_RETURN(auto versions, app.store().ListDatasetVersions(ctx.Project(), ctx.Param("name")));
  RETURN_IF_ERROR(CheckColumnExists(versions, q.column));
  // The value never sits in the job table in clear: sealed under the master key, bound to the job id.
  const std::string job_id = NewId("job");
  ASSIGN_OR_RETURN(SealedValue sealed, app.keyring().Seal(q.value, SealAad(job_id)));
  const std::string erasure_id = NewId("erasure");
  Json payload = {
      {"dataset", ctx.Param("name")},       {"column", q.column}, {"match", SubjectMatchName(q.match)},
      {"value_sealed", HexEncode(sealed.sealed)}, {"value_key_id", sealed.key_id}, {"reason", reason},
      {"erasure", erasure_id},
      {"requested_by", ctx.caller.username}};
  ASSIGN_OR_RETURN(JobRecord job,
                   app.jobs().Submit("erase", ctx.Project(), payload, ctx.caller.user_id, job_id));
  return RespondWithJob(app, ctx, job, wait, {{"dataset", ctx.Param("name")}, {"erasure", erasure_id}});
}

Status ListErasures(App& app, RequestContext& ctx) {
  RETURN_IF_ERROR(app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), 0).status());
  ASSIGN_OR_RETURN(auto docs, app.store().ListDocuments(ctx.Project(), kErasureKind));
  std::vector<Json> list;
  for (const auto& d : docs) {
    if (d.body.value("dataset", std::string()) != ctx.Param("name")) continue;
    Json e = d.body;
    e["erasure"] = d.name;
    list.push_back(std::move(e));
  }
  std::sort(list.begin(), list.end(), [](const Json& a, const Json& b) {
    return a.value("at", std::string()) < b.value("at", std::string());
  });
  WriteJson(200, {{"dataset", ctx.Param("name")}, {"erasures", list}}, ctx.res);
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------- differential privacy

Result<double> ProfileEpsilon(const HttpRequest& req, const DatasetSettings& settings) {
  const std::string* text = req.Query("dp_epsilon");
  if (text == nullptr) return settings.dp_epsilon;
  double eps = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, eps);
  if (text->empty() || ec != std::errc() || ptr != end || !std::isfinite(eps) || !(eps > 0) ||
      eps > kMaxEpsilon) {
    return FieldError("dp_epsilon", "must be a number > 0 and <= 100 (the privacy budget of the profile)");
  }
  return eps;
}

Result<Json> PrivateProfile(App& app, const DatasetVersionRecord& v, const Json& profile, double epsilon,
                            const DatasetSettings& settings) {
  DpOptions opt;
  opt.epsilon = epsilon;
  for (const auto& [col, tag] : settings.tags) {
    if (tag == "personal") opt.identifying_columns.insert(col);
  }
  const std::string key = HmacSha256(app.keyring().PiiKey(), "lathe-dp-noise:" + v.project);
  const std::string context = v.dataset + "\n" + v.blob + "\n" + DumpJson(Json(epsilon)) + "\n" +
                              DumpJson(profile.value("target", Json(nullptr)));
  return PrivatizeProfile(profile, opt, KeyedRandomWords(key, context));
}

void RegisterPrivacyRoutes(Router& router, App& app) {
  app.jobs().Register("erase", {.handler = [&app](JobContext& ctx) { return EraseJob(app, ctx); }});
  const std::string base = "/api/v1/projects/{project}/datasets/{name}";
  router.Add({.method = "GET",
              .pattern = base + "/subjects",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                Json q = Json::object();
                for (const char* k : {"column", "value", "match"}) {
                  if (const std::string* v = ctx.req.Query(k)) q[k] = *v;
                }
                ASSIGN_OR_RETURN(SubjectQuery sq, ParseSubjectQuery(q, {}));
                return ExportSubject(app, ctx, sq);
              },
              .summary = "One person's rows in every version, by an identifier column: ?column=C&value=V"
                         "[&match=exact|case_insensitive][&version=N][&limit=L][&download=true]",
              .tag = "privacy"});
  router.Add({.method = "POST",
              .pattern = base + "/subjects",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(SubjectQuery sq, ParseSubjectQuery(body, {}));
                return ExportSubject(app, ctx, sq);
              },
              .summary = "The same export with the identifier in the body (kept out of URLs and logs)",
              .tag = "privacy",
              .request_example = {
                  {"column", "email"}, {"value", "ann@example.org"}, {"match", "case_insensitive"}}});
  router.Add(
      {.method = "POST",
       .pattern = base + "/erase",
       .permission = Permission::kProjectWrite,
       .handler = [&app](RequestContext& ctx) { return SubmitErase(app, ctx); },
       .summary = "Erase one person's rows from every version (a job; ?wait=true to wait): versions are "
                  "rewritten, the erasure is recorded, models trained on them are listed",
       .tag = "privacy",
       .success_status = 202,
       .request_example = {
           {"column", "email"}, {"value", "ann@example.org"}, {"reason", "GDPR art. 17 request #1234"}}});
  router.Add({.method = "GET",
              .pattern = base + "/erasures",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) { return ListErasures(app, ctx); },
              .summary = "Erasures done on a dataset: who, when, why, versions and rows, affected models",
              .tag = "privacy"});
}

}  // namespace lathe
