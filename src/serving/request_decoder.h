// DecodeRequestRows: the fast path of a prediction request — the body's instances decoded with simdjson
// On-Demand straight into a pipeline's dense feature rows, with no JSON DOM in between.
//
// It takes the common, well-formed request and nothing else. A body it cannot decode with certainty it
// declines (returns false) and the caller takes the DOM path (nlohmann parse + FeaturePipeline::
// EncodeInstanceInto), which gives the same rows for the same input and phrases the precise error for bad
// input. So the fast path never has to word an error, and it cannot accept anything the DOM path rejects:
// tests/unit/ml/request_decoder_test.cc checks both paths give bit-identical rows, and that every body the DOM
// path rejects is declined here.
//
// Accepted bodies (`shape`):
//   kNative: {"instances": [{...}, ...]} (or "dataframe_records" / "inputs" holding records), {"dataframe_split":
//            {"columns": [...], "data": [[...], ...]}}, or "columns" + "data" at the top level;
//   kMlflow: the same except top-level columns + data.
// Declined: any other top-level key, more than one way of giving instances, "columns" after "data", a
// duplicate field or column, a value of the wrong type or shape, a nested value for an ignored field, a missing
// field (unless the policy makes it null), an unknown field (unless the policy ignores it), an unseen category
// (when the policy rejects it), integers beyond 64 bits, an empty list or more than max_rows rows, trailing
// content — and every body that is not valid JSON.
//
// Thread safety: uses a thread_local parser and buffer; safe to call from any number of threads.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "ml/pipeline.h"

namespace lathe {

enum class RequestShape { kNative, kMlflow };

// On true, `rows` holds *n rows of p.NumFeatures() floats, and when the body gave records (not the split
// form) and `records` is not null, *records is their JSON array's span in `body` (validated JSON, as sent).
// On false, the outputs are unspecified.
struct TextSpan {
  size_t begin = 0, end = 0;  // [begin, end) in the body; empty when begin == end
};
bool DecodeRequestRows(std::string_view body, RequestShape shape, const ml::FeaturePipeline& p,
                       const ml::FeaturePipeline::InputPolicy& policy, size_t max_rows, std::vector<float>* rows,
                       size_t* n, TextSpan* records = nullptr);

}  // namespace lathe
