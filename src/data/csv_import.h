// CSV import: reads a delimited text file and writes a dataset file (dataset_file.h) with one typed column
// per field of the rows.
//
// Input: RFC 4180 (quoted fields with doubled-quote escapes and embedded newlines), LF or CRLF line ends,
// delimiter , \t ; or | (detected from the first lines unless given). Blank lines are skipped.
//  - Encoding (CsvOptions::encoding, "" = detect from the first 2 MB, see text_encoding.h): UTF-8 with or
//    without a BOM, GB18030 (also GBK/GB2312) or Latin-1. Non-UTF-8 input is decoded, streamed, to a
//    temporary UTF-8 file next to output_path (removed afterwards) and imported from it; line numbers in
//    errors are those of the original file. A UTF-16/32 byte order mark is rejected.
//  - Quote character (CsvOptions::quote, 0 = detect): '"' or '\''. The one that more often encloses a whole
//    field (opening right after a line start or a delimiter, closing right before a delimiter or line end)
//    in the first 64 KB wins; '"' on a tie. Single-quoted input is rewritten, streamed, as double-quoted
//    text into the same temporary file (line breaks kept), so the fast tokenizer reads only one dialect.
//  - Header (CsvOptions::header): kYes, kNo (columns are then named column_1..column_N), or kAuto. kAuto
//    decides like Python's csv.Sniffer.has_header, over up to 200 rows after the first: a column whose values
//    below are all numbers/booleans/datetimes votes "header" if the first row's value does not fit that type
//    and "data" if it does; a text column votes "header" only if all values below have one length and the
//    first row's value another. There is a header unless the votes for "data" win (so an all-text file is
//    read with a header), or unconditionally when a schema hint names a field of the first row.
// Types are inferred per column over ALL rows (value_parse.h lists the exact spellings): integer (int64) >
// float > boolean > datetime > string; a column mixing integers and floats is float, any other mix is
// string; a column with no values at all is string. Missing values: the empty field and NA, N/A, null,
// NULL, NaN, nan, None. ImportOptions::hints (import_options.h, value_hints.h) force types, give date
// formats, read decimal commas and replace the missing spellings; a hint naming a column the file does not
// have is kInvalidArgument with ErrorDetail::Field("hints.types.<col>" or "hints.date_formats.<col>").
//
// Bad rows (ImportOptions::bad_rows): a row with the wrong number of fields, with bytes that are not valid
// text in the file's encoding, or with a value that breaks a hint. kFail stops at the first one (error
// with ErrorDetail::Cell(line, column) when a column is known, else ::Line); kSkip drops and counts them;
// kQuarantine also writes them as JSON lines {"line","reason","raw"} to quarantine_path (temp file +
// rename; not created, and an existing file left alone, when there is no bad row). "line" is the line of
// the problem (in a multi-line quoted row, the line holding the bad value or byte); invalid bytes in
// "raw" are shown as U+FFFD. More than max_bad_rows bad rows fails the import. Which
// rows are bad never depends on thread count or segment size. Unclosed quotes and fields or lines over
// their limits always fail: the rest of the file cannot be read reliably after them.
//
// Memory is bounded for any input size: the file is streamed in blocks (about 16 MB per worker thread plus
// one row group of typed values), never held whole; quarantined rows are streamed to their file (raw text
// capped at 64 KiB per row). Segments of the file are tokenized, validated, converted and compressed in
// parallel and joined in file order; row groups whose chunks turn out narrower than the final column type
// are converted again from the input.
//
// Errors (kInvalidArgument, with an ErrorDetail and the place in the message): empty input, header without
// data rows, empty or duplicate header names, bad rows as above, an unclosed quote (naming the line where
// the quoted field began), a field or line over its limit, bad options (ErrorDetail::Field "encoding",
// "quote", "delimiter", "quarantine_path", "hints...."). kCancelled if `cancel` returns true. On any error
// nothing exists at output_path or quarantine_path and no temporary file is left. Thread-safe: independent
// imports may run concurrently; callbacks run on the calling thread.
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

enum class HeaderMode : uint8_t { kAuto = 0, kYes = 1, kNo = 2 };

struct CsvOptions {
  char delimiter = 0;                  // 0 = detect among , \t ; |
  char quote = 0;                      // 0 = detect '"' or '\''; otherwise one of those two
  std::string encoding;                // "" = detect; "utf-8", "gb18030" ("gbk", "gb2312"), "latin-1" ("iso-8859-1")
  HeaderMode header = HeaderMode::kAuto;
  size_t max_field_bytes = 1 << 20;    // longest accepted field
  size_t max_line_bytes = 16 << 20;    // longest accepted row (a quoted field may span lines)
  int num_threads = 0;                 // 0 = one per core (ImportOptions::num_threads wins when > 0)
  int zstd_level = 1;                  // column chunk compression (ImportOptions::zstd_level wins when != 1)
  size_t segment_bytes = 16 << 20;     // pass-1 work unit; smaller in tests to exercise segment joins
  // The widest vector instructions the row scanner may use (kAuto: the widest this CPU has; a level the CPU
  // lacks means the next one it has). For tests and benchmarks: every level gives the same result.
  enum class Simd : uint8_t { kAuto, kBaseline, kAvx2, kAvx512 };
  Simd simd = Simd::kAuto;
};

Result<ImportResult> ImportCsvFile(const std::string& input_path, const std::string& output_path,
                                   const CsvOptions& options, const ImportOptions& import, const ProgressFn& progress,
                                   const CancelFn& cancel);

// The same with default ImportOptions (no hints, bad rows fail the import).
Result<ImportResult> ImportCsvFile(const std::string& input_path, const std::string& output_path,
                                   const CsvOptions& options, const ProgressFn& progress, const CancelFn& cancel);

}  // namespace lathe
