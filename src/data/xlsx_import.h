// Excel import: reads one worksheet of an .xlsx workbook (Office Open XML, zip + XML) and writes a dataset
// file (dataset_file.h) with one typed column per sheet column.
//
// Reading: sheets are resolved through xl/workbook.xml and xl/_rels/workbook.xml.rels; shared strings
// (including rich-text runs, without phonetic runs), inline strings, booleans, numbers, formula cached
// values (t="str"; t="e" error cells such as #DIV/0! make their row bad), ISO dates (t="d"). Cells may come
// with gaps or without references; a missing cell is a missing value. Rows with no values are skipped.
// Numbers formatted as dates (built-in formats 14-22 and 45-47, or custom formats with y/m/d/h/s outside
// quotes and brackets, from xl/styles.xml) are converted from Excel serials — 1900 system with its
// 1900-02-29 bug, or the 1904 system when the workbook says so — to datetimes (UTC, millisecond precision).
//
// Header: `header_row` (1-based) holds the column names and rows above it are ignored; 0 means no header
// and columns are named column_1, column_2, .... Empty header cells become column_K (K = the sheet column
// number); repeated names get _2, _3 suffixes; columns right of the header that hold data are column_K.
// Types are inferred per column over all rows as for JSON (json_import.h): integers, floats (integer+float
// mix), booleans, datetimes (date cells and/or ISO date strings), else strings holding the cell text.
// ImportOptions hints, missing tokens and the bad-row policy apply as in import_options.h; bad rows are
// numbered by their sheet row ("row 7").
//
// Hostile input: entries whose uncompressed size exceeds max_uncompressed_bytes, or more than 16 MB with a
// compression ratio over 500:1, are refused (kInvalidArgument) and the bytes actually inflated are counted,
// so a lying header cannot get past the limit. Missing parts, XML errors (naming the part), a corrupt zip,
// a password-protected workbook ("password-protected workbooks are not supported") and an old binary .xls
// ("this is an .xls file; save it as .xlsx") are clear errors. The sheet is streamed: memory is the shared
// strings plus one row of XML plus one row group. On any error nothing exists at output_path (nor at the
// quarantine path). Thread-safe: independent imports may run concurrently; callbacks run on the calling
// thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "data/import_options.h"

namespace lathe {

struct XlsxOptions {
  std::string sheet;                                // sheet name (case-insensitive); empty = the first sheet
  int header_row = 1;                               // 1-based; 0 = no header, columns named column_1..
  uint64_t max_uncompressed_bytes = 2ull << 30;     // per zip entry
};

// The workbook's sheet names in workbook order.
Result<std::vector<std::string>> ListXlsxSheets(const std::string& path);

Result<ImportResult> ImportXlsxFile(const std::string& input_path, const std::string& output_path,
                                    const XlsxOptions& xlsx, const ImportOptions& import,
                                    const ProgressFn& progress, const CancelFn& cancel);

}  // namespace lathe
