// Streamed export of tables and dataset files as CSV or JSON Lines.
//
// ExportDataset decodes one row group at a time and hands the text to `sink` in chunks of about 1 MiB, so
// memory stays at one row group plus one chunk whatever the dataset size. A sink error or cancellation
// (kCancelled, polled before each row group) stops the export and is returned; what was already handed to
// the sink stays there (the caller owns partial output). Thread-safe: concurrent exports are independent.
//
// CSV (RFC 4180): a header row, ',' delimiter, CRLF-free "\n" line ends; a field is quoted ("" inside) when
// it contains the delimiter, a quote, CR or LF, or starts or ends with a space or tab. Missing -> empty
// field; integers in decimal; floats in the shortest text that round-trips (std::to_chars), "inf"/"-inf",
// and NaN as "NaN" (which lathe's importer reads back as missing); booleans true/false; datetimes RFC 3339
// (value_parse.h). Strings are written as they are (no formula escaping).
// JSONL: one object per row, keys in column order; missing and non-finite floats -> null; datetimes as
// RFC 3339 strings; invalid UTF-8 in strings is replaced by U+FFFD.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "data/dataset_file.h"
#include "data/table.h"

namespace lathe {

enum class ExportFormat { kCsv, kJsonl };

const char* ExportFormatName(ExportFormat f);          // "csv", "jsonl"
Result<ExportFormat> ParseExportFormat(std::string_view name);  // csv, jsonl (or ndjson)
const char* ExportContentType(ExportFormat f);         // "text/csv; charset=utf-8", "application/x-ndjson"

using ExportSink = std::function<Status(std::string_view chunk)>;

Status ExportDataset(const DatasetFile& f, ExportFormat format, const ExportSink& sink,
                     const std::function<bool()>& cancel);
Status ExportTable(const Table& t, ExportFormat format, const ExportSink& sink);

}  // namespace lathe
