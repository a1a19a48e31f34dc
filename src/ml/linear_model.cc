#include "ml/linear_model.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace lathe::ml {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

Status Bad(const std::string& what) { return Status::InvalidArgument("linear model: " + what); }
// The data cannot be fitted (a trial fails; a search goes on).
Status Unfit(const std::string& what) { return Status::FailedPrecondition("linear model: " + what); }

double Softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

}  // namespace

Result<LinearModel> LinearModel::Fit(const float* rows, size_t n, const std::vector<std::string>& types,
                                     const std::vector<float>& y, const std::vector<float>& w, Kind kind,
                                     int classes, const Options& options) {
  if (n == 0) return Unfit("no training rows");
  if (y.size() != n || (!w.empty() && w.size() != n)) return Bad("labels or weights do not match the rows");
  if (!(options.alpha >= 0) || !std::isfinite(options.alpha)) return Bad("alpha must be >= 0");
  LinearModel m;
  m.width_ = types.size();
  m.outputs_ = kind == Kind::kMulticlass ? classes : 1;
  if (kind == Kind::kMulticlass && classes < 2) return Bad("multiclass needs at least two classes");
  const size_t width = m.width_;
  m.terms_ = FitDesignTerms(rows, n, types, kMaxLevels);
  const size_t p = m.terms_.size();
  if (p > kMaxTerms) return Unfit("more than " + std::to_string(kMaxTerms) + " terms");
  const size_t k = static_cast<size_t>(m.outputs_);
  if (kind == Kind::kMulticlass && k * (p + 1) > kMaxTerms) {
    return Status::FailedPrecondition("linear model: classes x terms exceed " + std::to_string(kMaxTerms));
  }
  MatrixXd X(n, p + 1);
  for (size_t i = 0; i < n; ++i) {
    const float* row = rows + i * width;
    for (size_t t = 0; t < p; ++t) X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(t)) = DesignValue(m.terms_[t], row);
    X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(p)) = 1.0;
  }
  VectorXd wt(n);
  for (size_t i = 0; i < n; ++i) wt(static_cast<Eigen::Index>(i)) = w.empty() ? 1.0 : static_cast<double>(w[i]);
  const double wsum = wt.sum();
  if (!(wsum > 0)) return Unfit("the row weights sum to zero");
  for (size_t t = 0; t < p; ++t) {
    const auto col = X.col(static_cast<Eigen::Index>(t));
    const double c = col.dot(wt) / wsum;
    const double var = (col.array() - c).square().matrix().dot(wt) / wsum;
    m.terms_[t].center = c;
    m.terms_[t].spread = std::sqrt(std::max(0.0, var));
  }
  const auto P = static_cast<Eigen::Index>(p);
  VectorXd penalty = VectorXd::Constant(P + 1, options.alpha);
  penalty(P) = 0;  // intercept

  if (kind == Kind::kRegression) {
    VectorXd yv(n);
    for (size_t i = 0; i < n; ++i) yv(static_cast<Eigen::Index>(i)) = y[i];
    MatrixXd A = X.transpose() * wt.asDiagonal() * X;
    A.diagonal() += penalty;
    A(P, P) += 1e-12 * wsum;
    const VectorXd b = X.transpose() * (wt.asDiagonal() * yv);
    const VectorXd theta = A.ldlt().solve(b);
    if (!theta.allFinite()) return Status::FailedPrecondition("linear model: the fit did not converge");
    m.coef_.assign(theta.data(), theta.data() + P);
    m.intercept_ = {theta(P)};
    return m;
  }

  // Logistic (binary: one output; multinomial: k outputs), Newton with step halving.
  const auto K = static_cast<Eigen::Index>(k);
  const Eigen::Index D = P + 1;
  VectorXd theta = VectorXd::Zero(K * D);
  auto loss_of = [&](const VectorXd& th, MatrixXd* probs) {
    double loss = 0;
    const MatrixXd Z = X * Eigen::Map<const MatrixXd>(th.data(), D, K);  // n x K
    if (probs) probs->resize(static_cast<Eigen::Index>(n), K);
    for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(n); ++i) {
      const auto yi = static_cast<Eigen::Index>(y[static_cast<size_t>(i)]);
      if (kind == Kind::kBinary) {
        const double z = Z(i, 0);
        loss += wt(i) * (yi == 1 ? Softplus(-z) : Softplus(z));
        if (probs) (*probs)(i, 0) = 1.0 / (1.0 + std::exp(-z));
      } else {
        const double top = Z.row(i).maxCoeff();
        double total = 0;
        for (Eigen::Index c = 0; c < K; ++c) total += std::exp(Z(i, c) - top);
        loss += wt(i) * (std::log(total) + top - Z(i, yi));
        if (probs) {
          for (Eigen::Index c = 0; c < K; ++c) (*probs)(i, c) = std::exp(Z(i, c) - top) / total;
        }
      }
    }
    for (Eigen::Index c = 0; c < K; ++c) {
      loss += 0.5 * options.alpha * th.segment(c * D, P).squaredNorm();
    }
    return loss;
  };
  MatrixXd probs;
  double loss = loss_of(theta, &probs);
  for (int iter = 0; iter < options.max_iter; ++iter) {
    VectorXd grad(K * D);
    MatrixXd H(K * D, K * D);
    for (Eigen::Index c = 0; c < K; ++c) {
      VectorXd r(n);
      for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(n); ++i) {
        const auto yi = static_cast<Eigen::Index>(y[static_cast<size_t>(i)]);
        const double target = kind == Kind::kBinary ? (yi == 1 ? 1.0 : 0.0) : (yi == c ? 1.0 : 0.0);
        r(i) = wt(i) * (probs(i, c) - target);
      }
      grad.segment(c * D, D) = X.transpose() * r + penalty.cwiseProduct(theta.segment(c * D, D));
      for (Eigen::Index c2 = c; c2 < K; ++c2) {
        VectorXd s(n);
        for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(n); ++i) {
          s(i) = wt(i) * probs(i, c) * ((c == c2 ? 1.0 : 0.0) - probs(i, c2));
        }
        const MatrixXd block = X.transpose() * s.asDiagonal() * X;
        H.block(c * D, c2 * D, D, D) = block;
        if (c2 != c) H.block(c2 * D, c * D, D, D) = block.transpose();
      }
      H.block(c * D, c * D, D, D).diagonal() += penalty;
      H(c * D + P, c * D + P) += 1e-9 * wsum;  // the softmax intercepts are only defined up to a shift
    }
    const VectorXd step = H.ldlt().solve(grad);
    if (!step.allFinite()) break;
    double scale = 1.0;
    bool improved = false;
    for (int halving = 0; halving < 30; ++halving) {
      const VectorXd next = theta - scale * step;
      MatrixXd next_probs;
      const double next_loss = loss_of(next, &next_probs);
      if (std::isfinite(next_loss) && next_loss <= loss) {
        const double gain = loss - next_loss;
        theta = next;
        probs = std::move(next_probs);
        improved = gain > 1e-9 * std::max(1.0, std::fabs(loss));
        loss = next_loss;
        break;
      }
      scale *= 0.5;
    }
    if (!improved) break;
  }
  if (!theta.allFinite()) return Status::FailedPrecondition("linear model: the fit did not converge");
  m.coef_.resize(k * p);
  m.intercept_.resize(k);
  for (size_t c = 0; c < k; ++c) {
    for (size_t t = 0; t < p; ++t) m.coef_[c * p + t] = theta(static_cast<Eigen::Index>(c * (p + 1) + t));
    m.intercept_[c] = theta(static_cast<Eigen::Index>(c * (p + 1) + p));
  }
  return m;
}

