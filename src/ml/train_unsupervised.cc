// Training of the unsupervised learners (k-means, PCA, isolation forest); see ml/train.h.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "ml/design.h"
#include "ml/learner_registry.h"
#include "ml/train.h"
#include "ml/unsupervised.h"

namespace lathe::ml {
namespace {

constexpr size_t kMaxLevels = 32;    // one-hot columns per categorical feature
constexpr size_t kMaxTerms = 2000;   // design columns in all

Status FieldError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

// Evenly strided positions: all of [0, n) when m >= n.
std::vector<size_t> Strided(size_t n, size_t m) {
  std::vector<size_t> out;
  if (m >= n) {
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  out.reserve(m);
  for (size_t i = 0; i < m; ++i) out.push_back(i * n / m);
  return out;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct Design {
  std::vector<DesignTerm> terms;
  void Row(const float* row, double* out) const {
    for (size_t t = 0; t < terms.size(); ++t) out[t] = DesignValue(terms[t], row);
  }
};

}  // namespace

Result<TrainOutput> TrainUnsupervised(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                                      const TrainCancelFn& cancel) {
  try {
    const auto start = std::chrono::steady_clock::now();
    auto report = [&](double fraction, const std::string& message) {
      if (progress) progress(fraction, message);
    };
    auto cancelled = [&] { return cancel && cancel(); };
    ASSIGN_OR_RETURN(const Task task, ParseTask(spec.task, "task"));
    const LearnerInfo* learner = FindLearner(spec.learner);
    if (learner == nullptr) return FieldError("learner", "unknown learner '" + spec.learner + "'");
    if (std::find(learner->tasks.begin(), learner->tasks.end(), task) == learner->tasks.end()) {
      return FieldError("task", "learner " + learner->name + " does not support task " + spec.task);
    }
    ASSIGN_OR_RETURN(Json params, ValidateParams(*learner, spec.params, task));
    if (spec.nthread < 0) return FieldError("nthread", "must be >= 0 (0 = all cores)");
    if (table.num_rows < kUnsupervisedMinRows) {
      return Status::InvalidArgument("the dataset has " + std::to_string(table.num_rows) + " rows; " +
                                     learner->name + " needs at least " + std::to_string(kUnsupervisedMinRows));
    }
    ASSIGN_OR_RETURN(FeaturePipeline pipe, FeaturePipeline::Fit(table, spec.target, task));
    if (pipe.NumFeatures() == 0) {
      return Status::InvalidArgument("no usable feature column (every column is missing, an identifier or the "
                                     "target)");
    }
    ASSIGN_OR_RETURN(std::vector<float> rows, pipe.TransformTable(table));
    const auto n = static_cast<size_t>(table.num_rows);
    const size_t width = pipe.NumFeatures();
    Design design;
    design.terms = FitDesignTerms(rows.data(), n, pipe.feature_types(), kMaxLevels);
    if (design.terms.empty()) return Status::FailedPrecondition("no feature column varies: there is nothing to learn");
    const size_t p = design.terms.size();
    if (p > kMaxTerms) {
      return Status::FailedPrecondition("the features expand to " + std::to_string(p) + " design columns (limit " +
                                        std::to_string(kMaxTerms) + "); drop some columns");
    }
    // The rows the model is fit on: all, or an evenly strided sample for large tables.
    const std::vector<size_t> fit_pos = Strided(n, std::max<size_t>(1000, kUnsupervisedFitCells / p));
    const size_t m = fit_pos.size();
    std::vector<double> x(m * p);
    for (size_t i = 0; i < m; ++i) design.Row(&rows[fit_pos[i] * width], &x[i * p]);
    report(0.1, "encoded " + std::to_string(p) + " design columns of " + std::to_string(m) + " rows");
    if (cancelled()) return Status(StatusCode::kCancelled, "training cancelled");

    const uint64_t seed = spec.split.seed;
    Json metrics = Json::object(), curves = Json::object(), model_json;
    // Design terms of table row i: the fit matrix's row when every row was fit, else computed here.
    std::vector<double> design_row(p);
    auto design_of = [&](size_t i) -> const double* {
      if (m == n) return &x[i * p];
      design.Row(&rows[i * width], design_row.data());
      return design_row.data();
    };
    switch (task) {
      case Task::kClustering: {
        KMeansOptions o;
        o.n_clusters = params["n_clusters"].get<int>();
        o.n_init = params["n_init"].get<int>();
        o.max_iter = params["max_iter"].get<int>();
        o.tol = params["tol"].get<double>();
        o.seed = seed;
        const int k_min = params["min_clusters"].get<int>(), k_max = params["max_clusters"].get<int>();
        auto fit = [&]() -> Result<KMeansModel> {
          if (o.n_clusters != 0) {
            if (static_cast<size_t>(o.n_clusters) > m) {
              return FieldError("params.n_clusters", "must be at most the number of rows (" + std::to_string(m) + ")");
            }
            report(0.2, "fitting " + std::to_string(o.n_clusters) + " clusters");
            return KMeansModel::Fit(x.data(), m, p, o);
          }
          if (k_min > k_max) return FieldError("params.min_clusters", "must be at most max_clusters");
          const int top = static_cast<int>(std::min<size_t>(static_cast<size_t>(k_max), m - 1));
          if (top < k_min) {
            return FieldError("params.min_clusters", "the dataset has too few rows (" + std::to_string(m) + ") for " +
                                                         std::to_string(k_min) + " clusters");
          }
          report(0.2, "choosing k in [" + std::to_string(k_min) + ", " + std::to_string(top) + "] by silhouette");
          Json curve;
          auto model = KMeansModel::FitAuto(x.data(), m, p, k_min, top, o, &curve);
          curves["elbow"] = std::move(curve);
          return model;
        };
        ASSIGN_OR_RETURN(KMeansModel model, fit());
        if (cancelled()) return Status(StatusCode::kCancelled, "training cancelled");
        report(0.8, "measuring the clusters");
        const int k = model.n_clusters();
        std::vector<int> fit_labels(m);
        for (size_t i = 0; i < m; ++i) fit_labels[i] = model.Assign(&x[i * p], nullptr);
        std::vector<int64_t> sizes(static_cast<size_t>(k), 0);
        for (size_t i = 0; i < n; ++i) ++sizes[static_cast<size_t>(model.Assign(design_of(i), nullptr))];
        // Undefined (fewer than two clusters in the sample, say) is null, as for the supervised metrics.
        auto value = [](const Result<double>& r) { return r.ok() ? Json(*r) : Json(nullptr); };
        metrics = {{"n_clusters", k},
                   {"inertia", model.inertia()},
                   {"silhouette", value(Silhouette(x.data(), m, p, fit_labels, k, 2000, seed))},
                   {"davies_bouldin", value(DaviesBouldin(x.data(), m, p, fit_labels, k))},
                   {"cluster_sizes", sizes}};
        model_json = model.ToJson();
        break;
      }
      case Task::kDecomposition: {
        PcaOptions o;
        o.n_components = params["n_components"].get<int>();
        o.variance_target = params["variance_target"].get<double>();
        if (static_cast<size_t>(o.n_components) > std::min(m, p)) {
          return FieldError("params.n_components", "must be at most min(rows, design columns) = " +
                                                       std::to_string(std::min(m, p)));
        }
        report(0.2, "decomposing " + std::to_string(p) + " design columns");
        ASSIGN_OR_RETURN(PcaModel model, PcaModel::Fit(x.data(), m, p, o));
        if (cancelled()) return Status(StatusCode::kCancelled, "training cancelled");
        report(0.8, "measuring the reconstruction");
        double err = 0;
        for (size_t i = 0; i < n; ++i) err += model.ReconstructionError(design_of(i));
        const std::vector<double>& ratio = model.explained_variance_ratio();
        std::vector<double> cumulative(ratio.size());
        double acc = 0;
        for (size_t c = 0; c < ratio.size(); ++c) cumulative[c] = acc += ratio[c];
        metrics = {{"n_components", model.n_components()},
                   {"design_columns", p},
                   {"explained_variance_ratio", ratio},
                   {"cumulative_variance", acc},
                   {"reconstruction_error", err / static_cast<double>(n)}};
        curves["scree"] = {{"explained_variance_ratio", ratio}, {"cumulative", cumulative}};
        model_json = model.ToJson();
        break;
      }
      case Task::kAnomaly: {
        IsolationForestOptions o;
        o.n_trees = params["n_estimators"].get<int>();
        o.sample_size = params["max_samples"].get<int>();
        o.contamination = params["contamination"].get<double>();
        o.seed = seed;
        report(0.2, "growing " + std::to_string(o.n_trees) + " isolation trees");
        ASSIGN_OR_RETURN(IsolationForest model, IsolationForest::Fit(x.data(), m, p, o));
        if (cancelled()) return Status(StatusCode::kCancelled, "training cancelled");
        report(0.8, "scoring the rows");
        std::vector<double> scores(n);
        int64_t anomalies = 0;
        for (size_t i = 0; i < n; ++i) {
          scores[i] = model.Score(design_of(i));
          anomalies += scores[i] > model.threshold() ? 1 : 0;
        }
        constexpr int kBins = 20;
        std::vector<int64_t> counts(kBins, 0);
        std::vector<double> edges(kBins + 1);
        for (int b = 0; b <= kBins; ++b) edges[static_cast<size_t>(b)] = static_cast<double>(b) / kBins;
        for (double s : scores) ++counts[static_cast<size_t>(std::clamp(static_cast<int>(s * kBins), 0, kBins - 1))];
        metrics = {{"threshold", model.threshold()},
                   {"anomalies", anomalies},
                   {"anomaly_share", static_cast<double>(anomalies) / static_cast<double>(n)},
                   {"score_p50", Quantile(scores, 0.5)},
                   {"score_p90", Quantile(scores, 0.9)},
                   {"score_p99", Quantile(scores, 0.99)},
                   {"score_max", *std::max_element(scores.begin(), scores.end())}};
        curves["score_histogram"] = {{"edges", edges}, {"counts", counts}, {"threshold", model.threshold()}};
        model_json = model.ToJson();
        break;
      }
      case Task::kBinary:
      case Task::kMulticlass:
      case Task::kRegression:
      case Task::kRanking:
        return FieldError("task", std::string(TaskName(task)) + " is a supervised task");
    }
    metrics["train_rows"] = static_cast<int64_t>(n);
    metrics["fit_rows"] = static_cast<int64_t>(m);
    metrics["test_rows"] = 0;
    metrics["split"] = {{"method", "none"},
                        {"note", "unsupervised: fit and measured on the training rows"}};
    const Json booster = {{"terms", DesignTermsJson(design.terms)}, {"model", std::move(model_json)}};
    TrainOutput result =
        internal::Package(spec, pipe, task, learner->name, params, booster.dump(), "unsupervised");
    result.metrics = std::move(metrics);
    result.curves = std::move(curves);
    result.explanations = Json::object();
    result.params = std::move(params);
    result.train_rows = static_cast<int64_t>(n);
    result.test_rows = 0;
    result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report(1.0, "done");
    return result;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while training");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training failed: ") + e.what());
  }
}

}  // namespace lathe::ml
