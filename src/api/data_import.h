// Import jobs and the one path by which any new dataset version is made (imports and recipe applies):
// FinishVersion profiles the columnar file, checks the dataset's contract, stores blobs and adds the
// version in one store transaction. Internal to the api layer.
#pragma once

#include <string>

#include "common/json.h"
#include "common/status.h"
#include "data/csv_import.h"
#include "data/import_options.h"
#include "data/json_import.h"
#include "data/xlsx_import.h"
#include "jobs/job_runner.h"

namespace lathe {

class App;

// How to read a file: the format ("auto" sniffs the name and first bytes) and per-format options.
struct ImportSpec {
  std::string format = "auto";  // auto | csv | tsv | json | jsonl | xlsx
  CsvOptions csv;
  JsonImportOptions json;
  XlsxOptions xlsx;
  ImportOptions import;         // hints and bad-row policy (quarantine_path is set by the job)
};

// Parses {"format","csv":{"delimiter","quote","header","encoding"},"json":{"layout"},"xlsx":{"sheet",
// "header_row"},"hints":{…},"bad_rows","max_bad_rows"}; errors name the field.
Result<ImportSpec> ParseImportSpec(const Json& j);
Json ImportSpecToJson(const ImportSpec& spec);

// The format of a local file from its name (extension) or, failing that, its first bytes.
std::string DetectFormat(const std::string& path, const std::string& filename_hint);

struct ImportRequest {
  std::string project;
  std::string dataset;
  std::string input_path;  // the local file to read (an upload, or what a SQL/HTTP source fetched)
  std::string filename;    // original name, for format detection ("" if none)
  ImportSpec spec;
  Json source = Json::object();  // shown as the version's source (never credentials)
};

// Reads req.input_path into a new version of req.dataset. Does not remove the input.
Result<Json> ImportIntoVersion(App& app, JobContext& ctx, const ImportRequest& req);

// Makes a dataset version from a finished columnar file at `table_path` (consumed: adopted or removed).
// `quarantine_path` ("" = none) holds bad rows as JSON lines. Returns the version as JSON.
Result<Json> FinishVersion(App& app, JobContext& ctx, const std::string& project, const std::string& dataset,
                           const std::string& table_path, const std::string& quarantine_path, int64_t bad_rows,
                           Json source, Json lineage, const Json& extra_source);

// The salt for mask_pii's keyed hash: secret (derived from the master key) and stable per project, so the
// same e-mail hashes to the same token in every version of every dataset of the project (and at serving).
std::string PiiSalt(App& app, const std::string& project);

// The recipes that made version `v` from its raw ancestor, for the model's serving preprocess
// (ml/preprocess.h): {} when `v` was not made by a recipe. kFailedPrecondition if an ancestor was deleted.
Result<Json> PreprocessFromLineage(App& app, const DatasetVersionRecord& v);

// Registers the "import" job kind: payload {"dataset","source":{…},"import":{ImportSpec}}.
void RegisterImportJob(App& app);

}  // namespace lathe