void LinearModel::Margin(const float* row, float* out) const {
  const size_t p = terms_.size();
  std::vector<double> acc(static_cast<size_t>(outputs_));
  for (size_t c = 0; c < acc.size(); ++c) acc[c] = intercept_[c];
  for (size_t t = 0; t < p; ++t) {
    const double v = DesignValue(terms_[t], row);
    if (v == 0) continue;
    for (size_t c = 0; c < acc.size(); ++c) acc[c] += coef_[c * p + t] * v;
  }
  for (size_t c = 0; c < acc.size(); ++c) out[c] = static_cast<float>(acc[c]);
}

void LinearModel::Scale(double factor) {
  for (double& v : coef_) v *= factor;
  for (double& v : intercept_) v *= factor;
}

bool LinearModel::SameTerm(const Term& a, const Term& b) {
  return a.feature == b.feature && a.kind == b.kind && a.code == b.code && a.mean == b.mean && a.scale == b.scale;
}

Status LinearModel::Add(const LinearModel& other) {
  if (other.width_ != width_ || other.outputs_ != outputs_ || other.terms_.size() != terms_.size()) {
    return Bad("blended linear models differ in shape");
  }
  for (size_t t = 0; t < terms_.size(); ++t) {
    if (!SameTerm(terms_[t], other.terms_[t])) return Bad("blended linear models differ in terms");
  }
  for (size_t i = 0; i < coef_.size(); ++i) coef_[i] += other.coef_[i];
  for (size_t i = 0; i < intercept_.size(); ++i) intercept_[i] += other.intercept_[i];
  return Status::Ok();
}

