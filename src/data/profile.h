// Dataset profiling: one streaming pass over a dataset file (row group by row group) that summarises every
// column, finds duplicate rows, measures pairwise association and raises warnings a data scientist should see
// before training (constant columns, identifiers, heavy missingness, duplicates, collinearity, target leakage,
// class imbalance).
//
// Guarantees
//  - Memory is bounded for any row count: one decoded row group (at most 65536 rows; a dataset file is read
//    by its stored row groups, in place) per worker thread plus fixed-size summaries per column (exact value
//    counts up to `exact_distinct_limit` distinct values — sorted runs, or for integer and decimal-float
//    columns whose footer range spans at most min(2^20, 8 * exact_distinct_limit + 1024) values a
//    direct-address table of that many 32-bit counters — then a HyperLogLog, a quantile sketch and a
//    frequent-items sketch — sketches.h) and a duplicate-row hash set of at most 2^20 entries (then a
//    hash-sampled estimate).
//  - Row groups are processed in parallel (`num_threads`, 0 = one per core); results do not depend on the
//    thread count except for approximate (sketch) figures, which may differ slightly.
//  - Errors: kDataLoss if the file is corrupt (from DatasetFile::ReadRows), kInvalidArgument if `target`
//    names no column or an option is out of range, kCancelled if `cancel` (may be empty) returns true; it is
//    polled on the calling thread only, before each row group that thread takes. Thread-safe: any number of profiles may run concurrently on one DatasetFile.
//
// Exactness. count/missing/min/max/mean/std/zeros/negatives/string lengths are exact (mean/std in double
// precision, over finite values). distinct, top values, quantiles and numeric histograms are exact while the
// column has at most `exact_distinct_limit` distinct values; above that: distinct is a HyperLogLog estimate
// (0.8 % standard error, "distinct_approximate": true), top values come from a Misra-Gries sketch
// ("top_values_approximate": true, each count is a lower bound, at most "top_values_max_error" below the true
// count), and quantiles/histograms come from a quantile sketch with k = 2048 (rank error typically < 0.1 % of
// the count; "quantiles_approximate": true); from then on the top values and quantiles see a deterministic
// 1-in-4 sample of each row group's values (by a hash of the position; weighted up, histogram bins rescaled to
// the exact count). How exact counts are kept (sorting, counting tables, the storage's decimal mantissas and
// datetime steps) never changes a result. Quantiles in exact mode use linear interpolation between order
// statistics (numpy's default). NaN is excluded from numeric statistics and counted in "nan"; +-inf take part
// in min/max/quantiles but not in mean/std/histogram ("infinite" counts them).
//
// JSON shape (every key present unless marked optional):
// {
//   "rows": N, "num_columns": C, "file_bytes": B, "memory_bytes_estimate": M,
//   "duplicate_rows": D,              // rows equal to an earlier row (64-bit row hashes; collisions ~N^2/2^65)
//   "duplicate_rows_approximate": bool,  // true above 2^20 distinct rows: estimated from a hash sample
//   "target": "name" | null,
//   "columns": [{
//     "name", "type" ("integer"|"float"|"boolean"|"string"|"datetime"),
//     "count" (non-missing), "missing", "missing_fraction", "distinct", "distinct_approximate",
//     "top_values": [{"value", "count"}], "top_values_approximate", "top_values_max_error",
//     "semantic_kinds": ["identifier"|"constant"|"near_constant"|"email"|"phone"|"id_card"|"url"|
//                        "free_text"|"high_cardinality"|"boolean_like", ...],
//     // integer / float / datetime / boolean (booleans as 0/1; datetimes: min/max/mean/quantiles/bin edges
//     // are RFC 3339 strings and std is in seconds):
//     "min", "max", "mean", "std" (sample, n-1), "zeros", "negatives",
//     "quantiles": {"p1","p5","p25","p50","p75","p95","p99"}, "quantiles_approximate",
//     // float only: "nan", "infinite"
//     "histogram": {"kind":"equal_width", "bins":[{"lo","hi","count"}], "approximate"}  (not for booleans;
//         integers with a small range get one bin per value; bins cover finite values only),
//     // string:
//     "length": {"min","mean","max"} (bytes),
//     "histogram": {"kind":"top_values", "bins":[{"value","count"}], "other": count}
//   }],
//   "correlations": {
//     "pearson": {"columns": [...], "pairs": [{"columns":[a,b], "value": r, "n": rows}], "matrix": [[...]],
//                 "sampled": bool (see ProfileOptions::correlation_exact_rows; n then counts sampled rows)},
//     "cramers_v": {"columns": [...], "pairs": [{"columns":[a,b], "value": v, "n": rows}], "matrix": [[...]]}
//   },
//   "warnings": [{"kind", "columns": [...], "message"}]
// }
// Pearson: integer and float columns, pairwise-complete rows (both finite), at most max_correlation_columns
// columns (the ones with the largest variance; the target is always included). Cramér's V (no bias
// correction): string columns with at most 50 distinct values and boolean columns (and an integer target with
// at most 50 values), at most 30 columns. "pairs" lists every pair with |value| >= 0.1, strongest first;
// "matrix" (row/column order of "columns", null where undefined) is present only for <= 20 columns.
// Warning kinds: "constant", "near_constant", "identifier", "high_missing" (> 50 %), "duplicate_rows",
// "high_correlation" (|r| >= 0.95 or V >= 0.95), "target_leakage" (|r| >= 0.98 or V >= 0.98 with the target,
// or identical values), "class_imbalance" (target with <= 50 classes whose smallest class is < 10 %).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "data/dataset_file.h"
#include "data/table.h"

namespace lathe {

struct ProfileOptions {
  std::string target;                    // optional column to check leakage and class balance against
  int64_t exact_distinct_limit = 100000; // distinct values counted exactly per column (then sketches)
  int top_k = 10;                        // top values per column
  int histogram_bins = 20;               // equal-width bins (numeric) / top values shown (string)
  int max_correlation_columns = 50;      // Pearson columns (largest variance first)
  // Above this many rows, Pearson sums use a deterministic 1-in-4 sample of the rows (by a hash of the row's
  // position in its group): the standard error of r is then still below 0.004 (1 / sqrt(65536)), while
  // the cost, quadratic in the columns, drops 4x. "pearson.sampled" says when it happened.
  int64_t correlation_exact_rows = 262144;
  int num_threads = 0;                   // 0 = one per core
  // Exact counts of integer and decimal columns with a narrow value range use direct-address tables (up to
  // 4 MiB per column per thread); all of them together stay under this, the rest use sorted runs.
  int64_t max_dense_table_bytes = int64_t{256} << 20;
};

Result<Json> ProfileDataset(const DatasetFile& file, const ProfileOptions& options,
                            const std::function<bool()>& cancel);

// The same profile of an in-memory table (processed in slices of 65536 rows). "file_bytes" is 0.
Result<Json> ProfileTable(const Table& table, const ProfileOptions& options, const std::function<bool()>& cancel);

}  // namespace lathe
