// What the external data sources (sql_source.h, http_source.h) share: the SourceFetch result that tells
// the importer what landed in the local file, and SpoolFile, the atomic writer every source lands through.
//
// SpoolFile guarantees: bytes go to a temp file created next to the target (same directory, so the rename
// is atomic); Commit() flushes, fsyncs and renames it over the target; destroying an uncommitted SpoolFile
// (any error path) deletes the temp file, so a failed fetch leaves nothing at or next to out_path.
// Not thread-safe; one writer per instance.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"
#include "data/import_options.h"

namespace lathe {

struct SourceFetch {
  std::string format;  // "csv" | "jsonl" | "json": how the importer must read out_path
  int64_t rows = -1;   // data rows landed (header excluded), -1 if unknown
  int64_t bytes = 0;   // size of out_path
  SchemaHints hints;   // column types the source declares (e.g. from the database catalog)
  Json info;           // details safe to show: host, db, query, pages, urls — never passwords or headers
};

class SpoolFile {
 public:
  SpoolFile() = default;
  ~SpoolFile();
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  // Creates the temp file for `out_path` (kInvalidArgument if out_path is empty, kInternal on I/O errors).
  Status Open(const std::string& out_path);
  Status Write(std::string_view bytes);
  int64_t bytes_written() const { return bytes_; }
  // Last byte written, or -1 if nothing was written (lets page concatenation add a missing newline).
  int last_byte() const { return last_byte_; }
  Status Commit();
  // Deletes the temp file; idempotent. Called by the destructor when not committed.
  void Abandon();

 private:
  std::string out_path_;
  std::string tmp_path_;
  FILE* file_ = nullptr;
  int64_t bytes_ = 0;
  int last_byte_ = -1;
  bool committed_ = false;
};

// Appends `field` to `out` as one RFC 4180 CSV field: quoted (with "" escapes) when it contains a comma,
// quote, CR or LF, or is empty and `quote_empty` (so an empty string differs from a missing value).
void AppendCsvField(std::string_view field, bool quote_empty, std::string* out);

}  // namespace lathe
