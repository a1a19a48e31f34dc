#!/usr/bin/python3
"""Reference values for tests/unit/ml/metrics_test.cc, computed with scikit-learn and numpy (Debian
python3-sklearn). Inputs are rounded to float32 first, as lathe receives them. Run it and paste the output into
the test when a case changes:  /usr/bin/python3 tests/unit/ml/metrics_reference.py"""
import numpy as np
from sklearn import metrics
from sklearn.calibration import calibration_curve

f32 = lambda v: np.asarray(v, dtype=np.float32).astype(np.float64)

# ---- binary: 20 rows, ties at 0.35 and 0.8
yb = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])
pb = f32([0.92, 0.35, 0.8, 0.35, 0.61, 0.08, 0.55, 0.35, 0.8, 0.27, 0.44, 0.71, 0.49, 0.15, 0.8, 0.97, 0.03, 0.66, 0.52, 0.21])
lb = (pb >= 0.5).astype(int)
print("binary")
print("  accuracy", repr(metrics.accuracy_score(yb, lb)))
print("  balanced_accuracy", repr(metrics.balanced_accuracy_score(yb, lb)))
print("  precision", repr(metrics.precision_score(yb, lb)))
print("  recall", repr(metrics.recall_score(yb, lb)))
print("  f1", repr(metrics.f1_score(yb, lb)))
print("  roc_auc", repr(metrics.roc_auc_score(yb, pb)))
print("  pr_auc", repr(metrics.average_precision_score(yb, pb)))
print("  log_loss", repr(metrics.log_loss(yb, pb)))
print("  confusion", metrics.confusion_matrix(yb, lb).tolist())
fpr, tpr, thr = metrics.roc_curve(yb, pb, drop_intermediate=False)
print("  roc fpr", fpr.tolist())
print("  roc tpr", tpr.tolist())
prob_true, prob_pred = calibration_curve(yb, pb, n_bins=10, strategy="uniform")
print("  calibration fraction_positive", prob_true.tolist())
print("  calibration mean_predicted", prob_pred.tolist())
order = np.argsort(-pb, kind="stable")
gains = [yb[order[: int(np.floor(len(yb) * d / 10 + 0.5))]].sum() / yb.sum() for d in range(1, 11)]
print("  gains", gains)

# ---- multiclass: 12 rows, 3 classes, probabilities summing to 1
ym = np.array([0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 2, 2])
pm = f32([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.25, 0.6, 0.15], [0.4, 0.35, 0.25],
          [0.2, 0.3, 0.5], [0.05, 0.15, 0.8], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
lm = pm.argmax(axis=1)
print("multiclass")
print("  accuracy", repr(metrics.accuracy_score(ym, lm)))
print("  balanced_accuracy", repr(metrics.balanced_accuracy_score(ym, lm)))
for avg in ("macro", "micro", "weighted"):
    print(f"  {avg}_precision", repr(metrics.precision_score(ym, lm, average=avg)))
    print(f"  {avg}_recall", repr(metrics.recall_score(ym, lm, average=avg)))
    print(f"  {avg}_f1", repr(metrics.f1_score(ym, lm, average=avg)))
print("  roc_auc", repr(metrics.roc_auc_score(ym, pm, multi_class="ovr", average="macro")))
print("  pr_auc", repr(metrics.average_precision_score(np.eye(3)[ym], pm, average="macro")))
print("  log_loss", repr(metrics.log_loss(ym, pm)))
print("  confusion", metrics.confusion_matrix(ym, lm).tolist())

# ---- regression: 10 rows, one zero truth
yr = f32([3.0, -1.5, 0.0, 7.25, 2.0, 4.5, -0.5, 10.0, 1.0, 6.0])
pr = f32([2.5, -1.0, 0.5, 8.0, 2.0, 3.0, 0.25, 9.0, 1.5, 6.75])
nz = yr != 0
res = yr - pr
print("regression")
print("  rmse", repr(float(np.sqrt(metrics.mean_squared_error(yr, pr)))))
print("  mae", repr(metrics.mean_absolute_error(yr, pr)))
print("  mape (non-zero truths)", repr(metrics.mean_absolute_percentage_error(yr[nz], pr[nz])), "rows", int(nz.sum()))
print("  r2", repr(metrics.r2_score(yr, pr)))
print("  residual quantiles", [repr(float(np.percentile(res, q))) for q in (0, 5, 25, 50, 75, 95, 100)])
print("  residual mean", repr(float(res.mean())))
counts, edges = np.histogram(res, bins=20)
print("  histogram counts", counts.tolist())
print("  histogram edges[0,1,-1]", edges[0], edges[1], edges[-1])
