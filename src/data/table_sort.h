// Browsing helpers over tables and dataset files: sort a table by columns, take rows by index, and draw a
// uniform random sample of rows from a dataset file without reading it whole.
//
// All functions are pure (inputs are not modified) and thread-safe for distinct outputs. Errors are
// kInvalidArgument naming the offending column or row (ErrorDetail::Column / ::Field); kDataLoss comes from
// DatasetFile::ReadRows on a corrupt file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "data/dataset_file.h"
#include "data/table.h"

namespace lathe {

struct SortKey {
  std::string column;
  bool descending = false;
};

// Stable sort by `keys` (first key most significant). Missing values sort last in both directions; NaN
// sorts after every number but before missing; strings compare by bytes; false < true. An empty key list
// returns the table unchanged. Strings keep the original dictionary (codes are permuted with the rows).
Result<Table> SortTable(const Table& t, const std::vector<SortKey>& keys);

// The rows of `t` at the given indices, in that order (indices may repeat). kInvalidArgument if an index
// is out of [0, num_rows). String columns keep only the dictionary entries that the chosen rows use.
Result<Table> GatherRows(const Table& t, const std::vector<int64_t>& rows);

// A uniform sample of min(n, rows) distinct rows (every subset of that size equally likely), returned in
// file order. Reservoir sampling (Algorithm L) decides which rows to keep without decoding anything; then only
// the row groups that hold a chosen row are decoded, one at a time, so memory stays at one row group plus
// the sample. Deterministic for a given `seed`. kInvalidArgument for n < 0.
Result<Table> SampleRows(const DatasetFile& f, int64_t n, uint64_t seed);

}  // namespace lathe
