// CSV import: reads a delimited text file and writes a dataset file (dataset_file.h) with one typed column
// per header field.
//
// Input: RFC 4180 (quoted fields with "" escapes and embedded newlines), LF or CRLF line ends, UTF-8 with or
// without a BOM, a required header row, delimiter , \t ; or | (detected from the first lines unless given).
// Blank lines are skipped. Types are inferred per column over ALL rows (value_parse.h lists the exact
// spellings): integer (int64) > float > boolean > datetime > string; a column mixing integers and floats
// is float, any other mix is string; a column with no values at all is string. Missing values: the empty
// field and NA, N/A, null, NULL, NaN, nan, None.
//
// Memory is bounded for any input size: the file is streamed in blocks (about 16 MB per worker thread plus
// one row group of typed values), never held whole. Two passes: pass 1 validates and infers types, split
// across threads at row boundaries; pass 2 converts, compresses and writes row groups in parallel.
//
// Errors (kInvalidArgument, with an ErrorDetail::Line or ::Column and the place in the message): empty
// input, header without data rows, empty or duplicate header names, a row with the wrong number of fields,
// an unclosed quote (naming the line where the quoted field began), invalid UTF-8 (line and byte offset),
// a field or line over its limit. kCancelled if `cancel` returns true. On any error nothing exists at
// output_path. Thread-safe: independent imports may run concurrently; callbacks run on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "data/dataset_file.h"
#include "data/import_options.h"
#include "data/table.h"

namespace lathe {

struct CsvOptions {
  char delimiter = 0;                  // 0 = detect among , \t ; |
  size_t max_field_bytes = 1 << 20;    // longest accepted field
  size_t max_line_bytes = 16 << 20;    // longest accepted row (a quoted field may span lines)
  int num_threads = 0;                 // 0 = one per core
  int zstd_level = 1;                  // compression level of column chunks
  size_t segment_bytes = 16 << 20;     // pass-1 work unit; smaller in tests to exercise segment joins
};

Result<ImportResult> ImportCsvFile(const std::string& input_path, const std::string& output_path,
                                   const CsvOptions& options, const ProgressFn& progress, const CancelFn& cancel);

}  // namespace lathe
