#include "ml/batch_score.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <unordered_set>
#include <utility>

#include "data/lcol_format.h"
#include "data/table_ops.h"

namespace lathe::ml {
namespace {

// A column of n present values (filled in by the caller).
Column NewColumn(std::string name, ColumnType type, size_t n) {
  Column c = NullColumn(std::move(name), type, n);
  c.valid.assign(n, 1);
  return c;
}

// How the model's outputs become columns: names and types fixed once for the whole file.
struct OutputLayout {
  Task task = Task::kRegression;
  size_t width = 1;                  // floats per row from PredictRows
  bool int_labels = false;           // classification labels are all integers: "prediction" is an integer column
  std::vector<std::string> names;    // output column names, in order
  std::vector<ColumnType> types;
  std::vector<std::string> shap_columns;  // model input columns, when explaining
};

OutputLayout Layout(const Predictor& p, bool explain) {
  OutputLayout l;
  const FeaturePipeline& pipe = p.pipeline();
  l.task = pipe.task();
  l.width = p.OutputWidth();
  if (l.task == Task::kClustering) {
    l.names = {"cluster", "distance"};
    l.types = {ColumnType::kInt64, ColumnType::kFloat64};
  } else if (l.task == Task::kDecomposition) {
    for (size_t c = 0; c + 1 < l.width; ++c) {
      l.names.push_back("component_" + std::to_string(c + 1));
      l.types.push_back(ColumnType::kFloat64);
    }
    l.names.push_back("reconstruction_error");
    l.types.push_back(ColumnType::kFloat64);
  } else if (l.task == Task::kAnomaly) {
    l.names = {"anomaly_score", "is_anomaly"};
    l.types = {ColumnType::kFloat64, ColumnType::kBool};
  } else if (HasNumericTarget(l.task)) {
    l.names = {"prediction"};
    l.types = {ColumnType::kFloat64};
  } else {
    l.int_labels = std::all_of(pipe.labels().begin(), pipe.labels().end(),
                               [](const Json& v) { return v.is_number_integer(); });
    l.names = {"prediction"};
    l.types = {l.int_labels ? ColumnType::kInt64 : ColumnType::kString};
    if (l.task == Task::kBinary) {
      l.names.push_back("probability");
      l.types.push_back(ColumnType::kFloat64);
    } else {
      for (const auto& key : pipe.label_keys()) {
        l.names.push_back("probability_" + key);
        l.types.push_back(ColumnType::kFloat64);
      }
    }
  }
  if (explain) {
    l.shap_columns = p.ContributionColumns();
    for (const auto& c : l.shap_columns) {
      l.names.push_back("shap_" + c);
      l.types.push_back(ColumnType::kFloat64);
    }
    l.names.push_back("shap_bias");
    l.types.push_back(ColumnType::kFloat64);
  }
  return l;
}

// Appends the outputs of n rows to `table` as the layout's columns.
Status AppendOutputs(const Predictor& p, const OutputLayout& l, const float* out, const std::vector<double>* shap,
                     size_t n, Table& table) {
  const FeaturePipeline& pipe = p.pipeline();
  std::vector<Column> cols;
  cols.reserve(l.names.size());
  for (size_t k = 0; k < l.names.size(); ++k) cols.push_back(NewColumn(l.names[k], l.types[k], n));
  std::vector<size_t> predicted(n, 0);
  if (!IsSupervised(l.task)) {  // one column per output float, typed by the layout
    for (size_t i = 0; i < n; ++i) {
      const float* o = out + i * l.width;
      for (size_t k = 0; k < l.width; ++k) {
        Column& c = cols[k];
        if (c.type == ColumnType::kInt64) c.i64[i] = static_cast<int64_t>(o[k]);
        else if (c.type == ColumnType::kBool) c.b[i] = o[k] > 0.5f ? 1 : 0;
        else c.f64[i] = static_cast<double>(o[k]);
      }
    }
  } else if (HasNumericTarget(l.task)) {
    for (size_t i = 0; i < n; ++i) cols[0].f64[i] = static_cast<double>(out[i]);
  } else {
    for (size_t i = 0; i < n; ++i) {
      const float* o = out + i * l.width;
      if (l.task == Task::kBinary) {
        predicted[i] = o[0] >= 0.5f ? 1 : 0;
        cols[1].f64[i] = static_cast<double>(o[0]);
      } else {
        predicted[i] = static_cast<size_t>(std::max_element(o, o + l.width) - o);
        for (size_t c = 0; c < l.width; ++c) cols[1 + c].f64[i] = static_cast<double>(o[c]);
      }
    }
    Column& pred = cols[0];
    if (l.int_labels) {
      for (size_t i = 0; i < n; ++i) pred.i64[i] = pipe.labels()[predicted[i]].get<int64_t>();
    } else {
      pred.dict = pipe.label_keys();
      for (size_t i = 0; i < n; ++i) pred.codes[i] = static_cast<int32_t>(predicted[i]);
    }
  }
  if (shap != nullptr) {
    const size_t sc = l.shap_columns.size() + 1;  // + bias
    const size_t first = l.names.size() - sc;
    const size_t groups = l.task == Task::kMulticlass ? l.width : 1;
    for (size_t i = 0; i < n; ++i) {
      const double* v = shap->data() + (i * groups + (groups > 1 ? predicted[i] : 0)) * sc;
      for (size_t k = 0; k < sc; ++k) cols[first + k].f64[i] = v[k];
    }
  }
  for (auto& c : cols) table.columns.push_back(std::move(c));
  return Status::Ok();
}

}  // namespace

Result<BatchScoreSummary> ScoreDataset(const DatasetFile& input, const Predictor& predictor,
                                       const std::string& output_path, const BatchScoreOptions& options,
                                       const BatchProgress& progress) {
  if (options.explain && predictor.unsupervised()) {
    return Status::InvalidArgument("explain: SHAP values are defined for supervised models, not " +
                                   predictor.Task())
        .WithDetail(ErrorDetail::Field("explain", "not available for a " + predictor.Task() + " model"));
  }
  const OutputLayout layout = Layout(predictor, options.explain);
  const std::unordered_set<std::string> outputs(layout.names.begin(), layout.names.end());
  // The kept input columns, by index into the input file.
  std::vector<size_t> keep;
  const auto& in_cols = input.columns();
  if (options.keep_columns.empty()) {
    for (size_t c = 0; c < in_cols.size(); ++c) {
      if (!outputs.count(in_cols[c].name)) keep.push_back(c);
    }
  } else {
    for (const auto& name : options.keep_columns) {
      auto it = std::find_if(in_cols.begin(), in_cols.end(), [&](const ColumnInfo& c) { return c.name == name; });
      if (it == in_cols.end()) {
        return Status::InvalidArgument("keep_columns: the dataset has no column '" + name + "'")
            .WithDetail(ErrorDetail::Field("keep_columns", "no column '" + name + "'"));
      }
      if (!outputs.count(name)) keep.push_back(static_cast<size_t>(it - in_cols.begin()));
    }
  }
  std::vector<std::string> names;
  std::vector<ColumnType> types;
  for (size_t c : keep) {
    names.push_back(in_cols[c].name);
    types.push_back(in_cols[c].type);
  }
  names.insert(names.end(), layout.names.begin(), layout.names.end());
  types.insert(types.end(), layout.types.begin(), layout.types.end());

  ASSIGN_OR_RETURN(auto writer, DatasetWriter::Create(output_path, names));
  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t total = input.num_rows();
  // One row group per thread at a time — read, encode, predict, build the output — then appended in order.
  auto score_group = [&](int64_t offset) -> Result<Table> {
    ASSIGN_OR_RETURN(Table chunk, input.ReadRows(offset, kLcolRowsPerGroup));
    const auto n = static_cast<size_t>(chunk.num_rows);
    ASSIGN_OR_RETURN(std::vector<float> rows, predictor.EncodeTable(chunk));
    std::vector<float> out(n * layout.width);
    predictor.PredictRows(rows.data(), n, out.data());
    std::vector<double> shap;
    if (options.explain) {
      ASSIGN_OR_RETURN(shap, predictor.ColumnContributions(rows.data(), n));
    }
    Table result;
    result.num_rows = chunk.num_rows;
    for (size_t c : keep) result.columns.push_back(std::move(chunk.columns[c]));
    RETURN_IF_ERROR(AppendOutputs(predictor, layout, out.data(), options.explain ? &shap : nullptr, n, result));
    return result;
  };
  const int64_t step = kLcolRowsPerGroup * threads;
  for (int64_t offset = 0; offset < total; offset += step) {
    std::vector<Result<Table>> results;
    std::vector<int64_t> offsets;
    for (int64_t o = offset; o < std::min(total, offset + step); o += kLcolRowsPerGroup) offsets.push_back(o);
    results.reserve(offsets.size());
    for (size_t k = 0; k < offsets.size(); ++k) results.emplace_back(Status::Internal("not scored"));
    std::vector<std::thread> pool;
    for (size_t k = 1; k < offsets.size(); ++k) {
      pool.emplace_back([&, k] { results[k] = score_group(offsets[k]); });
    }
    results[0] = score_group(offsets[0]);
    for (auto& t : pool) t.join();
    for (size_t k = 0; k < offsets.size(); ++k) {
      if (!results[k].ok()) return results[k].status();
      RETURN_IF_ERROR(writer->AppendTable(*results[k]));
      const int64_t done = offsets[k] + results[k]->num_rows;
      if (progress && !progress(done, total)) {
        return Status::Cancelled("batch scoring cancelled after " + std::to_string(done) + " rows");
      }
    }
  }
  RETURN_IF_ERROR(writer->Finish(types).status());
  return BatchScoreSummary{total, layout.names};
}

}  // namespace lathe::ml