void LinearModel::Contributions(const float* row, double* out) const {
  const size_t p = terms_.size();
  for (int c = 0; c < outputs_; ++c) {
    double* o = out + static_cast<size_t>(c) * (width_ + 1);
    std::fill(o, o + width_ + 1, 0.0);
    double bias = intercept_[static_cast<size_t>(c)];
    for (size_t t = 0; t < p; ++t) {
      const double coef = coef_[static_cast<size_t>(c) * p + t];
      o[static_cast<size_t>(terms_[t].feature)] += coef * (DesignValue(terms_[t], row) - terms_[t].center);
      bias += coef * terms_[t].center;
    }
    o[width_] = bias;
  }
}

std::vector<double> LinearModel::FeatureWeight() const {
  std::vector<double> out(width_, 0.0);
  const size_t p = terms_.size();
  for (int c = 0; c < outputs_; ++c) {
    for (size_t t = 0; t < p; ++t) {
      out[static_cast<size_t>(terms_[t].feature)] += std::fabs(coef_[static_cast<size_t>(c) * p + t]) * terms_[t].spread;
    }
  }
  return out;
}

size_t LinearModel::MemoryBytes() const {
  return sizeof(LinearModel) + terms_.capacity() * sizeof(Term) + (coef_.capacity() + intercept_.capacity()) * 8;
}

Json LinearModel::ToJson() const {
  return {{"width", width_}, {"outputs", outputs_}, {"terms", DesignTermsJson(terms_)}, {"coef", coef_},
          {"intercept", intercept_}};
}

Result<LinearModel> LinearModel::FromJson(const Json& j, size_t width) {
  try {
    if (!j.is_object()) return Bad("not an object");
    LinearModel m;
    m.width_ = j.at("width").get<size_t>();
    m.outputs_ = j.at("outputs").get<int>();
    if (m.width_ != width) return Bad("width disagrees with the pipeline");
    if (m.outputs_ < 1 || m.outputs_ > 100000) return Bad("bad number of outputs");
    ASSIGN_OR_RETURN(m.terms_, ParseDesignTerms(j.at("terms"), width, kMaxTerms, "linear model"));
    m.coef_ = j.at("coef").get<std::vector<double>>();
    m.intercept_ = j.at("intercept").get<std::vector<double>>();
    if (m.coef_.size() != m.terms_.size() * static_cast<size_t>(m.outputs_) ||
        m.intercept_.size() != static_cast<size_t>(m.outputs_)) {
      return Bad("coefficients do not match the terms");
    }
    for (double v : m.coef_) {
      if (!std::isfinite(v)) return Bad("non-finite coefficient");
    }
    return m;
  } catch (const std::exception& e) {
    return Bad(e.what());
  }
}

}  // namespace lathe::ml
