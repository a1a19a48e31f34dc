// JSON import: reads JSON Lines (one object per line) or one top-level JSON array of objects and writes a
// dataset file (dataset_file.h) with one typed column per (flattened) key.
//
// Layout: kAuto reads a file whose first non-blank byte (after an optional UTF-8 BOM) is '[' as an array,
// anything else as JSON Lines. JSON Lines: blank lines are skipped, LF or CRLF. Input must be UTF-8.
//
// Columns: nested objects are flattened to dotted names ("a.b.c"; an empty object adds nothing); arrays are
// kept as their compact JSON text in a string column; columns are ordered by first appearance; a key missing
// from a record, and null, are missing values. Types per column over ALL good rows: integers -> integer
// (beyond int64 -> float), any float -> float (integer+float -> float), true/false -> boolean, strings ->
// string, or datetime when every string parses as an ISO 8601 date/datetime (value_parse.h). Any other mix
// -> string, holding the JSON text of the non-string values. A column with no values is string. String
// values that are missing tokens (ImportOptions hints.missing_tokens, else value_parse.h's spellings, and
// the empty string) are missing. Hints (import_options.h) force types — a forced column also accepts
// strings that parse as its type, integral floats for integer, 0/1 for boolean — or give date formats.
//
// Bad rows (handled per ImportOptions::bad_rows): malformed JSON, a record that is not an object, nesting
// deeper than max_depth, a record over max_record_bytes, duplicate keys (also "a.b" next to {"a":{"b":..}}),
// an empty key, a number out of double range, a value breaking a hint. They are numbered by physical line
// for JSON Lines and by 1-based element index ("record N") for arrays. File-level errors fail the import
// whatever the policy: an empty file or empty array, an array that is not closed, content after the array,
// more than max_columns columns, a hint naming no column, no good rows at all.
//
// Memory is bounded for any input size: the file is read in blocks with pread (about max_record_bytes plus
// 8 MB of buffer), each record is parsed on its own with simdjson, and typed values are held for one row
// group. Two passes: pass 1 discovers columns and types and applies the bad-row policy, pass 2 writes.
// Errors are kInvalidArgument with an ErrorDetail (line, or line + column). kCancelled if `cancel` returns
// true. On any error nothing exists at output_path (nor at the quarantine path). Thread-safe: independent
// imports may run concurrently; callbacks run on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "data/import_options.h"

namespace lathe {

enum class JsonLayout : uint8_t { kAuto, kLines, kArray };

struct JsonImportOptions {
  JsonLayout layout = JsonLayout::kAuto;
  size_t max_depth = 64;               // nesting of objects/arrays in one record, the record itself is 1
  size_t max_record_bytes = 16 << 20;  // longest accepted line / array element
  size_t max_columns = 10000;          // distinct flattened keys
};

Result<ImportResult> ImportJsonFile(const std::string& input_path, const std::string& output_path,
                                    const JsonImportOptions& json, const ImportOptions& import,
                                    const ProgressFn& progress, const CancelFn& cancel);

}  // namespace lathe
